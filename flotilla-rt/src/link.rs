//! One channel endpoint as a partition uses it, independent of the
//! machine: a [`Link`] (both halves of a channel, owned together so
//! acknowledgements ride on the messages each way) and the waiting sends
//! and receives over it, bytes or typed (`zerocopy`).
//!
//! The machine is behind [`Platform`] (clock, IPI, idling), so the same
//! code runs on the host between two threads over an ordinary memory
//! region in the tests. A wait is never entered without first announcing
//! it on the channel (the `channels` crate's wait handshake), so an IPI can
//! always wake it; on `poll` channels it spins.
use channels::{Duplex, RecvError, SendError, PAYLOAD_SIZE};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// What a waiting loop needs from the machine.
pub trait Platform {
    /// A monotonic cycle counter (the TSC).
    fn now(&mut self) -> u64;
    /// Raises the IPI of channel `channel_id` at the peer.
    fn notify(&mut self, channel_id: u32);
    /// Masks interrupts before a wait is announced on a channel, so that a
    /// wake-up IPI arriving after the announcement stays pending.
    fn begin_wait(&mut self);
    /// Ends the wait: if `sleep`, sleeps until an interrupt (atomically
    /// with unmasking); then interrupts are unmasked.
    fn end_wait(&mut self, sleep: bool);
    /// One turn of a polling loop.
    fn relax(&mut self);
}

/// One endpoint: both halves of a channel as this partition sees it.
#[derive(Debug)]
pub struct Link<'a> {
    /// The endpoint.
    pub io: Duplex<'a>,
    /// The channel's index (for `SEND_IPI`).
    pub channel_id: u32,
    /// Whether the channel is `ipi` (else `poll`: no notifications).
    pub ipi: bool,
    /// Whether this partition is endpoint A.
    pub side_a: bool,
}

/// Why a send or receive on a link stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeError {
    /// The channel refused a send (corrupted, or the message is too long).
    Send(SendError),
    /// The channel refused a receive (corrupted).
    Recv(RecvError),
    /// The peer answered with the wrong message.
    Mismatch {
        /// What this side expected.
        expected: u64,
        /// What came.
        found: u64,
    },
    /// A typed receive got a message shorter than the type.
    Short {
        /// Bytes the type needs.
        expected: usize,
        /// Bytes the message had.
        found: usize,
    },
    /// A receive with a deadline found no message before it.
    Timeout,
}

impl core::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExchangeError::Send(e) => write!(f, "send: {e}"),
            ExchangeError::Recv(e) => write!(f, "receive: {e}"),
            ExchangeError::Mismatch { expected, found } => {
                write!(f, "expected message {expected}, got {found}")
            }
            ExchangeError::Short { expected, found } => {
                write!(f, "expected a {expected}-byte message, got {found} bytes")
            }
            ExchangeError::Timeout => write!(f, "no message before the deadline"),
        }
    }
}

/// A link that stopped, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Broken {
    /// The channel's index in the layout.
    pub channel_id: u32,
    /// What went wrong on it.
    pub error: ExchangeError,
}

