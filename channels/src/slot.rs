//! Slots and their sequence word: the encoding, and the receiver's classification of a word it
//! read from the (untrusted) region.
//!
//! A slot is one cache line: seven payload words, then the sequence word
//!
//! ```text
//! bits 63..24  seq   (pos + 1) mod 2^40, pos = message number in this direction (from 0)
//! bits 23..8   ack   low 16 bits of the writer's receive position (piggybacked credit)
//! bit  7       wrap  the next message in this direction is in slot 0
//! bit  6       ackv  the ack field is valid
//! bits 5..0    len   payload bytes, 0..=56
//! ```
//!
//! A never-written slot is all zero (seq 0). The sender writes the payload words (relaxed),
//! then the sequence word (release); the receiver loads the sequence word (acquire) and, only
//! if its seq is the one expected, the payload.
//!
//! Messages go through the ring in *runs*: a run starts in slot 0 and uses the slots in order
//! (wrapping around the ring as needed); a message with the wrap flag ends its run. Short runs
//! keep a request/response exchange on a few hot cache lines instead of walking all of them.

use crate::layout::{
    ACK_BITS, ACK_SHIFT, ACK_VALID_FLAG, LEN_MASK, LINE_WORDS, PAYLOAD_SIZE, SEQ_BITS, SEQ_SHIFT,
    WRAP_FLAG,
};
use crate::sync::Word;

/// Mask of the 40-bit sequence field (after shifting it down).
pub(crate) const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
/// Mask of the 16-bit piggybacked acknowledgement (after shifting it down).
pub(crate) const ACK_MASK: u64 = (1 << ACK_BITS) - 1;

/// How far behind the expected sequence a slot on the first lap of a run may be and still
/// count as "not written yet". The sender rewrites every slot at least once per
/// [`FULL_LAP_PERIOD`] messages, so an honest stale slot is never further behind than this.
pub(crate) const STALE_WINDOW: u64 = 1 << 33;
/// The sender ends no run early once this many messages have passed since its last run that
/// covered every slot, so no slot's content grows older than [`STALE_WINDOW`].
pub(crate) const FULL_LAP_PERIOD: u64 = 1 << 32;

/// A slot: one cache line of words.
pub(crate) type Slot = [Word; LINE_WORDS];

/// The seq field announcing message `pos`.
pub(crate) const fn seq_of(pos: u64) -> u64 {
    pos.wrapping_add(1) & SEQ_MASK
}

/// The sequence word announcing message `pos` with `len` payload bytes, piggybacking `ack`
/// if there is one (only its low 16 bits are kept) and ending the run if `wrap`.
pub(crate) const fn seq_word(pos: u64, len: usize, ack: Option<u64>, wrap: bool) -> u64 {
    let ack = match ack {
        Some(ack) => ((ack & ACK_MASK) << ACK_SHIFT) | ACK_VALID_FLAG,
        None => 0,
    };
    (seq_of(pos) << SEQ_SHIFT)
        | ack
        | ((wrap as u64) << WRAP_FLAG.trailing_zeros())
        | (len as u64 & LEN_MASK)
}

/// A message found in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ready {
    /// Payload bytes.
    pub(crate) len: usize,
    /// The next message is in slot 0.
    pub(crate) wrap: bool,
    /// The piggybacked acknowledgement (low 16 bits of the peer's receive position), if any.
    pub(crate) ack: Option<u64>,
}

/// What the receiver makes of the sequence word of the slot for message `pos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Message `pos` is there.
    Ready(Ready),
    /// The slot still holds an older message (or nothing): no message yet.
    Empty,
    /// The expected sequence, but a length above 56.
    BadLength(u64),
    /// Anything else.
    BadSequence,
}

/// Classifies `word`, read from the slot that message `pos` uses, where `run_index` is the
/// message's index inside its run and `slots` the ring size.
///
/// On a later lap of the run (`run_index >= slots`) the slot must hold exactly the message
/// one lap back. On the first lap it holds whatever an earlier run left there: any sequence
/// behind the expected one by at most [`STALE_WINDOW`] means "not yet", anything else is
/// corruption.
pub(crate) const fn classify(word: u64, pos: u64, run_index: u64, slots: u64) -> SlotState {
    let seq = word >> SEQ_SHIFT;
    let expected = seq_of(pos);
    if seq == expected {
        let len = word & LEN_MASK;
        return if len as usize <= PAYLOAD_SIZE {
            SlotState::Ready(Ready {
                len: len as usize,
                wrap: word & WRAP_FLAG != 0,
                ack: if word & ACK_VALID_FLAG != 0 {
                    Some((word >> ACK_SHIFT) & ACK_MASK)
                } else {
                    None
                },
            })
        } else {
            SlotState::BadLength(len)
        };
    }
    let fine = if run_index >= slots {
        seq == seq_of(pos.wrapping_sub(slots))
    } else {
        let behind = expected.wrapping_sub(seq) & SEQ_MASK;
        behind >= 1 && behind <= STALE_WINDOW
    };
    if fine {
        SlotState::Empty
    } else {
        SlotState::BadSequence
    }
}

