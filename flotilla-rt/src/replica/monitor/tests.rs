//! The monitor on the host: members over in-memory FIFO channels of a few
//! slots each, a fake status page playing the hypervisor (deaths, restarts
//! after every survivor acknowledged, re-formatted channels), and the
//! `replica` workload's scripts; every member must end with the reference
//! hash, and the steady state must cost 2(n - 1) messages per update.

use super::*;
use crate::replica::script::{all_applied, op, reference_hash};
use abi::group::MemberStatus;
use alloc::rc::Rc;
use core::cell::RefCell;
use replication::wire::kind;

/// Slots per channel direction (small, so that sends find channels full).
const SLOTS: usize = 4;

#[derive(Debug)]
struct Net {
    n: usize,
    /// `(from, to)` -> messages in flight.
    queues: Vec<VecDeque<(Words, usize)>>,
    page: Membership,
    /// Reattach calls per member.
    reattached: Vec<u32>,
    /// Lock-step mode: sends wait in `staged` until the next [`Net::tick`]
    /// (one round: every message sent in it is received in the next).
    lockstep: bool,
    staged: Vec<VecDeque<(Words, usize)>>,
    /// Per member, the epoch that showed it dead (until it restarts): a
    /// member that acknowledged that epoch must not touch its channels
    /// any more (the hypervisor may be re-formatting them), checked at
    /// every send and receive.
    died_at: Vec<Option<u64>>,
    /// A member the hypervisor kills right after the next cheap epoch
    /// check (`MembershipSource::epoch`): a death published mid-poll.
    kill_after_check: Option<usize>,
    /// `(from, to)` -> the channel is stopped (its peer corrupted it).
    stopped: Vec<bool>,
    /// Re-attachments still to fail.
    reattach_failures: u32,
}

impl Net {
    fn new(n: usize) -> Rc<RefCell<Net>> {
        let mut members = [MemberStatus::default(); abi::group::MAX_MEMBERS];
        for (i, m) in members.iter_mut().enumerate().take(n) {
            m.state = MemberState::Running as u32;
            m.partition = u32::try_from(i).unwrap();
        }
        Rc::new(RefCell::new(Net {
            n,
            queues: (0..n * n).map(|_| VecDeque::new()).collect(),
            page: Membership {
                group: 0,
                member_count: u32::try_from(n).unwrap(),
                epoch: 1,
                alive: u32::try_from((1u64 << n) - 1).unwrap(),
                members,
            },
            reattached: alloc::vec![0; n],
            lockstep: false,
            staged: (0..n * n).map(|_| VecDeque::new()).collect(),
            died_at: alloc::vec![None; n],
            kill_after_check: None,
            stopped: alloc::vec![false; n * n],
            reattach_failures: 0,
        }))
    }

    /// Ends a lock-step round: what was sent in it becomes receivable.
    fn tick(&mut self) {
        for (q, s) in self.queues.iter_mut().zip(&mut self.staged) {
            q.extend(s.drain(..));
        }
    }

    fn q(&mut self, from: MemberId, to: MemberId) -> &mut VecDeque<(Words, usize)> {
        let i = usize::from(from) * self.n + usize::from(to);
        &mut self.queues[i]
    }

    /// The hypervisor: member `m` faulted (restarting or for good).
    fn kill(&mut self, m: usize, restarting: bool) {
        let state = if restarting {
            MemberState::Restarting
        } else {
            MemberState::Faulted
        };
        abi::group::ended(&mut self.page, m, state, None);
        self.died_at[m] = Some(self.page.epoch);
    }

    /// Panics if `me` touches `peer`'s channels after acknowledging its
    /// death (`docs/channels.md`: a region being re-formatted is not
    /// touched).
    fn check_touch(&self, me: MemberId, peer: MemberId) {
        if let Some(e) = self.died_at[usize::from(peer)] {
            assert!(
                self.page.members[usize::from(me)].acked_epoch < e,
                "member {me} touched dead member {peer}'s channel after acknowledging epoch {e}"
            );
        }
    }

