//! The monitor: drives one [`replication::Member`] over a [`Transport`]
//! (payload words to and from the group neighbours) and a
//! [`MembershipSource`] (the hypervisor's status page), independent of the
//! machine, so that the same code runs bare metal (`bare.rs`) and on the
//! host against in-memory queues (the tests below).
//!
//! Invariants:
//! - messages to a neighbour leave in the order the member queued them: a
//!   message that finds the channel full waits in the neighbour's local
//!   queue, and later ones queue behind it;
//! - nothing is written to, or read from, a member the adopted membership
//!   shows dead; on an epoch change the monitor first stops writing to the
//!   dead (and drops every message of the old epoch still queued), re-attaches
//!   the channels of members alive again in a new incarnation, then
//!   acknowledges the epoch (`MEMBERSHIP_ACK`), then hands it to the member
//!   (`docs/replication.md`, "A survivor's side");
//! - in the steady state a poll is loads and stores only: the epoch word,
//!   the channel rings; no VM exit;
//! - memory is bounded whatever a neighbour does: a neighbour's local
//!   queue holds at most [`queue_limit`] messages; a link whose channel
//!   stopped (the peer corrupted it) or whose queue would overflow is
//!   **broken**: nothing more is sent on it (counted as dropped) until the
//!   neighbour comes back in a new incarnation.

use abi::group::{MemberState, Membership};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use replication::wire::{bytes_to_words, Words, CHUNK};
use replication::{
    Config, Error, Event, FastOut, Member, MemberId, MemberSet, Op, State, Topology,
};

/// What became of a message handed to [`Transport::try_send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrySend {
    /// Written to the channel.
    Sent,
    /// No room now: the monitor keeps the message and tries again later.
    Full,
    /// The link cannot carry messages (the channel is stopped, or there is
    /// no channel to that member): the monitor drops the message and marks
    /// the link broken.
    Broken,
}

/// Channels to the group's neighbours, as payload words.
pub trait Transport {
    /// Sends a message of `len` bytes to neighbour `to` if its channel has
    /// room now.
    fn try_send(&mut self, to: MemberId, words: &Words, len: usize) -> TrySend;
    /// The next message from neighbour `from`, if one is there.
    fn try_recv(&mut self, from: MemberId) -> Option<(Words, usize)>;
    /// Neighbour `member` is alive again in a new incarnation: its channels
    /// were re-formatted, attach to them afresh. Returns whether that
    /// worked (if not, the monitor leaves the link alone and tries again at
    /// its next polls).
    fn reattach(&mut self, member: MemberId) -> bool;
}

/// The group's membership as the hypervisor publishes it.
pub trait MembershipSource {
    /// The current epoch (the cheap check: one load).
    fn epoch(&self) -> u64;
    /// A consistent snapshot, or `None` if none could be read now.
    fn read(&self) -> Option<Membership>;
    /// Acknowledges `epoch` (`MEMBERSHIP_ACK`: one VM exit bare metal).
    fn ack(&mut self, epoch: u64);
}

/// Why a monitor could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorError {
    /// The status page could not be read.
    NoMembership,
    /// The status page's member count is not the topology's.
    MemberCount,
    /// This member is not alive in the membership it starts in.
    NotAlive,
}

impl core::fmt::Display for MonitorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MonitorError::NoMembership => write!(f, "the group's status page is unreadable"),
            MonitorError::MemberCount => {
                write!(
                    f,
                    "the status page and the adjacency disagree on the member count"
                )
            }
            MonitorError::NotAlive => write!(f, "this member is not alive on the status page"),
        }
    }
}

