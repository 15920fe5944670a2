#!/usr/bin/env bash
# Loom model of the channel ring's memory ordering (tests/loom.rs), kept out of the default
# `cargo test -p channels` because it is slower. Called by CI; run it by hand after touching
# the ring, the credits or the wait protocol.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} --cfg loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
# A separate target dir: --cfg loom changes every artifact of the crate.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
exec cargo test --locked -p channels --release --test loom "$@"
