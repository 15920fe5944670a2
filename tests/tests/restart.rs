//! `on_fault = "restart"` under QEMU TCG (SVM): a rogue that faults only in
//! its first incarnation is restarted once and then exits 0, with its
//! channel peer and a neighbour unaffected; a rogue that faults every time
//! is restarted `max_restarts` times and then stays faulted. The report
//! counts the restarts and lists the earlier faults (run report v3), and
//! the console announces each restart.

use abi::fault::FaultKind;
use e2e::{
    assert_passed, assert_result, boot_layout, layout, layout_config, partition, primes_below,
};

/// `n` of the two compute partitions.
const CALC_N: u64 = 100_000;

/// `calc` and `peer` (compute) next to `rogue` (writes outside its RAM),
/// which has a channel to `peer`; `policy` is the rogue's extra keys.
fn toml(rogue_args: &str, policy: &str) -> String {
    format!(
        r#"
[machine]
cpus = 3
memory = "256 MiB"
timeout = 120

[defaults]
memory = "16 MiB"

[[partition]]
name = "calc"
cpu = 0
workload = "compute"
args = {{ n = {CALC_N} }}

[[partition]]
name = "peer"
cpu = 1
workload = "compute"
args = {{ n = {CALC_N} }}

[[partition]]
name = "rogue"
cpu = 2
workload = "rogue"
args = {{ attack = "write-outside"{rogue_args} }}
on_fault = "restart"
{policy}

[[channel]]
between = ["rogue", "peer"]
slots = 16
notify = "poll"

# A restarting partition's channels are group links (restart-channel-outside-group).
[[group]]
name = "pair"
members = ["rogue", "peer"]
"#
    )
}

fn restarted_lines(console: &str) -> Vec<&str> {
    console
        .lines()
        .filter(|l| l.starts_with("flotilla: partition rogue restarted"))
        .collect()
}

#[test]
fn a_rogue_faulting_once_is_restarted_and_exits_while_its_neighbours_run_on() {
    let outcome = boot_layout(&layout_config(layout(
        &toml(", only_first = \"true\"", ""),
        "restart-once.toml",
    )));
    assert_passed(&outcome);
    let rogue = partition(&outcome, "rogue");
    assert_eq!(rogue.restarts, 1, "{}", outcome.details());
    assert!(rogue.exited_ok(), "{}", outcome.details());
    assert!(rogue.fault.is_none());
    let kinds: Vec<FaultKind> = rogue.faults.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FaultKind::Npf], "{}", outcome.details());
    assert_eq!(
        rogue.result_u64("incarnation"),
        Some(1),
        "{}",
        outcome.details()
    );
    assert_eq!(
        restarted_lines(outcome.console()),
        ["flotilla: partition rogue restarted (incarnation 1) after npf"],
        "{}",
        outcome.details()
    );
    for name in ["calc", "peer"] {
        assert_result(&outcome, name, "primes", primes_below(CALC_N));
        assert_eq!(partition(&outcome, name).restarts, 0);
        assert!(partition(&outcome, name).faults.is_empty());
    }
}

#[test]
fn a_rogue_faulting_every_time_is_restarted_max_restarts_times_then_stopped() {
    let config = layout_config(layout(&toml("", "max_restarts = 2"), "restart-twice.toml"))
        .expect_fault("rogue", Some(FaultKind::Npf));
    let outcome = boot_layout(&config);
    assert_passed(&outcome);
    let rogue = partition(&outcome, "rogue");
    assert_eq!(rogue.restarts, 2, "{}", outcome.details());
    assert_eq!(
        rogue.fault.as_ref().map(|f| f.kind),
        Some(FaultKind::Npf),
        "{}",
        outcome.details()
    );
    let kinds: Vec<FaultKind> = rogue.faults.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [FaultKind::Npf, FaultKind::Npf],
        "{}",
        outcome.details()
    );
    assert_eq!(
        restarted_lines(outcome.console()),
        [
            "flotilla: partition rogue restarted (incarnation 1) after npf",
            "flotilla: partition rogue restarted (incarnation 2) after npf",
        ],
        "{}",
        outcome.details()
    );
    for name in ["calc", "peer"] {
        assert_result(&outcome, name, "primes", primes_below(CALC_N));
    }
}