/// The monitor's own counters (the member's are in [`Member::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Messages written to channels.
    pub sent: u64,
    /// Messages read from channels.
    pub received: u64,
    /// Messages that found their channel full and waited in a local queue.
    pub backlogged: u64,
    /// Messages not sent: queued for a member found dead, of an old epoch
    /// when a new one was adopted, or for a broken link.
    pub dropped: u64,
    /// Links found broken: a stopped channel ([`TrySend::Broken`]) or a
    /// local queue that reached [`queue_limit`].
    pub broken: u64,
    /// Of those, the local queues that reached [`queue_limit`] (the
    /// neighbour stopped reading).
    pub overflows: u64,
    /// Messages the member refused (malformed, or never sent by an honest
    /// member in its state).
    pub rejected: u64,
    /// Epochs adopted after the first.
    pub epochs: u64,
    /// `MEMBERSHIP_ACK`s made (the first epoch's included).
    pub acks: u64,
    /// Channels re-attached to a restarted neighbour.
    pub reattached: u64,
    /// Neighbours whose re-attachment failed at an epoch change (retried
    /// at every poll until it works, uncounted; meanwhile the link is
    /// neither read nor written, and what goes there waits in its queue).
    pub reattach_failed: u64,
    /// Messages that came from an epoch not adopted yet (the status page
    /// was read again before handling them).
    pub future: u64,
}

/// Most messages taken from one neighbour in one poll (so a busy
/// neighbour cannot starve the others).
const BATCH: usize = 16;

/// How often one message of a future epoch makes the monitor adopt a newer
/// epoch from the page before it is refused (once is enough for an honest
/// sender; a later epoch adopted meanwhile may need one more).
const FUTURE_RETRIES: u32 = 2;

/// Most messages waiting in one neighbour's local queue under `cfg`: what
/// an honest group can put there while that neighbour reads slowly, and
/// so the most a neighbour that stops reading makes this member hold
/// (about 64 bytes each) before its link counts as broken. That is a log
/// repair (the retained entries plus the uncommitted ones, at most
/// `window`), a snapshot of at most `max_snapshot` bytes in `CHUNK`-byte
/// chunks with its begin and end, the `ACK`s of up to `window` entries,
/// up to `window` proposals of every member relayed towards the leader,
/// and a few view-change and shootdown messages per member.
pub fn queue_limit(cfg: &Config) -> usize {
    let window = usize::try_from(cfg.window).unwrap_or(usize::MAX);
    let retain = usize::try_from(cfg.retain).unwrap_or(usize::MAX);
    let chunks = usize::try_from(cfg.max_snapshot)
        .unwrap_or(usize::MAX)
        .div_ceil(CHUNK);
    let members = abi::group::MAX_MEMBERS;
    retain
        .saturating_add(window.saturating_mul(members + 2))
        .saturating_add(chunks.saturating_add(2))
        .saturating_add(4 * members)
}

/// The local side of the links: per neighbour, what waits for room in
/// its channel, and which links are broken.
#[derive(Debug)]
struct Links {
    queued: Vec<VecDeque<(Words, usize)>>,
    /// Members messages may go to: alive, link not broken.
    usable: MemberSet,
    broken: MemberSet,
    /// Neighbours alive in an incarnation whose channels could not be
    /// attached to yet: their messages wait in the queue, their channels
    /// are neither read nor written.
    held: MemberSet,
    limit: usize,
}

impl Links {
    /// Marks the link to `to` broken and drops what waits for it.
    fn break_link(&mut self, to: MemberId, stats: &mut MonitorStats) {
        self.broken = self.broken.with(to);
        self.usable = self.usable.without(to);
        stats.broken += 1;
        if let Some(q) = self.queued.get_mut(usize::from(to)) {
            stats.dropped += q.len() as u64;
            q.clear();
        }
    }
}

/// A read-only view of the monitor's protocol member: its progress and
/// counters, and its state only through [`MemberView::read`] (which
/// refuses with `Error::NotCaughtUp` before a restarted member caught up).
#[derive(Clone, Copy, Debug)]
pub struct MemberView<'a>(&'a Member);

impl<'a> MemberView<'a> {
    /// The adopted epoch.
    pub fn epoch(self) -> u32 {
        self.0.epoch()
    }
    /// Where the member is in its epoch.
    pub fn phase(self) -> replication::Phase {
        self.0.phase()
    }
    /// Log entries applied to the local state.
    pub fn applied(self) -> u64 {
        self.0.applied()
    }
    /// Log entries held.
    pub fn logged(self) -> u64 {
        self.0.logged()
    }
    /// The commit index as this member knows it.
    pub fn commit(self) -> u64 {
        self.0.commit()
    }
    /// Whether reads are served.
    pub fn is_caught_up(self) -> bool {
        self.0.is_caught_up()
    }
    /// Own proposals not logged yet.
    pub fn pending(self) -> usize {
        self.0.pending()
    }
    /// Own proposals logged but not known committed.
    pub fn uncommitted(self) -> usize {
        self.0.uncommitted()
    }
    /// The protocol's counters.
    pub fn stats(self) -> &'a replication::Stats {
        self.0.stats()
    }
    /// The local state (`Error::NotCaughtUp` before a restarted member
    /// caught up).
    pub fn read(self) -> Result<&'a State, Error> {
        self.0.read()
    }
}

