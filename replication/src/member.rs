//! The protocol state machine of one member of a group.
//!
//! Inputs: [`Member::on_membership`] (a new epoch and alive set from the hypervisor),
//! [`Member::handle`] / [`Member::handle_bytes`] (a message from a neighbour),
//! [`Member::propose`], [`Member::shootdown`], [`Member::flush`] (the driver is idle: send
//! the commit index that was held back for piggybacking). Outputs: messages for neighbours
//! ([`Member::poll_send`]) and [`Event`]s ([`Member::poll_event`]).
//!
//! Invariants (checked by the simulator and the model check in `tests/`):
//! - in an epoch only the leader (lowest live member) appends to the log, and only after the
//!   view change has brought it the longest log any survivor holds, so the logs of live
//!   members are prefixes of one another;
//! - `commit <= logged` of every member of the current tree (and of every member that was
//!   in the tree when that commit index was computed); a member applies what it logged once
//!   its messages are out or at its next input (`applied == logged` whenever the driver has
//!   drained `poll_send` or `poll_event`);
//! - per origin, `origin_seq` is applied in order, each exactly once (the leader sequences
//!   `dedup[origin] + 1` only);
//! - a member that is not caught up (restarted, before its first `OPEN`) serves no reads.
//!
//! Per neighbour the member keeps `known[nbr]`, the highest log position the neighbour has
//! or has been sent. Whenever this member's log is longer than what a tree neighbour is known
//! to have, it sends the missing entries (or a snapshot if it no longer holds them): in the
//! steady state this is the leader's broadcast down the tree, in a view change it is the
//! repair that brings everyone to the longest log, with one rule.

use crate::error::Error;
use crate::state::{checksum, Op, State};
use crate::topology::{MemberId, MemberSet, Topology, Tree, MAX_MEMBERS};
use crate::wire::{Message, CHUNK, MAX_CHUNK_INDEX};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

mod fast;
pub use fast::FastOut;

/// Tunables. Every member of a group must use the same `window`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Config {
    /// Most entries the leader keeps sequenced but not committed; further proposals wait in
    /// its backlog.
    pub window: u64,
    /// Committed entries kept in the log for repair; older ones are dropped and a neighbour
    /// that needs them gets a snapshot instead.
    pub retain: u64,
    /// Largest snapshot accepted, in bytes.
    pub max_snapshot: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window: 128,
            retain: 1024,
            max_snapshot: 1 << 20,
        }
    }
}

/// Where a member is in its current epoch.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Phase {
    /// View change: exchanging positions and repairing logs.
    Syncing,
    /// Normal operation.
    Open,
    /// Alive but not reachable from the leader over live members: no updates.
    Isolated,
    /// Not alive in the current membership.
    Dead,
}

/// Something the driver may want to know.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Event {
    /// Log entry `seq` was applied to the local state.
    Applied {
        /// Log position.
        seq: u64,
        /// Who proposed it.
        origin: MemberId,
        /// The origin's number for it.
        origin_seq: u32,
        /// The update.
        op: Op,
    },
    /// The local state was replaced by a snapshot after entry `seq` received from `from`.
    Snapshot {
        /// Log position of the snapshot.
        seq: u64,
        /// The neighbour that sent it.
        from: MemberId,
    },
    /// This member's update `origin_seq` is committed (applied by every member).
    Committed {
        /// The number [`Member::propose`] returned.
        origin_seq: u32,
    },
    /// A restarted member has caught up: reads and proposals are allowed from now on.
    CaughtUp,
    /// The view change of `epoch` is over at this member.
    Opened {
        /// The epoch.
        epoch: u32,
    },
    /// Invalidate `addr` (a shootdown started by `initiator`).
    Invalidate {
        /// Who started it.
        initiator: MemberId,
        /// Its number.
        id: u32,
        /// What to invalidate.
        addr: u64,
    },
    /// Every member of the tree has invalidated for shootdown `id` of this member.
    ShootdownDone {
        /// The number [`Member::shootdown`] returned.
        id: u32,
    },
}

