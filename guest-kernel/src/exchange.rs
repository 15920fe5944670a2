//! The message loops of the channel workloads, independent of the machine:
//! `pingpong` (round trips on one channel, timed) and `stream` (one-way
//! traffic on every channel, checksummed).
//!
//! The machine is behind [`Platform`] (clock, IPI, idling), so the loops
//! run on the host between two threads over an ordinary memory region in
//! the tests. A loop never blocks without first announcing its wait on the
//! channel (the `channels` crate's wait handshake), so an IPI can always
//! wake it; on `poll` channels it spins.

use alloc::vec::Vec;
use channels::{Duplex, RecvError, SendError, PAYLOAD_SIZE};

/// What the loops need from the machine.
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

/// One endpoint: both halves of a channel as this partition sees it, owned
/// together so acknowledgements ride on the messages each way.
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

/// Why a loop stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeError {
    /// The channel refused a send (corrupted).
    Send(SendError),
    /// The channel refused a receive (corrupted).
    Recv(RecvError),
    /// The peer answered with the wrong message.
    Mismatch { expected: u64, found: u64 },
}

impl core::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExchangeError::Send(e) => write!(f, "send: {e}"),
            ExchangeError::Recv(e) => write!(f, "receive: {e}"),
            ExchangeError::Mismatch { expected, found } => {
                write!(f, "expected message {expected}, got {found}")
            }
        }
    }
}

fn kick_tx(link: &mut Link<'_>, p: &mut impl Platform) {
    if link.ipi {
        let id = link.channel_id;
        link.io.sender().kick(&mut || p.notify(id));
    }
}

fn kick_rx(link: &mut Link<'_>, p: &mut impl Platform) {
    let id = link.channel_id;
    if link.ipi {
        link.io.receiver().kick(&mut || p.notify(id));
    } else {
        link.io.receiver().publish_ack();
    }
}

/// Sends `word` (8 bytes), waiting for a free slot.
fn send_word(link: &mut Link<'_>, word: u64, p: &mut impl Platform) -> Result<(), ExchangeError> {
    loop {
        match link.io.try_send(&word.to_le_bytes()) {
            Ok(()) => {
                kick_tx(link, p);
                return Ok(());
            }
            Err(SendError::Full) if link.ipi => {
                p.begin_wait();
                let sleep = link.io.sender().prepare_wait();
                p.end_wait(sleep);
                link.io.sender().finish_wait();
            }
            Err(SendError::Full) => p.relax(),
            Err(e) => return Err(ExchangeError::Send(e)),
        }
    }
}

/// Receives an 8-byte word, waiting for it.
fn recv_word(link: &mut Link<'_>, p: &mut impl Platform) -> Result<u64, ExchangeError> {
    let mut buf = [0u8; PAYLOAD_SIZE];
    loop {
        match link.io.try_recv(&mut buf) {
            Ok(_) => {
                let mut w = [0u8; 8];
                w.copy_from_slice(&buf[..8]);
                return Ok(u64::from_le_bytes(w));
            }
            Err(RecvError::Empty) if link.ipi => {
                let id = link.channel_id;
                p.begin_wait();
                let sleep = link.io.receiver().prepare_wait(&mut || p.notify(id));
                p.end_wait(sleep);
                link.io.receiver().finish_wait();
            }
            Err(RecvError::Empty) => {
                link.io.receiver().publish_ack();
                p.relax();
            }
            Err(e) => return Err(ExchangeError::Recv(e)),
        }
    }
}

/// Ping side (endpoint A): `rounds` round trips; the round-trip times in
/// cycles of every `stride`-th round are pushed to `samples`.
pub fn ping(
    link: &mut Link<'_>,
    rounds: u64,
    stride: u64,
    samples: &mut Vec<u64>,
    p: &mut impl Platform,
) -> Result<(), ExchangeError> {
    for round in 0..rounds {
        let t0 = p.now();
        send_word(link, round, p)?;
        let echo = recv_word(link, p)?;
        let t1 = p.now();
        if echo != round {
            return Err(ExchangeError::Mismatch {
                expected: round,
                found: echo,
            });
        }
        if round % stride.max(1) == 0 {
            samples.push(t1.wrapping_sub(t0));
        }
    }
    kick_rx(link, p);
    Ok(())
}

