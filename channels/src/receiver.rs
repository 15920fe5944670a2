//! The receiving half of an endpoint: reads the ring towards it, writes its own control line.
//!
//! Everything read from the region is untrusted. The receiver polls only the sequence word of
//! the next slot (slot 0 after a message with the wrap flag, else the one after); a word that
//! is neither the expected message nor an older one, or a length above 56, stops this half
//! with a sticky [`Corruption`] — the channel stalls, nothing else happens. Payload words are read with atomic loads, so a peer rewriting a slot while it
//! is read yields garbage bytes for that message, never undefined behaviour.
//!
//! Credits: the receiver publishes its consumed count (release) every `ack_interval` messages
//! (a quarter of the ring by default), on [`Receiver::kick`], before sleeping, and at once
//! after a message that ended a run (the peer's sender may be waiting for exactly that one;
//! [`Receiver::recv_batch`]: at the end of the batch), so the ack line moves rarely rather
//! than once per message. What the peer piggybacks on a
//! message is handed to this endpoint's sender by a [`crate::Duplex`].

use crate::channel::Control;
use crate::error::{Corruption, RecvError};
use crate::layout::{PAYLOAD_SIZE, PAYLOAD_WORDS, SEQ_WORD};
use crate::notify::{awake_word, waiting_word, Counters, Notify, Suppressor};
use crate::slot::{classify, Ready, Ring, Slot, SlotState};
use crate::sync::{fence, load_acquire, Ordering, Word};
use zerocopy::FromBytes;

/// The receiving half of a channel endpoint.
#[derive(Debug)]
pub struct Receiver<'a> {
    ring: Ring<'a>,
    own: Control<'a>,
    peer_tx_wait: &'a Word,
    /// Messages consumed so far (the next message's position).
    pos: u64,
    /// Position of the first message of the current run (that message is in slot 0).
    origin: u64,
    /// The acknowledgement last stored in our control line.
    published: u64,
    /// `pos` at the last kick.
    kicked: u64,
    ack_interval: u64,
    wait_epoch: u64,
    suppressor: Suppressor,
    counters: Counters,
    fault: Option<Corruption>,
    /// The acknowledgement piggybacked on the newest message consumed through this half's
    /// own receive calls (single, batch, in place) since a [`crate::Duplex`] last took it,
    /// so a `Duplex` whose receiver is used directly loses none.
    piggy: Option<u64>,
}

/// Reads the payload words of a slot (relaxed atomic loads).
#[inline(always)]
fn read_words(slot: &Slot) -> [u64; PAYLOAD_WORDS] {
    let mut words = [0u64; PAYLOAD_WORDS];
    for (w, src) in words.iter_mut().zip(slot.iter()) {
        *w = src.load(Ordering::Relaxed);
    }
    words
}

/// Unpacks payload words into bytes (little-endian).
#[inline(always)]
fn unpack(words: &[u64; PAYLOAD_WORDS], out: &mut [u8; PAYLOAD_SIZE]) {
    for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
}

/// A received payload of `len` bytes as a `T`, or `WrongSize` unless `len` is its size.
pub(crate) fn decode_typed<T: FromBytes>(
    buf: &[u8; PAYLOAD_SIZE],
    len: usize,
) -> Result<T, RecvError> {
    buf.get(..len)
        .and_then(|bytes| T::read_from_bytes(bytes).ok())
        .ok_or(RecvError::WrongSize {
            expected: core::mem::size_of::<T>(),
            found: len,
        })
}

impl<'a> Receiver<'a> {
    pub(crate) fn new(ring: Ring<'a>, own: Control<'a>, peer_tx_wait: &'a Word) -> Self {
        Self {
            ack_interval: (ring.len() / 4).max(1),
            ring,
            own,
            peer_tx_wait,
            pos: 0,
            origin: 0,
            published: 0,
            kicked: 0,
            wait_epoch: 0,
            suppressor: Suppressor::default(),
            counters: Counters::default(),
            fault: None,
            piggy: None,
        }
    }

    /// The acknowledgement piggybacked on the newest message consumed since the last call
    /// (the peer's count only grows, so the newest one is the one that matters).
    #[inline(always)]
    pub(crate) fn take_piggyback(&mut self) -> Option<u64> {
        // Read before writing: the common case (nothing kept) stores nothing.
        let kept = self.piggy;
        if kept.is_some() {
            self.piggy = None;
        }
        kept
    }

    /// Keeps the acknowledgement a message consumed through this half's own API carried,
    /// for the `Duplex` that owns it (the `Duplex`'s own receives hand it over directly).
    #[inline(always)]
    fn keep(&mut self, ready: Ready) {
        if ready.ack.is_some() {
            self.piggy = ready.ack;
        }
    }

