//! Property tests: proptest generates schedules (a topology, a configuration and a list of
//! choices that `common::pick` turns into possible actions, crashes and restarts included)
//! and shrinks a failing one to a short list of choices.

mod common;

use common::{pick, Cluster};
use proptest::prelude::*;
use replication::{Config, Topology};

fn topology(i: u8) -> Topology {
    match i % 6 {
        0 => Topology::line(2).unwrap(),
        1 => Topology::ring(3).unwrap(),
        2 => Topology::line(3).unwrap(),
        3 => Topology::hypercube(2).unwrap(),
        4 => Topology::star(5, 1).unwrap(),
        _ => Topology::hypercube(3).unwrap(),
    }
}

fn config(small: bool) -> Config {
    if small {
        Config {
            window: 1,
            retain: 0,
            max_snapshot: 1 << 16,
        }
    } else {
        Config::default()
    }
}

fn run(topo: u8, small: bool, choices: &[u64]) -> Result<(), String> {
    let mut c = Cluster::new(topology(topo), config(small));
    for (i, &x) in choices.iter().enumerate() {
        let a = pick(&c, x, true);
        c.step(a).map_err(|e| format!("step {i} {a:?}: {e}"))?;
    }
    c.quiesce()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_schedule_keeps_the_invariants(
        topo in 0u8..6,
        small in any::<bool>(),
        choices in proptest::collection::vec(any::<u64>(), 0..400),
    ) {
        let r = run(topo, small, &choices);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }

    #[test]
    fn fault_heavy_schedules(
        topo in 0u8..6,
        // Biased towards the crash/restart band of `pick` (choice % 100 < 5).
        choices in proptest::collection::vec(
            prop_oneof![3 => any::<u64>(), 1 => (0u64..1 << 20).prop_map(|x| x * 100 + x % 5)],
            0..300,
        ),
    ) {
        let r = run(topo, true, &choices);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}
