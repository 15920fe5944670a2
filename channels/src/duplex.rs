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
}

impl<'a> Duplex<'a> {
    pub(crate) fn new(tx: Sender<'a>, rx: Receiver<'a>) -> Self {
        Self { tx, rx, mark: 0 }
    }

    /// Sends `msg` (at most 56 bytes) if a slot is free.
    #[inline(always)]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.tx.send_acking(msg, Some(self.rx.position()))
    }

    /// Sends a message given as payload words (see [`Sender::try_send_words`]).
    #[inline(always)]
    pub fn try_send_words(
        &mut self,
        words: &[u64; PAYLOAD_WORDS],
        len: usize,
    ) -> Result<(), SendError> {
        self.tx
            .send_words_acking(words, len, Some(self.rx.position()))
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

    /// Hands a received message's piggybacked acknowledgement to the sender.
    #[inline(always)]
    fn received(&mut self, ready: Ready) {
        if let Some(ack) = ready.ack {
            self.tx.take_piggyback(ack, self.mark);
        }
    }

    /// When the ring was empty, moves the mark up to the sender's position.
    #[inline(always)]
    fn failed(&mut self, e: RecvError) -> RecvError {
        if e == RecvError::Empty {
            self.mark = self.tx.position();
        }
        e
    }

    /// The sending half, for the rest of its API (messages sent through it carry no
    /// acknowledgement).
    pub fn sender(&mut self) -> &mut Sender<'a> {
        &mut self.tx
    }

    /// The receiving half, for the rest of its API (acknowledgements on messages received
    /// through it are not taken in).
    pub fn receiver(&mut self) -> &mut Receiver<'a> {
        &mut self.rx
    }

    /// Both halves, to use apart from now on.
    pub fn split(self) -> (Sender<'a>, Receiver<'a>) {
        (self.tx, self.rx)
    }
}