/// One member of a group with its channels and its status page.
#[derive(Debug)]
pub struct Monitor<T: Transport, M: MembershipSource> {
    member: Member,
    transport: T,
    source: M,
    me: MemberId,
    /// Members this one shares a channel with.
    neighbours: MemberSet,
    /// The epoch adopted (the page's).
    seen: u64,
    alive: MemberSet,
    /// Per member, the incarnation its channels are attached to.
    attached: [u32; abi::group::MAX_MEMBERS],
    links: Links,
    membership: Membership,
    stats: MonitorStats,
}

/// Hands one message to `to`'s channel, or queues it behind earlier ones.
fn send_to<T: Transport>(
    transport: &mut T,
    links: &mut Links,
    stats: &mut MonitorStats,
    to: MemberId,
    words: &Words,
    len: usize,
) {
    if !links.usable.contains(to) {
        stats.dropped += 1;
        return;
    }
    let Some(q) = links.queued.get_mut(usize::from(to)) else {
        stats.dropped += 1;
        return;
    };
    if q.is_empty() && !links.held.contains(to) {
        match transport.try_send(to, words, len) {
            TrySend::Sent => {
                stats.sent += 1;
                return;
            }
            TrySend::Broken => {
                stats.dropped += 1;
                links.break_link(to, stats);
                return;
            }
            TrySend::Full => {}
        }
    }
    if q.len() >= links.limit {
        stats.dropped += 1;
        stats.overflows += 1;
        links.break_link(to, stats);
        return;
    }
    stats.backlogged += 1;
    q.push_back((*words, len));
}

impl<T: Transport, M: MembershipSource> Monitor<T, M> {
    /// Starts member `me` of a group with links `topo`: a founding member,
    /// or (`restarted`) a new incarnation that catches up before it serves
    /// reads. Reads the membership, acknowledges its epoch and sends the
    /// view change's first messages.
    pub fn new(
        me: MemberId,
        topo: Topology,
        cfg: Config,
        transport: T,
        mut source: M,
        restarted: bool,
    ) -> Result<Self, MonitorError> {
        let m = source.read().ok_or(MonitorError::NoMembership)?;
        let n = topo.size();
        if usize::try_from(m.member_count).ok() != Some(n) {
            return Err(MonitorError::MemberCount);
        }
        if !m.is_alive(usize::from(me)) {
            return Err(MonitorError::NotAlive);
        }
        let alive = MemberSet(m.alive).and(topo.members());
        let epoch = u32::try_from(m.epoch).unwrap_or(u32::MAX);
        let neighbours = topo.neighbours(me);
        let limit = queue_limit(&cfg);
        let member = if restarted {
            Member::restarted(me, topo, cfg, epoch, alive)
        } else {
            Member::new(me, topo, cfg, epoch, alive)
        };
        source.ack(m.epoch);
        let mut mon = Self {
            member,
            transport,
            source,
            me,
            neighbours,
            seen: m.epoch,
            alive,
            attached: m.incarnations(),
            links: Links {
                held: MemberSet::EMPTY,
                queued: (0..n).map(|_| VecDeque::new()).collect(),
                usable: alive,
                broken: MemberSet::EMPTY,
                limit,
            },
            membership: m,
            stats: MonitorStats {
                acks: 1,
                ..MonitorStats::default()
            },
        };
        mon.drain();
        Ok(mon)
    }

