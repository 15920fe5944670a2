//! What a workload gets from the runtime: its [`Context`] (identity,
//! arguments, channels) and channel [`Endpoint`]s.
//!
//! Each channel of the partition is taken at most once, by peer name or by
//! index: the runtime hands out one endpoint per channel record for the
//! whole run (a second take is [`ChannelError::AlreadyTaken`]), so safe
//! code cannot hold two writers of one ring. An endpoint whose peer the
//! hypervisor restarted re-attaches in place ([`Endpoint::reattach`]): still
//! one endpoint, with fresh halves over the re-formatted region.
//!
//! The partition's replication groups ([`Group`], boot protocol v3): their
//! status pages, read without VM exits, the membership notification, and
//! `MEMBERSHIP_ACK`.

use crate::arch::group::StatusView;
use crate::arch::{channel, cpu, hv, idt, Mode};
use crate::args::Args;
use crate::link::{ExchangeError, Link, Platform};
use crate::peers::{pick, ChannelError};
use crate::select::{self, AsLink};
use abi::boot::{ChannelInfo, GroupInfo, Notify};
use abi::group::{Membership, StatusError};
use channels::{Channel, RecvError, SendError, Side, PAYLOAD_SIZE};
use core::sync::atomic::Ordering;
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
    pub(crate) groups: alloc::vec::Vec<Group>,
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

    /// The replication groups the partition is a member of, in block order
    /// (empty when bare or in no group).
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The channel record (layout order, for [`Context::take_channel_at`])
    /// of this partition's link to member `member` of `group`: the first
    /// record whose peer is that member's partition.
    pub fn link_record(&self, group: &Group, member: u32) -> Option<usize> {
        let peer = group.partition_of(member)?;
        self.channels.iter().position(|c| c.peer_partition == peer)
    }

    /// The group called `name`, if the partition is a member.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name() == name)
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
        let mut ch = Channel::open_expecting(region, info.slots).map_err(ChannelError::Layout)?;
        let side = if info.side == 0 { Side::A } else { Side::B };
        // A fresh opening: its side is there to take (once, as the bit above says).
        let io = ch.duplex(side).ok_or(ChannelError::AlreadyTaken)?;
        Ok(Endpoint {
            link: Link {
                io,
                channel_id: info.channel_id,
                ipi: info.notify == Notify::Ipi as u32,
                side_a: side == Side::A,
            },
            info,
            machine: Machine::default(),
            channel: ch,
        })
    }
}

/// Membership notifications (`MEMBERSHIP_VECTOR` interrupts) received so
/// far, for all the partition's groups. The interrupt handler counts them;
/// reading the count is a plain load, no VM exit.
pub fn membership_notifications() -> u64 {
    idt::MEMBERSHIP.load(Ordering::Acquire)
}

/// One replication group the partition is a member of: its record from the
/// Flotilla block and its status page (read-only, published by the
/// hypervisor under a seqlock; `docs/replication.md`, "Contract for the
/// hypervisor and guest parts").
#[derive(Clone, Copy, Debug)]
pub struct Group {
    info: GroupInfo,
    page: StatusView,
}