    /// The hypervisor: member `m` is back (channels re-formatted first).
    fn restart(&mut self, m: usize) {
        let id = MemberId::try_from(m).unwrap();
        for other in 0..self.n {
            let o = MemberId::try_from(other).unwrap();
            self.q(id, o).clear();
            self.q(o, id).clear();
        }
        abi::group::restarted(&mut self.page, m);
        self.died_at[m] = None;
    }
}

#[derive(Debug)]
struct Port {
    me: MemberId,
    net: Rc<RefCell<Net>>,
}

impl Transport for Port {
    fn try_send(&mut self, to: MemberId, words: &Words, len: usize) -> TrySend {
        let mut net = self.net.borrow_mut();
        net.check_touch(self.me, to);
        let i = usize::from(self.me) * net.n + usize::from(to);
        let lockstep = net.lockstep;
        if net.stopped[i] {
            return TrySend::Broken;
        }
        if net.queues[i].len() + net.staged[i].len() >= SLOTS {
            return TrySend::Full;
        }
        let q = if lockstep {
            &mut net.staged[i]
        } else {
            &mut net.queues[i]
        };
        q.push_back((*words, len));
        TrySend::Sent
    }
    fn try_recv(&mut self, from: MemberId) -> Option<(Words, usize)> {
        let mut net = self.net.borrow_mut();
        net.check_touch(self.me, from);
        net.q(from, self.me).pop_front()
    }
    fn reattach(&mut self, member: MemberId) -> bool {
        let mut net = self.net.borrow_mut();
        if net.reattach_failures > 0 {
            net.reattach_failures -= 1;
            return false;
        }
        net.reattached[usize::from(member)] += 1;
        true
    }
}

#[derive(Debug)]
struct Page {
    me: usize,
    net: Rc<RefCell<Net>>,
}

impl MembershipSource for Page {
    fn epoch(&self) -> u64 {
        let mut net = self.net.borrow_mut();
        let epoch = net.page.epoch;
        if let Some(m) = net.kill_after_check.take() {
            net.kill(m, false);
        }
        epoch
    }
    fn read(&self) -> Option<Membership> {
        Some(self.net.borrow().page)
    }
    fn ack(&mut self, epoch: u64) {
        let mut net = self.net.borrow_mut();
        let a = &mut net.page.members[self.me].acked_epoch;
        *a = (*a).max(epoch);
    }
}

type Mon = Monitor<Port, Page>;

/// A `replica`-like driver: member `me` proposes its script, keeping at
/// most `window` own updates in flight, up to `stop_at` of them.
#[derive(Debug)]
struct Driver {
    mon: Mon,
    next: u32,
    committed: u32,
    stop_at: u32,
    caught_up: bool,
}

fn monitor(net: &Rc<RefCell<Net>>, topo: &Topology, me: usize, restarted: bool) -> Mon {
    monitor_with(net, topo, me, restarted, Config::default())
}

fn monitor_with(
    net: &Rc<RefCell<Net>>,
    topo: &Topology,
    me: usize,
    restarted: bool,
    cfg: Config,
) -> Mon {
    let id = MemberId::try_from(me).unwrap();
    let port = Port {
        me: id,
        net: net.clone(),
    };
    let page = Page {
        me,
        net: net.clone(),
    };
    Monitor::new(id, topo.clone(), cfg, port, page, restarted).expect("a monitor")
}

impl Driver {
    fn new(net: &Rc<RefCell<Net>>, topo: &Topology, me: usize, stop_at: u32) -> Self {
        Driver {
            mon: monitor(net, topo, me, false),
            next: 1,
            committed: 0,
            stop_at,
            caught_up: true,
        }
    }

    /// One step: poll, take events, propose what the window allows.
    fn step(&mut self, window: u32) {
        self.mon.poll();
        while let Some(e) = self.mon.poll_event() {
            match e {
                Event::Committed { origin_seq } => self.committed = self.committed.max(origin_seq),
                Event::CaughtUp => {
                    self.caught_up = true;
                    self.next = self.mon.protocol().state().dedup(self.mon.id()) + 1;
                    self.committed = self.next - 1;
                }
                _ => {}
            }
        }
        while self.caught_up
            && self.next <= self.stop_at
            && self.next - 1 - self.committed < window
            && self.mon.protocol().phase() == replication::Phase::Open
        {
            let oseq = self
                .mon
                .propose(op(self.mon.id(), self.next))
                .expect("propose");
            assert_eq!(oseq, self.next);
            self.next += 1;
        }
    }
}

