//! `stream`: one-way traffic on every channel of the partition: where it
//! is endpoint A it sends `messages` messages, where it is B it receives
//! them, all channels at once. Payloads are deterministic, so the
//! receiver's checksum must equal the sender's.
//!
//! A channel that breaks (or does not open) is named on the console and
//! left alone while the others go on (`links::finish`): the totals then
//! count what the broken channel moved before it broke, the result says
//! `broken_channels=<k>`, and the exit code is 0 while some channel is
//! left, `CHANNEL_EXIT_CODE` (5) when none is.

use super::links::{finish, open_all, Machine};
use crate::exchange::stream;
use flotilla_rt::{time, Context, Failure, Outcome, Report};

/// Default `messages`.
const DEFAULT_MESSAGES: u64 = 100_000;

pub fn run(ctx: &mut Context) -> Result<Outcome, Failure> {
    let messages = ctx.args().u64_or("messages", DEFAULT_MESSAGES)?;
    let mut opened = open_all(ctx, "stream")?;
    let mut machine = Machine::default();
    let t0 = time::cycles();
    let totals = stream(&mut opened.links, messages, &mut machine);
    let cycles = time::cycles().wrapping_sub(t0);
    println!(
        "stream: sent {} (checksum {}), received {} (checksum {}) in {cycles} cycles, {} IPIs sent",
        totals.sent,
        totals.sent_checksum,
        totals.received,
        totals.received_checksum,
        machine.ipis_sent
    );
    let result = Report::new()
        .with("messages", totals.received)
        .with("checksum", totals.received_checksum)
        .with("sent", totals.sent)
        .with("sent_checksum", totals.sent_checksum)
        .with("cycles", cycles);
    Ok(finish(ctx, "stream", &opened, &totals.broken, result))
}