impl Group {
    /// The group of block record `index`, if its status page is where the
    /// protocol puts it.
    pub(crate) fn new(index: usize, info: GroupInfo) -> Option<Self> {
        Some(Group {
            info,
            page: StatusView::of(index, &info)?,
        })
    }
    /// The block's record.
    pub fn info(&self) -> &GroupInfo {
        &self.info
    }
    /// The group's name.
    pub fn name(&self) -> &str {
        abi::boot::name_str(&self.info.name)
    }
    /// The group's index in the layout (the argument of `MEMBERSHIP_ACK`).
    pub fn index(&self) -> u32 {
        self.info.group
    }
    /// This partition's member id.
    pub fn member_id(&self) -> u32 {
        self.info.member_id
    }
    /// Members in the group.
    pub fn member_count(&self) -> u32 {
        self.info.member_count
    }
    /// The partition of member `member`.
    pub fn partition_of(&self, member: u32) -> Option<u32> {
        crate::members::partition_of(self.info.members, member)
    }
    /// The member id of partition `partition`, if it is a member.
    pub fn member_of(&self, partition: u32) -> Option<u32> {
        crate::members::member_of(self.info.members, partition)
    }
    /// The members `member` shares a channel with (bitset), from the
    /// layout (the block's adjacency table).
    pub fn neighbours(&self, member: u32) -> u32 {
        self.info
            .adjacency
            .get(member as usize)
            .copied()
            .unwrap_or(0)
    }
    /// The group's links as member pairs `(a, b)`, `a < b`, in increasing
    /// order: the same for every member (`Topology::from_links`).
    pub fn links(&self) -> impl Iterator<Item = (u8, u8)> + '_ {
        crate::members::links(&self.info.adjacency)
    }
    /// A consistent snapshot of the status page: epoch, alive set, each
    /// member's state, incarnation, restarts, last fault and acknowledged
    /// epoch. Only loads (no VM exit); retried while the hypervisor
    /// updates it.
    pub fn membership(&self) -> Result<Membership, StatusError> {
        self.page.read()
    }
    /// The current epoch (one load: the cheap check for a change).
    pub fn epoch(&self) -> u64 {
        self.page.epoch()
    }
    /// Tells the hypervisor this member adopted `epoch` (it writes to no
    /// channel of a member that epoch shows dead): `MEMBERSHIP_ACK`, one VM
    /// exit. Returns the group's current epoch.
    pub fn ack(&self, epoch: u64) -> Result<u64, hv::HypercallError> {
        hv::membership_ack(self.info.group, epoch)
    }
    /// Waits until the epoch differs from `seen` and returns it, idling in
    /// `hlt` between interrupts (the membership notification, or a timer
    /// tick at the latest): no VM exit. `None` after `max_ticks` timer ticks
    /// without a change.
    pub fn wait_change(&self, seen: u64, max_ticks: u64) -> Option<u64> {
        let start = idt::TICKS.load(Ordering::Relaxed);
        loop {
            // Masked while checking, so a notification arriving after the
            // check is pending at `sti; hlt` and wakes it.
            cpu::disable_interrupts();
            let epoch = self.epoch();
            if epoch != seen {
                cpu::enable_interrupts();
                return Some(epoch);
            }
            if idt::TICKS.load(Ordering::Relaxed).wrapping_sub(start) >= max_ticks {
                cpu::enable_interrupts();
                return None;
            }
            cpu::wait_for_interrupt();
        }
    }
}

impl AsLink<'static> for Endpoint {
    fn as_link(&mut self) -> &mut Link<'static> {
        &mut self.link
    }
}

/// Waits until one of `endpoints` has a message and returns its index (the
/// first ready one in slice order; `None` only for an empty slice): asleep
/// in `hlt` until an IPI when every endpoint is an `ipi` channel, polling
/// them in turn when any is `poll`. Then receive on that endpoint
/// (`recv`/`try_recv`; a corrupted channel also ends the wait, and its
/// receive reports it). See `flotilla_rt::select`.
pub fn wait_any(endpoints: &mut [&mut Endpoint]) -> Option<usize> {
    wait_any_until(endpoints, None)
}

/// [`wait_any`] for at most `timeout`: `None` also when it passes with no
/// endpoint ready (checked when an interrupt wakes the wait, a timer tick at
/// the latest). With the TSC rate unknown (bare, without a block) the
/// timeout cannot be measured and the wait has none.
pub fn wait_any_for(
    endpoints: &mut [&mut Endpoint],
    timeout: core::time::Duration,
) -> Option<usize> {
    wait_any_until(endpoints, deadline_after(timeout))
}

/// The TSC value `timeout` from now, if the TSC rate is known.
fn deadline_after(timeout: core::time::Duration) -> Option<u64> {
    let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    crate::time::ns_to_cycles(ns, crate::time::tsc_khz()).map(|c| cpu::rdtsc().saturating_add(c))
}

