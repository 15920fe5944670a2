//! Fuzz target: the TOML front end over arbitrary text (body and invariants in
//! `harness/mod.rs`, `toml_front_end`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| partition_config_fuzz::toml_front_end(data));
