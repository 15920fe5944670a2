//! `pingpong`: `rounds` round trips over each of the partition's channels
//! in turn, in layout order (`exchange::pingpong`). Where the partition is
//! endpoint A (side 0) it sends and times each round trip with the TSC;
//! where it is B it echoes. Per channel it prints one line; the result has
//! the median and 99th percentile over every channel it pinged on.
//!
//! A channel that breaks (or does not open) is named on the console and
//! skipped (`links::finish`): the result then says `broken_channels=<k>`,
//! and the exit code is 0 while some channel completed its rounds,
//! `CHANNEL_EXIT_CODE` (5) when none did.

use super::links::{finish, open_all, Machine};
use crate::exchange::pingpong;
use crate::stats::percentile;
use alloc::vec::Vec;
use flotilla_rt::{Context, Failure, Outcome, Report};

/// Default `rounds`.
const DEFAULT_ROUNDS: u64 = 10_000;
/// Most round-trip samples kept per channel (every k-th round beyond that).
const MAX_SAMPLES: u64 = 100_000;

/// The peer's name on channel `channel_id`.
fn peer(ctx: &Context, channel_id: u32) -> &str {
    ctx.channel_infos()
        .iter()
        .find(|c| c.channel_id == channel_id)
        .map_or("?", |c| abi::boot::name_str(&c.peer_name))
}

pub fn run(ctx: &mut Context) -> Result<Outcome, Failure> {
    let rounds = ctx.args().u64_or("rounds", DEFAULT_ROUNDS)?;
    let mut opened = open_all(ctx, "pingpong")?;
    let mut machine = Machine::default();
    let stride = rounds.div_ceil(MAX_SAMPLES).max(1);
    // At most MAX_SAMPLES; the capacity is only a hint.
    let kept = usize::try_from(rounds.div_ceil(stride)).unwrap_or(0);
    let mut samples = Vec::with_capacity(kept);
    let totals = pingpong(
        &mut opened.links,
        rounds,
        stride,
        &mut samples,
        &mut machine,
    );
    let mut pinged: Vec<u64> = Vec::new();
    for (channel_id, side_a, range) in &totals.completed {
        let peer = peer(ctx, *channel_id);
        if *side_a {
            let mut own = samples.get(range.clone()).unwrap_or(&[]).to_vec();
            own.sort_unstable();
            println!(
                "pingpong: {rounds} round trips with {peer}: median {} cycles, p99 {} cycles ({} IPIs sent)",
                percentile(&own, 50),
                percentile(&own, 99),
                machine.ipis_sent
            );
            pinged.extend_from_slice(&own);
        } else {
            println!(
                "pingpong: echoed {rounds} messages from {peer} ({} IPIs sent)",
                machine.ipis_sent
            );
        }
    }
    let result = if totals.completed.is_empty() {
        Report::new()
    } else if pinged.is_empty() {
        Report::new().with("rounds", rounds)
    } else {
        pinged.sort_unstable();
        Report::new()
            .with("rounds", rounds)
            .with("median_cycles", percentile(&pinged, 50))
            .with("p99_cycles", percentile(&pinged, 99))
    };
    Ok(finish(ctx, "pingpong", &opened, &totals.broken, result))
}
