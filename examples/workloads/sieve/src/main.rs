//! Example workload: counting the primes below `limit` in parallel.
//!
//! Each `worker` partition counts the primes in its slice `[lo, hi)` of the
//! range and sends the count over its channel to the `collector`, which
//! adds the partial counts up, counts the primes below `limit` once more by
//! itself, and fails unless the two agree. One binary, two roles: the
//! layout's `workload` key picks one.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

extern crate alloc;
#[cfg(target_os = "none")]
#[macro_use]
extern crate flotilla_rt;

mod count;

/// Exit code of a collector whose total disagrees with its own count.
#[cfg(target_os = "none")]
const WRONG_TOTAL: u64 = 10;

/// The entry: the role the layout's `workload` names.
#[cfg(target_os = "none")]
fn run(ctx: &mut flotilla_rt::Context) -> flotilla_rt::Result {
    use alloc::format;
    use flotilla_rt::{Failure, Outcome, Report};
    match ctx.workload() {
        "worker" => {
            let lo = ctx.args().u64_or("lo", 0)?;
            let hi = ctx.args().u64_or("hi", 1000)?;
            let primes = count::primes_in(lo, hi);
            println!("{}: {primes} primes in [{lo}, {hi})", ctx.name());
            let mut collector = ctx
                .take_channel("collector")
                .map_err(|e| Failure::new(5, format!("no channel to the collector: {e:?}")))?;
            collector
                .send(&primes)
                .map_err(|e| Failure::new(5, format!("sending the count: {e:?}")))?;
            Ok(Outcome::ok(
                Report::new()
                    .with("primes", primes)
                    .with("lo", lo)
                    .with("hi", hi),
            ))
        }
        "collector" => {
            let limit = ctx.args().u64_or("limit", 1000)?;
            let mut total = 0u64;
            let mut parts = 0u64;
            for i in 0..ctx.channel_infos().len() {
                let mut worker = ctx
                    .take_channel_at(i)
                    .map_err(|e| Failure::new(5, format!("channel {i}: {e:?}")))?;
                let part: u64 = worker.recv().map_err(|e| {
                    Failure::new(5, format!("receiving from {}: {e:?}", worker.peer()))
                })?;
                println!("collector: {part} from {}", worker.peer());
                total += part;
                parts += 1;
            }
            let expected = count::primes_in(0, limit);
            let ok = total == expected;
            println!("collector: {total} primes below {limit} from {parts} workers (own count {expected})");
            let report = Report::new()
                .with("primes", total)
                .with("parts", parts)
                .with("ok", ok);
            Ok(if ok {
                Outcome::ok(report)
            } else {
                Outcome::with_code(WRONG_TOTAL, report)
            })
        }
        other => Err(Failure::new(
            4,
            format!("unknown workload `{other}` (worker or collector)"),
        )),
    }
}

#[cfg(target_os = "none")]
flotilla_rt::entry!(run);

#[cfg(not(target_os = "none"))]
fn main() {}
