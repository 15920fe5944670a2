//! What the channel workloads share: opening every channel of the block as
//! a [`Link`], the machine side of [`Platform`] (TSC, `SEND_IPI`,
//! `cli` / `sti; hlt`), and reporting channels that could not be used.
//!
//! A channel that fails to open or breaks is named on the console
//! (`<workload>: channel <id> with <peer> broken: <why>`) and counted in the
//! result (`channels=<n> broken_channels=<k>`); the workload carries on with
//! its other channels and exits 0 while at least one did its job, else
//! with [`CHANNEL_EXIT_CODE`] (`exchange::exit_code`).

use super::{Context, Failure, Outcome};
use crate::arch::{channel, cpu, hv};
pub use crate::exchange::CHANNEL_EXIT_CODE;
use crate::exchange::{exit_code, Broken, Link, Platform};
use abi::boot::Notify;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use channels::{Channel, Side};

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
fn peer_of(ctx: &Context<'_>, channel_id: u32) -> String {
    ctx.channels
        .iter()
        .find(|c| c.channel_id == channel_id)
        .map(|c| String::from(abi::boot::name_str(&c.peer_name)))
        .unwrap_or_default()
}

/// Opens every channel of the partition; endpoint A is `side` 0. A channel
/// that cannot be opened is named on the console and skipped; having no
/// channel at all is a failure.
pub fn open_all(ctx: &Context<'_>, workload: &str) -> Result<Opened, Failure> {
    if ctx.channels.is_empty() {
        return Err(Failure {
            code: CHANNEL_EXIT_CODE,
            message: format!("no channels: the layout must give {} one", ctx.name),
        });
    }
    let mut opened = Opened {
        links: Vec::with_capacity(ctx.channels.len()),
        total: ctx.channels.len(),
        failed: 0,
    };
    for (index, info) in ctx.channels.iter().enumerate() {
        let fail = |what: &dyn core::fmt::Debug| {
            println!(
                "{workload}: channel {} with {} broken: cannot open it at {:#x}: {what:?}",
                info.channel_id,
                abi::boot::name_str(&info.peer_name),
                info.gpa
            );
        };
        let region = match channel::open(index, info) {
            Ok(region) => region,
            Err(e) => {
                fail(&e);
                opened.failed += 1;
                continue;
            }
        };
        let ch = match Channel::open_expecting(region, info.slots) {
            Ok(ch) => ch,
            Err(e) => {
                fail(&e);
                opened.failed += 1;
                continue;
            }
        };
        let side = if info.side == 0 { Side::A } else { Side::B };
        opened.links.push(Link {
            io: ch.duplex(side),
            channel_id: info.channel_id,
            ipi: info.notify == Notify::Ipi as u32,
            side_a: side == Side::A,
        });
    }
    Ok(opened)
}

/// Names each broken link on the console, then ends the workload: exit 0
/// while some channel did its job, [`CHANNEL_EXIT_CODE`] (and a line
/// saying so) when none did. `result` gets `channels=` and
/// `broken_channels=` appended.
pub fn finish(
    ctx: &Context<'_>,
    workload: &str,
    opened: &Opened,
    broken: &[Broken],
    result: String,
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
    let sep = if result.is_empty() { "" } else { " " };
    Outcome {
        code,
        result: Some(format!(
            "{result}{sep}channels={} broken_channels={bad}",
            opened.total
        )),
    }
}

/// The real machine.
#[derive(Debug, Default)]
pub struct Machine {
    /// `SEND_IPI` calls that failed.
    pub ipi_errors: u64,
    /// `SEND_IPI` calls made.
    pub ipis_sent: u64,
}

impl Platform for Machine {
    fn now(&mut self) -> u64 {
        cpu::rdtsc()
    }

    fn notify(&mut self, channel_id: u32) {
        self.ipis_sent += 1;
        if hv::send_channel_ipi(channel_id).is_err() {
            self.ipi_errors += 1;
        }
    }

    fn begin_wait(&mut self) {
        cpu::disable_interrupts();
    }

    fn end_wait(&mut self, sleep: bool) {
        if sleep {
            cpu::wait_for_interrupt();
        } else {
            cpu::enable_interrupts();
        }
    }

    fn relax(&mut self) {
        core::hint::spin_loop();
    }
}