    /// The protocol member's progress and counters (reads of its state go
    /// through [`MemberView::read`], gated until a restarted member caught
    /// up).
    pub fn member(&self) -> MemberView<'_> {
        MemberView(&self.member)
    }

    /// The protocol state machine itself (its `state()` is not gated).
    pub(crate) fn protocol(&self) -> &Member {
        &self.member
    }

    /// This member's id.
    pub fn id(&self) -> MemberId {
        self.me
    }

    /// The monitor's counters.
    pub fn stats(&self) -> &MonitorStats {
        &self.stats
    }

    /// The last membership adopted.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Members gone for good in the adopted membership (faulted with no
    /// restart left, or exited): their updates stop where they are.
    pub fn gone(&self) -> MemberSet {
        let mut set = MemberSet::EMPTY;
        for (i, s) in self.membership.members.iter().enumerate() {
            if matches!(s.state(), Some(MemberState::Faulted | MemberState::Exited)) {
                if let Ok(i) = MemberId::try_from(i) {
                    set = set.with(i);
                }
            }
        }
        set
    }

    /// Messages waiting for room in some channel.
    pub fn backlog(&self) -> usize {
        self.links.queued.iter().map(VecDeque::len).sum()
    }

    /// Neighbours whose link is broken (a stopped channel, or a queue
    /// that reached [`queue_limit`]): nothing is sent to them until they
    /// come back in a new incarnation.
    pub fn broken_links(&self) -> MemberSet {
        self.links.broken
    }

    /// Most messages one neighbour's local queue holds.
    pub fn queue_limit(&self) -> usize {
        self.links.limit
    }

    /// The transport (for diagnostics).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// One round of work: adopt a new epoch if the page shows one, send
    /// what waits for room, take up to a few messages from each live
    /// neighbour, and when nothing came, let the member send the commit
    /// index it held back. Returns whether anything happened.
    pub fn poll(&mut self) -> bool {
        let mut busy = false;
        if self.source.epoch() != self.seen {
            busy |= self.refresh();
        }
        if !self.links.held.is_empty() {
            busy |= self.retry_attach();
        }
        busy |= self.send_queued();
        for nbr in self.neighbours.iter() {
            // Checked for each neighbour, not once before the loop: a message
            // handed in may make the monitor adopt (and acknowledge) a newer
            // epoch that shows a later neighbour dead, whose channels the
            // hypervisor may be re-formatting from then on.
            if !self.readable(nbr) {
                continue;
            }
            for _ in 0..BATCH {
                let Some((words, len)) = self.transport.try_recv(nbr) else {
                    break;
                };
                self.stats.received += 1;
                busy = true;
                self.deliver(nbr, &words, len);
                if !self.readable(nbr) {
                    break;
                }
            }
        }
        if !busy && self.member.flush() {
            self.drain();
            busy = true;
        }
        busy
    }

    /// The member's next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.member.poll_event()
    }

    /// Proposes an update (the word-level path when it applies).
    pub fn propose(&mut self, op: Op) -> Result<u32, Error> {
        let Self {
            member,
            transport,
            links,
            stats,
            ..
        } = self;
        let r = member.propose_words(op, |to, w, len| {
            send_to(transport, links, stats, to, w, len);
        });
        self.drain();
        r.map(|(oseq, _)| oseq)
    }

    /// Starts a shootdown of `addr` on every member of the tree.
    pub fn shootdown(&mut self, addr: u64) -> Result<u32, Error> {
        let r = self.member.shootdown(addr);
        self.drain();
        r
    }

    /// Reads the membership and adopts it if it is newer. Returns whether
    /// it was.
    pub fn refresh(&mut self) -> bool {
        let Some(m) = self.source.read() else {
            return false;
        };
        if m.epoch <= self.seen {
            return false;
        }
        let alive = MemberSet(m.alive).and(self.member_set());
        // Everything still queued belongs to the old epoch (the member
        // drops its own unsent messages too when it adopts the new one),
        // and nothing more goes to the dead.
        for q in &mut self.links.queued {
            self.stats.dropped += q.len() as u64;
            q.clear();
        }
        self.alive = alive;
        self.links.held = MemberSet::EMPTY;
        for nbr in self.neighbours.and(alive).iter() {
            let i = usize::from(nbr);
            let incarnation = m.members[i].incarnation;
            if incarnation != self.attached[i] {
                // A new incarnation on fresh channels: a link broken with the
                // old one is usable again (if re-attaching fails, its messages
                // wait until a retry works; a link that breaks meanwhile stays
                // broken, as messages were lost on it).
                self.links.broken = self.links.broken.without(nbr);
                if self.transport.reattach(nbr) {
                    self.attached[i] = incarnation;
                    self.stats.reattached += 1;
                } else {
                    self.stats.reattach_failed += 1;
                    self.links.held = self.links.held.with(nbr);
                }
            }
        }
        self.links.usable = alive.minus(self.links.broken);
        self.source.ack(m.epoch);
        self.stats.acks += 1;
        self.stats.epochs += 1;
        self.seen = m.epoch;
        self.membership = m;
        let epoch = u32::try_from(m.epoch).unwrap_or(u32::MAX);
        self.member.on_membership(epoch, alive);
        self.drain();
        true
    }

    /// Tries again to attach to the channels of neighbours whose
    /// re-attachment failed at the last epoch change; returns whether one
    /// worked.
    fn retry_attach(&mut self) -> bool {
        let mut any = false;
        for nbr in self.links.held.iter() {
            if self.transport.reattach(nbr) {
                let i = usize::from(nbr);
                self.attached[i] = self.membership.members[i].incarnation;
                self.stats.reattached += 1;
                self.links.held = self.links.held.without(nbr);
                any = true;
            }
        }
        any
    }

    fn member_set(&self) -> MemberSet {
        MemberSet::first(self.links.queued.len())
    }

    /// Whether `nbr`'s channel may be read: alive in the adopted
    /// membership and attached to its current incarnation.
    fn readable(&self, nbr: MemberId) -> bool {
        self.alive.contains(nbr) && !self.links.held.contains(nbr)
    }

    /// Hands one message from `from` to the member; on a message of a
    /// future epoch, adopts it first.
    fn deliver(&mut self, from: MemberId, words: &Words, len: usize) {
        let mut tries = 0;
        loop {
            let Self {
                member,
                transport,
                links,
                stats,
                ..
            } = self;
            let r = member.handle_words(from, words, len, |to, w, l| {
                send_to(transport, links, stats, to, w, l);
            });
            match r {
                Ok(FastOut::Sent | FastOut::Done | FastOut::Queued) => break,
                Err(Error::FutureEpoch(_)) if tries < FUTURE_RETRIES => {
                    // Its sender read that epoch on the page, so the page shows
                    // it (or a later one) already: adopt it and hand the message
                    // in again. A page that shows no newer epoch means the
                    // message lies: refused like any other.
                    if tries == 0 {
                        self.stats.future += 1;
                    }
                    tries += 1;
                    if !self.refresh() || !self.readable(from) {
                        self.stats.rejected += 1;
                        break;
                    }
                }
                Err(_) => {
                    self.stats.rejected += 1;
                    break;
                }
            }
        }
        self.drain();
    }

    /// Sends what the member queued (in order), until it has nothing left:
    /// then it applies what it logged.
    fn drain(&mut self) {
        while let Some((to, msg)) = self.member.poll_send() {
            let frame = msg.encode();
            let bytes = frame.as_bytes();
            let words = bytes_to_words(bytes);
            send_to(
                &mut self.transport,
                &mut self.links,
                &mut self.stats,
                to,
                &words,
                bytes.len(),
            );
        }
    }

    /// Sends the messages that waited for room, in order, as far as the
    /// channels take them.
    fn send_queued(&mut self) -> bool {
        let mut any = false;
        for i in 0..self.links.queued.len() {
            let Ok(to) = MemberId::try_from(i) else { break };
            if self.links.held.contains(to) {
                continue;
            }
            let Some(q) = self.links.queued.get_mut(i) else {
                break;
            };
            while let Some((words, len)) = q.front() {
                match self.transport.try_send(to, words, *len) {
                    TrySend::Sent => {
                        q.pop_front();
                        self.stats.sent += 1;
                        any = true;
                    }
                    TrySend::Full => break,
                    TrySend::Broken => {
                        self.links.break_link(to, &mut self.stats);
                        any = true;
                        break;
                    }
                }
            }
        }
        any
    }
}

#[cfg(test)]
mod tests;