fn run(
    drivers: &mut [Option<Driver>],
    window: u32,
    steps: usize,
    done: impl Fn(&[Option<Driver>]) -> bool,
) {
    for _ in 0..steps {
        if done(drivers) {
            return;
        }
        for d in drivers.iter_mut().flatten() {
            d.step(window);
        }
    }
    panic!("not done after {steps} steps");
}

fn settled(drivers: &[Option<Driver>], counts: &[u32]) -> bool {
    drivers.iter().flatten().all(|d| {
        let m = d.mon.protocol();
        all_applied(m.state(), counts)
            && m.commit() == m.logged()
            && m.applied() == m.logged()
            && m.pending() == 0
            && m.uncommitted() == 0
            && d.mon.backlog() == 0
    })
}

fn sent(d: &Driver, k: u8) -> u64 {
    d.mon.protocol().stats().sent_by_kind[usize::from(k)]
}

fn group(topo: &Topology, updates: u32) -> (Rc<RefCell<Net>>, Vec<Option<Driver>>) {
    let n = topo.size();
    let net = Net::new(n);
    let drivers = (0..n)
        .map(|m| Some(Driver::new(&net, topo, m, updates)))
        .collect();
    (net, drivers)
}

#[test]
fn every_member_ends_with_the_reference_and_each_update_costs_two_messages_per_edge() {
    let cases = [
        (Topology::hypercube(1).unwrap(), 1u32),
        (Topology::line(3).unwrap(), 2),
        (Topology::hypercube(2).unwrap(), 2),
        (Topology::hypercube(3).unwrap(), 3),
    ];
    for (topo, height) in cases {
        let n = topo.size();
        let updates = 50;
        let (_net, mut drivers) = group(&topo, updates);
        let counts = alloc::vec![updates; n];
        run(&mut drivers, 4, 20_000, |d| settled(d, &counts));
        let total = u64::from(updates) * n as u64;
        let edges = n as u64 - 1;
        let mut entries = 0;
        let mut acks = 0;
        let mut hops = 0;
        for d in drivers.iter().flatten() {
            assert_eq!(
                d.mon.protocol().state().state_hash(),
                reference_hash(&counts)
            );
            assert_eq!(d.committed, updates);
            assert_eq!(d.mon.protocol().commit(), total);
            entries += sent(d, kind::ENTRY);
            acks += sent(d, kind::ACK);
            hops = hops.max(d.mon.protocol().stats().max_hops);
            assert_eq!(d.mon.stats().rejected, 0);
            assert_eq!(d.mon.stats().acks, 1, "one MEMBERSHIP_ACK, at boot");
        }
        assert_eq!(
            entries,
            edges * total,
            "n = {n}: one ENTRY per tree edge per update"
        );
        assert_eq!(
            acks,
            edges * total,
            "n = {n}: one ACK per tree edge per update"
        );
        assert_eq!(
            u32::from(hops),
            height,
            "n = {n}: the deepest path is the tree height"
        );
    }
}

#[test]
fn full_channels_keep_messages_in_order() {
    let topo = Topology::hypercube(2).unwrap();
    let (_net, mut drivers) = group(&topo, 80);
    let counts = [80u32; 4];
    // A window far beyond the 4 slots of a channel.
    run(&mut drivers, 64, 20_000, |d| settled(d, &counts));
    let backlogged: u64 = drivers
        .iter()
        .flatten()
        .map(|d| d.mon.stats().backlogged)
        .sum();
    assert!(backlogged > 0, "some sends found their channel full");
    for d in drivers.iter().flatten() {
        assert_eq!(
            d.mon.protocol().state().state_hash(),
            reference_hash(&counts)
        );
        assert_eq!(d.mon.stats().rejected, 0);
    }
}

