//! Fuzz target: hypercalls of one partition through `hypercall::dispatch` (body and invariants
//! in `harness/hypercall.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hypervisor_fuzz::hypercall::run(data));
