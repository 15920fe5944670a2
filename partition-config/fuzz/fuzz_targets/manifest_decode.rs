//! Fuzz target: the no_std manifest decoder over arbitrary bytes (body and invariants in
//! `harness/mod.rs`, `manifest_decode`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| partition_config_fuzz::manifest_decode(data));
