//! The crate's only unsafe code: viewing a raw shared mapping as a slice of atomic words.
//!
//! Invariant owned here: a [`Region`] is a 64-byte aligned slice of [`Word`]s that stays valid
//! for `'a`. Everything else in the crate is safe code over that slice, and every access to
//! the shared memory is an atomic load or store of one word, so a peer writing concurrently
//! (honest or not) can change values but never cause undefined behaviour.

use crate::error::LayoutError;
use crate::layout::{IDENTITY_SIZE, LINE_SIZE};
use crate::sync::Word;

/// A channel region: the shared mapping, viewed as atomic words.
///
/// Neither `Copy` nor `Clone`, and [`Region::from_words`] takes the words by `&mut`, so in
/// safe code one slice of memory backs at most one live `Region`; that region is opened as
/// one [`crate::Channel`], which hands out each side's endpoint at most once per opening.
/// Together: safe code cannot obtain two writers for one side. Both sides' endpoints of one
/// channel can coexist (a host test plays both partitions with them). A second, simultaneous
/// mapping of the same memory (the peer partition's, or the hypervisor re-formatting under
/// a live endpoint) is modelled only with the unsafe [`Region::from_raw`].
#[derive(Debug)]
pub struct Region<'a> {
    words: &'a [Word],
}

impl<'a> Region<'a> {
    /// Wraps a slice of words (host tests and benchmarks allocate regions this way).
    ///
    /// The exclusive borrow is what makes the region the only one over these words for
    /// `'a` (every access is still atomic, so the region keeps it as a shared slice). The
    /// slice must start on a 64-byte boundary (so slots are cache lines) and hold at least
    /// the identity page.
    ///
    /// A second live region over the same words does not compile:
    ///
    /// ```compile_fail,E0499
    /// use channels::{Region, Word};
    ///
    /// let mut words: Vec<Word> = (0..1024).map(|_| Word::new(0)).collect();
    /// let first = Region::from_words(&mut words);
    /// let second = Region::from_words(&mut words); // error[E0499]: a second `&mut`
    /// drop((first, second));
    /// ```
    pub fn from_words(words: &'a mut [Word]) -> Result<Self, LayoutError> {
        #[cfg(not(loom))]
        if !words.as_ptr().addr().is_multiple_of(LINE_SIZE) {
            return Err(LayoutError::Misaligned);
        }
        let len = words.len().saturating_mul(8);
        if len < IDENTITY_SIZE {
            return Err(LayoutError::BadLength { len });
        }
        Ok(Self { words: &*words })
    }

    /// Wraps a raw mapping of `len` bytes at `ptr` (the guest's identity-mapped channel pages).
    ///
    /// Checks alignment (64 bytes) and length (a multiple of 8, at least the identity page).
    ///
    /// # Safety
    /// - `ptr..ptr+len` must be mapped and readable for all of `'a`, and writable wherever
    ///   the code using the region stores: a guest endpoint stores only into its own side's
    ///   area (`layout::area_offset`), so the identity page and the peer's area may be mapped
    ///   read-only (layout v4 does); [`crate::Channel::format`] stores into the whole region;
    /// - during `'a`, that memory must be accessed only with aligned 8-byte atomic (or, from
    ///   another partition, plain machine-word) loads and stores — no Rust reference other
    ///   than ones derived from this `Region` may point into it;
    /// - it must not be unmapped or reused while any `Region`, `Channel`, `Sender` or
    ///   `Receiver` derived from it is alive.
    #[cfg(not(loom))]
    pub unsafe fn from_raw(ptr: *mut u8, len: usize) -> Result<Self, LayoutError> {
        if ptr.is_null() || !ptr.addr().is_multiple_of(LINE_SIZE) {
            return Err(LayoutError::Misaligned);
        }
        if !len.is_multiple_of(8) || len < IDENTITY_SIZE || len > isize::MAX as usize {
            return Err(LayoutError::BadLength { len });
        }
        // SAFETY: `ptr` is non-null and 64-byte aligned (checked above), so aligned for
        // `AtomicU64`; the caller guarantees `len` bytes from it are valid for reads for `'a`,
        // for writes wherever the crate will store (its own side's area), and only accessed
        // atomically, which is what `&[AtomicU64]` requires (the crate's loads of words in
        // read-only pages are relaxed 8-byte loads, which Rust allows on read-only memory)
        // (`AtomicU64` has the size of `u64`, so `len / 8` words cover exactly `len` bytes,
        // and `len <= isize::MAX` was checked). Atomics permit shared mutation, so the shared
        // slice does not assert immutability.
        let words =
            unsafe { core::slice::from_raw_parts(ptr.cast::<Word>().cast_const(), len / 8) };
        Ok(Self { words })
    }

    /// Length of the region in bytes.
    pub fn len_bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// The words of the region.
    pub(crate) fn words(&self) -> &'a [Word] {
        self.words
    }

    /// The region again over the same words, for the crate's own re-opening of a channel
    /// it already owns ([`crate::Channel::reopen`]).
    pub(crate) fn again(words: &'a [Word]) -> Self {
        Self { words }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;

    fn aligned(words: &mut [AtomicU64]) -> &mut [AtomicU64] {
        let off = words.as_ptr().align_offset(64);
        &mut words[off..]
    }

    #[test]
    fn from_words_checks_alignment_and_length() {
        let mut v: Vec<AtomicU64> = (0..1000).map(|_| AtomicU64::new(0)).collect();
        let a = aligned(&mut v);
        assert!(Region::from_words(&mut a[..512]).is_ok());
        assert_eq!(
            Region::from_words(&mut a[1..513]).unwrap_err(),
            LayoutError::Misaligned
        );
        assert_eq!(
            Region::from_words(&mut a[..100]).unwrap_err(),
            LayoutError::BadLength { len: 800 }
        );
    }

    #[test]
    fn from_raw_checks() {
        let mut v: Vec<AtomicU64> = (0..1000).map(|_| AtomicU64::new(0)).collect();
        let a = aligned(&mut v);
        let p = a.as_mut_ptr().cast::<u8>();
        // SAFETY: `a` is a live slice of atomics of at least 4096 bytes, only used atomically.
        let r = unsafe { Region::from_raw(p, 4096) }.unwrap();
        assert_eq!(r.len_bytes(), 4096);
        // SAFETY: rejected before any access (misaligned).
        assert!(unsafe { Region::from_raw(p.wrapping_add(8), 4096) }.is_err());
        // SAFETY: rejected before any access (length not a multiple of 8).
        assert!(unsafe { Region::from_raw(p, 4097) }.is_err());
        // SAFETY: rejected before any access (null).
        assert!(unsafe { Region::from_raw(core::ptr::null_mut(), 4096) }.is_err());
    }
}
