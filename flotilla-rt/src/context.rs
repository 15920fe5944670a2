//! What a workload gets from the runtime: its [`Context`] (identity,
//! arguments, channels) and channel [`Endpoint`]s.
//!
//! Each channel of the partition is taken at most once, by peer name or by
//! index: the runtime hands out one endpoint per channel record for the
//! whole run (a second take is [`ChannelError::AlreadyTaken`]), so safe
//! code cannot hold two writers of one ring.

use crate::arch::{channel, cpu, hv, Mode};
use crate::args::Args;
use crate::link::{ExchangeError, Link, Platform};
use crate::peers::{pick, ChannelError};
use abi::boot::{ChannelInfo, Notify};
use channels::{Channel, RecvError, SendError, Side, PAYLOAD_SIZE};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// What a workload knows about its partition, and its channels.
#[derive(Debug)]
pub struct Context {
    pub(crate) name: &'static str,
    pub(crate) partition_id: u32,
    pub(crate) cpu: u32,
    pub(crate) apic_id: u32,
    pub(crate) partition_count: u32,
    pub(crate) memory: u64,
    pub(crate) tsc_khz: u64,
    pub(crate) incarnation: u32,
    pub(crate) mode: Mode,
    pub(crate) workload: &'static str,
    pub(crate) args: Args<'static>,
    pub(crate) channels: alloc::vec::Vec<ChannelInfo>,
    /// Records taken (bit = index; the machine layer keeps the same bits
    /// for the whole run, so even a second `Context` could not take one
    /// twice).
    pub(crate) taken: u64,
}

impl Context {
    /// The partition's name in the layout (`"bare"` when bare).
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// The partition's index in the layout.
    pub fn partition_id(&self) -> u32 {
        self.partition_id
    }
    /// The core's index.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }
    /// The core's own x2APIC ID.
    pub fn apic_id(&self) -> u32 {
        self.apic_id
    }
    /// How many partitions the layout has.
    pub fn partition_count(&self) -> u32 {
        self.partition_count
    }
    /// The partition's RAM size in bytes (guest-physical `0..memory`).
    pub fn memory(&self) -> u64 {
        self.memory
    }
    /// The TSC rate in kHz (0 if unknown: bare).
    pub fn tsc_khz(&self) -> u64 {
        self.tsc_khz
    }
    /// Which incarnation this is: 0 at the first boot, +1 each time the
    /// hypervisor restarted the partition after a fault (`on_fault =
    /// "restart"`; 0 when bare).
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }
    /// Under which hypervisor the partition runs, if any.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// The workload name the layout gave (`workload` key).
    pub fn workload(&self) -> &'static str {
        self.workload
    }
    /// The workload's arguments.
    pub fn args(&self) -> &Args<'static> {
        &self.args
    }
    /// The partition's channel records, in layout order (taken or not).
    pub fn channel_infos(&self) -> &[ChannelInfo] {
        &self.channels
    }
    /// The peer's partition name on channel record `index`.
    pub fn peer_name(&self, index: usize) -> Option<&str> {
        self.channels
            .get(index)
            .map(|c| abi::boot::name_str(&c.peer_name))
    }

    /// Takes the first channel not taken yet whose peer is the partition
    /// called `peer`.
    pub fn take_channel(&mut self, peer: &str) -> Result<Endpoint, ChannelError> {
        let taken = self.taken;
        let index = pick(&self.channels, |i| i < 64 && taken & (1 << i) != 0, peer)?;
        self.take_channel_at(index)
    }

    /// Takes channel record `index` (layout order).
    pub fn take_channel_at(&mut self, index: usize) -> Result<Endpoint, ChannelError> {
        let info = *self.channels.get(index).ok_or(ChannelError::NoSuchPeer)?;
        let opened = channel::open(index, &info);
        if matches!(opened, Ok(_) | Err(channel::OpenError::AlreadyOpen)) && index < 64 {
            self.taken |= 1 << index;
        }
        let region = opened.map_err(|e| match e {
            channel::OpenError::AlreadyOpen => ChannelError::AlreadyTaken,
            channel::OpenError::BadRecord => ChannelError::BadRecord,
            channel::OpenError::Layout(e) => ChannelError::Layout(e),
        })?;
        let ch = Channel::open_expecting(region, info.slots).map_err(ChannelError::Layout)?;
        let side = if info.side == 0 { Side::A } else { Side::B };
        Ok(Endpoint {
            link: Link {
                io: ch.duplex(side),
                channel_id: info.channel_id,
                ipi: info.notify == Notify::Ipi as u32,
                side_a: side == Side::A,
            },
            info,
            machine: Machine::default(),
        })
    }
}

/// One channel endpoint of this partition: typed, waiting sends and
/// receives (with IPIs on `ipi` channels, polling on `poll` ones).
#[derive(Debug)]
pub struct Endpoint {
    link: Link<'static>,
    info: ChannelInfo,
    machine: Machine,
}

impl Endpoint {
    /// The peer partition's name.
    pub fn peer(&self) -> &str {
        abi::boot::name_str(&self.info.peer_name)
    }
    /// The channel's index in the layout.
    pub fn channel_id(&self) -> u32 {
        self.info.channel_id
    }
    /// Whether this partition is endpoint A of the channel.
    pub fn is_side_a(&self) -> bool {
        self.link.side_a
    }
    /// The channel's record from the block.
    pub fn info(&self) -> &ChannelInfo {
        &self.info
    }
    /// `SEND_IPI` calls this endpoint made.
    pub fn ipis_sent(&self) -> u64 {
        self.machine.ipis_sent
    }

    /// Sends `value` (at most [`PAYLOAD_SIZE`] bytes) as one message,
    /// waiting for room.
    pub fn send<T: IntoBytes + Immutable + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), ExchangeError> {
        self.link.send(value, &mut self.machine)
    }

    /// Receives one message as a `T`, waiting for it.
    pub fn recv<T: FromBytes>(&mut self) -> Result<T, ExchangeError> {
        self.link.recv(&mut self.machine)
    }

    /// Sends `value` if there is room now (`SendError::Full` if not).
    pub fn try_send<T: IntoBytes + Immutable + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), SendError> {
        self.link.io.try_send_typed(value)?;
        self.link.kick_tx(&mut self.machine);
        Ok(())
    }

    /// Receives a `T` if a message is there (`RecvError::Empty` if not).
    pub fn try_recv<T: FromBytes>(&mut self) -> Result<T, RecvError> {
        let v = self.link.io.try_recv_typed()?;
        self.link.kick_rx(&mut self.machine);
        Ok(v)
    }

    /// Receives one message's bytes into `buf`, waiting; returns its
    /// length.
    pub fn recv_bytes(&mut self, buf: &mut [u8; PAYLOAD_SIZE]) -> Result<usize, ExchangeError> {
        self.link.recv_bytes(buf, &mut self.machine)
    }

    /// The endpoint as a bare [`Link`], for message loops of one's own over
    /// the `channels` API (the link is still the only one of its channel).
    pub fn into_link(self) -> Link<'static> {
        self.link
    }
}

/// The real machine behind [`Platform`]: the TSC, `SEND_IPI`, and
/// `cli` / `sti; hlt` for waiting.
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
