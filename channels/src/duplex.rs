//! Both halves of one endpoint in one object, for code where one thread both sends and
//! receives (a request/response exchange, a guest's event loop).
//!
//! Owning both halves is what makes piggybacked acknowledgements sound: every message sent
//! carries the low 16 bits of how many messages this endpoint has received, read in the same
//! call that writes the message, and every message received hands the peer's count to this
//! endpoint's sender, stamped with the sender's position when the receiver last found its
//! ring empty (the mark that bounds how old the count can be; see `Sender::take_piggyback`).
//! Split halves ([`crate::Channel::endpoint`]) send no acknowledgement, so a peer never
//! trusts a count that another thread may have made stale.

use crate::error::{RecvError, SendError};
use crate::layout::{PAYLOAD_SIZE, PAYLOAD_WORDS};
use crate::receiver::{decode_typed, Receiver};
use crate::sender::Sender;
use crate::slot::Ready;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// One endpoint of a channel, both halves owned together (see the module documentation).
///
/// The data calls (`try_send*`, `try_recv*`) carry and take in piggybacked acknowledgements;
/// [`Duplex::sender`] and [`Duplex::receiver`] give the rest of each half's API (batches,
/// zero-copy slots, notification, counters), whose messages carry none.
#[derive(Debug)]
pub struct Duplex<'a> {
    tx: Sender<'a>,
    rx: Receiver<'a>,
    /// `tx`'s position when `rx` last found its ring empty.
    mark: u64,
    /// The 16-bit acknowledgement last handed to `tx` since the mark moved: the same bits
    /// against the same mark name the same count, so a one-way stream (whose messages all
    /// carry the same count) skips the decoding.
    last_ack: u64,
}

impl<'a> Duplex<'a> {
    pub(crate) fn new(tx: Sender<'a>, rx: Receiver<'a>) -> Self {
        Self {
            tx,
            rx,
            mark: 0,
            last_ack: u64::MAX,
        }
    }

    /// Sends `msg` (at most 56 bytes) if a slot is free.
    #[inline(always)]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        match self.tx.send_acking(msg, Some(self.rx.position())) {
            Err(SendError::Full) if self.take_in() => {
                self.tx.send_acking(msg, Some(self.rx.position()))
            }
            sent => sent,
        }
    }

    /// Sends a message given as payload words (see [`Sender::try_send_words`]).
    #[inline(always)]
    pub fn try_send_words(
        &mut self,
        words: &[u64; PAYLOAD_WORDS],
        len: usize,
    ) -> Result<(), SendError> {
        match self
            .tx
            .send_words_acking(words, len, Some(self.rx.position()))
        {
            Err(SendError::Full) if self.take_in() => {
                self.tx
                    .send_words_acking(words, len, Some(self.rx.position()))
            }
            sent => sent,
        }
    }

    /// Sends a typed message: its bytes, as `zerocopy` sees them (at most 56).
    pub fn try_send_typed<T: IntoBytes + Immutable + ?Sized>(
        &mut self,
        msg: &T,
    ) -> Result<(), SendError> {
        self.try_send(msg.as_bytes())
    }

    /// Receives the next message into `buf`; returns its length.
    #[inline(always)]
    pub fn try_recv(&mut self, buf: &mut [u8; PAYLOAD_SIZE]) -> Result<usize, RecvError> {
        match self.rx.recv_ready(buf) {
            Ok(ready) => {
                self.received(ready);
                Ok(ready.len)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Receives the next message as payload words and length in bytes.
    #[inline(always)]
    pub fn try_recv_words(&mut self) -> Result<([u64; PAYLOAD_WORDS], usize), RecvError> {
        match self.rx.recv_words_ready() {
            Ok((words, ready)) => {
                self.received(ready);
                Ok((words, ready.len))
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Receives a typed message. A message whose length is not `size_of::<T>()` is consumed
    /// and reported as [`RecvError::WrongSize`].
    pub fn try_recv_typed<T: FromBytes>(&mut self) -> Result<T, RecvError> {
        let mut buf = [0u8; PAYLOAD_SIZE];
        let len = self.try_recv(&mut buf)?;
        decode_typed(&buf, len)
    }

    /// Hands a message received by this `Duplex`'s own calls to the sender: its
    /// piggybacked acknowledgement. One kept from the receiver's own calls is older (the
    /// peer's count only grows), so it can wait for [`Duplex::take_in`].
    #[inline(always)]
    fn received(&mut self, ready: Ready) {
        if let Some(ack) = ready.ack {
            if ack != self.last_ack {
                self.last_ack = ack;
                self.tx.take_piggyback(ack, self.mark);
            }
        }
    }

    /// Hands the acknowledgement piggybacked on the newest message received through the
    /// receiver's own calls to the sender; whether there was one. Called where it matters:
    /// when a send finds no free slot (then the send is tried once more), before the mark
    /// moves (so the mark it is judged against has not moved since that message was
    /// received: the mark moves only in [`Duplex::failed`]), and before `sender()` and
    /// `split()` hand the sender out.
    #[inline(always)]
    fn take_in(&mut self) -> bool {
        match self.rx.take_piggyback() {
            Some(ack) => {
                self.tx.take_piggyback(ack, self.mark);
                true
            }
            None => false,
        }
    }

    /// When the ring was empty, moves the mark up to the sender's position (after taking in
    /// what was received before, against the old mark).
    #[inline(always)]
    fn failed(&mut self, e: RecvError) -> RecvError {
        if e == RecvError::Empty {
            self.take_in();
            self.mark = self.tx.position();
            self.last_ack = u64::MAX;
        }
        e
    }

    /// The sending half, for the rest of its API (messages sent through it carry no
    /// acknowledgement). Acknowledgements received so far are taken in first.
    pub fn sender(&mut self) -> &mut Sender<'a> {
        self.take_in();
        &mut self.tx
    }

    /// The receiving half, for the rest of its API (batches, in-place reads, waiting).
    /// Acknowledgements on messages received through it are kept and taken in by this
    /// `Duplex`'s next call; an empty ring seen through it does not move the mark, which only
    /// makes the mark older (still sound, see `Sender::take_piggyback`).
    pub fn receiver(&mut self) -> &mut Receiver<'a> {
        &mut self.rx
    }

    /// Both halves, to use apart from now on (acknowledgements received so far are taken in
    /// first; later ones are not).
    pub fn split(mut self) -> (Sender<'a>, Receiver<'a>) {
        self.take_in();
        (self.tx, self.rx)
    }
}
