//! What the channel workloads share: opening every channel of the block as
//! a [`Link`], and the machine side of [`Platform`] (TSC, `SEND_IPI`,
//! `cli` / `sti; hlt`).

use super::{Context, Failure};
use crate::arch::{channel, cpu, hv};
use crate::exchange::{Link, Platform};
use abi::boot::Notify;
use alloc::format;
use alloc::vec::Vec;
use channels::{Channel, Side};

/// Exit code when a channel cannot be opened or breaks.
pub const CHANNEL_EXIT_CODE: u64 = 5;

/// Opens every channel of the partition; endpoint A is `side` 0.
pub fn open_all(ctx: &Context<'_>) -> Result<Vec<Link<'static>>, Failure> {
    if ctx.channels.is_empty() {
        return Err(Failure {
            code: CHANNEL_EXIT_CODE,
            message: format!("no channels: the layout must give {} one", ctx.name),
        });
    }
    let mut links = Vec::with_capacity(ctx.channels.len());
    for (index, info) in ctx.channels.iter().enumerate() {
        let fail = |what: &dyn core::fmt::Debug| Failure {
            code: CHANNEL_EXIT_CODE,
            message: format!("channel {} at {:#x}: {what:?}", info.channel_id, info.gpa),
        };
        let region = channel::open(index, info).map_err(|e| fail(&e))?;
        let ch = Channel::open_expecting(region, info.slots).map_err(|e| fail(&e))?;
        let side = if info.side == 0 { Side::A } else { Side::B };
        links.push(Link {
            io: ch.duplex(side),
            channel_id: info.channel_id,
            ipi: info.notify == Notify::Ipi as u32,
            side_a: side == Side::A,
        });
    }
    Ok(links)
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

/// A channel loop's error as a failure.
pub fn broken(e: crate::exchange::ExchangeError) -> Failure {
    Failure {
        code: CHANNEL_EXIT_CODE,
        message: format!("channel broken: {e}"),
    }
}
