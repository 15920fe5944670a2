//! `hello`: greets with the partition's name and core, prints `lines`
//! numbered lines as fast as it can (0 by default: a console flood for the
//! budget's tests), waits for the timer to tick once (idling in `hlt`),
//! reports the ticks and exits 0.

use super::{Context, Failure, Outcome};
use crate::arch::{cpu, idt};
use alloc::format;
use core::sync::atomic::Ordering;

pub fn run(ctx: &Context<'_>) -> Result<Outcome, Failure> {
    println!(
        "hello from {} (partition {} of {}) on core {} (apic {}), {} MiB, {}",
        ctx.name,
        ctx.partition_id,
        ctx.partition_count,
        ctx.cpu,
        ctx.apic_id,
        ctx.memory >> 20,
        ctx.mode.describe()
    );
    let lines = ctx.args.u64_or("lines", 0)?;
    for i in 0..lines {
        println!("line {i} of {lines}");
    }
    while idt::TICKS.load(Ordering::Relaxed) == 0 {
        cpu::wait_for_interrupt();
    }
    let ticks = idt::TICKS.load(Ordering::Relaxed);
    Ok(Outcome {
        code: 0,
        result: Some(if lines == 0 {
            format!("ticks={ticks}")
        } else {
            format!("ticks={ticks} lines={lines}")
        }),
    })
}
