//! A channel region on the host's heap (feature `std`), for tests, benchmarks and
//! simulations: 64-byte aligned, exactly `region_size(slots)` bytes, formatted at
//! generation 0 as the hypervisor formats one.
//!
//! Invariant: `words[offset..offset + len]` is the region; `offset` puts it on a 64-byte
//! boundary and never changes (the vector is never resized, so it never moves).

extern crate alloc;

use alloc::vec::Vec;

use crate::channel::Channel;
use crate::error::LayoutError;
use crate::layout::{region_size, LINE_SIZE};
use crate::region::Region;
use crate::sync::Word;

/// A heap-allocated channel region (see the module documentation).
///
/// ```
/// use channels::{HostRegion, Side};
///
/// let mut region = HostRegion::new(64).expect("a valid slot count");
/// let mut ch = region.channel().unwrap();        // one opening plays both partitions
/// let mut tx = ch.duplex(Side::A).expect("first take");
/// let mut rx = ch.duplex(Side::B).expect("first take");
/// assert!(ch.duplex(Side::A).is_none());         // each side once per opening
/// tx.try_send(b"hello").unwrap();
/// let mut buf = [0u8; channels::PAYLOAD_SIZE];
/// assert_eq!(rx.try_recv(&mut buf), Ok(5));
/// ```
#[derive(Debug)]
pub struct HostRegion {
    words: Vec<Word>,
    offset: usize,
    len: usize,
    slots: u32,
}

impl HostRegion {
    /// A zeroed region for `slots` slots per direction, formatted as an empty channel.
    ///
    /// # Errors
    /// [`LayoutError::InvalidSlots`] unless `slots` is a power of two the layout allows.
    pub fn new(slots: u32) -> Result<Self, LayoutError> {
        if !crate::layout::valid_slots(u64::from(slots)) {
            return Err(LayoutError::InvalidSlots {
                slots: u64::from(slots),
            });
        }
        let len = region_size(slots) / 8;
        // One line of slack is enough to find a 64-byte boundary in 8-byte words.
        let words: Vec<Word> = (0..len + LINE_SIZE / 8).map(|_| Word::new(0)).collect();
        #[cfg(not(loom))]
        let offset = words.as_ptr().align_offset(LINE_SIZE);
        #[cfg(loom)]
        let offset = 0;
        let mut region = Self {
            words,
            offset,
            len,
            slots,
        };
        Channel::format(region.region(), slots)?;
        Ok(region)
    }

    /// Slots per direction.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// The region's words: what a peer (honest or hostile) writes, for tests that play one.
    pub fn words(&self) -> &[Word] {
        self.words
            .get(self.offset..self.offset + self.len)
            .unwrap_or_default()
    }

    /// The region's words, exclusively: what [`HostRegion::region`] wraps.
    fn words_mut(&mut self) -> &mut [Word] {
        self.words
            .get_mut(self.offset..self.offset + self.len)
            .unwrap_or_default()
    }

    /// The region, borrowed exclusively: while it (or the channel opened on it) lives, no
    /// other `Region` over these words can be made in safe code, so the channel's endpoints
    /// are the only writers of each side. [`Channel::words`] gives a test the raw words
    /// to play a hostile peer meanwhile.
    pub fn region(&mut self) -> Region<'_> {
        // The words are aligned and long enough by construction; `from_words` re-checks.
        Region::from_words(self.words_mut()).unwrap_or_else(|_| unreachable_region())
    }

    /// The region opened as a channel, whose two sides a test hands to the two partitions
    /// it plays (borrowed exclusively, as [`HostRegion::region`]).
    ///
    /// # Errors
    /// As [`Channel::open`]: a test may have written a bad identity line into
    /// [`HostRegion::words`].
    pub fn channel(&mut self) -> Result<Channel<'_>, LayoutError> {
        Channel::open(self.region())
    }

    /// Re-formats the region with the next generation, as the hypervisor does when it
    /// restarts one endpoint's partition; returns the new generation.
    pub fn reformat(&mut self) -> u64 {
        let next = Channel::open(self.region()).map_or(1, |c| c.generation().wrapping_add(1));
        // The region's length fits `slots`, so formatting cannot fail.
        let slots = self.slots;
        let _ = Channel::format_generation(self.region(), slots, next);
        next
    }
}

/// `new` checked what `region` and `channel` rely on; reaching this is a bug in this module.
#[cold]
fn unreachable_region() -> ! {
    unreachable!("a HostRegion is aligned, sized and formatted by construction")
}
