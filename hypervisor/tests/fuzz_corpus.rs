//! Replays the committed fuzz seeds (`fuzz/seeds/<target>/`) through the fuzz targets' own
//! bodies (`fuzz/harness/`, included below), on the stable toolchain: `cargo test` checks the
//! fuzzers' invariants on every seed, and a seed that once crashed stays fixed.
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[allow(
    dead_code,
    reason = "the seed encoders are for the seed writer, not the replay"
)]
#[path = "../fuzz/harness/mod.rs"]
mod harness;

/// Runs `body` over every file in `fuzz/seeds/<target>/`; fails naming each seed that panics.
fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "{}: no inputs", dir.display());
    let failed: Vec<&PathBuf> = seeds
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("seed readable");
            catch_unwind(AssertUnwindSafe(|| body(&data))).is_err()
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} {target} seeds fail (messages above): {failed:#?}",
        failed.len(),
        seeds.len()
    );
}

#[test]
fn exit_handler_seeds_hold_the_invariants() {
    replay("exit_handler", harness::exit_handler::run);
}

#[test]
fn hypercall_seeds_hold_the_invariants() {
    replay("hypercall", harness::hypercall::run);
}

#[test]
fn scenarios_round_trip_through_bytes() {
    // The seed writer's encoders must produce what the decoders read.
    for target in ["exit_handler", "hypercall"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds")
            .join(target);
        for entry in std::fs::read_dir(&dir).expect("seed directory") {
            let data = std::fs::read(entry.expect("entry").path()).expect("seed");
            if target == "exit_handler" {
                let s = harness::exit_handler::Scenario::decode(&data);
                assert_eq!(harness::exit_handler::Scenario::decode(&s.encode()), s);
            } else {
                let s = harness::hypercall::Scenario::decode(&data);
                assert_eq!(harness::hypercall::Scenario::decode(&s.encode()), s);
            }
        }
    }
}
