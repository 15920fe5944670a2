//! Property tests: proptest generates schedules (a topology, a configuration, whether
//! survivors learn a new epoch at once or one by one, and a list of choices that
//! `common::pick` turns into possible actions, crashes and restarts included) and shrinks a
//! failing one to a short list of choices; and hostile neighbours.

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

fn run(topo: u8, small: bool, lazy: bool, choices: &[u64]) -> Result<(), String> {
    let mut c = Cluster::new(topology(topo), config(small));
    c.lazy = lazy;
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
        lazy in any::<bool>(),
        choices in proptest::collection::vec(any::<u64>(), 0..400),
    ) {
        let r = run(topo, small, lazy, &choices);
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
        let r = run(topo, true, true, &choices);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

/// A message built from a few numbers, so that most of them decode and reach the protocol.
fn message(kind: u8, epoch: u32, a: u64, b: u64, c: u32, d: u8) -> replication::Message {
    use replication::{Message, Op};
    let op = if d.is_multiple_of(2) {
        Op::Put { key: a, value: b }
    } else {
        Op::Delete { key: b }
    };
    match kind % 12 {
        0 => Message::State {
            epoch,
            applied: a,
            commit: b,
        },
        1 => Message::Ready { epoch },
        2 => Message::Open { epoch, upto: a },
        3 => Message::Propose {
            epoch,
            origin: d,
            origin_seq: c,
            op,
        },
        4 => Message::Entry {
            epoch,
            hops: d,
            seq: a,
            commit: b,
            origin: d % 4,
            origin_seq: c,
            op,
        },
        5 => Message::Ack {
            epoch,
            hops: d,
            applied: a,
        },
        6 => Message::Commit { epoch, commit: a },
        7 => Message::SnapBegin {
            epoch,
            seq: a,
            len: c,
        },
        8 => Message::SnapChunk {
            epoch,
            index: c & 0xff_ffff,
            data: [d; 48],
        },
        9 => Message::SnapEnd {
            epoch,
            seq: a,
            checksum: b,
        },
        10 => Message::Invalidate {
            epoch,
            initiator: d,
            id: c,
            addr: a,
        },
        _ => Message::InvalidateAck {
            epoch,
            initiator: d,
            id: c,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A hostile neighbour sends anything (bytes or well-formed messages with extreme
    /// values): the member never panics, and it keeps its bookkeeping sane.
    #[test]
    fn hostile_neighbours_never_make_a_member_panic(
        msgs in proptest::collection::vec(
            (0u8..4, any::<u8>(), 0u32..3, prop_oneof![0u64..4, any::<u64>()],
             prop_oneof![0u64..4, any::<u64>()], prop_oneof![0u32..4, any::<u32>()],
             any::<u8>(), proptest::collection::vec(any::<u8>(), 0..57), any::<bool>()),
            0..200,
        ),
    ) {
        let topo = Topology::hypercube(2).unwrap();
        let mut m = replication::Member::new(1, topo.clone(), Config::default(), 1, topo.members());
        for (from, kind, epoch, a, b, c, d, raw, use_raw) in msgs {
            let _ = if use_raw {
                m.handle_bytes(from, &raw)
            } else {
                m.handle_bytes(from, message(kind, epoch, a, b, c, d).encode().as_bytes())
            };
            while m.poll_send().is_some() {}
            while m.poll_event().is_some() {}
            let _ = m.propose(replication::Op::Put { key: a, value: b });
            let _ = m.shootdown(a);
            m.flush();
            prop_assert!(m.log_base() <= m.applied());
        }
    }
}