/// Member `victim` stops proposing after `k` updates, and dies once they
/// are committed.
fn kill_after_commit(
    drivers: &mut [Option<Driver>],
    net: &Rc<RefCell<Net>>,
    victim: usize,
    k: u32,
    restarting: bool,
) {
    run(drivers, 4, 20_000, |d| {
        d[victim].as_ref().is_some_and(|v| v.committed >= k)
    });
    drivers[victim] = None;
    net.borrow_mut().kill(victim, restarting);
}

#[test]
fn a_member_death_keeps_its_committed_updates_and_the_survivors_finish() {
    for (topo, victim) in [
        (Topology::hypercube(2).unwrap(), 0usize),
        (Topology::hypercube(2).unwrap(), 2),
        (Topology::hypercube(3).unwrap(), 0),
        (Topology::line(3).unwrap(), 2),
    ] {
        let n = topo.size();
        let (updates, k) = (40u32, 13u32);
        let net = Net::new(n);
        let mut drivers: Vec<Option<Driver>> = (0..n)
            .map(|m| {
                Some(Driver::new(
                    &net,
                    &topo,
                    m,
                    if m == victim { k } else { updates },
                ))
            })
            .collect();
        kill_after_commit(&mut drivers, &net, victim, k, false);
        let mut counts = alloc::vec![updates; n];
        counts[victim] = k;
        run(&mut drivers, 4, 40_000, |d| settled(d, &counts));
        for d in drivers.iter().flatten() {
            let m = d.mon.protocol();
            assert_eq!(
                m.state().state_hash(),
                reference_hash(&counts),
                "n = {n}, victim {victim}"
            );
            assert_eq!(m.state().dedup(MemberId::try_from(victim).unwrap()), k);
            assert_eq!(d.mon.stats().epochs, 1);
            assert_eq!(d.mon.stats().acks, 2);
            assert!(d.mon.gone().contains(MemberId::try_from(victim).unwrap()));
            assert!(!m.alive().contains(MemberId::try_from(victim).unwrap()));
        }
    }
}

#[test]
fn a_restarted_member_catches_up_before_it_reads_and_ends_with_the_fault_free_state() {
    for (topo, victim) in [
        (Topology::hypercube(1).unwrap(), 1usize),
        (Topology::hypercube(2).unwrap(), 0),
        (Topology::hypercube(3).unwrap(), 5),
    ] {
        let n = topo.size();
        let (updates, k) = (40u32, 9u32);
        let net = Net::new(n);
        let mut drivers: Vec<Option<Driver>> = (0..n)
            .map(|m| {
                Some(Driver::new(
                    &net,
                    &topo,
                    m,
                    if m == victim { k } else { updates },
                ))
            })
            .collect();
        kill_after_commit(&mut drivers, &net, victim, k, true);
        // The hypervisor restarts it once every survivor acknowledged the death.
        let death = net.borrow().page.epoch;
        run(&mut drivers, 4, 20_000, |_| {
            net.borrow().page.pending_acks(death) == 0
        });
        net.borrow_mut().restart(victim);
        let mon = monitor(&net, &topo, victim, true);
        assert!(matches!(mon.member().read(), Err(Error::NotCaughtUp)));
        drivers[victim] = Some(Driver {
            mon,
            next: 0,
            committed: 0,
            stop_at: updates,
            caught_up: false,
        });
        let counts = alloc::vec![updates; n];
        run(&mut drivers, 4, 40_000, |d| settled(d, &counts));
        for (i, d) in drivers.iter().enumerate() {
            let d = d.as_ref().unwrap();
            let m = d.mon.protocol();
            assert!(m.read().is_ok());
            assert_eq!(
                m.state().state_hash(),
                reference_hash(&counts),
                "n = {n}, member {i}"
            );
        }
        // Every live neighbour re-attached to the restarted member once.
        let nbrs = topo.neighbours(MemberId::try_from(victim).unwrap()).len();
        assert_eq!(net.borrow().reattached[victim] as usize, nbrs);
        assert_eq!(drivers[victim].as_ref().unwrap().committed, updates);
    }
}