    /// Sets how many consumed messages trigger an acknowledgement (clamped to 1..=slots).
    /// Smaller: the sender sees free slots sooner; larger: the ack line moves less often.
    pub fn set_ack_interval(&mut self, messages: u64) {
        self.ack_interval = messages.clamp(1, self.ring.len());
    }

    /// The next message's slot and what its sequence word says, without consuming it.
    #[inline(always)]
    fn peek(&mut self) -> Result<(&'a Slot, Ready), RecvError> {
        if let Some(c) = self.fault {
            return Err(RecvError::Corrupted(c));
        }
        let run = self.pos.wrapping_sub(self.origin);
        let slot = self.ring.slot(run).ok_or(RecvError::Empty)?;
        let word = slot.get(SEQ_WORD).map_or(0, load_acquire);
        match classify(word, self.pos, run, self.ring.len()) {
            SlotState::Ready(ready) => Ok((slot, ready)),
            SlotState::Empty => Err(RecvError::Empty),
            SlotState::BadLength(len) => {
                Err(self.stop(Corruption::BadLength { pos: self.pos, len }))
            }
            SlotState::BadSequence => Err(self.stop(Corruption::BadSequence {
                pos: self.pos,
                word,
            })),
        }
    }

    #[cold]
    fn stop(&mut self, c: Corruption) -> RecvError {
        self.fault = Some(c);
        RecvError::Corrupted(c)
    }

    /// Marks the current message consumed (its payload was read): follows the wrap flag, and
    /// acknowledges at once after a wrap or when the interval is reached.
    #[inline(always)]
    fn advance(&mut self, ready: Ready) {
        self.consume(ready);
        if ready.wrap || self.pos.wrapping_sub(self.published) >= self.ack_interval {
            self.publish_ack();
        }
    }

    /// [`Receiver::advance`] without the acknowledgement.
    #[inline(always)]
    fn consume(&mut self, ready: Ready) {
        self.pos = self.pos.wrapping_add(1);
        if ready.wrap {
            self.origin = self.pos;
        }
    }

    /// Publishes the consumed count now (release: our payload reads happen before the sender
    /// may reuse the slots).
    pub fn publish_ack(&mut self) {
        if self.published != self.pos {
            self.own.ack.store(self.pos, Ordering::Release);
            self.published = self.pos;
        }
    }

    /// Whether a message is ready (or the channel is corrupted: the next receive says so).
    pub fn is_ready(&mut self) -> bool {
        !matches!(self.peek(), Err(RecvError::Empty))
    }

    /// Receives the next message into `buf`; returns its length.
    #[inline(always)]
    pub fn try_recv(&mut self, buf: &mut [u8; PAYLOAD_SIZE]) -> Result<usize, RecvError> {
        let ready = self.recv_ready(buf)?;
        self.keep(ready);
        Ok(ready.len)
    }

    /// [`Receiver::try_recv`], also returning what the sequence word said.
    #[inline(always)]
    pub(crate) fn recv_ready(&mut self, buf: &mut [u8; PAYLOAD_SIZE]) -> Result<Ready, RecvError> {
        let (slot, ready) = self.peek()?;
        unpack(&read_words(slot), buf);
        self.advance(ready);
        Ok(ready)
    }

    /// Receives the next message as payload words and length in bytes.
    #[inline(always)]
    pub fn try_recv_words(&mut self) -> Result<([u64; PAYLOAD_WORDS], usize), RecvError> {
        let (words, ready) = self.recv_words_ready()?;
        self.keep(ready);
        Ok((words, ready.len))
    }

    /// [`Receiver::try_recv_words`], also returning what the sequence word said.
    #[inline(always)]
    pub(crate) fn recv_words_ready(&mut self) -> Result<([u64; PAYLOAD_WORDS], Ready), RecvError> {
        let (slot, ready) = self.peek()?;
        let words = read_words(slot);
        self.advance(ready);
        Ok((words, ready))
    }

    /// Receives a typed message. A message whose length is not `size_of::<T>()` is consumed
    /// and reported as [`RecvError::WrongSize`].
    pub fn try_recv_typed<T: FromBytes>(&mut self) -> Result<T, RecvError> {
        let mut buf = [0u8; PAYLOAD_SIZE];
        let len = self.try_recv(&mut buf)?;
        decode_typed(&buf, len)
    }

