//! Flotilla's guest runtime: everything a per-core workload needs to run
//! alone on its core in a Flotilla partition, so that the workload itself
//! is one safe function (`docs/guest-sdk.md`).
//!
//! The runtime boots as a PVH guest (`docs/boot-protocol.md`): the entry
//! assembly, long mode and the identity-mapped page tables, its own GDT
//! and IDT, the x2APIC timer and the heap. It reads the partition's
//! identity, arguments and channels from the Flotilla block (or, bare
//! under QEMU, from the command line), prints a banner, calls the
//! workload's entry function ([`entry!`]) with a `Context`, reports the
//! [`Report`] it returns (`REPORT_RESULT`), and ends the partition with the
//! workload's exit code.
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use flotilla_rt::{println, Context, Outcome, Report};
//!
//! fn run(ctx: &mut Context) -> flotilla_rt::Result {
//!     let n = ctx.args().u64_or("n", 10)?;
//!     println!("hello from {}", ctx.name());
//!     Ok(Outcome::ok(Report::new().with("n", n)))
//! }
//! flotilla_rt::entry!(run);
//! ```
//!
//! Module map. Pure, host-tested: [`args`] (typed workload arguments),
//! [`block`] (Flotilla block validation), [`bootinfo`] (PVH start info),
//! [`linebuf`] (console lines), [`link`] (waiting and typed sends and
//! receives over a channel endpoint), [`members`] (a group's member ids and
//! partitions), [`paging`] (the stack guard page's table entries),
//! [`peers`] (channels by peer name),
//! [`report`] (results as typed
//! key/value pairs), [`time`]'s conversions. Bare metal only: `arch` (the
//! only `unsafe`: boot, tables, interrupts, APIC, hypercalls, heap),
//! `console` (`print!`/`println!`), `kernel` (the boot sequence),
//! `Context`, `Endpoint` and `Group` (replication-group membership),
//! [`time`]'s clock and `sleep`, and, with
//! the `hostile` feature, `hostile` (the built-in `rogue` workload's
//! forbidden actions). Bare-metal items are documented by
//! `cargo doc --target x86_64-unknown-none -p flotilla-rt`.
//!
//! Exit codes the runtime itself uses ([`exit_code`]): 2 bad arguments
//! (an [`args::ArgError`] returned with `?`), 253 panic (the message and
//! its location are printed first), 254 bad boot information, 255
//! unexpected exception (a stack overflow, which hits the stack's guard
//! page, among them). A workload picks every other code.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
// Cast discipline (CONTRIBUTING.md): `From` widens; `try_from` or a commented `as` narrows.
#![warn(missing_docs, clippy::cast_lossless, clippy::cast_possible_truncation)]
#![warn(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
// On the host only the pure modules' tests are built; the rest is unused.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

extern crate alloc;

pub mod args;
pub mod block;
pub mod bootinfo;
pub mod linebuf;
pub mod link;
pub mod members;
pub mod paging;
pub mod peers;
pub mod replica;
pub mod report;
pub mod select;
pub mod time;

#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod arch;
#[cfg(target_os = "none")]
#[macro_use]
pub mod console;
#[cfg(target_os = "none")]
mod context;
#[cfg(all(target_os = "none", feature = "hostile"))]
pub mod hostile;
#[cfg(target_os = "none")]
mod kernel;

/// The group status page's snapshot and its errors (`abi::group`), for
/// `Group::membership`.
pub use abi::group::{MemberState, MemberStatus, Membership, StatusError};
pub use args::{ArgError, Args};
/// The channel errors of `Endpoint::try_send` / `Endpoint::try_recv`
/// (`RecvError::Empty`: nothing there yet), from the `channels` crate, so
/// that a workload can match on them without depending on it.
pub use channels::{RecvError, SendError};
pub use peers::ChannelError;
pub use report::{Report, Value};

#[cfg(target_os = "none")]
pub use arch::{exit, hv::HypercallError, Mode};
#[cfg(target_os = "none")]
pub use context::{membership_notifications, Context, Endpoint, Group, Machine};
/// Waiting on several endpoints at once (`select`).
#[cfg(target_os = "none")]
pub use context::{wait_any, wait_any_for};
#[cfg(target_os = "none")]
pub use kernel::program;

use alloc::format;
use alloc::string::String;

/// The exit codes the runtime gives a partition.
pub mod exit_code {
    /// The workload succeeded.
    pub const SUCCESS: u64 = 0;
    /// An argument had the wrong type ([`crate::ArgError`] into
    /// [`crate::Failure`]).
    pub const BAD_ARGS: u64 = 2;
    /// The workload panicked (message and location on the console).
    pub const PANIC: u64 = 253;
    /// The boot information was unusable (the reason on the console).
    pub const BAD_BOOT: u64 = 254;
    /// An unexpected CPU exception (vector, RIP and CR2 on the console).
    pub const EXCEPTION: u64 = 255;
}

/// How a workload ended.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code (0 = success).
    pub code: u64,
    /// The result, reported before exiting (`None`: report nothing).
    pub report: Option<Report>,
}

impl Outcome {
    /// Success with `report`.
    pub fn ok(report: Report) -> Self {
        Outcome {
            code: exit_code::SUCCESS,
            report: Some(report),
        }
    }

    /// Exit code `code` with `report`.
    pub fn with_code(code: u64, report: Report) -> Self {
        Outcome {
            code,
            report: Some(report),
        }
    }

    /// Exit code `code`, nothing reported.
    pub fn silent(code: u64) -> Self {
        Outcome { code, report: None }
    }
}

/// Why a workload could not do its job: one console line and an exit
/// code; nothing is reported.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: u64,
    /// The line printed on the console (as it is).
    pub message: String,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: u64, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<ArgError<'_>> for Failure {
    fn from(e: ArgError<'_>) -> Self {
        Failure {
            code: exit_code::BAD_ARGS,
            message: format!("{e}"),
        }
    }
}

/// What a workload's entry function returns.
pub type Result<T = Outcome> = core::result::Result<T, Failure>;

/// The workload's entry, as [`entry!`] hands it to the runtime.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The program's name (its package name): the prefix of the runtime's
    /// own console lines.
    pub program: &'static str,
    /// The entry function.
    #[cfg(target_os = "none")]
    pub main: fn(&mut Context) -> Result,
}

/// Declares the workload's entry function: `flotilla_rt::entry!(run);`
/// with `fn run(ctx: &mut flotilla_rt::Context) -> flotilla_rt::Result`.
/// The runtime calls it once, after boot, with interrupts and the timer
/// on; what it returns is reported and becomes the exit code.
///
/// It expands to one exported function the runtime's start code calls (a
/// `#[no_mangle]` item, hence the `allow(unsafe_code)` inside), and to
/// nothing on the host, where the crate's pure modules are unit-tested:
/// give the host a `fn main() {}` of its own, and do not name the entry
/// function `main`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[cfg(target_os = "none")]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        fn __flotilla_rt_entry() -> $crate::Entry {
            $crate::Entry {
                program: env!("CARGO_PKG_NAME"),
                main: $main,
            }
        }
    };
}

/// The panic handler: prints `<program>: panic: <message and location>`
/// and ends the partition with [`exit_code::PANIC`].
#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::emergency(format_args!("{}: panic: {info}", program()));
    arch::exit(exit_code::PANIC)
}
