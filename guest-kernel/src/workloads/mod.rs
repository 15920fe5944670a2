//! The workloads a partition can run, by name (the layout's `workload`
//! key; the catalog in `partition-config/src/catalog.rs` lists the same
//! names and arguments).
//!
//! A workload is a function of the runtime's [`Context`] returning an
//! [`Outcome`] (exit code and the typed result for `REPORT_RESULT`) or a
//! [`Failure`] (one console line, prefixed here with the workload's name).

mod compute;
mod hello;
mod idle;
mod links;
mod pingpong;
mod replica;
mod rogue;
mod stream;
mod watch;

use alloc::format;
use alloc::vec::Vec;
use flotilla_rt::{program, Context, Failure, Mode, Outcome};

/// Exit code for a workload name the kernel does not know.
pub const UNKNOWN_WORKLOAD_EXIT_CODE: u64 = 4;
/// Exit code for arguments of the wrong type.
pub const BAD_ARGS_EXIT_CODE: u64 = flotilla_rt::exit_code::BAD_ARGS;

/// One workload.
#[derive(Debug)]
pub struct Workload {
    /// Name in the layout.
    pub name: &'static str,
    /// Argument keys it reads.
    pub args: &'static [&'static str],
    /// Runs it.
    pub run: fn(&mut Context) -> Result<Outcome, Failure>,
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
        args: &["attack", "only_first"],
        run: rogue::run,
    },
    Workload {
        name: "watch",
        args: &["role", "rounds", "ack"],
        run: watch::run,
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
    Workload {
        name: "replica",
        args: &["updates", "fault_after", "retain", "max_ticks"],
        run: replica::run_replica,
    },
    Workload {
        name: "shootdown",
        args: &["rounds", "max_ticks"],
        run: replica::run_shootdown,
    },
];

/// The workload called `name`.
pub fn find(name: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name)
}

/// Runs the workload `ctx` names: warns about arguments it does not read,
/// and prefixes a failure's line with the workload's name.
pub fn run(ctx: &mut Context) -> Result<Outcome, Failure> {
    let Some(w) = find(ctx.workload()) else {
        println!("{}: unknown workload {:?}", program(), ctx.workload());
        return Ok(Outcome::silent(UNKNOWN_WORKLOAD_EXIT_CODE));
    };
    let mut known: Vec<&str> = w.args.to_vec();
    if ctx.mode() == Mode::Bare {
        known.push("workload");
    }
    for word in ctx.args().unknown(&known) {
        println!("{}: warning: unknown argument {word:?} ignored", program());
    }
    (w.run)(ctx).map_err(|f| Failure {
        code: f.code,
        message: format!("{}: {}", w.name, f.message),
    })
}
