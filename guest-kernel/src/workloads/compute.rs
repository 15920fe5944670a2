//! `compute`: counts the primes below `n` (default 1 000 000) with the
//! segmented sieve of [`crate::primes`], while the timer ticks. A
//! CPU-bound loop: under the hypervisor it should cause no VM exits.

use super::{Context, Failure, Outcome};
use crate::arch::{cpu, idt};
use crate::primes::count_primes_below;
use alloc::format;
use core::sync::atomic::Ordering;

/// Default `n`.
const DEFAULT_N: u64 = 1_000_000;

pub fn run(ctx: &Context<'_>) -> Result<Outcome, Failure> {
    let n = ctx.args.u64_or("n", DEFAULT_N)?;
    let ticks0 = idt::TICKS.load(Ordering::Relaxed);
    let t0 = cpu::rdtsc();
    let primes = count_primes_below(n);
    let cycles = cpu::rdtsc().wrapping_sub(t0);
    let ticks = idt::TICKS.load(Ordering::Relaxed) - ticks0;
    let micros = cycles.saturating_mul(1000).checked_div(ctx.tsc_khz);
    println!(
        "compute: {primes} primes below {n} in {cycles} TSC cycles ({}), {ticks} timer ticks",
        micros.map_or(
            alloc::string::String::from("TSC rate unknown"),
            |us| format!("{us} us")
        )
    );
    Ok(Outcome {
        code: 0,
        result: Some(format!("primes={primes} ticks={ticks}")),
    })
}
