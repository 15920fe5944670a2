//! Flotilla's built-in guest kernel: the demo workloads (`hello`,
//! `compute`, `pingpong`, `stream`, `idle`, `rogue`, `watch`, `replica`,
//! `shootdown`) as one program over
//! the guest runtime, `flotilla-rt`, which boots the partition, reads its
//! identity and arguments, and calls `run` (declared with
//! `flotilla_rt::entry!`). `run` picks the workload the layout names
//! (`workload` key; bare, the `workload=` argument) and runs it.
//!
//! Module map. Pure, host-tested: [`primes`] (the `compute` workload's
//! sieve), [`exchange`] (the channel workloads' message loops, over the
//! runtime's links), [`stats`] (percentiles). Bare metal only:
//! `workloads`.
//!
//! Exit codes: 0 success, 2 bad arguments, 3 a rogue attack was not
//! stopped, 4 unknown workload, 5 a channel workload had no channel left
//! to do its job on (none given, or every one failed to open or broke; a
//! workload with some broken channels and some good ones exits 0 and says
//! `broken_channels=<k>` in its result), 6 a `watch` check failed, 7 a
//! replication workload found no usable group, 8 a replication workload
//! stalled (the line says where); and the runtime's own: 253 panic,
//! 254 bad boot information, 255 unexpected exception.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]
// Cast discipline (CONTRIBUTING.md): `From` widens; `try_from` or a commented `as` narrows.
#![warn(clippy::cast_lossless, clippy::cast_possible_truncation)]
#![warn(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
// On the host only the pure modules' tests are built; the rest is unused.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

extern crate alloc;
#[cfg(target_os = "none")]
#[macro_use]
extern crate flotilla_rt;

mod exchange;
mod primes;
mod stats;

#[cfg(target_os = "none")]
mod workloads;

/// The entry: runs the workload the layout names.
#[cfg(target_os = "none")]
fn run(ctx: &mut flotilla_rt::Context) -> flotilla_rt::Result {
    workloads::run(ctx)
}

#[cfg(target_os = "none")]
flotilla_rt::entry!(run);

#[cfg(not(target_os = "none"))]
fn main() {}