#[test]
fn shootdowns_reach_everyone_with_two_messages_per_edge() {
    let topo = Topology::hypercube(3).unwrap();
    let (_net, mut drivers) = group(&topo, 0);
    run(&mut drivers, 1, 1000, |d| {
        d.iter()
            .flatten()
            .all(|x| x.mon.protocol().phase() == replication::Phase::Open)
    });
    let rounds = 5;
    let mut invalidated = [0u32; 8];
    for r in 0..rounds {
        let id = drivers[0]
            .as_mut()
            .unwrap()
            .mon
            .shootdown(0x1000 * (r + 1))
            .unwrap();
        let mut done = false;
        for _ in 0..1000 {
            for (i, d) in drivers.iter_mut().enumerate() {
                let d = d.as_mut().unwrap();
                d.mon.poll();
                while let Some(e) = d.mon.poll_event() {
                    match e {
                        Event::Invalidate { .. } => invalidated[i] += 1,
                        Event::ShootdownDone { id: done_id } if done_id == id => done = true,
                        _ => {}
                    }
                }
            }
            if done {
                break;
            }
        }
        assert!(done, "shootdown {r} done");
    }
    assert_eq!(invalidated, [u32::try_from(rounds).unwrap(); 8]);
    let msgs: u64 = drivers
        .iter()
        .flatten()
        .map(|d| sent(d, kind::INVALIDATE) + sent(d, kind::INVALIDATE_ACK))
        .sum();
    assert_eq!(msgs, 2 * 7 * rounds);
}

/// Messages of `kinds` sent by the live members so far.
fn sent_all(drivers: &[Option<Driver>], kinds: &[u8]) -> u64 {
    drivers
        .iter()
        .flatten()
        .map(|d| kinds.iter().map(|&k| sent(d, k)).sum::<u64>())
        .sum()
}

/// Message rounds until `done`: in each lock-step round every live member
/// polls once, then what was sent in it becomes receivable. The first
/// round only reads the status page and sends (the page tells everyone at
/// once: 0 rounds to detect), so the count returned is the rounds of
/// messages after it, the protocol's rounds.
fn rounds_until(
    drivers: &mut [Option<Driver>],
    net: &Rc<RefCell<Net>>,
    done: impl Fn(&[Option<Driver>]) -> bool,
) -> u32 {
    for round in 0..1000u32 {
        if done(drivers) {
            return round.saturating_sub(1);
        }
        for d in drivers.iter_mut().flatten() {
            d.step(0);
        }
        net.borrow_mut().tick();
    }
    panic!("not done in 1000 rounds");
}

const VIEW: [u8; 3] = [kind::STATE, kind::READY, kind::OPEN];

