//! The sending half of an endpoint: writes its own ring, reads the peer's control line.
//!
//! Hot path (`try_send`): check the cached credit (one compare), write seven payload words
//! (relaxed) and the sequence word (release) into one cache line. The peer's control line is
//! read only when the cached credits run out, and the peer's wait word only on
//! [`Sender::kick`]. Inside a [`crate::Duplex`], the sequence word also piggybacks this
//! endpoint's receive position, and what the peer piggybacks refreshes the cached credit for
//! free (`Sender::take_piggyback`).
//!
//! Runs: when the peer's latest message says it consumed everything sent before and the
//! current run holds at least `hot` messages (4 by default), the message ends the run (wrap
//! flag) and the next one goes to slot 0 again, so request/response traffic stays on a few
//! hot lines. The slot that ends a run is reused only once that message is acknowledged (the
//! guard); waiting there means the traffic is not request/response, and no run ends early for
//! a lap.
//!
//! The sender never reads back its own ring or control line (under Flotilla the peer cannot
//! write them anyway: they are mapped read-only for it), and reads the peer's control line
//! with relaxed loads, valid on its read-only mapping. A control-line acknowledgement that
//! goes backwards or covers messages never sent stops the channel with [`Corruption::BadAck`].

use crate::channel::Control;
use crate::error::{Corruption, SendError};
use crate::layout::{MAX_SLOTS, PAYLOAD_SIZE, PAYLOAD_WORDS, SEQ_WORD};
use crate::notify::{awake_word, waiting_word, Counters, Notify, Suppressor};
use crate::slot::{seq_word, Ring, Slot, ACK_MASK, FULL_LAP_PERIOD};
use crate::sync::{fence, load_acquire, Ordering, Word};
use zerocopy::{Immutable, IntoBytes};

/// A piggybacked acknowledgement is used only while this side has sent fewer than this many
/// messages since its mark: then the 16 bits it carries name exactly one count (see
/// `Sender::take_piggyback`).
const FRESH_WINDOW: u64 = (1 << 16) - MAX_SLOTS as u64;
/// Default run length after which a run may end early (see [`Sender::set_hot_slots`]).
pub const DEFAULT_HOT_SLOTS: u64 = 4;

/// `a < b` for free-running counters (wrapping, as every position here is).
#[inline(always)]
const fn before(a: u64, b: u64) -> bool {
    a.wrapping_sub(b) > u64::MAX / 2
}