    /// The next message, read in place (zero-copy receive). It is consumed when the reader
    /// is dropped.
    pub fn recv_slot(&mut self) -> Result<SlotReader<'_, 'a>, RecvError> {
        let (slot, ready) = self.peek()?;
        Ok(SlotReader {
            receiver: self,
            slot,
            ready,
        })
    }

    /// Receives up to `max` messages, calling `f` with each payload; returns how many (`Empty`
    /// if none was ready). Acknowledges once at the end if the interval was passed.
    pub fn recv_batch<F: FnMut(&[u8])>(
        &mut self,
        max: usize,
        mut f: F,
    ) -> Result<usize, RecvError> {
        let mut n = 0;
        let mut wrapped = false;
        let mut buf = [0u8; PAYLOAD_SIZE];
        while n < max {
            let (slot, ready) = match self.peek() {
                Ok(ready) => ready,
                Err(RecvError::Empty) if n > 0 => break,
                Err(e) => {
                    if n > 0 {
                        break;
                    }
                    return Err(e);
                }
            };
            unpack(&read_words(slot), &mut buf);
            f(buf.get(..ready.len).unwrap_or(&buf));
            self.keep(ready);
            self.consume(ready);
            wrapped |= ready.wrap;
            n += 1;
        }
        if wrapped || self.pos.wrapping_sub(self.published) >= self.ack_interval {
            self.publish_ack();
        }
        Ok(n)
    }

    /// Publishes the consumed count and, if the peer's sender said it waits for free slots
    /// (and was not already notified in this wait), notifies it. Returns whether it notified.
    pub fn kick<N: Notify + ?Sized>(&mut self, notifier: &mut N) -> bool {
        self.publish_ack();
        if self.kicked == self.pos {
            return false;
        }
        self.kicked = self.pos;
        // Pairs with the fence in `Sender::prepare_wait`.
        fence(Ordering::SeqCst);
        let wait = self.peer_tx_wait.load(Ordering::Relaxed);
        if self.suppressor.should_notify(wait) {
            notifier.notify();
            self.counters.notifications_raised += 1;
            true
        } else {
            self.counters.notifications_suppressed += 1;
            false
        }
    }

    /// Before sleeping: acknowledges (and wakes a sender waiting for slots, via `notifier`),
    /// announces that this receiver waits, and looks once more. Returns `true` if the caller
    /// may sleep until notified (then call [`Receiver::finish_wait`] on waking), `false` if a
    /// message (or a corruption) is there and it should receive instead.
    pub fn prepare_wait<N: Notify + ?Sized>(&mut self, notifier: &mut N) -> bool {
        self.kick(notifier);
        if self.is_ready() {
            return false;
        }
        self.wait_epoch = self.wait_epoch.wrapping_add(1);
        self.own
            .rx_wait
            .store(waiting_word(self.wait_epoch), Ordering::Relaxed);
        // Pairs with the fence in `Sender::kick`: either the sender sees our waiting bit or we
        // see its message.
        fence(Ordering::SeqCst);
        if self.is_ready() {
            self.finish_wait();
            return false;
        }
        true
    }

    /// Ends a wait begun by [`Receiver::prepare_wait`].
    pub fn finish_wait(&mut self) {
        self.own
            .rx_wait
            .store(awake_word(self.wait_epoch), Ordering::Relaxed);
    }

    /// Messages received so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Counters for the run report.
    pub fn counters(&self) -> Counters {
        Counters {
            messages: self.pos,
            ..self.counters
        }
    }

    /// The corruption that stopped this half, if any.
    pub fn fault(&self) -> Option<Corruption> {
        self.fault
    }
}

/// A received message read in place; consumed when dropped.
#[derive(Debug)]
pub struct SlotReader<'r, 'a> {
    receiver: &'r mut Receiver<'a>,
    slot: &'a Slot,
    ready: Ready,
}

impl SlotReader<'_, '_> {
    /// Payload length in bytes (at most 56).
    pub fn len(&self) -> usize {
        self.ready.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.ready.len == 0
    }

    /// Payload word `index` (0..7), or `None` past the payload words.
    #[inline]
    pub fn word(&self, index: usize) -> Option<u64> {
        if index < PAYLOAD_WORDS {
            self.slot.get(index).map(|w| w.load(Ordering::Relaxed))
        } else {
            None
        }
    }

    /// Copies the payload into `out`; returns the length.
    pub fn copy_to(&self, out: &mut [u8; PAYLOAD_SIZE]) -> usize {
        unpack(&read_words(self.slot), out);
        self.ready.len
    }
}

impl Drop for SlotReader<'_, '_> {
    fn drop(&mut self) {
        self.receiver.keep(self.ready);
        self.receiver.advance(self.ready);
    }
}
