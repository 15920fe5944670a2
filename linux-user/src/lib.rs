//! `flotilla-linux`: the userspace side of a Linux partition's channels
//! (issue #15, `docs/linux.md`).
//!
//! A stock Linux kernel in a `compat = "linux"` partition finds nothing of
//! Flotilla by itself; its command line carries `flotilla-block=<gpa>`, the
//! guest-physical address of the partition's Flotilla block (boot protocol,
//! `docs/boot-protocol.md` §4). This program, run from the initramfs'
//! `/init`, reads that block through `/dev/mem`, maps each channel region
//! the block names (reserved memory in the partition's memory map, so
//! `/dev/mem` under `STRICT_DEVMEM` allows it), and speaks the built-in
//! `pingpong` workload's protocol over it (`guest-kernel/src/exchange.rs`):
//! endpoint A sends round number `r` as one 8-byte little-endian word and
//! waits for the same word back, `rounds` times; endpoint B echoes. It
//! prints one line per channel and a result line, so a Linux partition and
//! bare-metal partitions cooperate the multikernel way, with nothing on the
//! hot path but the shared cache lines.
//!
//! Linux userspace cannot raise Flotilla IPIs (a hypercall), so only
//! `poll` channels are used; an `ipi` channel is reported broken.
//!
//! Module map: [`cmdline`] (finding the block), [`session`] (reading the
//! block and running the exchange over any [`session::PhysMem`]: host-tested
//! over ordinary memory), `arch` (the only `unsafe`: `/dev/mem` and `mmap`,
//! Linux only), `main.rs` (the program).
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

pub mod cmdline;
pub mod session;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod arch;

/// The prefix of every line the program prints.
pub const PROGRAM: &str = "flotilla-linux";

/// Exit code when no channel did its job (as the built-in `pingpong`:
/// `guest-kernel`'s `CHANNEL_EXIT_CODE`).
pub const CHANNEL_EXIT_CODE: i32 = 5;

/// Exit code when the Flotilla block could not be found or read.
pub const NO_BLOCK_EXIT_CODE: i32 = 4;
