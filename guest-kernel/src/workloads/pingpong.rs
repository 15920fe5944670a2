//! `pingpong`: `rounds` round trips over the partition's first channel.
//! Endpoint A (side 0) sends and times each round trip with the TSC;
//! endpoint B echoes. A reports the median and 99th percentile.

use super::links::{broken, open_all, Machine};
use super::{Context, Failure, Outcome};
use crate::exchange::{ping, pong};
use crate::stats::percentile;
use alloc::format;
use alloc::vec::Vec;

/// Default `rounds`.
const DEFAULT_ROUNDS: u64 = 10_000;
/// Most round-trip samples kept (every k-th round beyond that).
const MAX_SAMPLES: u64 = 100_000;

pub fn run(ctx: &Context<'_>) -> Result<Outcome, Failure> {
    let rounds = ctx.args.u64_or("rounds", DEFAULT_ROUNDS)?;
    let mut links = open_all(ctx)?;
    let link = &mut links[0];
    let mut machine = Machine::default();
    let peer = ctx.channels[0].peer_name;
    let peer = abi::boot::name_str(&peer);
    if link.side_a {
        let stride = rounds.div_ceil(MAX_SAMPLES).max(1);
        let mut samples = Vec::with_capacity(rounds.div_ceil(stride) as usize);
        ping(link, rounds, stride, &mut samples, &mut machine).map_err(broken)?;
        samples.sort_unstable();
        let median = percentile(&samples, 50);
        let p99 = percentile(&samples, 99);
        println!(
            "pingpong: {rounds} round trips with {peer}: median {median} cycles, p99 {p99} cycles ({} IPIs sent)",
            machine.ipis_sent
        );
        Ok(Outcome {
            code: 0,
            result: Some(format!(
                "rounds={rounds} median_cycles={median} p99_cycles={p99}"
            )),
        })
    } else {
        pong(link, rounds, &mut machine).map_err(broken)?;
        println!(
            "pingpong: echoed {rounds} messages from {peer} ({} IPIs sent)",
            machine.ipis_sent
        );
        Ok(Outcome {
            code: 0,
            result: Some(format!("rounds={rounds}")),
        })
    }
}
