//! The sending half of an endpoint: writes its own ring, reads the peer's control line.
//!
//! Hot path (`try_send`): check the cached credit, write seven payload words (relaxed) and the
//! sequence word (release) into one cache line. The peer's acknowledgement is read only when
//! the cached credits run out, and the peer's wait word only on [`Sender::kick`]. The sender
//! never reads back its own ring or control line, so a peer scribbling on them harms only
//! itself. An acknowledgement that goes backwards or covers messages never sent stops the
//! channel with [`Corruption::BadAck`].

use crate::channel::Control;
use crate::error::{Corruption, SendError};
use crate::layout::{PAYLOAD_SIZE, PAYLOAD_WORDS, SEQ_WORD};
use crate::notify::{awake_word, waiting_word, Counters, Notify, Suppressor};
use crate::slot::{seq_word, Ring, Slot};
use crate::sync::{fence, Ordering, Word};
use zerocopy::{Immutable, IntoBytes};

/// The sending half of a channel endpoint.
#[derive(Debug)]
pub struct Sender<'a> {
    ring: Ring<'a>,
    peer: Control<'a>,
    own_tx_wait: &'a Word,
    /// Messages sent so far (the next message's position).
    pos: u64,
    /// The peer's acknowledgement as last read (messages it consumed).
    acked: u64,
    /// `pos` at the last kick.
    kicked: u64,
    wait_epoch: u64,
    suppressor: Suppressor,
    counters: Counters,
    fault: Option<Corruption>,
}

/// Packs up to 56 bytes into payload words (little-endian, zero padded).
#[inline(always)]
fn pack(bytes: &[u8]) -> [u64; PAYLOAD_WORDS] {
    // One fixed-size copy into a padded buffer, then fixed-size word reads: the compiler
    // turns this into a handful of moves instead of seven variable-length copies.
    let mut padded = [0u8; PAYLOAD_SIZE];
    if let Ok(full) = <&[u8; PAYLOAD_SIZE]>::try_from(bytes) {
        padded = *full;
    } else if let Some(dst) = padded.get_mut(..bytes.len()) {
        dst.copy_from_slice(bytes);
    }
    let mut words = [0u64; PAYLOAD_WORDS];
    for (w, chunk) in words.iter_mut().zip(padded.as_chunks::<8>().0) {
        *w = u64::from_le_bytes(*chunk);
    }
    words
}

impl<'a> Sender<'a> {
    pub(crate) fn new(ring: Ring<'a>, peer: Control<'a>, own_tx_wait: &'a Word) -> Self {
        Self {
            ring,
            peer,
            own_tx_wait,
            pos: 0,
            acked: 0,
            kicked: 0,
            wait_epoch: 0,
            suppressor: Suppressor::default(),
            counters: Counters::default(),
            fault: None,
        }
    }

    /// Free slots according to the cached acknowledgement.
    #[inline(always)]
    fn cached_credits(&self) -> u64 {
        self.ring.len() - self.pos.wrapping_sub(self.acked)
    }

    /// Re-reads the peer's acknowledgement; validates it lies in `[acked, pos]`.
    fn refresh(&mut self) -> Result<u64, SendError> {
        let ack = self.peer.ack.load(Ordering::Acquire);
        if ack.wrapping_sub(self.acked) > self.pos.wrapping_sub(self.acked) {
            let c = Corruption::BadAck {
                sent: self.pos,
                ack,
            };
            self.fault = Some(c);
            return Err(SendError::Corrupted(c));
        }
        self.acked = ack;
        Ok(self.cached_credits())
    }

    /// Free slots right now (re-reads the peer's acknowledgement).
    pub fn credits(&mut self) -> Result<u64, SendError> {
        if let Some(c) = self.fault {
            return Err(SendError::Corrupted(c));
        }
        self.refresh()
    }