/// Fail-over and catch-up, counted in lock-step rounds and messages (the
/// figures in docs/replication.md, "The monitor").
#[test]
fn fail_over_and_catch_up_cost_a_few_tree_depths() {
    // (topology, victim, survivors' tree height h')
    for (topo, victim, h) in [
        (Topology::hypercube(2).unwrap(), 0usize, 2u32),
        (Topology::hypercube(3).unwrap(), 0, 3),
        (Topology::hypercube(3).unwrap(), 7, 3),
    ] {
        let n = topo.size();
        let updates = 30;
        let (net, mut drivers) = group(&topo, updates);
        let counts = alloc::vec![updates; n];
        run(&mut drivers, 4, 20_000, |d| settled(d, &counts));
        // The death: 0 rounds to detect (the page), then the view change.
        net.borrow_mut().lockstep = true;
        drivers[victim] = None;
        let before = sent_all(&drivers, &VIEW);
        let all_before = drivers
            .iter()
            .flatten()
            .map(|d| d.mon.stats().sent)
            .sum::<u64>();
        net.borrow_mut().kill(victim, true);
        let epoch = net.borrow().page.epoch;
        let open = |d: &[Option<Driver>]| {
            d.iter().flatten().all(|x| {
                x.mon.protocol().phase() == replication::Phase::Open
                    && u64::from(x.mon.protocol().epoch()) == epoch
            })
        };
        let rounds = rounds_until(&mut drivers, &net, open);
        let view = sent_all(&drivers, &VIEW) - before;
        let survivors = n as u64 - 1;
        let all = drivers
            .iter()
            .flatten()
            .map(|d| d.mon.stats().sent)
            .sum::<u64>()
            - all_before;
        assert_eq!(
            view,
            4 * (survivors - 1),
            "STATE both ways, READY up, OPEN down per edge"
        );
        assert!(
            rounds <= 1 + 2 * h,
            "n = {n}, victim {victim}: {rounds} rounds"
        );
        std::eprintln!(
            "fail-over n = {n} victim {victim}: {rounds} rounds, {view} view-change messages, {all} in all until every survivor is open"
        );
        // Catch-up: the victim comes back; its log comes as entries (retained).
        run(&mut drivers, 4, 20_000, |d| settled(d, &counts));
        let death = net.borrow().page.epoch;
        rounds_until(&mut drivers, &net, |_| {
            net.borrow().page.pending_acks(death) == 0
        });
        net.borrow_mut().restart(victim);
        {
            let label = "entries";
            let mon = monitor(&net, &topo, victim, true);
            drivers[victim] = Some(Driver {
                mon,
                next: 0,
                committed: 0,
                stop_at: updates,
                caught_up: false,
            });
            let before = sent_all(&drivers, &[kind::ENTRY]);
            let snaps = sent_all(
                &drivers,
                &[kind::SNAP_BEGIN, kind::SNAP_CHUNK, kind::SNAP_END],
            );
            let rounds = rounds_until(&mut drivers, &net, |d| {
                d[victim].as_ref().is_some_and(|v| v.caught_up)
            });
            let entries = sent_all(&drivers, &[kind::ENTRY]) - before;
            let snaps = sent_all(
                &drivers,
                &[kind::SNAP_BEGIN, kind::SNAP_CHUNK, kind::SNAP_END],
            ) - snaps;
            let depth = drivers[victim]
                .as_ref()
                .unwrap()
                .mon
                .protocol()
                .tree()
                .depth(MemberId::try_from(victim).unwrap());
            std::eprintln!(
                "catch-up ({label}) n = {n} member {victim} at depth {depth}: {rounds} rounds, \
                 {entries} ENTRY, {snaps} snapshot messages for a log of {}",
                u64::from(updates) * n as u64
            );
            // The log is retained: every tree neighbour of the joiner (all are
            // ahead of it) repairs it with the entries themselves, no snapshot;
            // a channel of SLOTS slots carries at least half as many a round.
            let log = u64::from(updates) * n as u64;
            let me = MemberId::try_from(victim).unwrap();
            let nbrs = drivers[victim]
                .as_ref()
                .unwrap()
                .mon
                .protocol()
                .tree()
                .neighbours(me)
                .len();
            assert_eq!(entries, log * nbrs as u64);
            assert_eq!(snaps, 0);
            let flow = u32::try_from(log.div_ceil(SLOTS as u64)).unwrap();
            assert!(
                rounds <= 1 + 2 * h + depth + 2 * flow,
                "catch-up in {rounds} rounds"
            );
        }
    }
}

#[test]
fn a_message_claiming_an_epoch_the_page_does_not_show_is_refused() {
    let topo = Topology::hypercube(1).unwrap();
    let (net, mut drivers) = group(&topo, 0);
    run(&mut drivers, 1, 100, |d| {
        d.iter()
            .flatten()
            .all(|x| x.mon.protocol().phase() == replication::Phase::Open)
    });
    // A well-formed COMMIT of epoch 9 from member 1, while the page says 1.
    let msg = replication::Message::Commit {
        epoch: 9,
        commit: 0,
    };
    let frame = msg.encode();
    let words = bytes_to_words(frame.as_bytes());
    net.borrow_mut()
        .q(1, 0)
        .push_back((words, frame.as_bytes().len()));
    let d = drivers[0].as_mut().unwrap();
    d.mon.poll();
    assert_eq!(d.mon.stats().future, 1);
    assert_eq!(d.mon.stats().rejected, 1);
    assert_eq!(d.mon.protocol().epoch(), 1);
    assert_eq!(d.mon.stats().epochs, 0);
}

