//! Property tests: generated valid layouts (groups and fault policies
//! included) are accepted, and round-trip through the binary manifest
//! unchanged; any corruption or truncation of a manifest is rejected.

use std::fmt::Write as _;

use partition_config::manifest::{ArgValue as MArg, Notify as MNotify, OnFault as MOnFault};
use partition_config::{parse_str, ArgValue, Layout, Manifest, Notify, OnFault};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Spec {
    cpus: u16,
    timeout: u32,
    cpu_order: Vec<u16>,
    mem_units: Vec<u64>,
    /// (a, b, log2 slots, ipi)
    channels: Vec<(usize, usize, u32, bool)>,
    workloads: Vec<u8>,
    arg_values: Vec<i64>,
    ports: Vec<u8>,
    explicit_base: bool,
    /// Per partition: 0 = no key, 1 = "stop", 2 = "restart", 3 = "restart"
    /// with `max_restarts`.
    faults: Vec<u8>,
    /// Candidate groups as bitsets of partitions (kept if connected).
    groups: Vec<u8>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (1usize..=8, 0u16..=3).prop_flat_map(|(n, extra)| {
        let cpus = n as u16 + extra;
        (
            Just(cpus),
            1u32..=86_400,
            Just((0..cpus).collect::<Vec<u16>>()).prop_shuffle(),
            prop::collection::vec(1u64..=8, n),
            prop::collection::vec((0..n, 0..n, 1u32..=12, any::<bool>()), 0..=6),
            prop::collection::vec(0u8..=4, n),
            prop::collection::vec(1i64..=100_000_000, n),
            prop::collection::vec(0u8..=2, n),
            any::<bool>(),
            (
                prop::collection::vec(0u8..=3, n),
                prop::collection::vec(any::<u8>(), 0..=3),
            ),
        )
            .prop_map(
                |(
                    cpus,
                    timeout,
                    cpu_order,
                    mem_units,
                    channels,
                    workloads,
                    arg_values,
                    ports,
                    explicit_base,
                    (faults, groups),
                )| Spec {
                    cpus,
                    timeout,
                    cpu_order,
                    mem_units,
                    channels,
                    workloads,
                    arg_values,
                    ports,
                    explicit_base,
                    faults,
                    groups,
                },
            )
    })
}

const ATTACKS: [&str; 3] = ["write-outside", "vmrun", "triple-fault"];

/// Renders a valid layout for `s` (invalid channel pairs are dropped).
fn render(s: &Spec) -> String {
    let n = s.mem_units.len();
    let mut pairs: Vec<(usize, usize, u32, bool)> = Vec::new();
    for &(a, b, log, ipi) in &s.channels {
        if a != b
            && !pairs
                .iter()
                .any(|&(x, y, _, _)| (x, y) == (a, b) || (x, y) == (b, a))
        {
            pairs.push((a, b, log, ipi));
        }
    }
    let has_channel = |i: usize| pairs.iter().any(|&(a, b, _, _)| a == i || b == i);
    let groups = connected_groups(s, &pairs);
    // A partition may restart only if a group holds both ends of each of
    // its channels (`restart-channel-outside-group`).
    let may_restart = |i: usize| {
        pairs
            .iter()
            .filter(|&&(a, b, _, _)| a == i || b == i)
            .all(|&(a, b, _, _)| groups.iter().any(|g| g.contains(&a) && g.contains(&b)))
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "[machine]\ncpus = {}\nmemory = \"2 GiB\"\ntimeout = {}\n",
        s.cpus, s.timeout
    );
    for i in 0..n {
        let _ = writeln!(
            t,
            "[[partition]]\nname = \"p{i}\"\ncpu = {}",
            s.cpu_order[i]
        );
        let _ = writeln!(t, "memory = {}", s.mem_units[i] * 2 * 1024 * 1024);
        if i == 0 && s.explicit_base {
            let _ = writeln!(t, "base = \"1 GiB\"");
        }
        let v = s.arg_values[i];
        // Partitions with a channel all run one talking workload: a
        // `pingpong` or `stream` needs its peers to run the same.
        let talk = if s.timeout.is_multiple_of(2) { 3 } else { 4 };
        let workload = if has_channel(i) { talk } else { s.workloads[i] };
        match (workload, has_channel(i)) {
            (0, _) => t.push_str("workload = \"hello\"\n"),
            (1, _) => {
                let _ = writeln!(t, "workload = \"compute\"\nargs = {{ n = {v} }}");
            }
            (2, _) => {
                let _ = writeln!(
                    t,
                    "workload = \"rogue\"\nargs = {{ attack = \"{}\" }}",
                    ATTACKS[v as usize % 3]
                );
            }
            (3, true) => {
                let _ = writeln!(t, "workload = \"pingpong\"\nargs = {{ rounds = {v} }}");
            }
            (_, true) => t.push_str("workload = \"stream\"\n"),
            (_, false) => t.push_str("workload = \"compute\"\n"),
        }
        let base = 0x1000 + i * 0x100;
        match s.ports[i] {
            1 => {
                let _ = writeln!(t, "ports = [\"{base:#x}-{:#x}\"]", base + 7);
            }
            2 => {
                let _ = writeln!(t, "ports = [\"{base:#x}\", {}]", base + 0x10);
            }
            _ => {}
        }
        match s.faults[i] {
            2 | 3 if !may_restart(i) => t.push_str("on_fault = \"stop\"\n"),
            1 => t.push_str("on_fault = \"stop\"\n"),
            2 => t.push_str("on_fault = \"restart\"\n"),
            3 => {
                let _ = writeln!(t, "on_fault = \"restart\"\nmax_restarts = {}", v % 16 + 1);
            }
            _ => {}
        }
        t.push('\n');
    }
    for (g, members) in groups.into_iter().enumerate() {
        let names: Vec<String> = members.iter().map(|m| format!("\"p{m}\"")).collect();
        let _ = writeln!(
            t,
            "[[group]]\nname = \"g{g}\"\nmembers = [{}]\n",
            names.join(", ")
        );
    }
    for (a, b, log, ipi) in pairs {
        let _ = writeln!(
            t,
            "[[channel]]\nbetween = [\"p{a}\", \"p{b}\"]\nslots = {}\nnotify = \"{}\"\n",
            1u32 << log,
            if ipi { "ipi" } else { "poll" }
        );
    }
    t
}

