//! Replication end to end (issue #12): groups of `replica` members over
//! their channels, under QEMU TCG (SVM) and Bochs (VMX).
//!
//! - Groups of 2 (pair), 3 (triangle), 4 (square) and 8 (3-cube), the
//!   layouts of `examples/replica-*.toml`, and a ring of 5: every member
//!   reports the same `state_hash`, equal to the sequential reference of
//!   every member's script (`flotilla_rt::replica::script`); exactly one
//!   `ENTRY` per tree edge per update, as many `ACK`s plus at most one per
//!   member still running at each exit (n(n - 1)/2 in all), a `PROPOSE` per
//!   hop from the origin to the leader, `max_rounds` = the tree's height.
//! - Membership, from the run report and each member's result: every
//!   `MEMBERSHIP_ACK` the hypervisor accepted is one the member reports (one
//!   per epoch it adopted; a restarted member's earlier incarnations add
//!   theirs), at most one per incarnation plus one per change the others
//!   caused; no restart waited out its acknowledgements (`ack_timeouts` =
//!   0); the steady state, over every incarnation, exits only for
//!   hypercalls (console, result, exit, those acknowledgements) and the
//!   injected faults.
//! - One member faults after its k-th update committed: under `stop` the
//!   survivors agree, hold its k updates and finish; under `restart` the
//!   new incarnation catches up and every member, it too, ends with the
//!   fault-free hash.
//! - `shootdown`: every member invalidates once per round, 2(n - 1)
//!   messages per shootdown.
//! - Bochs (VMX): the same layouts (2, 3, 8 from the examples, the square,
//!   the ring of 5), a leader death, a restart, shootdowns at n = 4 and 8,
//!   with fewer `updates` than under TCG (an interpreter: these runs are
//!   most of the file's time).
//!
//! Counts are asserted, never timings.

use abi::fault::FaultKind;
use e2e::{
    assert_backend, assert_passed, assert_steady_exits, boot_layout, examples_dir, fail_layout,
    layout, layout_config, layout_file, partition, result_of, Emulator, LayoutOutcome,
};
use flotilla_rt::replica::script::reference_hash;
use partition_config::Layout;

/// Links of a topology over members `0..n` (member i = partition `m<i>`).
fn links(n: usize, topology: &str) -> Vec<(usize, usize)> {
    match topology {
        "cube" => (0..n)
            .flat_map(|a| {
                (0..usize::BITS)
                    .map(move |b| (a, a ^ (1 << b)))
                    .filter(move |&(a, c)| c < n && a < c)
            })
            .collect(),
        "ring" => (0..n)
            .map(|a| (a.min((a + 1) % n), a.max((a + 1) % n)))
            .collect(),
        other => panic!("no topology {other}"),
    }
}

/// A group of `n` `replica` members `m0..m<n-1>` on `topology`, each with
/// `updates`; `victim` = (member, fault_after, on_fault); `extra` (`, key
/// = value ...`) goes into every member's args.
fn group_toml(
    n: usize,
    topology: &str,
    updates: u32,
    victim: Option<(usize, u32, &str)>,
    extra: &str,
) -> String {
    let mut t = format!(
        "[machine]\ncpus = {n}\nmemory = \"512 MiB\"\ntimeout = 300\n\n[defaults]\n\
         memory = \"16 MiB\"\nworkload = \"replica\"\nargs = {{ updates = {updates}{extra} }}\n"
    );
    for i in 0..n {
        t += &format!("\n[[partition]]\nname = \"m{i}\"\ncpu = {i}\n");
        if let Some((v, k, policy)) = victim {
            if v == i {
                t += &format!(
                    "args = {{ updates = {updates}, fault_after = {k}{extra} }}\non_fault = \"{policy}\"\n"
                );
            }
        }
    }
    for (a, b) in links(n, topology) {
        t += &format!("\n[[channel]]\nbetween = [\"m{a}\", \"m{b}\"]\nnotify = \"poll\"\n");
    }
    let members: Vec<String> = (0..n).map(|i| format!("\"m{i}\"")).collect();
    t += &format!(
        "\n[[group]]\nname = \"kv\"\nmembers = [{}]\n",
        members.join(", ")
    );
    t
}

