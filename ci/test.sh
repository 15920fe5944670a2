#!/usr/bin/env bash
# Flotilla's whole test suite: formatting, lints (host and bare metal), docs,
# unit and end-to-end tests (QEMU TCG 1/2/4/8 cores; the GRUB ISO under QEMU
# BIOS, QEMU + OVMF and Bochs), the channel ring's loom model, and a build of
# every fuzz target (their seed corpora are replayed by the unit tests).
# The README's test command and what CI runs (after ci/setup.sh).
# Stops at the first failing step; prints each step's name and time.
set -euo pipefail
cd "$(dirname "$0")/.."

suite_start=$(date +%s)
step() {
  local name=$1
  shift
  echo
  echo "==> ${name}: $*"
  local start
  start=$(date +%s)
  if ! "$@"; then
    echo "==> FAILED: ${name} ($(($(date +%s) - start))s)"
    exit 1
  fi
  echo "==> ok: ${name} ($(($(date +%s) - start))s)"
}

# The suite's builds take a few GB (target/ peaked near 3 GB here); a
# machine short of disk fails in a compiler with ENOSPC, so say so first.
# Only a report: nothing here can stop the suite.
disk_check() {
  local avail_kb
  avail_kb=$(df -Pk . 2>/dev/null | awk 'NR == 2 { print $4 }') || avail_kb=
  if ! [[ $avail_kb =~ ^[0-9]+$ ]]; then
    echo "disk: free space unknown (df gave no number)"
    return 0
  fi
  echo "disk: $((avail_kb / 1024)) MiB free in $(pwd)"
  if [ "$avail_kb" -lt $((3 * 1024 * 1024)) ]; then
    echo "warning: under 3 GiB free; the builds below may run out of space (cargo clean, or free some)"
  fi
}
disk_check

step "format" cargo fmt --all --check
step "clippy (host)" cargo clippy --workspace --all-targets --locked -- -D warnings
step "clippy (x86_64-unknown-none)" \
  cargo clippy --locked --target x86_64-unknown-none -p hypervisor -p guest-kernel -p flotilla-rt -- -D warnings
# Every cargo-fuzz crate (outside the workspace) builds on the pinned stable
# toolchain, so its entry points and Cargo.lock cannot rot; their harness
# bodies run over the committed seeds in the tests step (fuzz_corpus.rs).
# One target directory: libFuzzer (C++, built by libfuzzer-sys) compiles once;
# no debug info, and the directory removed after (nothing later reads it).
fuzz_build() {
  local crate
  for crate in partition-config/fuzz channels/fuzz hypervisor/fuzz; do
    CARGO_TARGET_DIR=target/fuzz CARGO_PROFILE_DEV_DEBUG=false \
      cargo build --locked --quiet --manifest-path "$crate/Cargo.toml" || return 1
  done
  rm -rf target/fuzz
}
step "fuzz targets (build)" fuzz_build
step "docs" env RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --locked --quiet
step "tests (unit + end-to-end)" cargo test --workspace --locked --no-fail-fast
if [ -f channels/loom.sh ]; then
  step "loom (channels)" bash channels/loom.sh
fi

echo
echo "==> all steps passed in $(($(date +%s) - suite_start))s"
