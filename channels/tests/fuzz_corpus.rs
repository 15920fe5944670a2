//! Replays the committed seeds of the `receiver` fuzz target (`fuzz/seeds/receiver/`) through the
//! target's own body (`fuzz/harness/mod.rs`, included below), on the stable toolchain: `cargo
//! test` checks the fuzzer's invariants on every seed, and a seed that once crashed stays fixed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../fuzz/harness/mod.rs"]
mod harness;

#[test]
fn receiver_seeds_hold_the_invariants() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/receiver");
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
            catch_unwind(AssertUnwindSafe(|| harness::receiver(&data))).is_err()
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} receiver seeds fail (messages above): {failed:#?}",
        failed.len(),
        seeds.len()
    );
}
