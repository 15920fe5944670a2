//! `on_fault` and groups at boot with this hypervisor version: a layout with a
//! replication group boots like any other (its members get their status
//! page; `membership.rs` tests it), and a layout asking for `on_fault =
//! "restart"` boots too: a partition that never faults is never restarted
//! (docs/layout.md, "Faults"; restarts themselves: `restart.rs`).

use e2e::{assert_passed, assert_plan_printed, boot_layout, layout, layout_config, partition};

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
fn a_group_boots_and_a_restart_policy_without_faults_changes_nothing() {
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
    assert_passed(&outcome);
    for name in ["left", "right"] {
        let p = partition(&outcome, name);
        assert_eq!(
            (p.restarts, p.faults.len()),
            (0, 0),
            "{}",
            outcome.details()
        );
    }
    assert!(
        !outcome.console().contains("restarted (incarnation"),
        "{}",
        outcome.details()
    );
}
