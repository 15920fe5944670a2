//! The run timeout: a partition that never finishes is stopped by the
//! hypervisor itself (a core whose partition ended sends it an NMI at the
//! layout's deadline) and reported `timed-out`; the others are unaffected.

use e2e::{boot_layout, fail_layout, layout, layout_config, partition};
use tools::report::PartitionState;

const LAYOUT: &str = r#"
[machine]
cpus = 2
memory = "256 MiB"
timeout = 2

[[partition]]
name = "forever"
cpu = 0
memory = "16 MiB"
workload = "idle"

[[partition]]
name = "quick"
cpu = 1
memory = "16 MiB"
workload = "hello"
"#;

#[test]
fn the_hypervisor_stops_a_partition_that_never_finishes() {
    let outcome = boot_layout(&layout_config(layout(LAYOUT, "timeout.toml")));
    if outcome.verdict.passed() {
        fail_layout(&outcome, "a timed-out partition must fail the run");
    }
    if outcome.parsed.header.is_none() {
        fail_layout(
            &outcome,
            "the hypervisor should print the report itself (not the host killing the emulator)",
        );
    }
    let forever = partition(&outcome, "forever");
    if forever.state != PartitionState::TimedOut {
        fail_layout(&outcome, "`forever` should be timed-out");
    }
    if forever.vm_exits.steady.by_reason.get("nmi") != Some(&1) {
        fail_layout(
            &outcome,
            "`forever` should have left its guest through exactly one NMI",
        );
    }
    let quick = partition(&outcome, "quick");
    if !quick.exited_ok() {
        fail_layout(&outcome, "`quick` should exit 0, untouched by the timeout");
    }
}
