//! `on_fault` and groups at boot with this hypervisor version: a layout with a
//! replication group boots like any other (groups are carried in the
//! manifest, not acted on yet), and a layout asking for `on_fault =
//! "restart"` is refused before any partition starts, with a message naming
//! the partition (docs/layout.md, "Faults").

use e2e::{assert_passed, assert_plan_printed, boot_layout, layout, layout_config};

const PAIR: &str = r#"
[machine]
cpus = 2
memory = "256 MiB"
timeout = 60

[defaults]
memory = "16 MiB"
workload = "pingpong"
args = { rounds = 100 }

[[partition]]
name = "left"
cpu = 0

[[partition]]
name = "right"
cpu = 1

[[channel]]
between = ["left", "right"]
notify = "poll"

[[group]]
name = "pair"
members = ["left", "right"]
"#;

#[test]
fn a_group_boots_and_restart_is_refused_at_plan_time() {
    let grouped = layout(PAIR, "pair.toml");
    assert_eq!(grouped.groups.len(), 1);
    let outcome = boot_layout(&layout_config(grouped.clone()));
    assert_passed(&outcome);
    assert_plan_printed(&outcome, &grouped);

    let restart = PAIR.replace(
        "name = \"right\"\n",
        "name = \"right\"\non_fault = \"restart\"\n",
    );
    let outcome = boot_layout(&layout_config(layout(&restart, "restart.toml")));
    assert!(!outcome.passed(), "{}", outcome.details());
    let expected = "partition right asks for on_fault = \"restart\", which this hypervisor does not support yet; use \"stop\"";
    assert!(
        outcome.console().contains(expected),
        "no {expected:?} on the console:\n{}",
        outcome.details()
    );
    // Refused before the plan: no partition was announced, and the
    // hypervisor wrote no run report.
    assert!(outcome.parsed.plan.is_empty(), "{}", outcome.details());
    assert!(
        !outcome.console().contains("report-begin"),
        "{}",
        outcome.details()
    );
}
