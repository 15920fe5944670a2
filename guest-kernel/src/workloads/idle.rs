//! `idle`: says so, then idles in `hlt` with its timer ticking and never
//! exits — a partition that never finishes, for the run timeout.

use super::{Context, Failure, Outcome};
use crate::arch::cpu;

pub fn run(ctx: &Context<'_>) -> Result<Outcome, Failure> {
    println!(
        "idle: {} waits forever (until the run's timeout stops it)",
        ctx.name
    );
    loop {
        cpu::wait_for_interrupt();
    }
}
