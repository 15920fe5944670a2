//! `hello`: greets with the partition's name and core, waits for the timer
//! to tick once (idling in `hlt`), reports the ticks and exits 0.

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
    while idt::TICKS.load(Ordering::Relaxed) == 0 {
        cpu::wait_for_interrupt();
    }
    let ticks = idt::TICKS.load(Ordering::Relaxed);
    Ok(Outcome {
        code: 0,
        result: Some(format!("ticks={ticks}")),
    })
}