/// A COMMIT of `epoch` as channel words.
fn commit_msg(epoch: u32) -> (Words, usize) {
    let frame = replication::Message::Commit { epoch, commit: 0 }.encode();
    (bytes_to_words(frame.as_bytes()), frame.as_bytes().len())
}

#[test]
fn a_death_learnt_from_a_message_mid_poll_stops_reads_of_later_neighbours() {
    // 0 - 1 - 2: member 1 polls 0 before 2.
    let topo = Topology::line(3).unwrap();
    let (net, mut drivers) = group(&topo, 0);
    run(&mut drivers, 1, 100, |d| {
        d.iter()
            .flatten()
            .all(|x| x.mon.protocol().phase() == replication::Phase::Open)
    });
    // Member 2 queued messages for 1; right after 1's cheap epoch check the
    // hypervisor publishes 2's death (epoch 2), and member 0, which saw it
    // first, already wrote a message of epoch 2.
    for _ in 0..3 {
        net.borrow_mut().q(2, 1).push_back(commit_msg(1));
    }
    net.borrow_mut().q(0, 1).push_back(commit_msg(2));
    net.borrow_mut().kill_after_check = Some(2);
    drivers[2] = None;
    let d = drivers[1].as_mut().unwrap();
    // `check_touch` panics if 1 reads or writes 2's channel after its ack.
    d.mon.poll();
    assert_eq!(d.mon.stats().future, 1);
    assert_eq!(d.mon.stats().epochs, 1);
    assert_eq!(net.borrow().page.members[1].acked_epoch, 2);
    assert_eq!(net.borrow_mut().q(2, 1).len(), 3, "nothing read from 2");
    assert!(net.borrow_mut().q(1, 2).is_empty(), "nothing written to 2");
    for _ in 0..10 {
        d.mon.poll();
    }
    assert_eq!(net.borrow_mut().q(2, 1).len(), 3);
}

#[test]
fn a_stopped_channel_breaks_its_link_and_drops_what_goes_there() {
    let topo = Topology::hypercube(1).unwrap();
    let (net, mut drivers) = group(&topo, 0);
    run(&mut drivers, 1, 100, |d| {
        d.iter()
            .flatten()
            .all(|x| x.mon.protocol().phase() == replication::Phase::Open)
    });
    // Member 0 corrupted the channel to it: member 1's sends find it stopped.
    net.borrow_mut().stopped[2] = true;
    let d = drivers[1].as_mut().unwrap();
    let sent = d.mon.stats().sent;
    for i in 1..=5 {
        d.mon.propose(op(1, i)).unwrap();
        d.mon.poll();
    }
    let s = *d.mon.stats();
    assert_eq!(s.broken, 1, "broken once, then left alone");
    assert_eq!(s.overflows, 0);
    assert_eq!(s.sent, sent);
    assert_eq!(s.dropped, 5, "every PROPOSE dropped");
    assert!(d.mon.broken_links().contains(0));
    assert_eq!(d.mon.backlog(), 0);
}

#[test]
fn a_neighbour_that_stops_reading_costs_at_most_the_queue_limit() {
    let topo = Topology::hypercube(1).unwrap();
    let net = Net::new(2);
    let cfg = Config {
        window: 4,
        retain: 8,
        max_snapshot: 480,
    };
    let mut m0 = monitor_with(&net, &topo, 0, false, cfg);
    let mut m1 = monitor_with(&net, &topo, 1, false, cfg);
    for _ in 0..20 {
        m0.poll();
        m1.poll();
    }
    assert_eq!(m1.protocol().phase(), replication::Phase::Open);
    // Member 0 (the leader) stops reading; member 1 keeps proposing.
    let limit = m1.queue_limit();
    assert_eq!(limit, 8 + 4 * 34 + 10 + 2 + 4 * 32);
    let mut most = 0;
    for i in 1..=u32::try_from(limit).unwrap() + 50 {
        m1.propose(op(1, i)).unwrap();
        m1.poll();
        most = most.max(m1.backlog());
    }
    let s = *m1.stats();
    assert_eq!(most, limit, "the queue never held more than the limit");
    assert_eq!(s.overflows, 1);
    assert_eq!(s.broken, 1);
    assert!(m1.broken_links().contains(0));
    assert_eq!(m1.backlog(), 0, "the broken link's queue is dropped");
    assert_eq!(net.borrow_mut().q(1, 0).len(), SLOTS);
}