/// Pong side (endpoint B): echoes `rounds` messages.
pub fn pong(link: &mut Link<'_>, rounds: u64, p: &mut impl Platform) -> Result<(), ExchangeError> {
    for round in 0..rounds {
        let word = recv_word(link, p)?;
        if word != round {
            return Err(ExchangeError::Mismatch {
                expected: round,
                found: word,
            });
        }
        send_word(link, word, p)?;
    }
    kick_rx(link, p);
    Ok(())
}

/// A 64-bit mixing function (splitmix64's finaliser).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The payload of stream message `seq` on channel `channel_id`: two words.
pub fn stream_payload(channel_id: u32, seq: u64) -> [u64; 2] {
    [seq, mix(seq ^ (u64::from(channel_id) << 48))]
}

/// Order-independent checksum contribution of one payload.
pub fn payload_checksum(words: &[u64]) -> u64 {
    words.iter().fold(0u64, |c, &w| c.wrapping_add(mix(w)))
}

/// What a stream endpoint did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamTotals {
    /// Messages sent (over channels where this partition is A).
    pub sent: u64,
    /// Messages received (where it is B).
    pub received: u64,
    /// Checksum of the payloads sent.
    pub sent_checksum: u64,
    /// Checksum of the payloads received.
    pub received_checksum: u64,
}