fn wait_any_until(endpoints: &mut [&mut Endpoint], deadline: Option<u64>) -> Option<usize> {
    let mut machine = Machine::default();
    let found = select::wait_any_until(endpoints, deadline, &mut machine);
    // The IPIs raised while announcing (to senders waiting for room) are
    // counted on the endpoint that ends the wait.
    if let Some(ep) = found.and_then(|i| endpoints.get_mut(i)) {
        ep.machine.ipis_sent += machine.ipis_sent;
        ep.machine.ipi_errors += machine.ipi_errors;
    }
    found
}

/// One channel endpoint of this partition: typed, waiting sends and
/// receives (with IPIs on `ipi` channels, polling on `poll` ones).
#[derive(Debug)]
pub struct Endpoint {
    link: Link<'static>,
    info: ChannelInfo,
    machine: Machine,
    channel: Channel<'static>,
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

    /// The channel's generation when this endpoint attached (channel
    /// layout v4: 0 at boot, +1 per re-format by the hypervisor).
    pub fn generation(&self) -> u64 {
        self.channel.generation()
    }

    /// Whether the hypervisor re-formatted the channel since this endpoint
    /// attached (its peer restarted): one load of the identity page's
    /// generation word, no VM exit. Until [`Endpoint::reattach`], the
    /// endpoint's halves describe a region that no longer exists.
    pub fn peer_restarted(&self) -> bool {
        self.channel.current_generation() != self.channel.generation()
    }

    /// Re-attaches to the re-formatted channel: opens the region again and
    /// replaces this endpoint's halves with fresh ones at message 0.
    /// Returns the new generation. Call it only once the group's status
    /// page shows the peer's new incarnation alive (the hypervisor
    /// publishes that after the re-format is complete); it is still the one
    /// endpoint of this channel in the partition. A channel that was not
    /// re-formatted is refused (`ChannelError::Layout(LayoutError::NotReformatted)`)
    /// and the endpoint keeps its halves.
    pub fn reattach(&mut self) -> Result<u64, ChannelError> {
        let generation = self.channel.reopen().map_err(ChannelError::Layout)?;
        let side = if self.link.side_a { Side::A } else { Side::B };
        self.link.io = self
            .channel
            .duplex(side)
            .ok_or(ChannelError::AlreadyTaken)?;
        Ok(generation)
    }

    /// The endpoint's link, for message loops of one's own over the
    /// `channels` API while keeping [`Endpoint::reattach`].
    pub fn link_mut(&mut self) -> &mut Link<'static> {
        &mut self.link
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

    /// [`Endpoint::recv`] for at most `timeout`: `ExchangeError::Timeout`
    /// when it passes with no message (checked when an interrupt wakes the
    /// wait, a timer tick at the latest). With the TSC rate unknown (bare,
    /// without a block) the timeout cannot be measured and the wait has
    /// none. A reply that comes after the timeout is the next receive's
    /// (see `link::Link::recv_bytes_until`).
    pub fn recv_for<T: FromBytes>(
        &mut self,
        timeout: core::time::Duration,
    ) -> Result<T, ExchangeError> {
        self.link
            .recv_until(deadline_after(timeout), &mut self.machine)
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

    /// Sends a message given as payload words (`len` bytes: byte `i` is
    /// byte `i % 8` of word `i / 8`) if there is room now
    /// (`SendError::Full` if not): no copy through a byte buffer.
    pub fn try_send_words(
        &mut self,
        words: &[u64; PAYLOAD_SIZE / 8],
        len: usize,
    ) -> Result<(), SendError> {
        self.link.io.try_send_words(words, len)?;
        self.link.kick_tx(&mut self.machine);
        Ok(())
    }

    /// Receives a message as payload words and its length in bytes, if one
    /// is there (`RecvError::Empty` if not).
    pub fn try_recv_words(&mut self) -> Result<([u64; PAYLOAD_SIZE / 8], usize), RecvError> {
        let v = self.link.io.try_recv_words()?;
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