/// The candidate groups of `s` with at least two members that the channels
/// among them connect, members listed in reverse (the layout's order must
/// not matter).
fn connected_groups(s: &Spec, pairs: &[(usize, usize, u32, bool)]) -> Vec<Vec<usize>> {
    let n = s.mem_units.len();
    let mut out = Vec::new();
    for &set in &s.groups {
        let members: Vec<usize> = (0..n).filter(|i| set & (1 << i) != 0).collect();
        if members.len() < 2 {
            continue;
        }
        let mut reached = vec![members[0]];
        let mut grew = true;
        while grew {
            grew = false;
            for &(a, b, _, _) in pairs {
                for (x, y) in [(a, b), (b, a)] {
                    if reached.contains(&x) && members.contains(&y) && !reached.contains(&y) {
                        reached.push(y);
                        grew = true;
                    }
                }
            }
        }
        if reached.len() == members.len() {
            out.push(members.into_iter().rev().collect());
        }
    }
    out
}

fn assert_round_trip(layout: &Layout, bytes: &[u8]) {
    let m = Manifest::decode(bytes).expect("encoded manifest decodes");
    assert_eq!(m.len(), bytes.len());
    let machine = m.machine();
    assert_eq!(machine.cpus, layout.machine.cpus);
    assert_eq!(machine.memory, layout.machine.memory);
    assert_eq!(machine.timeout_secs, layout.machine.timeout_secs);
    assert_eq!(m.kernel_count(), layout.kernels.len());
    assert_eq!(m.partition_count(), layout.partitions.len());
    for (p, q) in layout.partitions.iter().zip(m.partitions()) {
        assert_eq!(p.name, q.name);
        assert_eq!(p.cpu, q.cpu);
        assert_eq!(p.workload, q.workload);
        assert_eq!(p.kernel, usize::from(q.kernel));
        assert_eq!(p.region.base, q.host_base);
        assert_eq!(p.region.size, q.memory_size);
        let on_fault = match p.on_fault {
            OnFault::Stop => MOnFault::Stop,
            OnFault::Restart => MOnFault::Restart,
        };
        assert_eq!((on_fault, p.max_restarts), (q.on_fault, q.max_restarts));
        let ports: Vec<(u16, u16)> = p.ports.iter().map(|r| (r.first, r.last)).collect();
        assert_eq!(ports, q.ports().collect::<Vec<_>>());
        let args: Vec<_> = q.args().collect();
        assert_eq!(args.len(), p.args.len());
        for ((k, v), a) in p.args.iter().zip(args) {
            assert_eq!(k, a.key);
            match (v, a.value) {
                (ArgValue::Integer(x), MArg::Integer(y)) => assert_eq!(*x, y),
                (ArgValue::Bool(x), MArg::Bool(y)) => assert_eq!(*x, y),
                (ArgValue::String(x), MArg::Str(y)) => assert_eq!(x, y),
                other => panic!("argument type changed: {other:?}"),
            }
        }
    }
    assert_eq!(m.channel_count(), layout.channels.len());
    for (c, d) in layout.channels.iter().zip(m.channels()) {
        assert_eq!(c.a, usize::from(d.partition_a));
        assert_eq!(c.b, usize::from(d.partition_b));
        assert_eq!(c.slots, d.slots);
        assert_eq!(c.region.base, d.host_base);
        assert_eq!(c.region.size, d.size);
        assert_eq!(c.vector, d.vector_a);
        assert_eq!(c.vector, d.vector_b);
        let notify = match c.notify {
            Notify::Ipi => MNotify::Ipi,
            Notify::Poll => MNotify::Poll,
        };
        assert_eq!(notify, d.notify);
    }
    assert_eq!(m.group_count(), layout.groups.len());
    for (g, h) in layout.groups.iter().zip(m.groups()) {
        assert_eq!(g.name, h.name);
        let members: Vec<usize> = h.members().map(usize::from).collect();
        assert_eq!(g.members, members);
        let links: Vec<(usize, u8, u8)> = h
            .links()
            .map(|l| (usize::from(l.channel), l.a, l.b))
            .collect();
        let expected: Vec<(usize, u8, u8)> =
            g.links.iter().map(|l| (l.channel, l.a, l.b)).collect();
        assert_eq!(links, expected);
        // A member rebuilding the topology from the manifest gets the tree
        // `explain` shows.
        let pairs: Vec<(usize, usize)> = h
            .links()
            .map(|l| (usize::from(l.a), usize::from(l.b)))
            .collect();
        let t = replication::Topology::from_links(h.member_count(), &pairs).expect("topology");
        assert_eq!(Some(t.tree(t.members(), 0)), g.tree());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_layouts_round_trip(s in spec()) {
        let text = render(&s);
        let layout = match parse_str(&text, "generated.toml") {
            Ok(l) => l,
            Err(d) => panic!("generated layout rejected:\n{text}\n{}", d.render_plain()),
        };
        let bytes = layout.encode_manifest();
        assert_round_trip(&layout, &bytes);
        // Deterministic: the same text gives the same bytes.
        let again = parse_str(&text, "generated.toml").map(|l| l.encode_manifest()).ok();
        prop_assert_eq!(again.as_deref(), Some(bytes.as_slice()));
        // Regions are disjoint and inside the partitions' part of RAM.
        let mut regions: Vec<_> = layout.partitions.iter().map(|p| p.region).collect();
        regions.extend(layout.channels.iter().map(|c| c.region));
        for (i, a) in regions.iter().enumerate() {
            prop_assert!(a.base >= 64 << 20 && a.end() <= layout.machine.memory - (16 << 20));
            for b in &regions[i + 1..] {
                prop_assert!(!a.overlaps(b));
            }
        }
    }

    #[test]
    fn any_single_byte_change_is_rejected(s in spec(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let layout = parse_str(&render(&s), "generated.toml").expect("valid");
        let mut bytes = layout.encode_manifest();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(Manifest::decode(&bytes).is_err());
    }

    #[test]
    fn any_truncation_is_rejected(s in spec(), at in any::<prop::sample::Index>()) {
        let layout = parse_str(&render(&s), "generated.toml").expect("valid");
        let bytes = layout.encode_manifest();
        let cut = at.index(bytes.len());
        prop_assert!(Manifest::decode(&bytes[..cut]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Manifest::decode(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        if let Err(d) = parse_str(&text, "arbitrary.toml") {
            prop_assert!(!d.is_empty());
            let _ = d.render_plain();
        }
    }
}

/// The generator does exercise groups and restart policies (so the round
/// trip above checks them): over 256 generated layouts, some have groups and
/// some partitions restart.
#[test]
fn the_generator_makes_groups_and_restarts() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut groups, mut restarts) = (0, 0);
    for _ in 0..256 {
        let s = spec().new_tree(&mut runner).expect("a spec").current();
        let layout = parse_str(&render(&s), "generated.toml").expect("valid");
        groups += layout.groups.len();
        restarts += layout
            .partitions
            .iter()
            .filter(|p| p.on_fault == OnFault::Restart)
            .count();
    }
    assert!(
        groups >= 20 && restarts >= 20,
        "{groups} groups, {restarts} restarts"
    );
}