fn names(layout: &Layout) -> Vec<String> {
    layout.partitions.iter().map(|p| p.name.clone()).collect()
}

/// The `updates` argument every partition of `layout` runs with.
fn updates_of(outcome: &LayoutOutcome, layout: &Layout) -> u32 {
    let text = outcome.console();
    let first = &layout.partitions[0].name;
    let marker = format!("partition {first} on cpu");
    let line = text
        .lines()
        .find(|l| l.contains(&marker))
        .unwrap_or_else(|| fail_layout(outcome, "no plan line"));
    let at = line
        .find("updates=")
        .unwrap_or_else(|| fail_layout(outcome, "no updates= in the plan"));
    let digits: String = line[at + 8..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a number")
}

fn sum(outcome: &LayoutOutcome, members: &[String], key: &str) -> u64 {
    members.iter().map(|m| result_of(outcome, m, key)).sum()
}

/// Every member in `members` exited 0 with `state_hash = hash` and saw at
/// most `committed` updates committed, at least one of them all (a member
/// cut off from the leader by the others' exits keeps the commit index it
/// had); every partition of `layout` passes [`assert_membership`].
fn assert_agree(
    outcome: &LayoutOutcome,
    layout: &Layout,
    members: &[String],
    hash: u64,
    committed: u64,
) {
    let most = members
        .iter()
        .map(|m| result_of(outcome, m, "committed"))
        .max();
    if most != Some(committed) {
        fail_layout(
            outcome,
            &format!("the highest commit index is {most:?}, expected {committed}"),
        );
    }
    for m in members {
        let got = result_of(outcome, m, "state_hash");
        if got != hash {
            fail_layout(
                outcome,
                &format!("{m}: state_hash {got:#x}, the reference is {hash:#x}"),
            );
        }
        let c = result_of(outcome, m, "committed");
        if c > committed {
            fail_layout(
                outcome,
                &format!("{m}: committed {c}, expected {committed}"),
            );
        }
    }
    let group = names(layout);
    for m in &group {
        assert_membership(outcome, &group, m, true);
    }
}

/// The membership changes the hypervisor published while partition `me`
/// of `group` ran that were not its own: one per other member's end (exit
/// or fault), two per restart of another member (its death epoch, then its
/// alive epoch). Its own death and alive epochs it never adopts: the dead
/// incarnation is gone, the new one starts in the alive epoch.
fn changes_by_others(outcome: &LayoutOutcome, group: &[String], me: &str) -> u64 {
    group
        .iter()
        .filter(|m| m.as_str() != me)
        .map(|m| 1 + 2 * u64::from(partition(outcome, m).restarts))
        .sum()
}

/// Partition `m` of `group`, through the run report and (when it exited 0)
/// its own result:
///
/// - no restart of it waited out `ACK_WAIT_US` (`ack_timeouts` = 0);
/// - it acknowledged every epoch it adopted (`membership_acks` =
///   `epochs`), and the hypervisor counted exactly those acknowledgements,
///   plus at least one per earlier incarnation (each acknowledged the
///   epoch it joined in); `replica` reports both, `shootdown` neither
///   (`results` = false);
/// - in all, at most one acknowledgement per incarnation plus one per
///   change published by the others ([`changes_by_others`]);
/// - the steady state, over all incarnations, exits only for hypercalls
///   (console lines, those acknowledgements, and the result and exit of
///   the incarnation that exited) and for the faults of the incarnations
///   that wrote outside their RAM (one NPF each).
fn assert_membership(outcome: &LayoutOutcome, group: &[String], m: &str, results: bool) {
    let p = partition(outcome, m);
    if p.ack_timeouts != 0 {
        fail_layout(
            outcome,
            &format!(
                "{m}: {} restart(s) went on without every acknowledgement",
                p.ack_timeouts
            ),
        );
    }
    let incarnations = 1 + u64::from(p.restarts);
    let hv = p.membership_acks;
    if results && p.exited_ok() {
        let guest = result_of(outcome, m, "membership_acks");
        let epochs = result_of(outcome, m, "epochs");
        if guest != epochs {
            fail_layout(
                outcome,
                &format!("{m}: {guest} MEMBERSHIP_ACKs for {epochs} epochs adopted"),
            );
        }
        let earlier = u64::from(p.restarts);
        let ok = if p.restarts == 0 {
            hv == guest
        } else {
            hv >= guest + earlier
        };
        if !ok {
            fail_layout(
                outcome,
                &format!(
                    "{m}: the hypervisor accepted {hv} MEMBERSHIP_ACKs, the last incarnation \
                     made {guest} (after {earlier} earlier incarnation(s))"
                ),
            );
        }
    }
    let bound = incarnations + changes_by_others(outcome, group, m);
    if hv < incarnations || hv > bound {
        fail_layout(
            outcome,
            &format!(
                "{m}: {hv} MEMBERSHIP_ACKs, expected {incarnations} to {bound} (one per \
                 incarnation + one per membership change of the others)"
            ),
        );
    }
    if p.restarts == 0 && p.exited_ok() {
        assert_steady_exits(outcome, m, hv);
        return;
    }
    // Over several incarnations, or ending in a fault: the same rule, by
    // hand (`assert_steady_exits` expects one exited incarnation).
    let faults = p.faults.len() as u64 + u64::from(p.fault.is_some());
    let kinds: Vec<FaultKind> = p.faults.iter().chain(&p.fault).map(|f| f.kind).collect();
    if kinds.iter().any(|k| *k != FaultKind::Npf) {
        fail_layout(outcome, &format!("{m}: faults {kinds:?}, expected NPFs"));
    }
    let mut expected = std::collections::BTreeMap::new();
    let ended = if p.exited_ok() { 2 } else { 0 };
    expected.insert(
        "hypercall".to_string(),
        p.console_lines + p.console_dropped + hv + ended,
    );
    if faults > 0 {
        expected.insert("npf".to_string(), faults);
    }
    let steady = &p.vm_exits.steady;
    let sum: u64 = expected.values().sum();
    if steady.by_reason != expected || steady.total != sum || p.vm_exits.total < sum {
        fail_layout(
            outcome,
            &format!(
                "{m}: steady-state exits {:?} (total {}), expected {expected:?}: console \
                 lines, {hv} MEMBERSHIP_ACKs, {ended} for result and exit, one NPF per fault",
                steady.by_reason, steady.total
            ),
        );
    }
    let printed = outcome.parsed.console_lines.get(m).copied().unwrap_or(0);
    if printed != p.console_lines {
        fail_layout(
            outcome,
            &format!(
                "{m}: the report counts {} console lines, the console shows {printed}",
                p.console_lines
            ),
        );
    }
}

/// A fault-free group: equal hashes equal to the reference, 2(n - 1)
/// messages per update, `max_rounds` = `height`, and a `PROPOSE` per hop
/// from each update's origin up to the leader (`depths`: the sum of the
/// members' depths in the tree).
fn assert_fault_free(outcome: &LayoutOutcome, layout: &Layout, height: u64, depths: u64) {
    assert_passed(outcome);
    let members = names(layout);
    let n = members.len();
    let updates = updates_of(outcome, layout);
    let total = u64::from(updates) * n as u64;
    assert_agree(
        outcome,
        layout,
        &members,
        reference_hash(&vec![updates; n]),
        total,
    );
    let edges = n as u64 - 1;
    let entries = sum(outcome, &members, "entries");
    let acks = sum(outcome, &members, "acks");
    eprintln!(
        "e2e: n = {n}: {total} updates, {entries} ENTRY + {acks} ACK sent, {} PROPOSE, {} \
         view-change messages, {} sent in all",
        sum(outcome, &members, "proposes"),
        sum(outcome, &members, "view_msgs"),
        sum(outcome, &members, "msgs_sent"),
    );
    if entries != edges * total {
        fail_layout(
            outcome,
            &format!(
                "{entries} ENTRY messages, expected one per tree edge per update: {}",
                edges * total
            ),
        );
    }
    // A member that finishes after another exited acknowledges its log
    // once more in the new epoch's view change: at most one extra ACK per
    // member still running at each exit but the new leader (the root sends
    // none), (n - 2) + (n - 3) + ... + 0 = (n - 1)(n - 2)/2.
    let extra = edges * edges.saturating_sub(1) / 2;
    if acks < edges * total || acks > edges * total + extra {
        fail_layout(
            outcome,
            &format!(
                "{acks} ACK messages, expected {} + at most {extra} (view changes after exits)",
                edges * total
            ),
        );
    }
    eprintln!(
        "e2e: n = {n}: {} ACK beyond one per tree edge per update (at most {extra})",
        acks - edges * total
    );
    let proposes = sum(outcome, &members, "proposes");
    if proposes != depths * u64::from(updates) {
        fail_layout(
            outcome,
            &format!("{proposes} PROPOSE messages, expected {depths} x {updates}"),
        );
    }
    let rounds = members
        .iter()
        .map(|m| result_of(outcome, m, "max_rounds"))
        .max();
    if rounds != Some(height) {
        fail_layout(
            outcome,
            &format!("max_rounds {rounds:?}, the tree's height is {height}"),
        );
    }
}

#[test]
fn groups_of_2_3_4_and_8_agree_on_the_reference_state() {
    // (n, tree height, sum of the members' depths)
    for (n, height, depths) in [(2, 1, 1), (3, 1, 2), (4, 2, 4), (8, 3, 12)] {
        let layout = layout_file(&examples_dir().join(format!("replica-{n}.toml")));
        let outcome = boot_layout(&layout_config(layout.clone()));
        assert_fault_free(&outcome, &layout, height, depths);
    }
}

#[test]
fn a_ring_of_5_agrees_on_the_reference_state() {
    let layout = layout(&group_toml(5, "ring", 60, None, ""), "replica-ring-5.toml");
    let outcome = boot_layout(&layout_config(layout.clone()));
    // Ring 0-1-2-3-4-0 from 0: 0 -> 1, 4; 1 -> 2; 4 -> 3: height 2,
    // depths 0 + 1 + 2 + 2 + 1.
    assert_fault_free(&outcome, &layout, 2, 6);
}

/// Member `victim` of an `n`-group on `topology` faults after `k` of
/// `updates` under `stop`: the survivors hold its k updates and agree.
fn stop_case(n: usize, topology: &str, victim: usize, emulator: Emulator) -> LayoutOutcome {
    let (updates, k) = (60, 20);
    let name = format!("replica-{n}-{topology}-stop-{victim}.toml");
    let layout = layout(
        &group_toml(n, topology, updates, Some((victim, k, "stop")), ""),
        &name,
    );
    let config = layout_config(layout.clone())
        .with_emulator(emulator)
        .expect_fault(&format!("m{victim}"), Some(FaultKind::Npf));
    let outcome = boot_layout(&config);
    assert_passed(&outcome);
    let survivors: Vec<String> = names(&layout)
        .into_iter()
        .filter(|m| *m != format!("m{victim}"))
        .collect();
    let mut counts = vec![updates; n];
    counts[victim] = k;
    let committed = u64::from(updates) * (n as u64 - 1) + u64::from(k);
    assert_agree(
        &outcome,
        &layout,
        &survivors,
        reference_hash(&counts),
        committed,
    );
    for m in &survivors {
        if result_of(&outcome, m, "epochs") < 2 {
            fail_layout(&outcome, &format!("{m} never adopted the death epoch"));
        }
    }
    outcome
}

#[test]
fn survivors_of_a_leader_death_agree_and_keep_its_committed_updates() {
    stop_case(4, "cube", 0, Emulator::qemu_tcg());
}

#[test]
fn survivors_of_a_leaf_death_in_a_3_cube_agree_and_keep_its_committed_updates() {
    stop_case(8, "cube", 7, Emulator::qemu_tcg());
}

/// Member `victim` faults after `k` updates under `restart`: it comes
/// back, catches up, proposes the rest, and every member ends with the
/// fault-free hash.
fn restart_case(n: usize, topology: &str, victim: usize, emulator: Emulator) -> LayoutOutcome {
    restart_case_with(n, topology, victim, emulator, "")
}

fn restart_case_with(
    n: usize,
    topology: &str,
    victim: usize,
    emulator: Emulator,
    extra: &str,
) -> LayoutOutcome {
    let (updates, k) = (60, 20);
    let name = format!("replica-{n}-{topology}-restart-{victim}.toml");
    let layout = layout(
        &group_toml(n, topology, updates, Some((victim, k, "restart")), extra),
        &name,
    );
    let outcome = boot_layout(&layout_config(layout.clone()).with_emulator(emulator));
    assert_passed(&outcome);
    let members = names(&layout);
    let total = u64::from(updates) * n as u64;
    assert_agree(
        &outcome,
        &layout,
        &members,
        reference_hash(&vec![updates; n]),
        total,
    );
    let v = format!("m{victim}");
    let p = partition(&outcome, &v);
    let kinds: Vec<FaultKind> = p.faults.iter().map(|f| f.kind).collect();
    if p.restarts != 1 || kinds != [FaultKind::Npf] {
        fail_layout(
            &outcome,
            &format!("{v}: {} restarts, faults {kinds:?}", p.restarts),
        );
    }
    if result_of(&outcome, &v, "incarnation") != 1 {
        fail_layout(&outcome, &format!("{v} should finish in incarnation 1"));
    }
    // The restart waited for every other member's acknowledgement of the
    // death epoch (no timeout, asserted above), then published the alive
    // epoch, which each had to adopt to take the new incarnation's updates:
    // three epochs at least (boot, death, alive).
    for m in members.iter().filter(|m| **m != v) {
        let epochs = result_of(&outcome, m, "epochs");
        if epochs < 3 {
            fail_layout(
                &outcome,
                &format!("{m} adopted {epochs} epoch(s), not the death and the alive epoch"),
            );
        }
    }
    // It caught up with at least the k updates it had committed itself.
    let caught_up_at = result_of(&outcome, &v, "caught_up_at");
    if caught_up_at < u64::from(k) {
        fail_layout(
            &outcome,
            &format!("{v} caught up at entry {caught_up_at} < {k}"),
        );
    }
    eprintln!(
        "e2e: restart of m{victim} in an {n}-{topology}: caught up at entry {caught_up_at}, \
         {} snapshot message(s)",
        sum(&outcome, &members, "snapshot_msgs")
    );
    outcome
}

#[test]
fn a_restarted_inner_member_catches_up_and_ends_with_the_fault_free_state() {
    restart_case(4, "cube", 1, Emulator::qemu_tcg());
}

/// With 8 committed entries retained, the survivors no longer hold the
/// log from position 0 when the victim returns: it catches up from a
/// snapshot sent by its tree neighbour(s), and still ends with the
/// fault-free state.
#[test]
fn a_restarted_member_far_behind_catches_up_from_a_snapshot() {
    let outcome = restart_case_with(4, "cube", 3, Emulator::qemu_tcg(), ", retain = 8");
    let members: Vec<String> = (0..4).map(|i| format!("m{i}")).collect();
    // SNAP_BEGIN, at least one 48-byte chunk, SNAP_END.
    let snaps = sum(&outcome, &members, "snapshot_msgs");
    if snaps < 3 {
        fail_layout(
            &outcome,
            &format!("{snaps} snapshot messages: the joiner did not get a snapshot"),
        );
    }
}

#[test]
fn a_restarted_leader_catches_up_and_ends_with_the_fault_free_state() {
    restart_case(8, "cube", 0, Emulator::qemu_tcg());
}

/// `shootdown` over an `n`-cube, `rounds` rounds from member 0: every
/// member invalidates once per round, 2(n - 1) messages per shootdown, and
/// the steady state exits only for hypercalls.
fn shootdown_case(n: usize, rounds: u64, emulator: Emulator, label: &str) -> LayoutOutcome {
    let text = group_toml(n, "cube", 0, None, "")
        .replace("workload = \"replica\"", "workload = \"shootdown\"")
        .replace(
            "args = { updates = 0 }",
            &format!("args = {{ rounds = {rounds} }}"),
        );
    let layout = layout(&text, &format!("shootdown-{n}.toml"));
    let outcome = boot_layout(&layout_config(layout.clone()).with_emulator(emulator));
    assert_passed(&outcome);
    let members = names(&layout);
    for m in &members {
        if result_of(&outcome, m, "invalidated") != rounds {
            fail_layout(&outcome, &format!("{m} did not invalidate {rounds} times"));
        }
        assert_membership(&outcome, &members, m, false);
    }
    let msgs = sum(&outcome, &members, "shootdown_msgs");
    if msgs != 2 * (n as u64 - 1) * rounds {
        fail_layout(
            &outcome,
            &format!("{msgs} shootdown messages for {rounds} rounds of {n}"),
        );
    }
    let median = result_of(&outcome, "m0", "median_cycles");
    let p99 = result_of(&outcome, "m0", "p99_cycles");
    if median == 0 || p99 < median {
        fail_layout(&outcome, &format!("cycles: median {median}, p99 {p99}"));
    }
    eprintln!(
        "e2e: shootdown n = {n}: {} messages per shootdown, median {median} p99 {p99} TSC \
         cycles ({label})",
        msgs / rounds
    );
    outcome
}

#[test]
fn shootdowns_reach_every_member_with_two_messages_per_tree_edge() {
    for n in [4usize, 8] {
        shootdown_case(n, 40, Emulator::qemu_tcg(), "TCG");
    }
}

// ---- Bochs (VMX): the same layouts, with fewer updates (Bochs is an
// interpreter: these runs dominate the file's time).

fn bochs() -> Emulator {
    Emulator::bochs()
}

/// `examples/replica-<n>.toml` with `updates` per member instead of the
/// example's own.
fn example_with_updates(n: usize, updates: u32) -> Layout {
    let path = examples_dir().join(format!("replica-{n}.toml"));
    let text = std::fs::read_to_string(&path).expect("the example");
    let line = text
        .lines()
        .find(|l| l.starts_with("args = { updates = "))
        .expect("an updates argument in the example");
    let text = text.replace(line, &format!("args = {{ updates = {updates} }}"));
    layout(&text, &format!("bochs-replica-{n}.toml"))
}

#[test]
fn bochs_vmx_groups_of_2_3_and_8_agree_on_the_reference_state() {
    // (n, tree height, sum of the members' depths, updates per member)
    for (n, height, depths, updates) in [(2, 1, 1, 100), (3, 1, 2, 60), (8, 3, 12, 20)] {
        let layout = example_with_updates(n, updates);
        let outcome = boot_layout(&layout_config(layout.clone()).with_emulator(bochs()));
        assert_backend(&outcome, "vmx");
        assert_fault_free(&outcome, &layout, height, depths);
    }
}

#[test]
fn bochs_vmx_a_square_agrees_on_the_reference_state() {
    let layout = layout(&group_toml(4, "cube", 30, None, ""), "bochs-replica-4.toml");
    let outcome = boot_layout(&layout_config(layout.clone()).with_emulator(bochs()));
    assert_backend(&outcome, "vmx");
    assert_fault_free(&outcome, &layout, 2, 4);
}

#[test]
fn bochs_vmx_a_ring_of_5_agrees_on_the_reference_state() {
    let layout = layout(
        &group_toml(5, "ring", 30, None, ""),
        "bochs-replica-ring-5.toml",
    );
    let outcome = boot_layout(&layout_config(layout.clone()).with_emulator(bochs()));
    assert_backend(&outcome, "vmx");
    assert_fault_free(&outcome, &layout, 2, 6);
}

#[test]
fn bochs_vmx_survivors_of_a_leader_death_agree() {
    let outcome = stop_case(4, "cube", 0, bochs());
    assert_backend(&outcome, "vmx");
}

#[test]
fn bochs_vmx_a_restarted_member_ends_with_the_fault_free_state() {
    let outcome = restart_case(4, "cube", 3, bochs());
    assert_backend(&outcome, "vmx");
}

#[test]
fn bochs_vmx_shootdowns_reach_every_member_with_two_messages_per_tree_edge() {
    for n in [4usize, 8] {
        let outcome = shootdown_case(n, 40, bochs(), "Bochs");
        assert_backend(&outcome, "vmx");
    }
}
