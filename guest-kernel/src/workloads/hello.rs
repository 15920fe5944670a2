//! `hello`: greets with the partition's name and core, prints `lines`
//! numbered lines as fast as it can (0 by default: a console flood for the
//! budget's tests), waits for the timer to tick once (idling in `hlt`),
//! reports the ticks and exits 0.

use flotilla_rt::{time, Context, Failure, Outcome, Report};

pub fn run(ctx: &mut Context) -> Result<Outcome, Failure> {
    println!(
        "hello from {} (partition {} of {}) on core {} (apic {}), {} MiB, {}",
        ctx.name(),
        ctx.partition_id(),
        ctx.partition_count(),
        ctx.cpu(),
        ctx.apic_id(),
        ctx.memory() >> 20,
        ctx.mode().describe()
    );
    let lines = ctx.args().u64_or("lines", 0)?;
    for i in 0..lines {
        println!("line {i} of {lines}");
    }
    while time::ticks() == 0 {
        time::wait_for_interrupt();
    }
    let mut report = Report::new().with("ticks", time::ticks());
    if lines != 0 {
        report.add("lines", lines);
    }
    Ok(Outcome::ok(report))
}
