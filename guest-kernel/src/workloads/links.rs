//! What the channel workloads share: taking every channel of the partition
//! from the runtime as a [`Link`] (the machine side is the runtime's
//! [`Machine`]), and reporting channels that could not be used.
//!
//! A channel that fails to open or breaks is named on the console
//! (`<workload>: channel <id> with <peer> broken: <why>`) and counted in the
//! result (`channels=<n> broken_channels=<k>`); the workload carries on with
//! its other channels and exits 0 while at least one did its job, else
//! with [`CHANNEL_EXIT_CODE`] (`exchange::exit_code`).

pub use crate::exchange::CHANNEL_EXIT_CODE;
use crate::exchange::{exit_code, Broken, Link};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
pub use flotilla_rt::Machine;
use flotilla_rt::{ChannelError, Context, Failure, Outcome, Report};

/// The partition's channels, opened.
pub struct Opened {
    /// The channels that opened, in block (layout) order.
    pub links: Vec<Link<'static>>,
    /// How many channels the partition has.
    pub total: usize,
    /// Channels that failed to open (already named on the console).
    pub failed: usize,
}

/// The name of the peer on channel `channel_id`.
fn peer_of(ctx: &Context, channel_id: u32) -> String {
    ctx.channel_infos()
        .iter()
        .find(|c| c.channel_id == channel_id)
        .map(|c| String::from(abi::boot::name_str(&c.peer_name)))
        .unwrap_or_default()
}

/// Takes every channel of the partition, in layout order; endpoint A is
/// `side` 0. A channel that cannot be taken is named on the console and
/// skipped; having no channel at all is a failure.
pub fn open_all(ctx: &mut Context, workload: &str) -> Result<Opened, Failure> {
    let total = ctx.channel_infos().len();
    if total == 0 {
        return Err(Failure {
            code: CHANNEL_EXIT_CODE,
            message: format!("no channels: the layout must give {} one", ctx.name()),
        });
    }
    let mut opened = Opened {
        links: Vec::with_capacity(total),
        total,
        failed: 0,
    };
    for index in 0..total {
        match ctx.take_channel_at(index) {
            Ok(endpoint) => opened.links.push(endpoint.into_link()),
            Err(e) => {
                let info = ctx.channel_infos()[index];
                // The layout error itself, as before the runtime split.
                let why: &dyn core::fmt::Debug = match &e {
                    ChannelError::Layout(l) => l,
                    other => other,
                };
                println!(
                    "{workload}: channel {} with {} broken: cannot open it at {:#x}: {why:?}",
                    info.channel_id,
                    abi::boot::name_str(&info.peer_name),
                    info.gpa
                );
                opened.failed += 1;
            }
        }
    }
    Ok(opened)
}

/// Names each broken link on the console, then ends the workload: exit 0
/// while some channel did its job, [`CHANNEL_EXIT_CODE`] (and a line
/// saying so) when none did. `report` gets `channels=` and
/// `broken_channels=` appended.
pub fn finish(
    ctx: &Context,
    workload: &str,
    opened: &Opened,
    broken: &[Broken],
    report: Report,
) -> Outcome {
    for b in broken {
        println!(
            "{workload}: channel {} with {} broken: {}; the other channels go on",
            b.channel_id,
            peer_of(ctx, b.channel_id),
            b.error
        );
    }
    let bad = opened.failed + broken.len();
    let code = exit_code(opened.total, bad);
    if code != 0 {
        println!(
            "{workload}: every channel broke ({bad} of {}): nothing left to run on",
            opened.total
        );
    }
    Outcome::with_code(
        code,
        report
            .with("channels", opened.total)
            .with("broken_channels", bad),
    )
}
