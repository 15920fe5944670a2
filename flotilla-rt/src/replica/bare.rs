//! The monitor on the machine: [`EndpointTransport`] (the partition's
//! channel endpoints to its group neighbours, word-level and non-blocking),
//! [`GroupMembership`] (the group's read-only status page and
//! `MEMBERSHIP_ACK`), and [`Replica`], the API a workload uses: join the
//! group, propose updates, read, shoot down, poll.
//!
//! Everything a poll does is loads of the status page (which is
//! read-only) and loads and stores on the channel rings: the steady state
//! makes no VM exit. Exits come only from
//! `MEMBERSHIP_ACK` (one per epoch adopted) and whatever the workload
//! prints or reports.

use super::monitor::{MembershipSource, Monitor, MonitorError, Transport, TrySend};
use crate::context::{Context, Endpoint, Group};
use crate::peers::ChannelError;
use crate::SendError;
use abi::group::Membership;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use replication::wire::Words;
use replication::{Config, Error, Event, MemberId, Name, Op, Phase, Service, State, Topology};

/// The channel endpoints to the group's neighbours, by member id.
#[derive(Debug)]
pub struct EndpointTransport {
    endpoints: Vec<Option<Endpoint>>,
    /// Receives that failed for another reason than an empty ring (a
    /// corrupted channel: its peer stalls only itself).
    pub recv_errors: u64,
    /// Re-attachment attempts that failed (the monitor retries at every
    /// poll until one works).
    pub reattach_errors: u64,
}

impl Transport for EndpointTransport {
    fn try_send(&mut self, to: MemberId, words: &Words, len: usize) -> TrySend {
        match self.endpoints.get_mut(usize::from(to)) {
            Some(Some(ep)) => match ep.try_send_words(words, len) {
                Ok(()) => TrySend::Sent,
                Err(SendError::Full) => TrySend::Full,
                // Stopped by a corrupting peer (or a message too long, which
                // the protocol never makes): the link carries nothing more.
                Err(SendError::Corrupted(_) | SendError::TooLong { .. }) => TrySend::Broken,
            },
            // No channel to a member that is not a neighbour: the member
            // never addresses one; the monitor drops it (counted) rather
            // than hold it forever.
            _ => TrySend::Broken,
        }
    }

    fn try_recv(&mut self, from: MemberId) -> Option<(Words, usize)> {
        let ep = self.endpoints.get_mut(usize::from(from))?.as_mut()?;
        match ep.try_recv_words() {
            Ok(v) => Some(v),
            Err(crate::RecvError::Empty) => None,
            Err(_) => {
                self.recv_errors += 1;
                None
            }
        }
    }

    fn reattach(&mut self, member: MemberId) -> bool {
        let ok = match self.endpoints.get_mut(usize::from(member)) {
            Some(Some(ep)) => ep.reattach().is_ok(),
            _ => false,
        };
        if !ok {
            self.reattach_errors += 1;
        }
        ok
    }
}

/// A group's status page as the monitor's membership source.
#[derive(Debug, Clone, Copy)]
pub struct GroupMembership {
    group: Group,
}

impl MembershipSource for GroupMembership {
    fn epoch(&self) -> u64 {
        self.group.epoch()
    }
    fn read(&self) -> Option<Membership> {
        self.group.membership().ok()
    }
    fn ack(&mut self, epoch: u64) {
        // A refused acknowledgement changes nothing on the page; the
        // restart it would have allowed waits its bounded time instead.
        let _ = self.group.ack(epoch);
    }
}

/// Why [`Replica::join`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// The partition is in no group (or none of that name).
    NoGroup,
    /// The adjacency table is not a topology of the group's size.
    Topology,
    /// No usable channel to neighbour `member`.
    Channel {
        /// The neighbour.
        member: u32,
        /// What went wrong.
        error: ChannelError,
    },
    /// The monitor could not start.
    Monitor(MonitorError),
}

impl core::fmt::Display for JoinError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            JoinError::NoGroup => write!(f, "the partition is in no replication group"),
            JoinError::Topology => write!(f, "the group's adjacency table is malformed"),
            JoinError::Channel { member, error } => {
                write!(f, "no channel to member {member}: {error:?}")
            }
            JoinError::Monitor(e) => write!(f, "{e}"),
        }
    }
}

/// Most events kept for [`Replica::next_event`] (older ones are dropped
/// and counted; `Applied` events are never kept, only counted).
const MAX_EVENTS: usize = 1024;

/// This partition's member of a replication group.
#[derive(Debug)]
pub struct Replica {
    mon: Monitor<EndpointTransport, GroupMembership>,
    group: Group,
    events: VecDeque<Event>,
    /// Highest own `origin_seq` known committed.
    committed: u32,
    applied_events: u64,
    dropped_events: u64,
}

impl Replica {
    /// Joins the partition's first group: takes the channel to every
    /// neighbour (by member id, `Context::link_record`), reads the status
    /// page and starts the protocol, as a founding member at incarnation
    /// 0 and as a restarted one (catching up before it serves reads)
    /// after.
    pub fn join(ctx: &mut Context) -> Result<Self, JoinError> {
        Self::join_with(ctx, Config::default())
    }

    /// [`Replica::join`] with the protocol's tunables (`Config`: every
    /// member of a group must use the same `window`).
    pub fn join_with(ctx: &mut Context, cfg: Config) -> Result<Self, JoinError> {
        let group = *ctx.groups().first().ok_or(JoinError::NoGroup)?;
        Self::join_group(ctx, group, cfg)
    }

    /// Joins the group called `name` with the protocol's tunables `cfg`
    /// (as [`Replica::join_with`]).
    pub fn join_named(ctx: &mut Context, name: &str, cfg: Config) -> Result<Self, JoinError> {
        let group = *ctx.group(name).ok_or(JoinError::NoGroup)?;
        Self::join_group(ctx, group, cfg)
    }

