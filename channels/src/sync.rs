//! The atomics the crate is built on: `core`'s normally, `loom`'s under `--cfg loom` so the
//! loom model (tests/loom.rs) explores the real ring code, not a copy of it.

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
