//! The deterministic simulator shared by the simulation, property, model-check and count
//! tests: N sans-IO members, one FIFO queue per link direction carrying encoded messages,
//! and a hypervisor that crashes and restarts members and tells the survivors at once.
//!
//! After every step [`Cluster::step`] checks the invariants, from its own record of what
//! every member applied (its *history*: a restarted member's history is its snapshot
//! sender's history up to the snapshot, then what it applied):
//! - histories of live members are prefixes of one another (checked on every apply against
//!   the longest live history);
//! - each history applies every origin's updates in order, each exactly once;
//! - a snapshot's dedup table matches the history it stands for;
//! - the committed log (up to the highest commit index any member ever announced) never
//!   changes, and every caught-up live member has applied all of it;
//! - a shootdown is done only when every member of the initiator's tree invalidated.
//!
//! [`Cluster::quiesce`] then runs without faults until nothing moves and checks that every
//! live member is open, has applied the whole committed log, equals the sequential
//! reference built from it, and that every update a live member proposed is committed.
#![allow(dead_code)]

use replication::{Config, Event, Member, MemberId, MemberSet, Op, Phase, State, Topology};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One applied update: origin, origin sequence number, operation.
pub type Rec = (MemberId, u32, Op);

/// What the simulator can do in one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Deliver the oldest message on the link `from -> to`.
    Deliver(MemberId, MemberId),
    /// Member proposes an update.
    Propose(MemberId, Op),
    /// Member is idle: flush.
    Flush(MemberId),
    /// The member faults (fail-stop).
    Crash(MemberId),
    /// The member restarts (a new incarnation).
    Restart(MemberId),
    /// The member starts a shootdown.
    Shootdown(MemberId, u64),
    /// The member reads the membership it has not adopted yet (lazy mode).
    Notify(MemberId),
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Cluster {
    pub topo: Topology,
    pub cfg: Config,
    pub members: Vec<Option<Member>>,
    pub queues: BTreeMap<(MemberId, MemberId), VecDeque<replication::Frame>>,
    pub epoch: u32,
    pub alive: MemberSet,
    /// Messages delivered, by kind.
    pub delivered: [u64; 13],
    hist: Vec<Vec<Rec>>,
    live_log: Vec<Rec>,
    committed: Vec<Rec>,
    committed_set: BTreeSet<(MemberId, u32)>,
    max_commit: u64,
    /// Per member: proposals accepted and not yet reported committed.
    outstanding: Vec<BTreeSet<u32>>,
    invalidated: BTreeSet<(MemberId, MemberId, u32)>,
    pub shootdowns_done: u64,
    pub restarts: u64,
    pub crashes: u64,
    /// Members cut off from the leader since they were last open (only when a test crashes a
    /// cut vertex on purpose): stale by design until the next view change reaches them.
    stale: MemberSet,
    /// Lazy membership: survivors learn a new epoch one by one (`Action::Notify`), or when a
    /// message of the new epoch reaches them (`Error::FutureEpoch`), as a monitor polling the
    /// status page would; members behind keep running the old epoch meanwhile.
    pub lazy: bool,
    behind: MemberSet,
    /// Steps taken; when each shootdown started; when each member last restarted.
    steps: u64,
    sd_start: BTreeMap<(MemberId, u32), u64>,
    restarted_at: Vec<u64>,
}

impl Cluster {
    /// A fingerprint of everything that decides the future (not the counters).
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = Fx(0);
        self.members.hash(&mut h);
        self.queues.hash(&mut h);
        self.epoch.hash(&mut h);
        self.alive.hash(&mut h);
        self.hist.hash(&mut h);
        self.committed.hash(&mut h);
        self.outstanding.hash(&mut h);
        self.invalidated.hash(&mut h);
        h.finish()
    }
}

impl Cluster {
    pub fn new(topo: Topology, cfg: Config) -> Self {
        let n = topo.size();
        let alive = topo.members();
        let members = (0..n as u8)
            .map(|i| Some(Member::new(i, topo.clone(), cfg, 1, alive)))
            .collect();
        let mut queues = BTreeMap::new();
        for a in 0..n as u8 {
            for b in topo.neighbours(a).iter() {
                queues.insert((a, b), VecDeque::new());
            }
        }
        let mut c = Self {
            topo,
            cfg,
            members,
            queues,
            epoch: 1,
            alive,
            delivered: [0; 13],
            hist: vec![Vec::new(); n],
            live_log: Vec::new(),
            committed: Vec::new(),
            committed_set: BTreeSet::new(),
            max_commit: 0,
            outstanding: vec![BTreeSet::new(); n],
            invalidated: BTreeSet::new(),
            shootdowns_done: 0,
            restarts: 0,
            crashes: 0,
            stale: MemberSet::EMPTY,
            lazy: false,
            behind: MemberSet::EMPTY,
            steps: 0,
            sd_start: BTreeMap::new(),
            restarted_at: vec![0; n],
        };
        for i in 0..n as u8 {
            c.drain(i).expect("start");
        }
        c
    }

