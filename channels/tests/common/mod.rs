//! Host helper shared by the integration tests: a heap-allocated, 64-byte aligned region.
#![allow(dead_code)]

use channels::{region_size, Channel, Region};
use std::sync::atomic::AtomicU64;

/// A heap region big enough for `slots`, formatted as a channel.
pub struct HostRegion {
    words: Vec<AtomicU64>,
    offset: usize,
    len: usize,
}

impl HostRegion {
    pub fn new(slots: u32) -> Self {
        let len = region_size(slots) / 8;
        let words: Vec<AtomicU64> = (0..len + 8).map(|_| AtomicU64::new(0)).collect();
        let offset = words.as_ptr().align_offset(64);
        let r = Self { words, offset, len };
        Channel::format(r.region(), slots).expect("format");
        r
    }

    pub fn words(&self) -> &[AtomicU64] {
        &self.words[self.offset..self.offset + self.len]
    }

    pub fn region(&self) -> Region<'_> {
        Region::from_words(self.words()).expect("aligned region")
    }

    pub fn channel(&self) -> Channel<'_> {
        Channel::open(self.region()).expect("open")
    }
}
