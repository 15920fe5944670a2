//! Channel layout v4: the byte contract shared by the hypervisor (which maps and formats the
//! region), `partition-config` (which sizes it) and both guests. See `docs/channels.md`.
//!
//! ```text
//! offset 0                 identity page (4 KiB): the identity line, written once by the
//!                          hypervisor before the guests start; read-only for both guests
//! offset 4096              endpoint A's area, writable by A only (read-only for B):
//!   +0                       control page (4 KiB): control line A at +0, rest zero
//!   +4096                    ring A->B: `slots` x 64-byte slots, padded to a 4 KiB multiple R
//! offset 4096 + 4096 + R   endpoint B's area, writable by B only (read-only for A): same
//! ```
//! Every page of the region has exactly one writer, so the nested page tables can enforce
//! "one writer per line": each endpoint's area is mapped writable into that endpoint only, the
//! identity page writable into neither. All words are little-endian `u64`s at 8-byte aligned
//! offsets. Everything here is a `const` or a `const fn` so other crates can size regions and
//! find lines at compile time.

use crate::channel::Side;

/// The layout version stored in the identity line.
pub const LAYOUT_VERSION: u64 = 4;
/// The identity line's magic: the ASCII bytes `FLOTCHAN` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"FLOTCHAN");

/// Size of a page, the granularity of every part of the region (the unit of nested-paging
/// permissions).
pub const PAGE_SIZE: usize = 4096;
/// Size of the identity page (the identity line, then zero).
pub const IDENTITY_SIZE: usize = PAGE_SIZE;
/// Size of an endpoint's control page (its control line, then zero).
pub const CONTROL_SIZE: usize = PAGE_SIZE;
/// Size of a cache line and of a slot.
pub const LINE_SIZE: usize = 64;
/// Payload bytes carried by one slot (the slot's last word is the sequence word).
pub const PAYLOAD_SIZE: usize = 56;
/// Payload words (`u64`) per slot.
pub const PAYLOAD_WORDS: usize = PAYLOAD_SIZE / 8;
/// Words per cache line / slot.
pub const LINE_WORDS: usize = LINE_SIZE / 8;
/// Index of the sequence word inside a slot.
pub const SEQ_WORD: usize = PAYLOAD_WORDS;
/// Smallest ring (slots per direction).
pub const MIN_SLOTS: u32 = 2;
/// Largest ring (slots per direction).
pub const MAX_SLOTS: u32 = 4096;

/// Byte offset of the identity line (the start of the identity page).
pub const IDENTITY_OFFSET: usize = 0;
/// Word index, inside the identity line, of the magic.
pub const ID_MAGIC: usize = 0;
/// Word index, inside the identity line, of the layout version.
pub const ID_VERSION: usize = 1;
/// Word index, inside the identity line, of the slot count per ring.
pub const ID_SLOTS: usize = 2;
/// Word index, inside the identity line, of the generation: 0 when the hypervisor first formats
/// the region, +1 each time it re-formats it (a restart of one endpoint's partition). A live
/// endpoint that sees it change knows the region was zeroed under it (layout v4).
pub const ID_GENERATION: usize = 3;

/// Word index, inside a control line, of the receive acknowledgement: how many messages this
/// endpoint has consumed from the ring towards it (a free-running `u64`).
pub const CTL_ACK: usize = 0;
/// Word index, inside a control line, of the receiver's wait word:
/// `(epoch << 1) | waiting` — set before this endpoint sleeps waiting for messages.
pub const CTL_RX_WAIT: usize = 1;
/// Word index, inside a control line, of the sender's wait word:
/// `(epoch << 1) | waiting` — set before this endpoint sleeps waiting for free slots.
pub const CTL_TX_WAIT: usize = 2;

/// Sequence word: bit position of the 40-bit sequence field, `(pos + 1) mod 2^40`.
pub const SEQ_SHIFT: u32 = 24;
/// Sequence word: width of the sequence field.
pub const SEQ_BITS: u32 = 40;
/// Sequence word: bit position of the piggybacked acknowledgement, the low 16 bits of how
/// many messages the writing endpoint has consumed from the other ring.
pub const ACK_SHIFT: u32 = 8;
/// Sequence word: width of the piggybacked acknowledgement.
pub const ACK_BITS: u32 = 16;
/// Sequence word: the wrap flag — the next message in this direction is in slot 0.
pub const WRAP_FLAG: u64 = 1 << 7;
/// Sequence word: the ack field is valid (the writer sent it from a [`crate::Duplex`], which
/// owns both halves of its endpoint).
pub const ACK_VALID_FLAG: u64 = 1 << 6;
/// Sequence word: mask of the length field (bytes of payload, 0..=56; 57..=63 is corrupt).
pub const LEN_MASK: u64 = 0x3f;

