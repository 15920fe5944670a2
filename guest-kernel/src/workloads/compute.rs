//! `compute`: counts the primes below `n` (default 1 000 000) with the
//! segmented sieve of [`crate::primes`], while the timer ticks. A
//! CPU-bound loop: under the hypervisor it should cause no VM exits.

use crate::primes::count_primes_below;
use alloc::format;
use alloc::string::String;
use flotilla_rt::{exit_code, time, Context, Failure, Outcome, Report};

/// Default `n`.
const DEFAULT_N: u64 = 1_000_000;

pub fn run(ctx: &mut Context) -> Result<Outcome, Failure> {
    let n = ctx.args().u64_or("n", DEFAULT_N)?;
    let ticks0 = time::ticks();
    let t0 = time::cycles();
    let primes = count_primes_below(n).ok_or_else(|| {
        Failure::new(
            exit_code::BAD_ARGS,
            format!("compute: n={n} is too large for this machine"),
        )
    })?;
    let cycles = time::cycles().wrapping_sub(t0);
    let ticks = time::ticks() - ticks0;
    let micros = cycles.saturating_mul(1000).checked_div(ctx.tsc_khz());
    println!(
        "compute: {primes} primes below {n} in {cycles} TSC cycles ({}), {ticks} timer ticks",
        micros.map_or(String::from("TSC rate unknown"), |us| format!("{us} us"))
    );
    Ok(Outcome::ok(
        Report::new().with("primes", primes).with("ticks", ticks),
    ))
}
