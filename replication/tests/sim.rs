//! The deterministic simulator over many seeds: random schedules of deliveries, proposals,
//! shootdowns, crashes and restarts on several topologies, every invariant checked after
//! every step (see `common`), then quiescence and the sequential reference. Half the runs
//! tell survivors of a new epoch one by one (or when a newer message reaches them), as a
//! monitor polling the status page would. A systematic
//! mode re-runs one schedule crashing each member at each step.

mod common;

use common::{pick, Action, Cluster, Rng};
use replication::{Config, Topology};

fn topologies() -> Vec<(&'static str, Topology)> {
    vec![
        ("line2", Topology::line(2).unwrap()),
        ("line3", Topology::line(3).unwrap()),
        ("ring3", Topology::ring(3).unwrap()),
        ("cube4", Topology::hypercube(2).unwrap()),
        ("star4", Topology::star(4, 2).unwrap()),
        ("ring5", Topology::ring(5).unwrap()),
        ("cube8", Topology::hypercube(3).unwrap()),
        ("ring8", Topology::ring(8).unwrap()),
    ]
}

fn configs() -> [Config; 2] {
    [
        Config::default(),
        // Tiny window and no retained log: backlogs and snapshots all the time.
        Config {
            window: 2,
            retain: 0,
            max_snapshot: 1 << 16,
        },
    ]
}

fn run(
    topo: &Topology,
    cfg: Config,
    lazy: bool,
    seed: u64,
    steps: usize,
) -> Result<Cluster, String> {
    let mut rng = Rng(seed);
    let mut c = Cluster::new(topo.clone(), cfg);
    c.lazy = lazy;
    for step in 0..steps {
        let a = pick(&c, rng.next(), true);
        c.step(a)
            .map_err(|e| format!("seed {seed} step {step} {a:?}: {e}"))?;
    }
    c.quiesce()
        .map_err(|e| format!("seed {seed} at the end: {e}"))?;
    Ok(c)
}

#[test]
fn random_schedules_on_every_topology() {
    let start = std::time::Instant::now();
    let (mut runs, mut commits, mut crashes, mut restarts, mut sds) = (0, 0, 0, 0, 0);
    for (name, topo) in topologies() {
        for (k, cfg) in configs().into_iter().enumerate() {
            for seed in 0..60u64 {
                // Half the runs tell survivors of a new epoch one by one.
                let lazy = (seed + k as u64) % 2 == 1;
                let c = run(&topo, cfg, lazy, seed * 7919 + topo.size() as u64, 400)
                    .unwrap_or_else(|e| panic!("{name} lazy={lazy}: {e}"));
                runs += 1;
                commits += c.committed().len();
                crashes += c.crashes;
                restarts += c.restarts;
                sds += c.shootdowns_done;
            }
        }
    }
    eprintln!(
        "sim: {runs} runs x 400 steps: {commits} updates committed, {crashes} crashes, \
         {restarts} restarts, {sds} shootdowns, {:?}",
        start.elapsed()
    );
    assert!(crashes > 100 && restarts > 100 && commits > 1000);
}

#[test]
fn systematic_crash_of_each_member_at_each_step() {
    let topo = Topology::hypercube(2).unwrap();
    let cfg = Config {
        retain: 1,
        ..Config::default()
    };
    // A fault-free base schedule.
    let mut rng = Rng(42);
    let mut base = Vec::new();
    let mut c = Cluster::new(topo.clone(), cfg);
    for _ in 0..120 {
        let a = pick(&c, rng.next(), false);
        c.step(a).unwrap();
        base.push(rng.0);
    }
    let mut runs = 0;
    for at in 0..base.len() {
        for victim in 0..4u8 {
            let mut c = Cluster::new(topo.clone(), cfg);
            let mut rng = Rng(42);
            for step in 0..base.len() {
                if step == at && c.can_crash(victim) {
                    c.step(Action::Crash(victim)).unwrap();
                }
                if step == at + 40 && c.can_restart(victim) {
                    c.step(Action::Restart(victim)).unwrap();
                }
                let a = pick(&c, rng.next(), false);
                c.step(a)
                    .unwrap_or_else(|e| panic!("crash {victim} at {at}, step {step}: {e}"));
            }
            c.quiesce()
                .unwrap_or_else(|e| panic!("crash {victim} at {at}: {e}"));
            runs += 1;
        }
    }
    assert_eq!(runs, 480);
}

#[test]
fn disconnected_survivors_wait_isolated_and_rejoin() {
    use replication::{Error, Phase};
    let topo = Topology::line(3).unwrap();
    let mut c = Cluster::new(topo, Config::default());
    c.quiesce().unwrap();
    c.step(Action::Propose(2, common::op_for(2, 3))).unwrap();
    c.quiesce().unwrap();
    // Member 1 is the cut vertex: after its death 2 cannot reach the leader.
    assert!(!c.can_crash(1));
    c.step(Action::Crash(1)).unwrap();
    assert_eq!(c.member(2).unwrap().phase(), Phase::Isolated);
    let mut lone = c.member(2).unwrap().clone();
    assert_eq!(lone.propose(common::op_for(2, 4)), Err(Error::Isolated));
    for i in 0..5 {
        c.step(Action::Propose(0, common::op_for(0, i + 2)))
            .unwrap();
    }
    c.settle().unwrap();
    assert_eq!(c.member(0).unwrap().commit(), 6);
    assert_eq!(
        c.member(2).unwrap().applied(),
        1,
        "frozen at its last state"
    );
    // The cut vertex comes back: 2 rejoins through the ordinary view change.
    c.step(Action::Restart(1)).unwrap();
    c.quiesce().unwrap();
    assert_eq!(c.member(2).unwrap().applied(), 6);
    assert_eq!(c.member(2).unwrap().state(), c.member(0).unwrap().state());
}
