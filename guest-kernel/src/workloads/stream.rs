//! `stream`: one-way traffic on every channel of the partition: where it
//! is endpoint A it sends `messages` messages, where it is B it receives
//! them, all channels at once. Payloads are deterministic, so the
//! receiver's checksum must equal the sender's.

use super::links::{broken, open_all, Machine};
use super::{Context, Failure, Outcome};
use crate::arch::cpu;
use crate::exchange::stream;
use alloc::format;

/// Default `messages`.
const DEFAULT_MESSAGES: u64 = 100_000;

pub fn run(ctx: &Context<'_>) -> Result<Outcome, Failure> {
    let messages = ctx.args.u64_or("messages", DEFAULT_MESSAGES)?;
    let mut links = open_all(ctx)?;
    let mut machine = Machine::default();
    let t0 = cpu::rdtsc();
    let totals = stream(&mut links, messages, &mut machine).map_err(broken)?;
    let cycles = cpu::rdtsc().wrapping_sub(t0);
    println!(
        "stream: sent {} (checksum {}), received {} (checksum {}) in {cycles} cycles, {} IPIs sent",
        totals.sent,
        totals.sent_checksum,
        totals.received,
        totals.received_checksum,
        machine.ipis_sent
    );
    Ok(Outcome {
        code: 0,
        result: Some(format!(
            "messages={} checksum={} sent={} sent_checksum={} cycles={cycles}",
            totals.received, totals.received_checksum, totals.sent, totals.sent_checksum
        )),
    })
}