/// A ring: `slots` cache lines, one direction of the channel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ring<'a> {
    slots: &'a [Slot],
    mask: u64,
}

impl<'a> Ring<'a> {
    /// A ring over `slots` lines; `None` unless the count is a power of two.
    pub(crate) fn new(slots: &'a [Slot]) -> Option<Self> {
        let n = slots.len();
        if !n.is_power_of_two() {
            return None;
        }
        Some(Self {
            slots,
            mask: n as u64 - 1,
        })
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> u64 {
        self.mask + 1
    }

    /// The slot used by the message with index `run_index` in its run. Always `Some` (the
    /// mask keeps the index in bounds); the `Option` keeps the path free of indexing panics.
    #[inline(always)]
    pub(crate) fn slot(&self, run_index: u64) -> Option<&'a Slot> {
        self.slots.get(usize::try_from(run_index & self.mask).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(len: usize, wrap: bool, ack: Option<u64>) -> SlotState {
        SlotState::Ready(Ready { len, wrap, ack })
    }

    #[test]
    fn fields_round_trip() {
        let w = seq_word(41, 56, Some(0x1_2345), true);
        assert_eq!(w >> SEQ_SHIFT, 42);
        assert_eq!(classify(w, 41, 41, 64), ready(56, true, Some(0x2345)));
        assert_eq!(
            classify(seq_word(0, 0, None, false), 0, 0, 4),
            ready(0, false, None)
        );
    }

    #[test]
    fn first_lap() {
        assert_eq!(classify(0, 0, 0, 4), SlotState::Empty);
        assert_eq!(
            classify(seq_word(3, 5, None, false), 3, 3, 4),
            ready(5, false, None)
        );
        assert_eq!(
            classify(seq_word(0, 57, None, false), 0, 0, 4),
            SlotState::BadLength(57)
        );
        assert_eq!(
            classify(seq_word(0, 63, None, false), 0, 0, 4),
            SlotState::BadLength(63)
        );
        // The length field is 6 bits: the flags above it are not length.
        assert_eq!(
            classify(seq_word(0, 56, Some(7), true), 0, 0, 4),
            ready(56, true, Some(7))
        );
        // Ahead of the expected message: corruption.
        assert_eq!(
            classify(seq_word(1, 1, None, false), 0, 0, 4),
            SlotState::BadSequence
        );
        // After a wrap, a first-lap slot may hold any older message.
        assert_eq!(
            classify(seq_word(500, 1, None, false), 1000, 3, 4),
            SlotState::Empty
        );
        assert_eq!(classify(0, 1000, 3, 4), SlotState::Empty);
        // ... but not one absurdly far behind.
        assert_eq!(
            classify(seq_word(0, 1, None, false), STALE_WINDOW + 5, 0, 4),
            SlotState::BadSequence
        );
    }

    #[test]
    fn later_laps_are_exact() {
        // Message 4 of a run in a ring of 4 reuses the slot of message 0 of the same run.
        assert_eq!(
            classify(seq_word(0, 9, None, false), 4, 4, 4),
            SlotState::Empty
        );
        assert_eq!(
            classify(seq_word(4, 9, None, false), 4, 4, 4),
            ready(9, false, None)
        );
        assert_eq!(classify(0, 4, 4, 4), SlotState::BadSequence);
        assert_eq!(
            classify(seq_word(1, 9, None, false), 4, 4, 4),
            SlotState::BadSequence
        );
        assert_eq!(
            classify(seq_word(8, 9, None, false), 4, 4, 4),
            SlotState::BadSequence
        );
    }

    #[test]
    fn sequence_wraps_at_40_bits() {
        let pos = SEQ_MASK; // seq of this message wraps to 0
        assert_eq!(seq_word(pos, 3, None, false) >> SEQ_SHIFT, 0);
        assert_eq!(
            classify(seq_word(pos, 3, None, false), pos, 100, 8),
            ready(3, false, None)
        );
        assert_eq!(
            classify(seq_word(pos - 8, 3, None, false), pos, 100, 8),
            SlotState::Empty
        );
        assert_eq!(
            classify(seq_word(pos - 3, 3, None, false), pos, 2, 8),
            SlotState::Empty
        );
        assert_eq!(
            classify(seq_word(u64::MAX, 1, None, false), u64::MAX, 1, 8),
            ready(1, false, None)
        );
    }
}
