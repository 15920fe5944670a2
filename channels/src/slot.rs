//! Slots and their sequence word: the encoding and the receiver's classification of a word it
//! read from the (untrusted) region.
//!
//! A slot is one cache line: seven payload words, then the sequence word
//! `(seq << 8) | len`, where `seq = (pos + 1) mod 2^56` for message number `pos` (counting
//! from 0 in each direction) and `len <= 56` is the payload length in bytes. A never-written
//! slot is all zero, so seq 0 means "empty" on the first lap. The sender writes the payload
//! words (relaxed), then the sequence word (release); the receiver loads the sequence word
//! (acquire) and, only if it is the one expected, the payload.

use crate::layout::{LINE_WORDS, PAYLOAD_SIZE};
use crate::sync::Word;

/// Mask of the 56-bit sequence field.
pub(crate) const SEQ_MASK: u64 = (1 << 56) - 1;

/// A slot: one cache line of words.
pub(crate) type Slot = [Word; LINE_WORDS];

/// The sequence word announcing message `pos` with `len` payload bytes.
pub(crate) const fn seq_word(pos: u64, len: usize) -> u64 {
    ((pos.wrapping_add(1) & SEQ_MASK) << 8) | (len as u64 & 0xff)
}

/// What the receiver makes of the sequence word of the slot for message `pos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Message `pos` is there, with this many payload bytes.
    Ready(usize),
    /// The slot still holds the previous lap (or nothing): no message yet.
    Empty,
    /// The expected sequence, but a length above 56.
    BadLength(u64),
    /// Anything else.
    BadSequence,
}

/// Classifies `word`, read from the slot that message `pos` will use, in a ring of `slots`.
pub(crate) const fn classify(word: u64, pos: u64, slots: u64) -> SlotState {
    let seq = word >> 8;
    let len = word & 0xff;
    if seq == pos.wrapping_add(1) & SEQ_MASK {
        if len as usize <= PAYLOAD_SIZE {
            SlotState::Ready(len as usize)
        } else {
            SlotState::BadLength(len)
        }
    } else {
        let stale = if pos < slots {
            0
        } else {
            pos.wrapping_add(1).wrapping_sub(slots) & SEQ_MASK
        };
        if seq == stale {
            SlotState::Empty
        } else {
            SlotState::BadSequence
        }
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

    /// The slot used by message `pos`. Always `Some` (the mask keeps the index in bounds);
    /// the `Option` keeps the path free of indexing panics.
    #[inline(always)]
    pub(crate) fn slot(&self, pos: u64) -> Option<&'a Slot> {
        self.slots.get((pos & self.mask) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_lap() {
        assert_eq!(classify(0, 0, 4), SlotState::Empty);
        assert_eq!(classify(seq_word(0, 56), 0, 4), SlotState::Ready(56));
        assert_eq!(classify(seq_word(0, 0), 0, 4), SlotState::Ready(0));
        assert_eq!(classify(seq_word(3, 5), 3, 4), SlotState::Ready(5));
        assert_eq!(classify(seq_word(0, 57), 0, 4), SlotState::BadLength(57));
        assert_eq!(classify(seq_word(1, 1), 0, 4), SlotState::BadSequence);
    }

    #[test]
    fn later_laps() {
        // Slot of message 4 in a ring of 4 holds message 0 until message 4 lands.
        assert_eq!(classify(seq_word(0, 9), 4, 4), SlotState::Empty);
        assert_eq!(classify(seq_word(4, 9), 4, 4), SlotState::Ready(9));
        assert_eq!(classify(0, 4, 4), SlotState::BadSequence);
        assert_eq!(classify(seq_word(8, 9), 4, 4), SlotState::BadSequence);
    }

    #[test]
    fn sequence_wraps_at_56_bits() {
        let pos = SEQ_MASK; // seq of this message wraps to 0
        assert_eq!(seq_word(pos, 3) >> 8, 0);
        assert_eq!(classify(seq_word(pos, 3), pos, 8), SlotState::Ready(3));
        assert_eq!(classify(seq_word(pos - 8, 3), pos, 8), SlotState::Empty);
        assert_eq!(
            classify(seq_word(u64::MAX, 1), u64::MAX, 8),
            SlotState::Ready(1)
        );
    }
}
