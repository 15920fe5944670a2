//! Replays the committed fuzz seeds (`fuzz/seeds/<target>/`) through the fuzz targets' own
//! bodies (`fuzz/harness/mod.rs`, included below), on the stable toolchain: `cargo test` checks
//! the fuzzers' invariants on every seed, and a seed that once crashed stays fixed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

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
    assert!(!seeds.is_empty(), "{}: no seeds", dir.display());
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
fn manifest_decode_seeds_hold_the_invariants() {
    replay("manifest_decode", harness::manifest_decode);
}

#[test]
fn toml_front_end_seeds_hold_the_invariants() {
    replay("toml_front_end", harness::toml_front_end);
}