    /// The next free slot, or why there is none.
    #[inline(always)]
    fn reserve(&mut self) -> Result<&'a Slot, SendError> {
        if let Some(c) = self.fault {
            return Err(SendError::Corrupted(c));
        }
        if self.cached_credits() == 0 && self.refresh()? == 0 {
            return Err(SendError::Full);
        }
        // The ring mask keeps the index in bounds, so this is always `Some`.
        self.ring.slot(self.pos).ok_or(SendError::Full)
    }

    /// Writes payload words and publishes the slot (sequence word last, release).
    #[inline(always)]
    fn publish(&mut self, slot: &Slot, words: &[u64; PAYLOAD_WORDS], len: usize) {
        for (dst, w) in slot.iter().zip(words) {
            dst.store(*w, Ordering::Relaxed);
        }
        if let Some(seq) = slot.get(SEQ_WORD) {
            seq.store(seq_word(self.pos, len), Ordering::Release);
        }
        self.pos = self.pos.wrapping_add(1);
        self.counters.messages += 1;
    }

    /// Sends `msg` (at most 56 bytes) if a slot is free.
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        if msg.len() > PAYLOAD_SIZE {
            return Err(SendError::TooLong { len: msg.len() });
        }
        let slot = self.reserve()?;
        self.publish(slot, &pack(msg), msg.len());
        Ok(())
    }

    /// Sends a message given as payload words (byte `i` of the message is byte `i % 8` of
    /// word `i / 8`, little-endian); `len` is the length in bytes.
    #[inline]
    pub fn try_send_words(
        &mut self,
        words: &[u64; PAYLOAD_WORDS],
        len: usize,
    ) -> Result<(), SendError> {
        if len > PAYLOAD_SIZE {
            return Err(SendError::TooLong { len });
        }
        let slot = self.reserve()?;
        self.publish(slot, words, len);
        Ok(())
    }

    /// Sends a typed message: its bytes, as `zerocopy` sees them (at most 56).
    pub fn try_send_typed<T: IntoBytes + Immutable + ?Sized>(
        &mut self,
        msg: &T,
    ) -> Result<(), SendError> {
        self.try_send(msg.as_bytes())
    }

    /// Reserves the next slot for writing in place; nothing is visible to the receiver until
    /// [`SlotWriter::commit`]. Dropping the writer un-reserves the slot.
    pub fn send_slot(&mut self) -> Result<SlotWriter<'_, 'a>, SendError> {
        let slot = self.reserve()?;
        Ok(SlotWriter { sender: self, slot })
    }

    /// Sends as many of `msgs` as there are free slots, in order; returns how many were sent
    /// (at least one), `Full` if none could be, `TooLong` (sending nothing) if any is over 56
    /// bytes. One credit check covers the batch.
    pub fn send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize, SendError> {
        if let Some(m) = msgs.iter().find(|m| m.len() > PAYLOAD_SIZE) {
            return Err(SendError::TooLong { len: m.len() });
        }
        if msgs.is_empty() {
            return Ok(0);
        }
        self.reserve()?;
        let n = (self.cached_credits() as usize).min(msgs.len());
        for msg in &msgs[..n] {
            let Some(slot) = self.ring.slot(self.pos) else {
                break;
            };
            self.publish(slot, &pack(msg), msg.len());
        }
        Ok(n)
    }

    /// Tells the peer about messages sent since the last kick: raises a notification through
    /// `notifier` only if the peer's receiver said it is waiting and was not already notified
    /// in this wait. Returns whether it notified. Call after a message or a batch when the
    /// peer may sleep; a polled channel never needs it.
    pub fn kick<N: Notify + ?Sized>(&mut self, notifier: &mut N) -> bool {
        if self.kicked == self.pos {
            return false;
        }
        self.kicked = self.pos;
        // Pairs with the fence in `Receiver::prepare_wait`: either the receiver sees our
        // messages or we see its waiting bit.
        fence(Ordering::SeqCst);
        let wait = self.peer.rx_wait.load(Ordering::Relaxed);
        if self.suppressor.should_notify(wait) {
            notifier.notify();
            self.counters.notifications_raised += 1;
            true
        } else {
            self.counters.notifications_suppressed += 1;
            false
        }
    }

    /// [`Sender::try_send`] then [`Sender::kick`].
    pub fn send_notify<N: Notify + ?Sized>(
        &mut self,
        msg: &[u8],
        notifier: &mut N,
    ) -> Result<(), SendError> {
        self.try_send(msg)?;
        self.kick(notifier);
        Ok(())
    }

    /// Before sleeping on a full ring: announces that this sender waits for free slots and
    /// looks once more. Returns `true` if the caller may sleep until notified (then call
    /// [`Sender::finish_wait`] on waking), `false` if slots are free (or the channel is
    /// corrupted) and it should retry instead.
    pub fn prepare_wait(&mut self) -> bool {
        if self.fault.is_some() || self.refresh() != Ok(0) {
            return false;
        }
        self.wait_epoch = self.wait_epoch.wrapping_add(1);
        self.own_tx_wait
            .store(waiting_word(self.wait_epoch), Ordering::Relaxed);
        // Pairs with the fence in `Receiver::kick`.
        fence(Ordering::SeqCst);
        match self.refresh() {
            Ok(0) => true,
            _ => {
                self.finish_wait();
                false
            }
        }
    }

    /// Ends a wait begun by [`Sender::prepare_wait`].
    pub fn finish_wait(&mut self) {
        self.own_tx_wait
            .store(awake_word(self.wait_epoch), Ordering::Relaxed);
    }

    /// Messages sent so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Counters for the run report.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The corruption that stopped this half, if any.
    pub fn fault(&self) -> Option<Corruption> {
        self.fault
    }
}

/// A reserved slot being written in place (zero-copy send).
#[derive(Debug)]
pub struct SlotWriter<'s, 'a> {
    sender: &'s mut Sender<'a>,
    slot: &'a Slot,
}

impl SlotWriter<'_, '_> {
    /// Writes payload word `index` (0..7); returns `false` (writing nothing) if out of range.
    #[inline]
    pub fn write_word(&mut self, index: usize, word: u64) -> bool {
        match self.slot.get(index) {
            Some(w) if index < PAYLOAD_WORDS => {
                w.store(word, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Writes `bytes` (at most 56) at the start of the payload, then commits with that length.
    pub fn commit_bytes(self, bytes: &[u8]) -> Result<(), SendError> {
        if bytes.len() > PAYLOAD_SIZE {
            return Err(SendError::TooLong { len: bytes.len() });
        }
        let words = pack(bytes);
        self.sender.publish(self.slot, &words, bytes.len());
        Ok(())
    }

    /// Publishes the slot with a payload length of `len` bytes (the words written so far;
    /// unwritten words hold whatever the slot held before).
    pub fn commit(self, len: usize) -> Result<(), SendError> {
        if len > PAYLOAD_SIZE {
            return Err(SendError::TooLong { len });
        }
        if let Some(seq) = self.slot.get(SEQ_WORD) {
            seq.store(seq_word(self.sender.pos, len), Ordering::Release);
        }
        self.sender.pos = self.sender.pos.wrapping_add(1);
        self.sender.counters.messages += 1;
        Ok(())
    }
}