impl Link<'_> {
    /// Tells the peer about new messages (an IPI if it said it sleeps, on
    /// `ipi` channels).
    pub fn kick_tx(&mut self, p: &mut impl Platform) {
        if self.ipi {
            let id = self.channel_id;
            self.io.sender().kick(&mut || p.notify(id));
        }
    }

    /// Tells the peer about freed slots (an IPI if it waits for room, on
    /// `ipi` channels; a published acknowledgement on `poll` ones).
    pub fn kick_rx(&mut self, p: &mut impl Platform) {
        let id = self.channel_id;
        if self.ipi {
            self.io.receiver().kick(&mut || p.notify(id));
        } else {
            self.io.receiver().publish_ack();
        }
    }

    /// Sends `msg` (at most [`PAYLOAD_SIZE`] bytes), waiting for a free
    /// slot, and kicks the peer.
    pub fn send_bytes(&mut self, msg: &[u8], p: &mut impl Platform) -> Result<(), ExchangeError> {
        loop {
            match self.io.try_send(msg) {
                Ok(()) => {
                    self.kick_tx(p);
                    return Ok(());
                }
                Err(SendError::Full) if self.ipi => {
                    p.begin_wait();
                    let sleep = self.io.sender().prepare_wait();
                    p.end_wait(sleep);
                    self.io.sender().finish_wait();
                }
                Err(SendError::Full) => p.relax(),
                Err(e) => return Err(ExchangeError::Send(e)),
            }
        }
    }

    /// Receives one message into `buf`, waiting for it; returns its length.
    pub fn recv_bytes(
        &mut self,
        buf: &mut [u8; PAYLOAD_SIZE],
        p: &mut impl Platform,
    ) -> Result<usize, ExchangeError> {
        self.recv_bytes_until(buf, None, p)
    }

    /// [`Link::recv_bytes`] with a deadline in [`Platform::now`]'s cycles:
    /// [`ExchangeError::Timeout`] once `now()` reaches `deadline` with the
    /// ring still empty (a message already there is returned whatever the
    /// clock says). A sleeping wait looks at the clock when an interrupt
    /// wakes it (a timer tick at the latest), so it ends up to one tick
    /// after the deadline. A message that arrives after the timeout stays
    /// in the ring for the next receive: a request/reply protocol that
    /// goes on after a timeout must tell a late reply from the next one.
    pub fn recv_bytes_until(
        &mut self,
        buf: &mut [u8; PAYLOAD_SIZE],
        deadline: Option<u64>,
        p: &mut impl Platform,
    ) -> Result<usize, ExchangeError> {
        loop {
            match self.io.try_recv(buf) {
                Ok(len) => return Ok(len),
                Err(RecvError::Empty) if deadline.is_some_and(|d| p.now() >= d) => {
                    // Slots freed by earlier receives reach a sender that
                    // waits for room, as a wait would have told it.
                    self.kick_rx(p);
                    return Err(ExchangeError::Timeout);
                }
                Err(RecvError::Empty) if self.ipi => {
                    let id = self.channel_id;
                    p.begin_wait();
                    let sleep = self.io.receiver().prepare_wait(&mut || p.notify(id));
                    p.end_wait(sleep);
                    self.io.receiver().finish_wait();
                }
                Err(RecvError::Empty) => {
                    self.io.receiver().publish_ack();
                    p.relax();
                }
                Err(e) => return Err(ExchangeError::Recv(e)),
            }
        }
    }

    /// Sends `value`'s bytes as one message (a type of at most
    /// [`PAYLOAD_SIZE`] bytes), waiting for a free slot.
    pub fn send<T: IntoBytes + Immutable + ?Sized>(
        &mut self,
        value: &T,
        p: &mut impl Platform,
    ) -> Result<(), ExchangeError> {
        self.send_bytes(value.as_bytes(), p)
    }

    /// Receives one message as a `T` (read from its first
    /// `size_of::<T>()` bytes), waiting for it.
    pub fn recv<T: FromBytes>(&mut self, p: &mut impl Platform) -> Result<T, ExchangeError> {
        self.recv_until(None, p)
    }

    /// [`Link::recv`] with a deadline (see [`Link::recv_bytes_until`]).
    pub fn recv_until<T: FromBytes>(
        &mut self,
        deadline: Option<u64>,
        p: &mut impl Platform,
    ) -> Result<T, ExchangeError> {
        let mut buf = [0u8; PAYLOAD_SIZE];
        let len = self.recv_bytes_until(&mut buf, deadline, p)?;
        let expected = core::mem::size_of::<T>();
        match buf.get(..len).and_then(|b| T::read_from_prefix(b).ok()) {
            Some((value, _)) => Ok(value),
            None => Err(ExchangeError::Short {
                expected,
                found: len,
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use channels::{Channel, Region, Side};
    use std::sync::atomic::AtomicU64;

    #[derive(Default)]
    struct Host;

    impl Platform for Host {
        fn now(&mut self) -> u64 {
            0
        }
        fn notify(&mut self, _channel_id: u32) {}
        fn begin_wait(&mut self) {}
        fn end_wait(&mut self, _sleep: bool) {
            std::thread::yield_now();
        }
        fn relax(&mut self) {
            std::thread::yield_now();
        }
    }

    /// Words of a 64-slot channel region (layout v4: 20 KiB).
    const WORDS: usize = 20 * 1024 / 8;

    #[repr(C, align(64))]
    struct Mem([AtomicU64; WORDS]);

    fn pair(ipi: bool) -> (Link<'static>, Link<'static>) {
        let mem: &'static mut Mem = Box::leak(Box::new(Mem([const { AtomicU64::new(0) }; WORDS])));
        let mut ch =
            Channel::format(Region::from_words(&mut mem.0).expect("aligned"), 64).expect("format");
        let mut link = |side| Link {
            io: ch.duplex(side).expect("each side once"),
            channel_id: 3,
            ipi,
            side_a: side == Side::A,
        };
        (link(Side::A), link(Side::B))
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
    #[repr(C)]
    struct Request {
        key: u64,
        value: u64,
    }

    #[test]
    fn typed_messages_cross_between_threads() {
        for ipi in [false, true] {
            let (mut a, mut b) = pair(ipi);
            let echo = std::thread::spawn(move || {
                for _ in 0..500 {
                    let r: Request = b.recv(&mut Host).expect("recv");
                    b.send(&(r.key + r.value), &mut Host).expect("send");
                }
            });
            for i in 0..500u64 {
                a.send(
                    &Request {
                        key: i,
                        value: 2 * i,
                    },
                    &mut Host,
                )
                .expect("send");
                assert_eq!(a.recv::<u64>(&mut Host).expect("recv"), 3 * i);
            }
            echo.join().expect("echo thread");
        }
    }

    /// A clock that advances by one per look (also `select`'s tests).
    #[derive(Default)]
    pub(crate) struct Ticking(pub(crate) u64);

    impl Platform for Ticking {
        fn now(&mut self) -> u64 {
            self.0 += 1;
            self.0
        }
        fn notify(&mut self, _channel_id: u32) {}
        fn begin_wait(&mut self) {}
        fn end_wait(&mut self, _sleep: bool) {}
        fn relax(&mut self) {}
    }

    #[test]
    fn a_receive_with_a_deadline_ends_on_it_and_takes_what_is_there() {
        for ipi in [false, true] {
            let (mut a, mut b) = pair(ipi);
            let mut clock = Ticking::default();
            assert_eq!(
                b.recv_until::<u64>(Some(1_000), &mut clock),
                Err(ExchangeError::Timeout)
            );
            assert!(
                (1_000..1_010).contains(&clock.0),
                "it waited until the deadline, no longer: {}",
                clock.0
            );
            // A message already there is taken, even past the deadline.
            a.send(&42u64, &mut Host).expect("send");
            assert_eq!(b.recv_until::<u64>(Some(0), &mut clock), Ok(42));
            // Without a deadline the receive waits (the message comes from
            // another thread).
            let sender = std::thread::spawn(move || a.send(&7u64, &mut Host).expect("send"));
            assert_eq!(b.recv_until::<u64>(None, &mut Host), Ok(7));
            sender.join().expect("sender");
        }
    }

    #[test]
    fn a_short_message_is_not_a_value() {
        let (mut a, mut b) = pair(false);
        a.send(&7u32, &mut Host).expect("send");
        assert_eq!(
            b.recv::<Request>(&mut Host),
            Err(ExchangeError::Short {
                expected: 16,
                found: 4
            })
        );
    }

    #[test]
    fn an_oversized_message_is_refused() {
        let (mut a, _b) = pair(false);
        let big = [0u8; PAYLOAD_SIZE + 1];
        assert!(matches!(
            a.send(&big[..], &mut Host),
            Err(ExchangeError::Send(_))
        ));
    }
}