/// The sending half of a channel endpoint.
#[derive(Debug)]
pub struct Sender<'a> {
    ring: Ring<'a>,
    peer: Control<'a>,
    own_tx_wait: &'a Word,
    /// Messages sent so far (the next message's position).
    pos: u64,
    /// Messages the peer is known to have consumed (from its control line or piggybacked).
    acked: u64,
    /// The peer's control-line acknowledgement as last read (it only grows).
    control_ack: u64,
    /// Sending needs no check while `pos` is below this (see `update_limit`).
    limit: u64,
    /// The newest acknowledgement the peer piggybacked.
    piggy: u64,
    /// Position of the first message of the current run (that message is in slot 0).
    origin: u64,
    /// While pending: the run index of the slot still holding the previous run's last
    /// message, and the acknowledgement that frees it.
    guard: Option<(u64, u64)>,
    /// A run may end early once it holds this many messages (0: runs never end early).
    hot: u64,
    /// A position by which every slot had been rewritten (the receiver's staleness bound).
    full_lap: u64,
    /// No run ends early before this position (back-off after waiting at the guard).
    calm_until: u64,
    /// No run ends early before this position: the later of `origin + hot - 1` and
    /// `calm_until` (see `update_wrap_from`).
    wrap_from: u64,
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
            control_ack: 0,
            limit: ring.len(),
            piggy: 0,
            origin: 0,
            guard: None,
            hot: DEFAULT_HOT_SLOTS,
            full_lap: 0,
            calm_until: 0,
            wrap_from: DEFAULT_HOT_SLOTS - 1,
            kicked: 0,
            wait_epoch: 0,
            suppressor: Suppressor::default(),
            counters: Counters::default(),
            fault: None,
        }
    }

    /// Sets after how many messages a run may end early, when everything sent before is
    /// known to be consumed: a request/response exchange then cycles through this many hot
    /// cache lines instead of walking the whole ring. 0 disables early ends (every run walks
    /// the whole ring, as a plain ring buffer does); 1 reuses one line, which costs a stall
    /// when a second message follows before the first was consumed. Default: 4 (one
    /// 256-byte stretch of the ring per direction; measured as fast as 2 for ping-pong, and a
    /// burst of three messages after a reply never waits).
    pub fn set_hot_slots(&mut self, slots: u64) {
        self.hot = slots.min(self.ring.len());
        self.update_wrap_from();
    }

    /// Recomputes `wrap_from` after `hot`, `origin` or `calm_until` changed.
    fn update_wrap_from(&mut self) {
        self.wrap_from = if self.hot == 0 {
            // Never, for the next 2^62 messages (and `set_hot_slots` recomputes it).
            self.pos.wrapping_add(1 << 62)
        } else {
            let full = self.origin.wrapping_add(self.hot - 1);
            if before(full, self.calm_until) {
                self.calm_until
            } else {
                full
            }
        };
    }

    /// Messages that can be sent now without waiting, by what this side knows.
    #[inline(always)]
    fn available(&self) -> u64 {
        self.limit.wrapping_sub(self.pos)
    }

    /// Recomputes `limit` after `acked`, the guard or the run changed: `slots` past the last
    /// acknowledged message, and not into the guarded slot while its message is unacknowledged.
    /// A faulted sender has no room at all, so its fast path always takes the slow one.
    fn update_limit(&mut self) {
        let mut limit = self.acked.wrapping_add(self.ring.len());
        if let Some((index, need)) = self.guard {
            if before(self.acked, need) {
                let guarded = self.origin.wrapping_add(index);
                if before(guarded, limit) {
                    limit = guarded;
                }
            } else {
                self.guard = None;
            }
        }
        self.limit = if self.fault.is_some() {
            self.pos
        } else {
            limit
        };
    }

    /// Takes in an acknowledgement the peer piggybacked on a message to this endpoint: the
    /// low 16 bits of how many of our messages it had consumed. `mark` is this sender's
    /// position when this endpoint's receiver last found its ring empty (a [`crate::Duplex`]
    /// keeps it), before the message carrying `ack16` was written.
    ///
    /// Why 16 bits are enough: we sent message `mark - 1` only after the peer had consumed at
    /// least `mark - slots` messages. The peer (a `Duplex` too, or it sent no
    /// acknowledgement) read its count and wrote its message in one call, after we found the
    /// ring empty; had it done so before consuming message `mark - slots - 1`, that message's
    /// consumption — which happened before our empty look — would make its write visible to
    /// that look. So the count lies in `[mark - slots, pos]`, fewer than 2^16 values while
    /// fewer than `2^16 - 4096` messages were sent since the mark, and the 16 bits name it.
    /// Older marks are ignored. A value past what was sent can only be a lie, which could only
    /// lose the liar's own incoming messages; it is ignored too.
    pub(crate) fn take_piggyback(&mut self, ack16: u64, mark: u64) {
        if self.pos.wrapping_sub(mark) >= FRESH_WINDOW {
            return;
        }
        let floor = mark.saturating_sub(self.ring.len());
        let ack = floor.wrapping_add(ack16.wrapping_sub(floor) & ACK_MASK);
        if ack.wrapping_sub(floor) > self.pos.wrapping_sub(floor) {
            return;
        }
        if !before(ack, self.piggy) {
            self.piggy = ack;
        }
        if before(self.acked, ack) {
            self.acked = ack;
            self.update_limit();
        }
    }

    /// Re-reads the peer's control-line acknowledgement; it must lie in
    /// `[last one read, messages sent]`.
    fn refresh(&mut self) -> Result<(), SendError> {
        let ack = load_acquire(self.peer.ack);
        if ack.wrapping_sub(self.control_ack) > self.pos.wrapping_sub(self.control_ack) {
            let c = Corruption::BadAck {
                sent: self.pos,
                ack,
            };
            self.fault = Some(c);
            self.update_limit();
            return Err(SendError::Corrupted(c));
        }
        self.control_ack = ack;
        if before(self.acked, ack) {
            self.acked = ack;
            self.update_limit();
        }
        Ok(())
    }

    /// Messages that can be sent right now without waiting (re-reads the peer's
    /// acknowledgement). At most the ring size; fewer than the unacknowledged count suggests
    /// right after a short run ended, until its last message is consumed.
    pub fn credits(&mut self) -> Result<u64, SendError> {
        if let Some(c) = self.fault {
            return Err(SendError::Corrupted(c));
        }
        self.refresh()?;
        Ok(self.available())
    }

    /// The next free slot, or why there is none.
    #[inline(always)]
    fn reserve(&mut self) -> Result<&'a Slot, SendError> {
        if self.pos == self.limit {
            self.reserve_slow()?;
        }
        // The ring mask keeps the index in bounds, so this is always `Some`.
        self.ring
            .slot(self.pos.wrapping_sub(self.origin))
            .ok_or(SendError::Full)
    }

    /// [`Sender::reserve`] when the cached state shows no free slot (or a fault): re-reads the
    /// control line.
    #[cold]
    #[inline(never)]
    fn reserve_slow(&mut self) -> Result<(), SendError> {
        if let Some(c) = self.fault {
            return Err(SendError::Corrupted(c));
        }
        self.refresh()?;
        if self.available() != 0 {
            return Ok(());
        }
        if self.guard.is_some() {
            // Waiting on the previous run's last message: traffic is not request/response
            // right now, so walk the ring for a lap.
            self.calm_until = self.pos.wrapping_add(self.ring.len());
            self.update_wrap_from();
        }
        Err(SendError::Full)
    }

    /// Publishes the reserved slot: decides whether this message ends its run, then writes
    /// the sequence word (release), piggybacking `ack` (this endpoint's receive position) if
    /// given.
    #[inline(always)]
    fn announce(&mut self, slot: &Slot, len: usize, ack: Option<u64>) {
        let run = self.pos.wrapping_sub(self.origin);
        let wrap = self.may_end_run(run);
        if let Some(seq) = slot.get(SEQ_WORD) {
            seq.store(seq_word(self.pos, len, ack, wrap), Ordering::Release);
        }
        self.pos = self.pos.wrapping_add(1);
        if wrap {
            if run >= self.ring.len() - 1 {
                // This run wrote every slot, all within the last `slots` messages.
                self.full_lap = self.pos.wrapping_sub(self.ring.len());
            }
            self.guard = Some((run & (self.ring.len() - 1), self.pos));
            self.origin = self.pos;
            self.update_limit();
            self.update_wrap_from();
        }
    }

    /// Whether the message at index `run` of its run ends the run: the run is long enough,
    /// no back-off is on, every slot was rewritten recently enough for the receiver's
    /// staleness check, and — the piggybacked acknowledgement says so — the peer consumed
    /// everything sent before. Only the peer's own messages say "consumed" early enough to
    /// matter (request/response traffic); a one-way stream that learns it from the control
    /// line keeps walking the ring, since ending runs there would put an acknowledgement
    /// round trip into every run.
    #[inline(always)]
    fn may_end_run(&mut self, run: u64) -> bool {
        if before(self.pos, self.wrap_from) {
            return false;
        }
        self.piggy == self.pos
            && (run >= self.ring.len() - 1
                || self.pos.wrapping_sub(self.full_lap) < FULL_LAP_PERIOD)
    }

    /// Writes payload words, then publishes the slot.
    #[inline(always)]
    fn publish(&mut self, slot: &Slot, words: &[u64; PAYLOAD_WORDS], len: usize, ack: Option<u64>) {
        for (dst, w) in slot.iter().zip(words) {
            dst.store(*w, Ordering::Relaxed);
        }
        self.announce(slot, len, ack);
    }

    /// Sends `msg` (at most 56 bytes) if a slot is free.
    #[inline(always)]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.send_acking(msg, None)
    }

    /// [`Sender::try_send`], piggybacking `ack` (a [`crate::Duplex`]'s receive position).
    #[inline(always)]
    pub(crate) fn send_acking(&mut self, msg: &[u8], ack: Option<u64>) -> Result<(), SendError> {
        if msg.len() > PAYLOAD_SIZE {
            return Err(SendError::TooLong { len: msg.len() });
        }
        let slot = self.reserve()?;
        self.publish(slot, &pack(msg), msg.len(), ack);
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
        self.send_words_acking(words, len, None)
    }

    /// [`Sender::try_send_words`], piggybacking `ack`.
    #[inline(always)]
    pub(crate) fn send_words_acking(
        &mut self,
        words: &[u64; PAYLOAD_WORDS],
        len: usize,
        ack: Option<u64>,
    ) -> Result<(), SendError> {
        if len > PAYLOAD_SIZE {
            return Err(SendError::TooLong { len });
        }
        let slot = self.reserve()?;
        self.publish(slot, words, len, ack);
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
    /// bytes.
    pub fn send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize, SendError> {
        if let Some(m) = msgs.iter().find(|m| m.len() > PAYLOAD_SIZE) {
            return Err(SendError::TooLong { len: m.len() });
        }
        let mut sent = 0;
        for msg in msgs {
            match self.reserve() {
                Ok(slot) => {
                    self.publish(slot, &pack(msg), msg.len(), None);
                    sent += 1;
                }
                // What was sent stays counted; a corruption shows on the next call (sticky).
                Err(_) if sent > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
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
        if self.credits() != Ok(0) {
            return false;
        }
        self.wait_epoch = self.wait_epoch.wrapping_add(1);
        self.own_tx_wait
            .store(waiting_word(self.wait_epoch), Ordering::Relaxed);
        // Pairs with the fence in `Receiver::kick`.
        fence(Ordering::SeqCst);
        match self.credits() {
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

    /// Messages the peer is known to have consumed (from its control line or from
    /// acknowledgements piggybacked on its messages).
    pub fn acknowledged(&self) -> u64 {
        self.acked
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
        self.sender.publish(self.slot, &words, bytes.len(), None);
        Ok(())
    }

    /// Publishes the slot with a payload length of `len` bytes (the words written so far;
    /// unwritten words hold whatever the slot held before).
    pub fn commit(self, len: usize) -> Result<(), SendError> {
        if len > PAYLOAD_SIZE {
            return Err(SendError::TooLong { len });
        }
        self.sender.announce(self.slot, len, None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{region_size, ring_offset, LINE_SIZE};
    use crate::{Channel, Duplex, RecvError, Region, Side};

    /// A formatted 64-byte aligned region of `slots` slots (with room to align it).
    fn region(slots: u32) -> (Vec<Word>, usize, usize) {
        let len = region_size(slots) / 8;
        let words: Vec<Word> = (0..len + 8).map(|_| Word::new(0)).collect();
        let offset = words.as_ptr().align_offset(64);
        (words, offset, len)
    }

    /// The sequence words of ring A->B.
    fn seq_words(words: &[Word], slots: usize) -> Vec<u64> {
        (0..slots)
            .map(|i| {
                words[(ring_offset(Side::A, u32::try_from(slots).unwrap()) + i * LINE_SIZE) / 8
                    + SEQ_WORD]
                    .load(Ordering::Relaxed)
            })
            .collect()
    }

    #[test]
    fn runs_cover_the_whole_ring_once_a_full_lap_is_due() {
        const SLOTS: usize = 32;
        let slots = u32::try_from(SLOTS).unwrap();
        let (mut backing, offset, len) = region(slots);
        let region = Region::from_words(&mut backing[offset..offset + len]).unwrap();
        let mut ch = Channel::format(region, slots).unwrap();
        let words = ch.words();
        let mut a = ch.duplex(Side::A).unwrap();
        let mut b = ch.duplex(Side::B).unwrap();
        let mut buf = [0u8; PAYLOAD_SIZE];
        let mut round = |a: &mut Duplex<'_>, i: u64| {
            assert_eq!(a.try_recv(&mut buf), Err(RecvError::Empty));
            a.try_send(&i.to_le_bytes()).unwrap();
            assert_eq!(b.try_recv(&mut buf), Ok(8));
            assert_eq!(buf[..8], i.to_le_bytes());
            b.try_send(b"ok").unwrap();
            assert_eq!(a.try_recv(&mut buf), Ok(2));
        };
        for i in 0..100 {
            round(&mut a, i);
        }
        let hot_only = seq_words(words, SLOTS);
        assert!(hot_only[..4].iter().all(|&w| w != 0));
        assert!(hot_only[4..].iter().all(|&w| w == 0));
        // Pretend the last full lap was 2^32 messages ago: no run may end early until one
        // has written every slot, so that no slot grows staler than the receiver accepts.
        let tx = a.sender();
        tx.full_lap = tx.pos.wrapping_sub(FULL_LAP_PERIOD);
        for i in 100..100 + SLOTS as u64 {
            round(&mut a, i);
        }
        let after_lap = seq_words(words, SLOTS);
        assert!(after_lap.iter().all(|&w| w != 0), "every slot rewritten");
        // Then request/response is back on the hot lines.
        for i in 200..300 {
            round(&mut a, i);
        }
        let later = seq_words(words, SLOTS);
        let changed: Vec<usize> = (0..SLOTS).filter(|&i| later[i] != after_lap[i]).collect();
        assert_eq!(changed, vec![0, 1, 2, 3]);
    }
}