/// Counters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Stats {
    /// Messages queued for neighbours.
    pub sent: u64,
    /// Messages handled (current epoch, from a tree neighbour).
    pub received: u64,
    /// Messages queued, by kind byte.
    pub sent_by_kind: [u64; 13],
    /// Messages of an older epoch, dropped.
    pub stale: u64,
    /// Messages refused (`Err` from `handle`).
    pub rejected: u64,
    /// Proposals dropped as already sequenced (retries the leader had seen).
    pub duplicates: u64,
    /// Snapshots sent.
    pub snapshots_sent: u64,
    /// Deepest tree path an entry took to reach this member or (at the leader, from the
    /// acknowledgements) any member.
    pub max_hops: u8,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct LogEntry {
    seq: u64,
    origin: MemberId,
    origin_seq: u32,
    op: Op,
    hops: u8,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct SnapIn {
    from: MemberId,
    seq: u64,
    len: u32,
    buf: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Forward {
    initiator: MemberId,
    id: u32,
    from: Option<MemberId>,
    waiting: MemberSet,
}

/// One member of a replication group.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Member {
    me: MemberId,
    topo: Topology,
    cfg: Config,
    epoch: u32,
    alive: MemberSet,
    tree: Tree,
    phase: Phase,
    state: State,
    /// Entries held in the log (received and checked, or sequenced here): the position this
    /// member reports to its neighbours.
    logged: u64,
    /// Entries applied to `state` (`<= logged`): the log is applied after the messages the
    /// entries caused were handed out, see [`Member::poll_send`].
    applied: u64,
    commit: u64,
    /// Per origin, the highest `origin_seq` in the log up to `logged` (the leader's
    /// duplicate check; equals the state's `dedup` once everything is applied).
    log_dedup: [u32; MAX_MEMBERS],
    /// The commit index rose on the steady path without the log being trimmed: done by the
    /// next apply, or by `tidy` before anything that depends on what the log holds.
    untrimmed: bool,
    /// The commit index rose on the word-level path without the own updates it commits
    /// being released as [`Event::Committed`]: done first thing at the next call that may
    /// look at or change them (every input, `poll_send` returning `None`, `poll_event`), so
    /// the events come out in the order the general path queues them.
    unreleased: bool,
    log: VecDeque<LogEntry>,
    log_base: u64,
    known: [Option<u64>; MAX_MEMBERS],
    commit_told: [u64; MAX_MEMBERS],
    child_ack: [u64; MAX_MEMBERS],
    child_hops: [u8; MAX_MEMBERS],
    got_state: MemberSet,
    got_ready: MemberSet,
    ready_sent: bool,
    ack_sent: u64,
    backlog: VecDeque<(MemberId, u32, Op)>,
    next_origin_seq: u32,
    pending: VecDeque<(u32, Op)>,
    awaiting: VecDeque<(u32, u64)>,
    caught_up: bool,
    /// Snapshots being received, at most one per neighbour.
    snap_in: Vec<SnapIn>,
    sd_next: u32,
    sd_mine: BTreeMap<u32, u64>,
    sd_fwd: Vec<Forward>,
    out: VecDeque<(MemberId, Message)>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Member {
    /// A founding member `me` of a group with links `topo`, starting in `epoch` with the
    /// given live members (genesis state: an empty log).
    pub fn new(me: MemberId, topo: Topology, cfg: Config, epoch: u32, alive: MemberSet) -> Self {
        let mut m = Self::blank(me, topo, cfg, true);
        m.adopt(epoch, alive);
        m
    }

    /// A restarted member (a new incarnation with an empty state): it catches up from its
    /// neighbours in `epoch` and serves no reads and takes no updates until
    /// [`Event::CaughtUp`].
    pub fn restarted(
        me: MemberId,
        topo: Topology,
        cfg: Config,
        epoch: u32,
        alive: MemberSet,
    ) -> Self {
        let mut m = Self::blank(me, topo, cfg, false);
        m.adopt(epoch, alive);
        m
    }

    fn blank(me: MemberId, topo: Topology, cfg: Config, caught_up: bool) -> Self {
        let tree = topo.tree(MemberSet::EMPTY, me);
        Self {
            me,
            topo,
            cfg,
            epoch: 0,
            alive: MemberSet::EMPTY,
            tree,
            phase: Phase::Dead,
            state: State::new(),
            logged: 0,
            applied: 0,
            commit: 0,
            log_dedup: [0; MAX_MEMBERS],
            untrimmed: false,
            unreleased: false,
            log: VecDeque::new(),
            log_base: 0,
            known: [None; MAX_MEMBERS],
            commit_told: [0; MAX_MEMBERS],
            child_ack: [0; MAX_MEMBERS],
            child_hops: [0; MAX_MEMBERS],
            got_state: MemberSet::EMPTY,
            got_ready: MemberSet::EMPTY,
            ready_sent: false,
            ack_sent: 0,
            backlog: VecDeque::new(),
            next_origin_seq: 1,
            pending: VecDeque::new(),
            awaiting: VecDeque::new(),
            caught_up,
            snap_in: Vec::new(),
            sd_next: 1,
            sd_mine: BTreeMap::new(),
            sd_fwd: Vec::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    // ---- accessors ----

    /// This member's id.
    pub fn id(&self) -> MemberId {
        self.me
    }

    /// The epoch adopted.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Where this member is in the epoch.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The live members of the epoch.
    pub fn alive(&self) -> MemberSet {
        self.alive
    }

    /// The epoch's leader (lowest live member).
    pub fn leader(&self) -> Option<MemberId> {
        self.alive.min()
    }

    /// Whether this member leads the epoch.
    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.me) && self.phase != Phase::Dead
    }

    /// The epoch's spanning tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Log entries applied to the local state.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Log entries held (the position acknowledged to the parent): entries are checked and
    /// logged on receipt, and applied once the messages they caused were handed out
    /// ([`Member::poll_send`] returning `None`) or at the next input, whichever is first.
    pub fn logged(&self) -> u64 {
        self.logged
    }

    /// The commit index known here: entries up to it are applied by every member.
    pub fn commit(&self) -> u64 {
        self.commit
    }

    /// Log position before the first entry still held.
    pub fn log_base(&self) -> u64 {
        self.log_base
    }

    /// The entries held, as `(seq, origin, origin_seq, op)`.
    pub fn log(&self) -> impl Iterator<Item = (u64, MemberId, u32, Op)> + '_ {
        self.log
            .iter()
            .map(|e| (e.seq, e.origin, e.origin_seq, e.op))
    }

    /// Whether reads are allowed (false for a restarted member until it caught up).
    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    /// The local state, whatever its freshness (for tests and diagnostics).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The local state for a read: a prefix of the log that includes every update committed
    /// before this member (re)started. Refused before a restarted member has caught up.
    pub fn read(&self) -> Result<&State, Error> {
        if self.caught_up {
            Ok(&self.state)
        } else {
            Err(Error::NotCaughtUp)
        }
    }

    /// Own updates proposed and not yet applied here.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Own updates applied here and not yet known committed.
    pub fn uncommitted(&self) -> usize {
        if self.unreleased {
            self.awaiting.iter().filter(|a| a.1 > self.commit).count()
        } else {
            self.awaiting.len()
        }
    }

    /// Whether own update `origin_seq` (a number [`Member::propose`] returned) is applied
    /// here and committed: its [`Event::Committed`] was queued, or is queued by the next
    /// call on this member. For a driver that waits for one update without draining the
    /// events first (they stay queued until it does).
    #[inline]
    pub fn is_committed(&self, origin_seq: u32) -> bool {
        if origin_seq == 0
            || origin_seq >= self.next_origin_seq
            || self.pending.front().is_some_and(|p| p.0 <= origin_seq)
        {
            // Never proposed, or not applied here yet (own updates apply in order).
            return false;
        }
        // Applied: committed unless still awaiting a commit index that covers it.
        match self.awaiting.front() {
            Some(&(o, seq)) if o == origin_seq => seq <= self.commit,
            Some(&(o, _)) if o > origin_seq => true,
            None => true,
            Some(_) => self
                .awaiting
                .iter()
                .find(|a| a.0 >= origin_seq)
                .is_none_or(|&(o, seq)| o != origin_seq || seq <= self.commit),
        }
    }

    /// Own shootdowns not yet done.
    pub fn shootdowns_in_flight(&self) -> usize {
        self.sd_mine.len()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The next message for a neighbour. When none is left, the member applies the entries it
    /// logged but has not applied yet: a driver that sends what this returns until `None`
    /// applies them while its messages are on their way (the acknowledgement of an entry
    /// does not wait for it to be applied).
    #[inline]
    pub fn poll_send(&mut self) -> Option<(MemberId, Message)> {
        let m = self.out.pop_front();
        if m.is_none() {
            self.apply_logged();
        }
        m
    }

    /// Whether messages are waiting in [`Member::poll_send`].
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// The next event (entries logged and not applied yet are applied first).
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.apply_logged();
        self.events.pop_front()
    }

    // ---- inputs ----

    /// The hypervisor published `epoch` with live members `alive`. Older or equal epochs are
    /// ignored. Returns whether the epoch was adopted.
    pub fn on_membership(&mut self, epoch: u32, alive: MemberSet) -> bool {
        self.apply_logged();
        self.tidy();
        if epoch <= self.epoch {
            return false;
        }
        self.adopt(epoch, alive);
        true
    }

    /// Proposes an update; returns its origin sequence number. It is retried in later epochs
    /// until applied here, and reported by [`Event::Committed`].
    pub fn propose(&mut self, op: Op) -> Result<u32, Error> {
        self.apply_logged();
        match self.phase {
            Phase::Dead => return Err(Error::NotMember),
            Phase::Isolated => return Err(Error::Isolated),
            _ if !self.caught_up => return Err(Error::NotCaughtUp),
            _ => {}
        }
        let oseq = self.next_origin_seq;
        self.next_origin_seq = oseq.checked_add(1).ok_or(Error::Protocol("origin_seq"))?;
        self.pending.push_back((oseq, op));
        if self.phase == Phase::Open {
            if self.tree.parent(self.me).is_none() && self.backlog.is_empty() && !self.window_full()
            {
                // The leader with nothing queued before it: sequence now (a lone leader
                // commits at once).
                self.sequence(self.me, oseq, op);
                if self.tree.children(self.me).is_empty() {
                    self.progress();
                }
            } else {
                self.route_proposal(self.me, oseq, op);
            }
        }
        Ok(oseq)
    }

    /// Starts a shootdown of `addr`: it is invalidated here at once ([`Event::Invalidate`])
    /// and on every other member of the tree; [`Event::ShootdownDone`] when all acknowledged.
    /// Restarted from scratch if the membership changes first.
    pub fn shootdown(&mut self, addr: u64) -> Result<u32, Error> {
        self.apply_logged();
        if self.phase == Phase::Dead {
            return Err(Error::NotMember);
        }
        let id = self.sd_next;
        self.sd_next = id.wrapping_add(1);
        self.sd_mine.insert(id, addr);
        self.events.push_back(Event::Invalidate {
            initiator: self.me,
            id,
            addr,
        });
        if matches!(self.phase, Phase::Syncing | Phase::Open) {
            self.start_shootdown(id, addr);
        }
        Ok(id)
    }

    /// The driver has nothing else to do: send the commit index to children that have not
    /// heard it (the leader holds it back to piggyback it on the next entry). Returns whether
    /// anything was sent.
    pub fn flush(&mut self) -> bool {
        self.apply_logged();
        self.tidy();
        if self.phase != Phase::Open {
            return false;
        }
        self.tell_commit()
    }

    /// Handles the bytes of one message from member `from`.
    pub fn handle_bytes(&mut self, from: MemberId, bytes: &[u8]) -> Result<(), Error> {
        match Message::decode(bytes) {
            Ok(m) => {
                self.apply_logged();
                if self.steady(from, &m) {
                    return Ok(());
                }
                self.handle(from, m)
            }
            Err(e) => {
                self.stats.rejected += 1;
                Err(Error::Wire(e))
            }
        }
    }

    /// Handles one message from member `from` (the peer of the channel it came on).
    pub fn handle(&mut self, from: MemberId, msg: Message) -> Result<(), Error> {
        self.apply_logged();
        if self.steady(from, &msg) {
            return Ok(());
        }
        self.handle_general(from, msg)
    }

    /// The steady state (an entry from the parent, an acknowledgement from a child, in an
    /// open epoch): the same checks and effects as `dispatch`, without its detours. Returns
    /// whether it handled the message.
    #[inline(always)]
    fn steady(&mut self, from: MemberId, msg: &Message) -> bool {
        if msg.epoch() == self.epoch && self.phase == Phase::Open {
            match *msg {
                Message::Entry {
                    hops,
                    seq,
                    commit,
                    origin,
                    origin_seq,
                    op,
                    ..
                } if self.tree.parent(self.me) == Some(from)
                    && Some(seq) == self.logged.checked_add(1)
                    && seq != u64::MAX
                    && self.topo.members().contains(origin)
                    && self.snap_in.is_empty() =>
                {
                    self.stats.received += 1;
                    self.raise_known(from, seq);
                    self.append(seq, origin, origin_seq, op, hops);
                    if commit > self.commit {
                        // Trimming waits for `apply_logged`, after the messages are out.
                        self.commit = commit;
                        self.untrimmed = true;
                        self.release_committed();
                    }
                    if !self.tree.children(self.me).is_empty() {
                        self.push_all();
                    }
                    self.progress();
                    return true;
                }
                Message::Ack { hops, applied, .. }
                    if self.tree.children(self.me).contains(from)
                        && applied <= self.known[from as usize].unwrap_or(0) =>
                {
                    self.stats.received += 1;
                    let f = from as usize;
                    self.child_ack[f] = self.child_ack[f].max(applied);
                    self.child_hops[f] = self.child_hops[f].max(hops);
                    self.stats.max_hops = self.stats.max_hops.max(hops);
                    if self.tree.parent(self.me).is_none() && self.backlog.is_empty() {
                        let (sub, _) = self.subtree_applied();
                        if sub > self.commit {
                            self.commit = sub;
                            self.untrimmed = true;
                            self.release_committed();
                        }
                    } else {
                        self.progress();
                    }
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    fn handle_general(&mut self, from: MemberId, msg: Message) -> Result<(), Error> {
        self.tidy();
        if self.phase == Phase::Dead {
            return Err(Error::NotMember);
        }
        let e = msg.epoch();
        if e < self.epoch {
            self.stats.stale += 1;
            return Ok(());
        }
        if e > self.epoch {
            return Err(Error::FutureEpoch(e));
        }
        let r = self.dispatch(from, msg);
        match r {
            Ok(()) => self.stats.received += 1,
            Err(_) => self.stats.rejected += 1,
        }
        r
    }

    fn dispatch(&mut self, from: MemberId, msg: Message) -> Result<(), Error> {
        let nbrs = self.tree.neighbours(self.me);
        if self.phase == Phase::Isolated || !nbrs.contains(from) {
            return Err(Error::NotNeighbour(from));
        }
        let f = from as usize;
        let is_child = self.tree.children(self.me).contains(from);
        let is_parent = self.tree.parent(self.me) == Some(from);
        if !matches!(msg, Message::State { .. }) && !self.got_state.contains(from) {
            return Err(Error::Protocol("message before STATE"));
        }
        match msg {
            Message::State {
                applied, commit, ..
            } => {
                if self.got_state.contains(from) {
                    return Err(Error::Protocol("second STATE"));
                }
                self.got_state = self.got_state.with(from);
                self.known[f] = Some(applied);
                self.commit_told[f] = commit;
                self.learn_commit(commit);
                self.push(from);
                self.check_ready();
            }
            Message::Ready { .. } => {
                if !is_child || self.got_ready.contains(from) {
                    return Err(Error::Protocol("unexpected READY"));
                }
                self.got_ready = self.got_ready.with(from);
                self.check_ready();
            }
            Message::Open { upto, .. } => {
                if !is_parent || self.phase != Phase::Syncing || !self.ready_sent {
                    return Err(Error::Protocol("unexpected OPEN"));
                }
                if self.logged < upto {
                    return Err(Error::Protocol("OPEN before the log it announces"));
                }
                self.open(upto);
            }
            Message::Propose {
                origin,
                origin_seq,
                op,
                ..
            } => {
                if !is_child || self.phase != Phase::Open || !self.topo.members().contains(origin) {
                    return Err(Error::Protocol("unexpected PROPOSE"));
                }
                self.route_proposal(origin, origin_seq, op);
            }
            Message::Entry {
                hops,
                seq,
                commit,
                origin,
                origin_seq,
                op,
                ..
            } => {
                if self.snap_in.iter().any(|s| s.from == from) {
                    return Err(Error::Protocol("ENTRY inside a snapshot"));
                }
                if !self.topo.members().contains(origin) {
                    return Err(Error::Protocol("ENTRY from an unknown origin"));
                }
                if seq > self.logged.saturating_add(1) || seq == u64::MAX {
                    return Err(Error::Protocol("ENTRY past the end of the log"));
                }
                if self.is_leader() && self.phase == Phase::Open && seq > self.logged {
                    return Err(Error::Protocol("ENTRY to an open leader"));
                }
                self.raise_known(from, seq);
                if Some(seq) == self.logged.checked_add(1) {
                    self.append(seq, origin, origin_seq, op, hops);
                }
                self.learn_commit(commit);
                self.push_all();
                self.progress();
            }
            Message::Ack { hops, applied, .. } => {
                if !is_child || applied > self.known[f].unwrap_or(0) {
                    return Err(Error::Protocol("unexpected ACK"));
                }
                self.child_ack[f] = self.child_ack[f].max(applied);
                self.child_hops[f] = self.child_hops[f].max(hops);
                self.stats.max_hops = self.stats.max_hops.max(hops);
                self.progress();
            }
            Message::Commit { commit, .. } => {
                if !is_parent {
                    return Err(Error::Protocol("COMMIT from a child"));
                }
                self.learn_commit(commit);
                self.tell_commit();
            }
            Message::SnapBegin { seq, len, .. } => {
                if len > self.cfg.max_snapshot || seq == u64::MAX {
                    return Err(Error::Protocol("snapshot too large"));
                }
                if self.snap_in.iter().any(|s| s.from == from) {
                    self.snap_in.retain(|s| s.from != from);
                    return Err(Error::Protocol("SNAP_BEGIN inside a snapshot"));
                }
                self.snap_in.push(SnapIn {
                    from,
                    seq,
                    len,
                    buf: Vec::new(),
                });
            }
            Message::SnapChunk { index, data, .. } => {
                let Some(s) = self.snap_in.iter_mut().find(|s| s.from == from) else {
                    return Err(Error::Protocol("chunk without SNAP_BEGIN"));
                };
                let have = s.buf.len();
                let left = (s.len as usize).saturating_sub(have);
                if left == 0 || index as usize != have / CHUNK {
                    self.snap_in.retain(|s| s.from != from);
                    return Err(Error::Protocol("chunk out of order"));
                }
                s.buf.extend_from_slice(&data[..left.min(CHUNK)]);
            }
            Message::SnapEnd {
                seq, checksum: c, ..
            } => {
                let Some(i) = self.snap_in.iter().position(|s| s.from == from) else {
                    return Err(Error::Protocol("SNAP_END without SNAP_BEGIN"));
                };
                let s = self.snap_in.swap_remove(i);
                if s.seq != seq || s.buf.len() != s.len as usize || checksum(&s.buf) != c {
                    return Err(Error::Protocol("snapshot incomplete or corrupted"));
                }
                let Some(state) = State::decode(&s.buf) else {
                    return Err(Error::Protocol("snapshot does not decode"));
                };
                self.raise_known(from, seq);
                if seq > self.logged {
                    self.install(seq, from, state);
                    self.push_all();
                    self.progress();
                }
            }
            Message::Invalidate {
                initiator,
                id,
                addr,
                ..
            } => {
                if self
                    .sd_fwd
                    .iter()
                    .any(|x| x.initiator == initiator && x.id == id)
                {
                    return Err(Error::Protocol("second INVALIDATE"));
                }
                self.events.push_back(Event::Invalidate {
                    initiator,
                    id,
                    addr,
                });
                let waiting = nbrs.without(from);
                if waiting.is_empty() {
                    let epoch = self.epoch;
                    self.send(
                        from,
                        Message::InvalidateAck {
                            epoch,
                            initiator,
                            id,
                        },
                    );
                } else {
                    self.fan_out_invalidate(waiting, initiator, id, addr);
                    self.sd_fwd.push(Forward {
                        initiator,
                        id,
                        from: Some(from),
                        waiting,
                    });
                }
            }
            Message::InvalidateAck { initiator, id, .. } => {
                let Some(i) = self.sd_fwd.iter().position(|x| {
                    x.initiator == initiator && x.id == id && x.waiting.contains(from)
                }) else {
                    return Err(Error::Protocol("unexpected INVALIDATE_ACK"));
                };
                let fw = &mut self.sd_fwd[i];
                fw.waiting = fw.waiting.without(from);
                if fw.waiting.is_empty() {
                    let fw = self.sd_fwd.swap_remove(i);
                    match fw.from {
                        Some(p) => {
                            let epoch = self.epoch;
                            self.send(
                                p,
                                Message::InvalidateAck {
                                    epoch,
                                    initiator,
                                    id,
                                },
                            );
                        }
                        None => {
                            if self.sd_mine.remove(&id).is_some() {
                                self.events.push_back(Event::ShootdownDone { id });
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    // ---- internals ----

    fn send(&mut self, to: MemberId, msg: Message) {
        self.stats.sent += 1;
        if let Some(c) = self.stats.sent_by_kind.get_mut(msg.kind() as usize) {
            *c += 1;
        }
        self.out.push_back((to, msg));
    }

    fn adopt(&mut self, epoch: u32, alive: MemberSet) {
        self.epoch = epoch;
        self.alive = alive.and(self.topo.members());
        self.known = [None; MAX_MEMBERS];
        self.commit_told = [0; MAX_MEMBERS];
        self.child_ack = [0; MAX_MEMBERS];
        self.child_hops = [0; MAX_MEMBERS];
        self.got_state = MemberSet::EMPTY;
        self.got_ready = MemberSet::EMPTY;
        self.ready_sent = false;
        self.ack_sent = 0;
        self.backlog.clear();
        self.snap_in.clear();
        self.sd_fwd.clear();
        // Messages not yet handed out belong to the old epoch: the receivers would drop them.
        self.out.clear();
        let leader = self.alive.min().unwrap_or(self.me);
        self.tree = self.topo.tree(self.alive, leader);
        if !self.alive.contains(self.me) {
            self.phase = Phase::Dead;
            return;
        }
        if !self.tree.reached().contains(self.me) {
            self.phase = Phase::Isolated;
            return;
        }
        self.phase = Phase::Syncing;
        let (applied, commit) = (self.logged, self.commit);
        for nbr in self.tree.neighbours(self.me).iter() {
            self.send(
                nbr,
                Message::State {
                    epoch,
                    applied,
                    commit,
                },
            );
        }
        let mine: Vec<(u32, u64)> = self.sd_mine.iter().map(|(&i, &a)| (i, a)).collect();
        for (id, addr) in mine {
            self.start_shootdown(id, addr);
        }
        self.check_ready();
    }

    fn check_ready(&mut self) {
        if self.phase != Phase::Syncing || self.ready_sent {
            return;
        }
        let nbrs = self.tree.neighbours(self.me);
        if !self.got_state.contains_all(nbrs)
            || !self.got_ready.contains_all(self.tree.children(self.me))
        {
            return;
        }
        self.ready_sent = true;
        match self.tree.parent(self.me) {
            Some(p) => {
                let epoch = self.epoch;
                self.send(p, Message::Ready { epoch });
            }
            None => self.open(self.logged),
        }
        self.progress();
    }

    fn open(&mut self, upto: u64) {
        self.apply_logged();
        self.phase = Phase::Open;
        let epoch = self.epoch;
        for c in self.tree.children(self.me).iter() {
            self.send(c, Message::Open { epoch, upto });
        }
        if !self.caught_up && self.applied >= upto {
            self.caught_up = true;
            self.next_origin_seq = self.state.dedup(self.me).saturating_add(1);
            self.events.push_back(Event::CaughtUp);
        }
        self.events.push_back(Event::Opened { epoch });
        let again: Vec<(u32, Op)> = self.pending.iter().copied().collect();
        for (oseq, op) in again {
            self.route_proposal(self.me, oseq, op);
        }
    }

    fn route_proposal(&mut self, origin: MemberId, origin_seq: u32, op: Op) {
        match self.tree.parent(self.me) {
            Some(p) => {
                let epoch = self.epoch;
                self.send(
                    p,
                    Message::Propose {
                        epoch,
                        origin,
                        origin_seq,
                        op,
                    },
                );
            }
            None => {
                self.backlog.push_back((origin, origin_seq, op));
                self.progress();
            }
        }
    }

    fn window_full(&self) -> bool {
        self.logged.saturating_sub(self.commit) >= self.cfg.window
    }

    /// Leader: sequence one proposal, unless already sequenced.
    fn sequence(&mut self, origin: MemberId, origin_seq: u32, op: Op) {
        let d = self
            .log_dedup
            .get(origin as usize)
            .copied()
            .unwrap_or(u32::MAX);
        if origin_seq <= d {
            self.stats.duplicates += 1;
            return;
        }
        if origin_seq != d.saturating_add(1) {
            // Never sent by an honest origin (proposals are retried in order).
            self.stats.rejected += 1;
            return;
        }
        let Some(seq) = self.logged.checked_add(1) else {
            return;
        };
        self.append(seq, origin, origin_seq, op, 0);
        self.push_all();
    }

    fn subtree_applied(&self) -> (u64, u8) {
        let mut sub = self.logged;
        let mut hops = self.stats.max_hops;
        for c in self.tree.children(self.me).iter() {
            sub = sub.min(self.child_ack[c as usize]);
            hops = hops.max(self.child_hops[c as usize]);
        }
        (sub, hops)
    }

    /// Acknowledge upwards, or (leader) advance the commit index and sequence the backlog.
    fn progress(&mut self) {
        if !self.ready_sent {
            return;
        }
        if let Some(p) = self.tree.parent(self.me) {
            let (sub, hops) = self.subtree_applied();
            if sub > self.ack_sent {
                self.ack_sent = sub;
                let epoch = self.epoch;
                self.send(
                    p,
                    Message::Ack {
                        epoch,
                        hops,
                        applied: sub,
                    },
                );
            }
            return;
        }
        if self.phase != Phase::Open {
            return;
        }
        loop {
            let (sub, _) = self.subtree_applied();
            self.learn_commit(sub);
            if self.backlog.is_empty() || self.window_full() {
                break;
            }
            if let Some((origin, oseq, op)) = self.backlog.pop_front() {
                self.sequence(origin, oseq, op);
            }
        }
    }

    fn learn_commit(&mut self, c: u64) {
        if c <= self.commit {
            return;
        }
        self.commit = c;
        self.release_committed();
        self.trim();
    }

    /// Reports own updates that are applied here and committed.
    #[inline]
    fn release_committed(&mut self) {
        while let Some(&(oseq, seq)) = self.awaiting.front() {
            if seq > self.commit {
                break;
            }
            self.awaiting.pop_front();
            self.events.push_back(Event::Committed { origin_seq: oseq });
        }
    }

    fn tell_commit(&mut self) -> bool {
        let (epoch, commit) = (self.epoch, self.commit);
        let mut sent = false;
        for c in self.tree.children(self.me).iter() {
            if self.commit_told[c as usize] < commit {
                self.commit_told[c as usize] = commit;
                self.send(c, Message::Commit { epoch, commit });
                sent = true;
            }
        }
        sent
    }

    #[inline]
    fn trim(&mut self) {
        let floor = self
            .commit
            .min(self.applied)
            .saturating_sub(self.cfg.retain);
        while self.log.front().is_some_and(|e| e.seq <= floor) {
            if let Some(e) = self.log.pop_front() {
                self.log_base = e.seq;
            }
        }
    }

    #[inline]
    fn raise_known(&mut self, nbr: MemberId, seq: u64) {
        if let Some(k) = self.known.get_mut(nbr as usize) {
            *k = Some(k.unwrap_or(0).max(seq));
        }
    }

    /// Logs entry `seq == logged + 1` (applied later, by [`Member::apply_logged`]).
    #[inline]
    fn append(&mut self, seq: u64, origin: MemberId, origin_seq: u32, op: Op, hops: u8) {
        self.logged = seq;
        if let Some(d) = self.log_dedup.get_mut(origin as usize) {
            *d = (*d).max(origin_seq);
        }
        self.stats.max_hops = self.stats.max_hops.max(hops);
        self.log.push_back(LogEntry {
            seq,
            origin,
            origin_seq,
            op,
            hops,
        });
    }

    /// Applies every logged entry not applied yet, in log order (after releasing what a
    /// commit on the word-level path left unreleased, which the general path would have
    /// released before).
    #[inline(always)]
    fn apply_logged(&mut self) {
        if self.unreleased {
            self.unreleased = false;
            self.release_committed();
        }
        if self.applied != self.logged {
            self.apply_logged_now();
        }
    }

    /// Trims the log if a commit on the steady path left it untrimmed.
    fn tidy(&mut self) {
        if self.untrimmed {
            self.untrimmed = false;
            self.trim();
        }
    }

    #[inline(never)]
    fn apply_logged_now(&mut self) {
        while self.applied < self.logged {
            let seq = self.applied + 1;
            let index = usize::try_from(seq - self.log_base - 1).unwrap_or(usize::MAX);
            let Some(e) = self.log.get(index) else {
                break; // unreachable: the log holds everything after `applied`
            };
            let (origin, origin_seq, op) = (e.origin, e.origin_seq, e.op);
            self.state.apply(seq, origin, origin_seq, &op);
            self.applied = seq;
            self.events.push_back(Event::Applied {
                seq,
                origin,
                origin_seq,
                op,
            });
            if origin == self.me && self.pending.front().is_some_and(|p| p.0 == origin_seq) {
                self.pending.pop_front();
                self.awaiting.push_back((origin_seq, seq));
            }
        }
        self.release_committed();
        self.untrimmed = false;
        self.trim();
    }

    fn install(&mut self, seq: u64, from: MemberId, state: State) {
        self.state = state;
        self.applied = seq;
        self.logged = seq;
        for (o, d) in (0..=MemberId::MAX).zip(self.log_dedup.iter_mut()) {
            *d = self.state.dedup(o);
        }
        self.log.clear();
        self.log_base = seq;
        self.events.push_back(Event::Snapshot { seq, from });
        let done = self.state.dedup(self.me);
        while self.pending.front().is_some_and(|p| p.0 <= done) {
            if let Some((oseq, _)) = self.pending.pop_front() {
                // Its exact position is unknown; the snapshot's is at least as late.
                self.awaiting.push_back((oseq, seq));
            }
        }
        if self.commit > seq {
            // Nothing to do: commit stays (a fact about the group), reads wait for OPEN.
        }
    }

    fn push_all(&mut self) {
        for nbr in self.tree.neighbours(self.me).iter() {
            self.push(nbr);
        }
    }

    /// Sends `nbr` what it is missing of this member's log.
    fn push(&mut self, nbr: MemberId) {
        let n = nbr as usize;
        let Some(k) = self.known.get(n).copied().flatten() else {
            return;
        };
        if self.logged <= k {
            return;
        }
        let (epoch, commit) = (self.epoch, self.commit);
        if k < self.log_base {
            self.send_snapshot(nbr);
        } else {
            // A distance that does not fit in a `usize` is past the end of
            // any log: nothing to resend.
            let start = usize::try_from(k - self.log_base).unwrap_or(usize::MAX);
            for i in start..self.log.len() {
                let Some(e) = self.log.get(i) else { break };
                let msg = Message::Entry {
                    epoch,
                    hops: e.hops.saturating_add(1),
                    seq: e.seq,
                    commit,
                    origin: e.origin,
                    origin_seq: e.origin_seq,
                    op: e.op,
                };
                self.send(nbr, msg);
            }
            if let Some(t) = self.commit_told.get_mut(n) {
                *t = (*t).max(commit);
            }
        }
        self.known[n] = Some(self.logged);
    }

    fn send_snapshot(&mut self, nbr: MemberId) {
        self.apply_logged();
        let bytes = self.state.encode();
        let chunks = bytes.len().div_ceil(CHUNK);
        let Ok(len) = u32::try_from(bytes.len()) else {
            return;
        };
        if chunks > MAX_CHUNK_INDEX as usize {
            return;
        }
        let (epoch, seq) = (self.epoch, self.applied);
        self.stats.snapshots_sent += 1;
        self.send(nbr, Message::SnapBegin { epoch, seq, len });
        for (index, chunk) in (0u32..).zip(bytes.chunks(CHUNK)) {
            let mut data = [0; CHUNK];
            data[..chunk.len()].copy_from_slice(chunk);
            self.send(nbr, Message::SnapChunk { epoch, index, data });
        }
        self.send(
            nbr,
            Message::SnapEnd {
                epoch,
                seq,
                checksum: checksum(&bytes),
            },
        );
    }

    fn start_shootdown(&mut self, id: u32, addr: u64) {
        let waiting = self.tree.neighbours(self.me);
        if waiting.is_empty() {
            self.sd_mine.remove(&id);
            self.events.push_back(Event::ShootdownDone { id });
            return;
        }
        let me = self.me;
        self.fan_out_invalidate(waiting, me, id, addr);
        self.sd_fwd.push(Forward {
            initiator: me,
            id,
            from: None,
            waiting,
        });
    }

    fn fan_out_invalidate(&mut self, to: MemberSet, initiator: MemberId, id: u32, addr: u64) {
        let epoch = self.epoch;
        for m in to.iter() {
            self.send(
                m,
                Message::Invalidate {
                    epoch,
                    initiator,
                    id,
                    addr,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(topo: &Topology) -> Vec<Member> {
        (0..u8::try_from(topo.size()).unwrap())
            .map(|i| Member::new(i, topo.clone(), Config::default(), 1, topo.members()))
            .collect()
    }

    /// Delivers every queued message (through the wire encoding) until none is left.
    fn settle(ms: &mut [Member]) -> u64 {
        let mut n = 0;
        loop {
            let mut moved = false;
            for i in 0..ms.len() {
                while let Some((to, msg)) = ms[i].poll_send() {
                    let bytes = msg.encode();
                    ms[to as usize]
                        .handle_bytes(u8::try_from(i).unwrap(), bytes.as_bytes())
                        .unwrap();
                    n += 1;
                    moved = true;
                }
            }
            if !moved {
                for m in ms.iter_mut() {
                    moved |= m.flush();
                }
            }
            if !moved {
                return n;
            }
        }
    }

    fn events(m: &mut Member) -> Vec<Event> {
        core::iter::from_fn(|| m.poll_event()).collect()
    }

    #[test]
    fn three_members_commit_in_order() {
        let topo = Topology::line(3).unwrap();
        let mut ms = group(&topo);
        settle(&mut ms);
        assert!(ms.iter().all(|m| m.phase() == Phase::Open));
        let a = ms[2].propose(Op::Put { key: 1, value: 1 }).unwrap();
        let b = ms[2].propose(Op::Put { key: 1, value: 2 }).unwrap();
        ms[0].propose(Op::Put { key: 9, value: 9 }).unwrap();
        settle(&mut ms);
        for m in &ms {
            assert_eq!(m.applied(), 3);
            assert_eq!(m.commit(), 3);
            assert_eq!(m.state().get(1), Some(2));
        }
        let ev = events(&mut ms[2]);
        assert!(ev.contains(&Event::Committed { origin_seq: a }));
        assert!(ev.contains(&Event::Committed { origin_seq: b }));
    }

    #[test]
    fn entries_are_acknowledged_when_logged_and_applied_once_the_ack_is_out() {
        let topo = Topology::line(2).unwrap();
        let mut ms = group(&topo);
        settle(&mut ms);
        let oseq = ms[0].propose(Op::Put { key: 3, value: 4 }).unwrap();
        let (to, entry) = ms[0].out.pop_front().unwrap();
        assert_eq!((to, ms[0].logged(), ms[0].applied()), (1, 1, 0));
        ms[1].handle_bytes(0, entry.encode().as_bytes()).unwrap();
        // The ACK is queued before the entry is applied.
        assert_eq!((ms[1].logged(), ms[1].applied()), (1, 0));
        let (_, ack) = ms[1].out.pop_front().unwrap();
        assert!(matches!(ack, Message::Ack { applied: 1, .. }));
        assert_eq!(ms[1].poll_send(), None);
        assert_eq!(ms[1].applied(), 1);
        assert_eq!(ms[1].state().get(3), Some(4));
        // The leader commits on the ACK; `Committed` comes once its own copy is applied.
        ms[0].handle(1, ack).unwrap();
        assert_eq!(ms[0].commit(), 1);
        let ev = events(&mut ms[0]);
        assert!(ev.contains(&Event::Committed { origin_seq: oseq }));
        assert_eq!(ms[0].state().get(3), Some(4));
    }

    #[test]
    fn hostile_messages_are_refused_without_effect() {
        let topo = Topology::line(3).unwrap();
        let mut ms = group(&topo);
        settle(&mut ms);
        let before = ms[1].clone();
        // Not a neighbour in the tree; wrong direction; gaps; second STATE; garbage.
        let e = |seq| Message::Entry {
            epoch: 1,
            hops: 1,
            seq,
            commit: 0,
            origin: 0,
            origin_seq: 1,
            op: Op::Delete { key: 0 },
        };
        assert!(ms[0].handle(2, e(1)).is_err(), "2 is not 0's neighbour");
        assert!(ms[1].handle(0, e(5)).is_err(), "gap");
        assert!(
            ms[1].handle(0, Message::Ready { epoch: 1 }).is_err(),
            "READY from the parent"
        );
        assert!(ms[1]
            .handle(
                0,
                Message::State {
                    epoch: 1,
                    applied: 0,
                    commit: 0
                }
            )
            .is_err());
        assert!(ms[1].handle_bytes(0, &[5; 56]).is_err());
        assert!(ms[1].handle_bytes(0, &[]).is_err());
        assert!(
            ms[1]
                .handle(
                    2,
                    Message::Ack {
                        epoch: 1,
                        hops: 0,
                        applied: 7
                    }
                )
                .is_err(),
            "acknowledges what was never sent"
        );
        assert_eq!(
            ms[1].handle(0, Message::Ready { epoch: 9 }),
            Err(Error::FutureEpoch(9))
        );
        assert_eq!(
            ms[1].handle(0, Message::Ready { epoch: 0 }),
            Ok(()),
            "stale"
        );
        assert_eq!(ms[1].state(), before.state());
        assert_eq!(ms[1].applied(), before.applied());
    }

    #[test]
    fn restarted_member_catches_up_by_snapshot_and_reads_only_after() {
        let topo = Topology::ring(4).unwrap();
        let cfg = Config {
            retain: 0,
            ..Config::default()
        };
        let mut ms: Vec<Member> = (0..4)
            .map(|i| Member::new(i, topo.clone(), cfg, 1, topo.members()))
            .collect();
        settle(&mut ms);
        for i in 0..20 {
            ms[(i % 4) as usize]
                .propose(Op::Put {
                    key: i,
                    value: i * i,
                })
                .unwrap();
        }
        settle(&mut ms);
        // Member 2 dies, then restarts.
        let alive = topo.members().without(2);
        for (i, m) in ms.iter_mut().enumerate() {
            if i != 2 {
                m.on_membership(2, alive);
            }
        }
        settle_without(&mut ms, 2);
        ms[2] = Member::restarted(2, topo.clone(), cfg, 3, topo.members());
        assert_eq!(ms[2].read(), Err(Error::NotCaughtUp));
        assert_eq!(
            ms[2].propose(Op::Delete { key: 0 }),
            Err(Error::NotCaughtUp)
        );
        for (i, m) in ms.iter_mut().enumerate() {
            if i != 2 {
                m.on_membership(3, topo.members());
            }
        }
        settle(&mut ms);
        let ev = events(&mut ms[2]);
        assert!(ev
            .iter()
            .any(|e| matches!(e, Event::Snapshot { seq: 20, .. })));
        assert!(ev.contains(&Event::CaughtUp));
        assert_eq!(ms[2].read().unwrap(), ms[0].state());
        assert!(ms.iter().any(|m| m.stats().snapshots_sent > 0));
        // Its next update continues its origin sequence.
        assert_eq!(ms[2].propose(Op::Delete { key: 0 }), Ok(6));
    }

    fn settle_without(ms: &mut [Member], dead: usize) {
        loop {
            let mut moved = false;
            for i in 0..ms.len() {
                if i == dead {
                    while ms[i].poll_send().is_some() {}
                    continue;
                }
                while let Some((to, msg)) = ms[i].poll_send() {
                    if to as usize != dead {
                        ms[to as usize]
                            .handle(u8::try_from(i).unwrap(), msg)
                            .unwrap();
                        moved = true;
                    }
                }
            }
            if !moved {
                for (i, m) in ms.iter_mut().enumerate() {
                    if i != dead {
                        moved |= m.flush();
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    #[test]
    fn isolated_members_refuse_updates() {
        let topo = Topology::line(3).unwrap();
        let mut ms = group(&topo);
        settle(&mut ms);
        ms[2].on_membership(2, MemberSet(0b101));
        assert_eq!(ms[2].phase(), Phase::Isolated);
        assert_eq!(ms[2].propose(Op::Delete { key: 1 }), Err(Error::Isolated));
        assert!(ms[2].read().is_ok(), "stale but consistent reads");
    }

    #[test]
    fn shootdown_reaches_everyone() {
        let topo = Topology::hypercube(3).unwrap();
        let mut ms = group(&topo);
        settle(&mut ms);
        for m in ms.iter_mut() {
            events(m);
        }
        let id = ms[5].shootdown(0x1000).unwrap();
        let n = settle(&mut ms);
        assert_eq!(n, 14);
        for (i, m) in ms.iter_mut().enumerate() {
            let ev = events(m);
            assert!(ev.contains(&Event::Invalidate {
                initiator: 5,
                id,
                addr: 0x1000
            }));
            assert_eq!(ev.contains(&Event::ShootdownDone { id }), i == 5);
        }
    }
}
