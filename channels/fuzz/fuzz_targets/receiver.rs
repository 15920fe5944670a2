//! Fuzz target: both endpoints of a channel over a region whose contents the input controls (body
//! and invariants in `harness/mod.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| channels_fuzz::receiver(data));