/// Whether `slots` is a valid ring size: a power of two in `MIN_SLOTS..=MAX_SLOTS`.
pub const fn valid_slots(slots: u64) -> bool {
    slots >= MIN_SLOTS as u64 && slots <= MAX_SLOTS as u64 && slots.is_power_of_two()
}

/// Bytes of one ring: `slots` 64-byte slots rounded up to a page multiple.
///
/// Meaningful for valid slot counts (see [`valid_slots`]); never overflows for any `u32`.
pub const fn ring_size(slots: u32) -> usize {
    let bytes = slots as usize * LINE_SIZE;
    bytes.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// Bytes of one endpoint's area (the pages only that endpoint writes): its control page,
/// then the ring it sends on.
pub const fn area_size(slots: u32) -> usize {
    CONTROL_SIZE + ring_size(slots)
}

/// Bytes of a whole channel region: `4096 + 2 * (4096 + round_up(slots * 64, 4096))` — the
/// identity page, then A's area, then B's.
///
/// Meaningful for valid slot counts (see [`valid_slots`]).
pub const fn region_size(slots: u32) -> usize {
    IDENTITY_SIZE + 2 * area_size(slots)
}

/// Byte offset of `side`'s area: its control page, followed by the ring it sends on. The area
/// is `area_size(slots)` bytes, page aligned, and written by `side` only.
pub const fn area_offset(side: Side, slots: u32) -> usize {
    match side {
        Side::A => IDENTITY_SIZE,
        Side::B => IDENTITY_SIZE + area_size(slots),
    }
}

/// Byte offset of `side`'s control line (the start of its control page).
pub const fn control_offset(side: Side, slots: u32) -> usize {
    area_offset(side, slots)
}

/// Byte offset of the ring `side` sends on (A: ring A->B, B: ring B->A).
pub const fn ring_offset(side: Side, slots: u32) -> usize {
    area_offset(side, slots) + CONTROL_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_contract() {
        assert_eq!(region_size(2), 4096 * 5);
        assert_eq!(region_size(64), 4096 * 5);
        assert_eq!(region_size(128), 4096 + 2 * (4096 + 8192));
        assert_eq!(region_size(4096), 4096 + 2 * (4096 + 4096 * 64));
        assert_eq!(control_offset(Side::A, 128), 4096);
        assert_eq!(ring_offset(Side::A, 128), 2 * 4096);
        assert_eq!(control_offset(Side::B, 128), 2 * 4096 + 8192);
        assert_eq!(ring_offset(Side::B, 128), 3 * 4096 + 8192);
    }

    #[test]
    fn every_page_has_one_owner_and_the_parts_tile_the_region() {
        let mut slots = MIN_SLOTS;
        while slots <= MAX_SLOTS {
            // identity page, A's area, B's area: adjacent, page aligned, covering the region.
            let parts = [
                (IDENTITY_OFFSET, IDENTITY_SIZE),
                (area_offset(Side::A, slots), area_size(slots)),
                (area_offset(Side::B, slots), area_size(slots)),
            ];
            let mut end = 0;
            for (offset, len) in parts {
                assert_eq!(offset, end, "{slots} slots");
                assert_eq!(offset % PAGE_SIZE, 0);
                assert_eq!(len % PAGE_SIZE, 0);
                end = offset + len;
            }
            assert_eq!(end, region_size(slots));
            for side in [Side::A, Side::B] {
                let area = area_offset(side, slots)..area_offset(side, slots) + area_size(slots);
                assert!(area.contains(&control_offset(side, slots)));
                let ring = ring_offset(side, slots);
                assert!(area.contains(&ring));
                assert_eq!(ring + ring_size(slots), area.end);
                assert!(slots as usize * LINE_SIZE <= ring_size(slots));
            }
            slots *= 2;
        }
    }

    #[test]
    fn slot_counts() {
        assert!(valid_slots(2) && valid_slots(64) && valid_slots(4096));
        assert!(!valid_slots(0) && !valid_slots(1) && !valid_slots(3) && !valid_slots(8192));
        assert!(!valid_slots(u64::MAX));
    }

    #[test]
    fn magic_spells_flotchan() {
        assert_eq!(&MAGIC.to_le_bytes(), b"FLOTCHAN");
    }
}