/// Stream: on every link where this partition is A, send `messages`
/// messages; where it is B, receive `messages`. All links progress
/// together; when none can, the loop idles (sleeping only if every link
/// is an `ipi` channel).
pub fn stream(
    links: &mut [Link<'_>],
    messages: u64,
    p: &mut impl Platform,
) -> Result<StreamTotals, ExchangeError> {
    let mut totals = StreamTotals::default();
    let mut done: Vec<u64> = links.iter().map(|_| 0).collect();
    let can_sleep = links.iter().all(|l| l.ipi);
    let mut buf = [0u8; PAYLOAD_SIZE];
    loop {
        let mut progress = false;
        let mut finished = true;
        for (link, count) in links.iter_mut().zip(done.iter_mut()) {
            if *count == messages {
                continue;
            }
            finished = false;
            let before = *count;
            if link.side_a {
                while *count < messages {
                    let words = stream_payload(link.channel_id, *count);
                    let mut bytes = [0u8; 16];
                    bytes[..8].copy_from_slice(&words[0].to_le_bytes());
                    bytes[8..].copy_from_slice(&words[1].to_le_bytes());
                    match link.io.try_send(&bytes) {
                        Ok(()) => {
                            *count += 1;
                            totals.sent += 1;
                            totals.sent_checksum =
                                totals.sent_checksum.wrapping_add(payload_checksum(&words));
                        }
                        Err(SendError::Full) => break,
                        Err(e) => return Err(ExchangeError::Send(e)),
                    }
                }
                if *count != before {
                    kick_tx(link, p);
                }
            } else {
                while *count < messages {
                    match link.io.try_recv(&mut buf) {
                        Ok(len) => {
                            let mut words = [0u64; 7];
                            for (w, chunk) in words.iter_mut().zip(buf[..len].chunks(8)) {
                                let mut b = [0u8; 8];
                                b[..chunk.len()].copy_from_slice(chunk);
                                *w = u64::from_le_bytes(b);
                            }
                            let n = len.div_ceil(8);
                            *count += 1;
                            totals.received += 1;
                            totals.received_checksum = totals
                                .received_checksum
                                .wrapping_add(payload_checksum(&words[..n]));
                        }
                        Err(RecvError::Empty) => break,
                        Err(e) => return Err(ExchangeError::Recv(e)),
                    }
                }
                if *count != before {
                    kick_rx(link, p);
                }
            }
            progress |= *count != before;
        }
        if finished {
            return Ok(totals);
        }
        if !progress {
            idle_all(links, &done, messages, can_sleep, p);
        }
    }
}

/// No link made progress: announce a wait on every unfinished one and
/// sleep if all of them agree (only when every link is `ipi`), else spin.
fn idle_all(
    links: &mut [Link<'_>],
    done: &[u64],
    messages: u64,
    can_sleep: bool,
    p: &mut impl Platform,
) {
    let pending = || {
        links
            .iter()
            .zip(done)
            .filter(|(_, c)| **c < messages)
            .count()
    };
    if !can_sleep || pending() == 0 {
        for link in links.iter_mut() {
            link.io.receiver().publish_ack();
        }
        p.relax();
        return;
    }
    p.begin_wait();
    let mut sleep = true;
    for (link, _) in links.iter_mut().zip(done).filter(|(_, c)| **c < messages) {
        let id = link.channel_id;
        sleep &= if link.side_a {
            link.io.sender().prepare_wait()
        } else {
            link.io.receiver().prepare_wait(&mut || p.notify(id))
        };
    }
    p.end_wait(sleep);
    for (link, _) in links.iter_mut().zip(done).filter(|(_, c)| **c < messages) {
        if link.side_a {
            link.io.sender().finish_wait();
        } else {
            link.io.receiver().finish_wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use channels::{Channel, Region, Side};
    use std::sync::atomic::AtomicU64;

    /// A host platform: a counter for a clock, notifications counted,
    /// idling by yielding.
    #[derive(Default)]
    struct Host {
        clock: u64,
        notified: u64,
    }

    impl Platform for Host {
        fn now(&mut self) -> u64 {
            self.clock += 1;
            self.clock
        }
        fn notify(&mut self, _channel_id: u32) {
            self.notified += 1;
        }
        fn begin_wait(&mut self) {}
        fn end_wait(&mut self, _sleep: bool) {
            // No interrupts to wake a sleeper here: yield instead.
            std::thread::yield_now();
        }
        fn relax(&mut self) {
            std::thread::yield_now();
        }
    }

    #[repr(C, align(64))]
    struct Mem([AtomicU64; 20 * 1024 / 8]);

    fn region(slots: u32) -> &'static Mem {
        assert_eq!(channels::region_size(slots), 20 * 1024);
        let mem: &'static Mem = Box::leak(Box::new(Mem([const { AtomicU64::new(0) }; 2560])));
        Channel::format(Region::from_words(&mem.0).expect("aligned"), slots).expect("format");
        mem
    }

    fn link(mem: &'static Mem, side: Side, ipi: bool) -> Link<'static> {
        let ch = Channel::open_expecting(Region::from_words(&mem.0).expect("aligned"), 64)
            .expect("open");
        Link {
            io: ch.duplex(side),
            channel_id: 7,
            ipi,
            side_a: side == Side::A,
        }
    }

    #[test]
    fn ping_pong_round_trips() {
        for ipi in [false, true] {
            let mem = region(64);
            let mut b = link(mem, Side::B, ipi);
            let peer = std::thread::spawn(move || pong(&mut b, 1000, &mut Host::default()));
            let mut a = link(mem, Side::A, ipi);
            let mut samples = Vec::new();
            ping(&mut a, 1000, 10, &mut samples, &mut Host::default()).expect("ping");
            peer.join().expect("thread").expect("pong");
            assert_eq!(samples.len(), 100);
            assert!(samples.iter().all(|&s| s >= 1));
        }
    }

    #[test]
    fn stream_checksums_agree() {
        let mem = region(64);
        let mut b = [link(mem, Side::B, true)];
        let peer = std::thread::spawn(move || stream(&mut b, 5000, &mut Host::default()));
        let mut a = [link(mem, Side::A, true)];
        let sent = stream(&mut a, 5000, &mut Host::default()).expect("send");
        let got = peer.join().expect("thread").expect("receive");
        assert_eq!((sent.sent, got.received), (5000, 5000));
        assert_eq!(sent.sent_checksum, got.received_checksum);
        assert_ne!(sent.sent_checksum, 0);
    }
}
