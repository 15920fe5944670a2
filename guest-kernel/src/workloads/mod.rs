//! The workloads a partition can run, by name (the layout's `workload`
//! key; the catalog in `partition-config/src/catalog.rs` lists the same
//! names and arguments).
//!
//! A workload gets a [`Context`] and returns an [`Outcome`] (exit code and
//! the result text for `REPORT_RESULT`) or a [`Failure`].

mod compute;
mod hello;
mod idle;
mod links;
mod pingpong;
mod rogue;
mod stream;

use crate::arch::Mode;
use crate::args::{ArgError, Args};
use abi::boot::ChannelInfo;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Exit code for a workload name the kernel does not know.
pub const UNKNOWN_WORKLOAD_EXIT_CODE: u64 = 4;
/// Exit code for arguments of the wrong type.
pub const BAD_ARGS_EXIT_CODE: u64 = 2;

/// What a workload knows about its partition.
#[derive(Debug)]
pub struct Context<'a> {
    /// Partition name ("bare" when bare).
    pub name: &'a str,
    /// Partition index.
    pub partition_id: u32,
    /// Core index.
    pub cpu: u32,
    /// Own x2APIC ID.
    pub apic_id: u32,
    /// Partitions in the layout.
    pub partition_count: u32,
    /// RAM size (guest-physical `0..memory`).
    pub memory: u64,
    /// TSC frequency in kHz (0 if unknown).
    pub tsc_khz: u64,
    /// Under which hypervisor, if any.
    pub mode: Mode,
    /// Workload arguments.
    pub args: Args<'a>,
    /// The partition's channels.
    pub channels: Vec<ChannelInfo>,
}

/// How a workload ended.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code (0 = success).
    pub code: u64,
    /// Result text (`key=value` words), reported before exiting.
    pub result: Option<String>,
}

/// Why a workload could not run.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: u64,
    /// One line for the console.
    pub message: String,
}

impl From<ArgError<'_>> for Failure {
    fn from(e: ArgError<'_>) -> Self {
        Failure {
            code: BAD_ARGS_EXIT_CODE,
            message: format!("{e}"),
        }
    }
}

/// One workload.
#[derive(Debug)]
pub struct Workload {
    /// Name in the layout.
    pub name: &'static str,
    /// Argument keys it reads.
    pub args: &'static [&'static str],
    /// Runs it.
    pub run: fn(&Context<'_>) -> Result<Outcome, Failure>,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "hello",
        args: &["lines"],
        run: hello::run,
    },
    Workload {
        name: "compute",
        args: &["n"],
        run: compute::run,
    },
    Workload {
        name: "rogue",
        args: &["attack"],
        run: rogue::run,
    },
    Workload {
        name: "pingpong",
        args: &["rounds"],
        run: pingpong::run,
    },
    Workload {
        name: "stream",
        args: &["messages"],
        run: stream::run,
    },
    Workload {
        name: "idle",
        args: &[],
        run: idle::run,
    },
];

/// The workload called `name`.
pub fn find(name: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name)
}