#[test]
fn a_failed_reattach_is_retried_and_the_restarted_member_catches_up() {
    let topo = Topology::hypercube(2).unwrap();
    let (updates, k, victim) = (20u32, 5u32, 3usize);
    let net = Net::new(4);
    let mut drivers: Vec<Option<Driver>> = (0..4)
        .map(|m| {
            Some(Driver::new(
                &net,
                &topo,
                m,
                if m == victim { k } else { updates },
            ))
        })
        .collect();
    kill_after_commit(&mut drivers, &net, victim, k, true);
    let death = net.borrow().page.epoch;
    run(&mut drivers, 4, 20_000, |_| {
        net.borrow().page.pending_acks(death) == 0
    });
    // The first re-attachment (of the restarted member's two neighbours) fails.
    net.borrow_mut().reattach_failures = 1;
    net.borrow_mut().restart(victim);
    drivers[victim] = Some(Driver {
        mon: monitor(&net, &topo, victim, true),
        next: 0,
        committed: 0,
        stop_at: updates,
        caught_up: false,
    });
    let counts = alloc::vec![updates; 4];
    run(&mut drivers, 4, 40_000, |d| settled(d, &counts));
    let failed: u64 = drivers
        .iter()
        .flatten()
        .map(|d| d.mon.stats().reattach_failed)
        .sum();
    assert_eq!(failed, 1);
    // Both neighbours attached in the end (one at the retry).
    assert_eq!(net.borrow().reattached[victim], 2);
    for d in drivers.iter().flatten() {
        assert_eq!(
            d.mon.protocol().state().state_hash(),
            reference_hash(&counts)
        );
    }
}

#[test]
fn the_default_queue_limit_is_the_documented_one() {
    // docs/replication.md, "Broken links and bounded queues".
    assert_eq!(queue_limit(&Config::default()), 27_352);
}

#[test]
fn a_link_broken_with_a_dead_incarnation_works_again_with_the_next() {
    let topo = Topology::hypercube(1).unwrap();
    let (net, mut drivers) = group(&topo, 0);
    run(&mut drivers, 1, 100, |d| {
        d.iter()
            .flatten()
            .all(|x| x.mon.protocol().phase() == replication::Phase::Open)
    });
    // Member 0 corrupts the channel to it, member 1's PROPOSE breaks the link.
    net.borrow_mut().stopped[2] = true;
    let d1 = drivers[1].as_mut().unwrap();
    d1.stop_at = 3;
    d1.step(4);
    assert!(d1.mon.broken_links().contains(0));
    // Member 0 faults and restarts on fresh channels; member 1's first
    // re-attachment fails.
    drivers[0] = None;
    net.borrow_mut().kill(0, true);
    let death = net.borrow().page.epoch;
    run(&mut drivers, 4, 1000, |_| {
        net.borrow().page.pending_acks(death) == 0
    });
    net.borrow_mut().stopped[2] = false;
    net.borrow_mut().reattach_failures = 1;
    net.borrow_mut().restart(0);
    drivers[0] = Some(Driver {
        mon: monitor(&net, &topo, 0, true),
        next: 0,
        committed: 0,
        stop_at: 0,
        caught_up: false,
    });
    let counts = [0u32, 3];
    run(&mut drivers, 4, 20_000, |d| settled(d, &counts));
    let d1 = drivers[1].as_ref().unwrap();
    assert!(d1.mon.broken_links().is_empty());
    assert_eq!(d1.mon.stats().reattach_failed, 1);
    for d in drivers.iter().flatten() {
        assert_eq!(
            d.mon.protocol().state().state_hash(),
            reference_hash(&counts)
        );
    }
}