    pub fn size(&self) -> usize {
        self.topo.size()
    }

    pub fn member(&self, m: MemberId) -> Option<&Member> {
        self.members.get(m as usize).and_then(|m| m.as_ref())
    }

    pub fn committed(&self) -> &[Rec] {
        &self.committed
    }

    pub fn in_flight(&self) -> usize {
        self.queues.values().map(|q| q.len()).sum()
    }

    /// Links with a message waiting, in a fixed order.
    pub fn ready_links(&self) -> Vec<(MemberId, MemberId)> {
        self.queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(&k, _)| k)
            .collect()
    }

    /// Whether the live members stay connected (so nobody is isolated) if `alive` were the
    /// live set.
    pub fn connected(&self, alive: MemberSet) -> bool {
        match alive.min() {
            None => false,
            Some(root) => self.topo.tree(alive, root).reached() == alive,
        }
    }

    /// A crash is allowed if the survivors stay connected and one of them is caught up
    /// (committed updates survive while one caught-up member lives; killing the last one is
    /// losing the group, which no protocol survives).
    pub fn can_crash(&self, m: MemberId) -> bool {
        self.alive.contains(m)
            && self.connected(self.alive.without(m))
            && self
                .alive
                .without(m)
                .iter()
                .any(|x| self.member(x).is_some_and(|x| x.is_caught_up()))
    }

    pub fn can_restart(&self, m: MemberId) -> bool {
        (m as usize) < self.size() && !self.alive.contains(m) && self.connected(self.alive.with(m))
    }

    /// Whether `m` is idle (nothing waiting for it) and a flush would send something.
    pub fn flush_useful(&self, m: MemberId) -> bool {
        let waiting = self
            .queues
            .iter()
            .any(|(&(_, to), q)| to == m && !q.is_empty());
        !waiting
            && self.member(m).is_some_and(|x| {
                let mut y = x.clone();
                y.flush()
            })
    }

    /// One step, then every invariant.
    pub fn step(&mut self, a: Action) -> Result<(), String> {
        self.steps += 1;
        match a {
            Action::Deliver(from, to) => {
                let frame = self
                    .queues
                    .get_mut(&(from, to))
                    .and_then(|q| q.pop_front())
                    .ok_or_else(|| format!("nothing on {from}->{to}"))?;
                if let Ok(msg) = replication::Message::decode(frame.as_bytes()) {
                    self.delivered[msg.kind() as usize] += 1;
                }
                let m = self.members[to as usize]
                    .as_mut()
                    .ok_or_else(|| format!("delivery to dead {to}"))?;
                let mut r = m.handle_bytes(from, frame.as_bytes());
                if let Err(replication::Error::FutureEpoch(_)) = r {
                    // The monitor reads the status page, then hands the message in again.
                    self.notify(to)?;
                    let m = self.members[to as usize].as_mut().expect("live");
                    r = m.handle_bytes(from, frame.as_bytes());
                }
                r.map_err(|e| format!("{from}->{to}: {e} ({frame:?})"))?;
                self.drain(to)?;
            }
            Action::Propose(m, op) => {
                if let Some(x) = self.members[m as usize].as_mut() {
                    if let Ok(oseq) = x.propose(op) {
                        self.outstanding[m as usize].insert(oseq);
                    }
                    self.drain(m)?;
                }
            }
            Action::Flush(m) => {
                if let Some(x) = self.members[m as usize].as_mut() {
                    x.flush();
                    self.drain(m)?;
                }
            }
            Action::Shootdown(m, addr) => {
                if let Some(x) = self.members[m as usize].as_mut() {
                    if let Ok(id) = x.shootdown(addr) {
                        self.sd_start.insert((m, id), self.steps);
                    }
                    self.drain(m)?;
                }
            }
            Action::Notify(m) => self.notify(m)?,
            Action::Crash(m) => {
                if !self.alive.contains(m) {
                    return Err(format!("crash of dead {m}"));
                }
                self.crashes += 1;
                self.members[m as usize] = None;
                self.stale = self.stale.without(m);
                self.behind = self.behind.without(m);
                self.alive = self.alive.without(m);
                self.clear_links(m);
                self.outstanding[m as usize].clear();
                self.invalidated.retain(|&(x, _, _)| x != m);
                // The longest live history (they are prefixes of one another).
                self.live_log = self
                    .alive
                    .iter()
                    .map(|i| &self.hist[i as usize])
                    .max_by_key(|h| h.len())
                    .cloned()
                    .unwrap_or_default();
                if self.live_log.len() < self.committed.len()
                    || self.live_log[..self.committed.len()] != self.committed[..]
                {
                    return Err(format!("crash of {m} lost committed entries"));
                }
                self.new_epoch()?;
            }
            Action::Restart(m) => {
                if self.alive.contains(m) {
                    return Err(format!("restart of live {m}"));
                }
                self.restarts += 1;
                self.restarted_at[m as usize] = self.steps;
                self.alive = self.alive.with(m);
                self.clear_links(m);
                self.hist[m as usize].clear();
                self.members[m as usize] = Some(Member::restarted(
                    m,
                    self.topo.clone(),
                    self.cfg,
                    self.epoch + 1,
                    self.alive,
                ));
                self.new_epoch()?;
            }
        }
        self.check()
    }

    fn clear_links(&mut self, m: MemberId) {
        for ((a, b), q) in self.queues.iter_mut() {
            if *a == m || *b == m {
                q.clear();
            }
        }
    }

    fn new_epoch(&mut self) -> Result<(), String> {
        self.epoch += 1;
        let (epoch, alive) = (self.epoch, self.alive);
        for i in 0..self.size() as u8 {
            if let Some(x) = self.members[i as usize].as_mut() {
                if x.epoch() == epoch {
                    continue; // the restarted member starts in it
                }
                if self.lazy {
                    self.behind = self.behind.with(i);
                } else {
                    x.on_membership(epoch, alive);
                }
            }
        }
        for i in 0..self.size() as u8 {
            self.drain(i)?;
        }
        Ok(())
    }

    /// Members that have not adopted the current epoch yet (lazy mode).
    pub fn behind(&self) -> MemberSet {
        self.behind
    }

    fn notify(&mut self, m: MemberId) -> Result<(), String> {
        if !self.behind.contains(m) {
            return Ok(());
        }
        self.behind = self.behind.without(m);
        let (epoch, alive) = (self.epoch, self.alive);
        if let Some(x) = self.members[m as usize].as_mut() {
            x.on_membership(epoch, alive);
        }
        self.drain(m)
    }

    /// Moves `m`'s output to the link queues and checks its events.
    fn drain(&mut self, m: MemberId) -> Result<(), String> {
        let Some(x) = self.members[m as usize].as_mut() else {
            return Ok(());
        };
        let mut events = Vec::new();
        while let Some(e) = x.poll_event() {
            events.push(e);
        }
        let mut out = Vec::new();
        while let Some(o) = x.poll_send() {
            out.push(o);
        }
        for (to, msg) in out {
            if !self.alive.contains(to) {
                // A member behind on the membership writes to a dead peer: nobody reads it.
                continue;
            }
            let q = self
                .queues
                .get_mut(&(m, to))
                .ok_or_else(|| format!("{m} sent to {to} without a link"))?;
            q.push_back(msg.encode());
        }
        let mut committed = Vec::new();
        for e in events {
            if let Event::Committed { origin_seq } = e {
                committed.push(origin_seq);
            } else {
                self.event(m, e)?;
            }
        }
        // After the applies of the same step: the commit index may already cover them.
        let commit = self.members[m as usize].as_ref().map_or(0, |x| x.commit());
        self.raise_commit(commit)?;
        for origin_seq in committed {
            self.event(m, Event::Committed { origin_seq })?;
        }
        Ok(())
    }

    fn event(&mut self, m: MemberId, e: Event) -> Result<(), String> {
        let i = m as usize;
        match e {
            Event::Applied {
                seq,
                origin,
                origin_seq,
                op,
            } => {
                let h = &mut self.hist[i];
                if seq != h.len() as u64 + 1 {
                    return Err(format!("{m} applied {seq} after {}", h.len()));
                }
                let last = h.iter().rev().find(|r| r.0 == origin).map_or(0, |r| r.1);
                if origin_seq != last + 1 {
                    return Err(format!(
                        "{m} applied {origin}'s #{origin_seq} after #{last} (order / exactly once)"
                    ));
                }
                let rec = (origin, origin_seq, op);
                h.push(rec);
                let at = seq as usize - 1;
                match self.live_log.get(at) {
                    Some(r) if *r != rec => {
                        return Err(format!("{m} diverged at {seq}: {rec:?} vs {r:?}"))
                    }
                    Some(_) => {}
                    None if at == self.live_log.len() => self.live_log.push(rec),
                    None => return Err(format!("{m} ahead of every live log at {seq}")),
                }
            }
            Event::Snapshot { seq, from } => {
                let src = &self.hist[from as usize];
                if src.len() < seq as usize {
                    return Err(format!("{from} sent a snapshot at {seq} beyond its log"));
                }
                let h: Vec<Rec> = src[..seq as usize].to_vec();
                let x = self.members[i].as_ref().expect("live");
                for o in 0..self.size() as u8 {
                    let last = h.iter().rev().find(|r| r.0 == o).map_or(0, |r| r.1);
                    if x.state().dedup(o) != last {
                        return Err(format!("snapshot dedup of {o} at {m}"));
                    }
                }
                if x.state() != &reference(&h) {
                    return Err(format!("snapshot state at {m} is not its history's"));
                }
                self.hist[i] = h;
            }
            Event::Committed { origin_seq } => {
                if !self.outstanding[i].remove(&origin_seq) {
                    return Err(format!(
                        "{m}: #{origin_seq} committed twice or never proposed"
                    ));
                }
                if !self.committed_set.contains(&(m, origin_seq)) {
                    return Err(format!(
                        "{m}: #{origin_seq} reported committed, not in the log"
                    ));
                }
            }
            Event::CaughtUp => {
                let x = self.members[i].as_ref().expect("live");
                if x.applied() < self.max_commit {
                    return Err(format!(
                        "{m} caught up at {} < commit {}",
                        x.applied(),
                        self.max_commit
                    ));
                }
            }
            Event::Opened { .. } => {}
            Event::Invalidate { initiator, id, .. } => {
                self.invalidated.insert((m, initiator, id));
            }
            Event::ShootdownDone { id } => {
                self.shootdowns_done += 1;
                let x = self.members[i].as_ref().expect("live");
                let started = self.sd_start.get(&(m, id)).copied().unwrap_or(0);
                // Live members of its tree (one behind on the membership may still use an
                // older tree, with members dead since).
                for other in x.tree().reached().and(self.alive).iter() {
                    // A member restarted since the shootdown began holds nothing stale.
                    let fresh = self.restarted_at[other as usize] > started;
                    if !fresh && !self.invalidated.contains(&(other, m, id)) {
                        return Err(format!(
                            "shootdown {m}#{id} done before {other} invalidated"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn raise_commit(&mut self, c: u64) -> Result<(), String> {
        if c <= self.max_commit {
            return Ok(());
        }
        if self.live_log.len() < c as usize {
            return Err(format!("commit {c} beyond every live log"));
        }
        for at in self.committed.len()..c as usize {
            let rec = self.live_log[at];
            if !self.committed_set.insert((rec.0, rec.1)) {
                return Err(format!("{rec:?} committed twice"));
            }
            self.committed.push(rec);
        }
        self.max_commit = c;
        Ok(())
    }

    fn check(&mut self) -> Result<(), String> {
        let top = self
            .members
            .iter()
            .flatten()
            .map(|m| m.commit())
            .max()
            .unwrap_or(0);
        self.raise_commit(top)?;
        for x in self.members.iter().flatten() {
            match x.phase() {
                Phase::Isolated => self.stale = self.stale.with(x.id()),
                Phase::Open => self.stale = self.stale.without(x.id()),
                _ => {}
            }
            if self.stale.contains(x.id()) {
                continue;
            }
            if x.is_caught_up() && x.applied() < self.max_commit {
                return Err(format!(
                    "{} applied {} < committed {}",
                    x.id(),
                    x.applied(),
                    self.max_commit
                ));
            }
            // Drained after its step: everything it logged is applied, and a commit index
            // never runs ahead of what it holds.
            if x.commit() > self.max_commit
                || x.applied() != self.hist[x.id() as usize].len() as u64
                || x.logged() != x.applied()
                || (x.is_caught_up() && x.commit() > x.logged())
            {
                return Err(format!("{} bookkeeping", x.id()));
            }
            // The member's own retained log is the tail of its history.
            let h = &self.hist[x.id() as usize];
            for (seq, origin, oseq, op) in x.log() {
                if h.get(seq as usize - 1) != Some(&(origin, oseq, op)) {
                    return Err(format!(
                        "{}'s log at {seq} differs from what it applied",
                        x.id()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Lock-step: delivers every message queued at the start of the round. Returns how many.
    pub fn round(&mut self) -> Result<usize, String> {
        let batch: Vec<((MemberId, MemberId), usize)> =
            self.queues.iter().map(|(&k, q)| (k, q.len())).collect();
        let mut n = 0;
        for ((a, b), len) in batch {
            for _ in 0..len {
                self.step(Action::Deliver(a, b))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// No more faults: deliver and flush until nothing moves, then check the end state.
    pub fn quiesce(&mut self) -> Result<(), String> {
        self.settle()?;
        self.check_end()
    }

    /// Deliver and flush until nothing moves.
    pub fn settle(&mut self) -> Result<(), String> {
        for m in self.behind.iter() {
            self.step(Action::Notify(m))?;
        }
        for _ in 0..100_000 {
            if self.in_flight() > 0 {
                self.round()?;
                continue;
            }
            let idle: Vec<MemberId> = self
                .alive
                .iter()
                .filter(|&m| self.flush_useful(m))
                .collect();
            if idle.is_empty() {
                return Ok(());
            }
            for m in idle {
                self.step(Action::Flush(m))?;
            }
        }
        Err("no quiescence".into())
    }

    pub fn check_end(&self) -> Result<(), String> {
        let want = reference(&self.committed);
        for x in self.members.iter().flatten() {
            let i = x.id();
            if x.phase() != Phase::Open || !x.is_caught_up() {
                return Err(format!("{i} not open at the end: {:?}", x.phase()));
            }
            if x.applied() != self.committed.len() as u64 || x.commit() != x.applied() {
                return Err(format!(
                    "{i} at the end: applied {} commit {} of {}",
                    x.applied(),
                    x.commit(),
                    self.committed.len()
                ));
            }
            if x.state() != &want {
                return Err(format!("{i}'s state differs from the sequential reference"));
            }
            if !self.outstanding[i as usize].is_empty() {
                return Err(format!(
                    "{i}: updates {:?} never committed",
                    self.outstanding[i as usize]
                ));
            }
            if x.shootdowns_in_flight() != 0 {
                return Err(format!("{i}: shootdown never done"));
            }
        }
        Ok(())
    }
}

/// A fast, non-cryptographic hasher for state fingerprints (multiply-rotate per word).
struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        z ^ (z >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap()));
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b) | 0x100);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// The sequential reference: the log applied in order to the genesis state.
pub fn reference(log: &[Rec]) -> State {
    let mut s = State::new();
    for (i, (origin, oseq, op)) in log.iter().enumerate() {
        s.apply(i as u64 + 1, *origin, *oseq, op);
    }
    s
}

/// A small deterministic PRNG (SplitMix64), for the test code only.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// A deterministic update of member `m`: puts on keys of its own, some registrations of
/// shared names (first one wins), some deletes.
pub fn op_for(m: MemberId, choice: u64) -> Op {
    let key = (u64::from(m) << 32) | (choice % 8);
    match choice % 10 {
        0 => Op::Register {
            name: replication::Name::new(format!("svc{}", choice % 3).as_bytes()).unwrap(),
            service: replication::Service {
                partition: u16::from(m),
                channel: (choice % 5) as u16,
            },
        },
        1 => Op::Delete { key },
        _ => Op::Put {
            key,
            value: choice.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(m),
        },
    }
}

/// Turns a number into an action that is possible in `c`'s current state (so generated
/// schedules never stall and shrink well).
pub fn pick(c: &Cluster, choice: u64, faults: bool) -> Action {
    let n = c.size() as u64;
    let links = c.ready_links();
    let roll = choice % 100;
    let m = ((choice >> 8) % n) as MemberId;
    let sub = choice >> 16;
    if faults && roll < 3 {
        if c.can_crash(m) {
            return Action::Crash(m);
        }
        if c.can_restart(m) {
            return Action::Restart(m);
        }
    }
    if faults && roll < 5 && c.can_restart(m) {
        return Action::Restart(m);
    }
    if roll < 10 && c.behind().contains(m) {
        return Action::Notify(m);
    }
    if roll < 15 && c.alive.contains(m) {
        return Action::Propose(m, op_for(m, sub));
    }
    if roll < 17 && c.alive.contains(m) {
        return Action::Shootdown(m, sub & 0xffff_f000);
    }
    if roll < 20 && c.alive.contains(m) {
        return Action::Flush(m);
    }
    if links.is_empty() {
        let live = c.alive.min().unwrap_or(0);
        return Action::Flush(live);
    }
    let (a, b) = links[(sub % links.len() as u64) as usize];
    Action::Deliver(a, b)
}
