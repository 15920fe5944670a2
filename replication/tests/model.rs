//! Exhaustive model check of small configurations (three members: two updates and a crash;
//! one update, a crash and a restart; a shootdown and a crash on a line): every
//! interleaving of deliveries, proposals, flushes, crashes, restarts and shootdowns is
//! explored by depth-first search over the simulator's states, deduplicated by
//! fingerprint; every invariant of `common` is checked in every state reached, and every
//! terminal state (nothing left to deliver, flush or inject) must be a correct quiescent
//! end: all live members open, equal to the sequential reference, all their updates
//! committed. Hand-written rather than `stateright` so it runs the very same simulator.

mod common;

use common::{op_for, Action, Cluster};
use replication::{Config, MemberId, Topology};
use std::collections::HashSet;

#[derive(Clone)]
struct Budget {
    proposals: Vec<MemberId>,
    crashes: u32,
    restarts: u32,
    shootdowns: u32,
}

fn actions(c: &Cluster, b: &Budget) -> Vec<(Action, Budget)> {
    let mut v = Vec::new();
    for (a, t) in c.ready_links() {
        v.push((Action::Deliver(a, t), b.clone()));
    }
    if let Some((&m, rest)) = b.proposals.split_first() {
        if c.member(m).is_some_and(|x| x.is_caught_up()) {
            let mut nb = b.clone();
            nb.proposals = rest.to_vec();
            v.push((Action::Propose(m, op_for(m, rest.len() as u64 + 2)), nb));
        }
    }
    for m in 0..c.size() as MemberId {
        if b.crashes > 0 && c.can_crash(m) {
            let mut nb = b.clone();
            nb.crashes -= 1;
            v.push((Action::Crash(m), nb));
        }
        if b.restarts > 0 && c.can_restart(m) {
            let mut nb = b.clone();
            nb.restarts -= 1;
            v.push((Action::Restart(m), nb));
        }
        if b.shootdowns > 0 && c.alive.contains(m) {
            let mut nb = b.clone();
            nb.shootdowns -= 1;
            v.push((Action::Shootdown(m, 0x5000), nb));
        }
        if c.flush_useful(m) {
            v.push((Action::Flush(m), b.clone()));
        }
    }
    v
}

fn explore(topo: Topology, cfg: Config, budget: Budget) -> (usize, usize) {
    let start = Cluster::new(topo, cfg);
    let mut seen = HashSet::new();
    let mut stack = vec![(start, budget, Vec::<Action>::new())];
    let (mut states, mut terminal) = (0, 0);
    while let Some((c, b, trace)) = stack.pop() {
        states += 1;
        if states % 20_000 == 0 {
            eprintln!("  {states} states, {} on the stack", stack.len());
        }
        let next = actions(&c, &b);
        if next.is_empty() {
            terminal += 1;
            if let Err(e) = c.check_end() {
                panic!("terminal state after {trace:?}: {e}");
            }
            continue;
        }
        for (a, nb) in next {
            let mut n = c.clone();
            if let Err(e) = n.step(a) {
                panic!("after {trace:?} then {a:?}: {e}");
            }
            let key = (
                n.fingerprint(),
                nb.proposals.len(),
                nb.crashes,
                nb.restarts,
                nb.shootdowns,
            );
            if seen.insert(key) {
                let mut t = trace.clone();
                t.push(a);
                stack.push((n, nb, t));
            }
        }
    }
    (states, terminal)
}

fn cfg() -> Config {
    // No retained log: a restarted member always needs a snapshot.
    Config {
        window: 4,
        retain: 0,
        max_snapshot: 1 << 12,
    }
}

#[test]
fn three_members_one_update_one_crash_one_restart() {
    let t = std::time::Instant::now();
    let (states, terminal) = explore(
        Topology::ring(3).unwrap(),
        cfg(),
        Budget {
            proposals: vec![2],
            crashes: 1,
            restarts: 1,
            shootdowns: 0,
        },
    );
    eprintln!(
        "model ring3 1u+c+r: {states} states, {terminal} terminal, {:?}",
        t.elapsed()
    );
    assert!(states > 1_000);
}

#[test]
fn three_members_two_updates_one_crash() {
    let t = std::time::Instant::now();
    let (states, terminal) = explore(
        Topology::ring(3).unwrap(),
        cfg(),
        Budget {
            proposals: vec![2, 1],
            crashes: 1,
            restarts: 0,
            shootdowns: 0,
        },
    );
    eprintln!(
        "model ring3 2u+c: {states} states, {terminal} terminal, {:?}",
        t.elapsed()
    );
    assert!(states > 1_000);
}

#[test]
fn line_of_three_shootdown_one_crash() {
    let t = std::time::Instant::now();
    let (states, terminal) = explore(
        Topology::line(3).unwrap(),
        cfg(),
        Budget {
            proposals: vec![],
            crashes: 1,
            restarts: 0,
            shootdowns: 1,
        },
    );
    eprintln!(
        "model line3: {states} states, {terminal} terminal, {:?}",
        t.elapsed()
    );
    assert!(states > 1_000);
}
