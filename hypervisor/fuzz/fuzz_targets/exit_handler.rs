//! Fuzz target: a partition's exits, one after another, through the vendor-neutral exit handler
//! (body and invariants in `harness/exit_handler.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hypervisor_fuzz::exit_handler::run(data));
