//! `idle`: says so, then idles in `hlt` with its timer ticking and never
//! exits — a partition that never finishes, for the run timeout.

use flotilla_rt::{time, Context, Failure, Outcome};

pub fn run(ctx: &mut Context) -> Result<Outcome, Failure> {
    println!(
        "idle: {} waits forever (until the run's timeout stops it)",
        ctx.name()
    );
    loop {
        time::wait_for_interrupt();
    }
}