    fn join_group(ctx: &mut Context, group: Group, cfg: Config) -> Result<Self, JoinError> {
        let n = usize::try_from(group.member_count()).map_err(|_| JoinError::Topology)?;
        let links: Vec<(usize, usize)> = group
            .links()
            .map(|(a, b)| (usize::from(a), usize::from(b)))
            .collect();
        let topo = Topology::from_links(n, &links).map_err(|_| JoinError::Topology)?;
        let me = MemberId::try_from(group.member_id()).map_err(|_| JoinError::Topology)?;
        let mut endpoints: Vec<Option<Endpoint>> = (0..n).map(|_| None).collect();
        for nbr in topo.neighbours(me).iter() {
            let member = u32::from(nbr);
            let channel = |error| JoinError::Channel { member, error };
            let record = ctx
                .link_record(&group, member)
                .ok_or(channel(ChannelError::NoSuchPeer))?;
            let ep = ctx.take_channel_at(record).map_err(channel)?;
            endpoints[usize::from(nbr)] = Some(ep);
        }
        let transport = EndpointTransport {
            endpoints,
            recv_errors: 0,
            reattach_errors: 0,
        };
        let source = GroupMembership { group };
        let restarted = ctx.incarnation() > 0;
        let mon = Monitor::new(me, topo, cfg, transport, source, restarted)
            .map_err(JoinError::Monitor)?;
        Ok(Replica {
            mon,
            group,
            events: VecDeque::new(),
            committed: 0,
            applied_events: 0,
            dropped_events: 0,
        })
    }

    /// The group.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// This member's id in the group.
    pub fn member_id(&self) -> MemberId {
        self.mon.id()
    }

    /// The monitor (counters, the protocol member, the membership).
    pub fn monitor(&self) -> &Monitor<EndpointTransport, GroupMembership> {
        &self.mon
    }

    /// Whether reads are served (a restarted member: once caught up).
    pub fn is_caught_up(&self) -> bool {
        self.mon.protocol().is_caught_up()
    }

    /// Whether the member's epoch is open (view change over).
    pub fn is_open(&self) -> bool {
        self.mon.protocol().phase() == Phase::Open
    }

    /// The highest own update (`origin_seq`) known committed: it and every
    /// earlier one are applied by every member.
    pub fn committed(&self) -> u32 {
        self.committed
    }

    /// Log entries `Applied` here so far (counted, not queued as events).
    pub fn applied_events(&self) -> u64 {
        self.applied_events
    }

    /// Sets `key` to `value` everywhere; returns the update's number.
    pub fn put(&mut self, key: u64, value: u64) -> Result<u32, Error> {
        self.propose(Op::Put { key, value })
    }

    /// Removes `key` everywhere.
    pub fn delete(&mut self, key: u64) -> Result<u32, Error> {
        self.propose(Op::Delete { key })
    }

    /// Registers `name` (1..=24 bytes, no zero byte) at `service`; the
    /// first registration of a name in log order wins.
    pub fn register(&mut self, name: &str, service: Service) -> Result<u32, Error> {
        let name = Name::new(name.as_bytes()).ok_or(Error::Protocol("invalid service name"))?;
        self.propose(Op::Register { name, service })
    }

    /// Proposes any update.
    pub fn propose(&mut self, op: Op) -> Result<u32, Error> {
        let r = self.mon.propose(op);
        self.take_events();
        r
    }

    /// The local state for reads (`Error::NotCaughtUp` before a restarted
    /// member caught up).
    pub fn state(&self) -> Result<&State, Error> {
        self.mon.protocol().read()
    }

    /// The value of `key`, read locally.
    pub fn get(&self, key: u64) -> Result<Option<u64>, Error> {
        Ok(self.state()?.get(key))
    }

    /// Where `name` is registered, read locally.
    pub fn lookup(&self, name: &str) -> Result<Option<Service>, Error> {
        let Some(name) = Name::new(name.as_bytes()) else {
            return Ok(None);
        };
        Ok(self.state()?.lookup(&name))
    }

    /// Invalidates `addr` on every member; [`Event::ShootdownDone`] with the
    /// returned id once all acknowledged.
    pub fn shootdown(&mut self, addr: u64) -> Result<u32, Error> {
        let r = self.mon.shootdown(addr);
        self.take_events();
        r
    }

    /// One round of the monitor (membership, channels); returns whether
    /// anything happened.
    pub fn poll(&mut self) -> bool {
        let busy = self.mon.poll();
        self.take_events();
        busy
    }

    /// The next event kept (everything but `Applied`).
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Polls until `done` says so, or `max_ticks` timer ticks (about a
    /// millisecond each) went by; returns whether `done` said so.
    pub fn run_until(&mut self, max_ticks: u64, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let start = crate::time::ticks();
        loop {
            if done(self) {
                return true;
            }
            if crate::time::ticks().wrapping_sub(start) >= max_ticks {
                return false;
            }
            if !self.poll() {
                core::hint::spin_loop();
            }
        }
    }

    fn take_events(&mut self) {
        while let Some(e) = self.mon.poll_event() {
            match e {
                Event::Applied { .. } => {
                    self.applied_events += 1;
                    continue;
                }
                Event::Committed { origin_seq } => {
                    self.committed = self.committed.max(origin_seq);
                }
                Event::CaughtUp => {
                    let me = self.mon.id();
                    self.committed = self.mon.protocol().state().dedup(me);
                }
                _ => {}
            }
            if self.events.len() >= MAX_EVENTS {
                self.events.pop_front();
                self.dropped_events += 1;
            }
            self.events.push_back(e);
        }
    }
}
