//! Host helper shared by the integration tests: the crate's own `HostRegion` (feature
//! `std`), made infallible for the slot counts the tests use.
#![allow(dead_code)]

/// A formatted heap region of `slots` slots (a valid count: the tests pick them).
pub fn host_region(slots: u32) -> channels::HostRegion {
    channels::HostRegion::new(slots).expect("a valid slot count")
}

/// A second, simultaneous mapping of a live region's words: the hypervisor's, re-formatting
/// the region under a live endpoint, or the peer partition's opening it. Safe code cannot
/// make one (`Region::from_words` takes the words by `&mut`), so this is the unsafe way.
#[cfg(not(loom))]
pub fn second_mapping(words: &[std::sync::atomic::AtomicU64]) -> channels::Region<'_> {
    // SAFETY: `words` is a live slice of atomics for the region's whole lifetime (the
    // returned region borrows it), aligned and sized as `from_raw` re-checks; the region and
    // everything derived from it access these words only with atomic word loads and stores,
    // as every other user of the slice does, and atomics are shared-mutable (`UnsafeCell`),
    // so storing through a pointer derived from a shared reference is allowed.
    unsafe { channels::Region::from_raw(words.as_ptr().cast_mut().cast::<u8>(), words.len() * 8) }
        .expect("a live region's words are aligned and long enough")
}
