//! Fuzz harnesses for the hypervisor's guest-facing decisions: the exit handler
//! (`exit_handler`) and hypercall dispatch (`hypercall`).
//!
//! Each harness decodes the fuzzer's bytes into a small scenario (a fake host with a realistic
//! CPU, a partition's grants and RAM, then a sequence of exits or hypercalls), runs it through the
//! real policy code and checks every step against independent oracles written from the manuals
//! (`oracle`), not against the hypervisor's own validity functions. A violated invariant panics
//! with a message that says which one.
//!
//! The same code is the body of the cargo-fuzz targets (`fuzz_targets/`, nightly) and of the
//! corpus replay test (`hypervisor/tests/fuzz_corpus.rs`, stable, part of `cargo test`), which
//! includes this directory with `#[path]`. Scenarios also encode back to bytes, which is how the
//! committed seeds are written (`cargo run -p hypervisor --example hypervisor_fuzz_seeds`).
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

pub mod bytes;
pub mod exit_handler;
pub mod fakes;
pub mod hypercall;
pub mod oracle;
