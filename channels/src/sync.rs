//! The atomics the crate is built on: `core`'s normally, `loom`'s under `--cfg loom` so the
//! loom model (tests/loom.rs) explores the real ring code, not a copy of it.
//!
//! Read-only memory: in layout v4 an endpoint sees the identity page and the peer's area
//! mapped read-only. Rust promises only *relaxed* loads of at most 8 bytes to work on
//! read-only memory (`core::sync::atomic`, "Atomic accesses to read-only memory"), so every
//! load of a word the peer or the hypervisor writes is relaxed; where acquire ordering is
//! needed, [`load_acquire`] follows the relaxed load with an acquire fence, as those docs
//! advise (on x86-64 both compile to a plain `mov`).

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, Ordering};

/// One 8-byte word of a channel region. Every access to the shared region goes through this
/// type (relaxed, acquire or release loads and stores), so payload copies are data-race-free
/// in the Rust memory model.
#[cfg(not(loom))]
pub type Word = core::sync::atomic::AtomicU64;
/// One 8-byte word of a channel region (loom's model atomic under `--cfg loom`).
#[cfg(loom)]
pub type Word = loom::sync::atomic::AtomicU64;

/// Loads `word` with acquire semantics in a way that is valid on read-only memory: a relaxed
/// load, then an acquire fence (which makes the load synchronise with the release store it
/// read, like an acquire load would).
#[inline(always)]
pub(crate) fn load_acquire(word: &Word) -> u64 {
    let value = word.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    value
}
