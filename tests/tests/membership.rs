//! Replication-group membership from inside the guests (boot protocol v3,
//! hypercalls v3, channel layout v4, run report v4; `docs/replication.md`,
//! "Contract for the hypervisor and guest parts"), with the built-in
//! `watch` workload: a `victim` member under `on_fault = "restart"` faults
//! once; the `survivor` member sees the death epoch (victim out of
//! `alive`, restarting, `npf`), the alive epoch (back, incarnation 1) and
//! the exit epoch, takes one notification interrupt for each, has its two
//! hostile acknowledgements refused, acknowledges, re-attaches its channel
//! (generation 1) and exchanges pings with the new incarnation. Without
//! acknowledgements the restart waits its bounded time and goes on
//! (`ack_timeouts`). A `vandal` victim, whose fault is a write into its
//! read-only status page, is stopped there (`npf` at the epoch word) and
//! the page the survivor reads is unchanged. A group of three (a line with
//! the victim in the middle) shows both survivors the same epochs and
//! alive sets. Under QEMU TCG (SVM) and Bochs (VMX).

use abi::fault::FaultKind;
use e2e::{
    assert_backend, assert_passed, assert_steady_exits, boot_layout, layout, layout_config,
    partition, result_of, Emulator, LayoutOutcome,
};

/// Pings over the re-attached channel.
const ROUNDS: u64 = 20;

fn toml(ack: bool, role: &str) -> String {
    format!(
        r#"
[machine]
cpus = 2
memory = "128 MiB"
timeout = 120

[defaults]
memory = "16 MiB"

[[partition]]
name = "survivor"
cpu = 0
workload = "watch"
args = {{ role = "survivor", rounds = {ROUNDS}, ack = "{ack}" }}

[[partition]]
name = "victim"
cpu = 1
workload = "watch"
args = {{ role = "{role}", rounds = {ROUNDS} }}
on_fault = "restart"
max_restarts = 1

[[channel]]
between = ["survivor", "victim"]
slots = 16
notify = "poll"

[[group]]
name = "pair"
members = ["survivor", "victim"]
"#
    )
}

fn text(outcome: &LayoutOutcome, name: &str, key: &str) -> String {
    let value = partition(outcome, name)
        .result
        .as_ref()
        .and_then(|r| r.get(key))
        .cloned();
    match value {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => e2e::fail_layout(outcome, &format!("{name} reported no {key}")),
    }
}

/// Everything both emulators must show; `ack` as in the layout.
fn assert_membership(outcome: &LayoutOutcome, ack: bool) {
    assert_passed(outcome);
    let details = outcome.details();
    let survivor = partition(outcome, "survivor");
    let victim = partition(outcome, "victim");
    assert_eq!(victim.restarts, 1, "{details}");
    let kinds: Vec<FaultKind> = victim.faults.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FaultKind::Npf], "{details}");
    assert!(victim.exited_ok(), "{details}");
    for (key, value) in [("incarnation", 1), ("generation", 1), ("rounds", ROUNDS)] {
        assert_eq!(result_of(outcome, "victim", key), value, "victim {key}");
    }
    // Epoch 1 at boot; the death, the restart and the exit bump it once each.
    for (key, value) in [
        ("death_epoch", 2),
        ("death_alive", 0b01),
        ("alive_epoch", 3),
        ("alive_alive", 0b11),
        ("incarnation", 1),
        ("exit_epoch", 4),
        ("exit_alive", 0b01),
        ("notifications", 3),
        ("generation", 1),
        ("rounds", ROUNDS),
    ] {
        assert_eq!(
            result_of(outcome, "survivor", key),
            value,
            "survivor {key}: {details}"
        );
    }
    assert_eq!(text(outcome, "survivor", "restarted"), "true", "{details}");
    assert_eq!(
        text(outcome, "survivor", "future_ack"),
        "invalid",
        "{details}"
    );
    assert_eq!(
        text(outcome, "survivor", "foreign_ack"),
        "denied",
        "{details}"
    );
    let acks = if ack { 3 } else { 0 };
    assert_eq!(result_of(outcome, "survivor", "acks"), acks, "{details}");
    assert_eq!(survivor.membership_acks, acks, "{details}");
    assert_eq!(victim.membership_acks, 0, "{details}");
    // Without acknowledgements the restart waited its bounded time, once.
    assert_eq!(victim.ack_timeouts, u32::from(!ack), "{details}");
    assert_eq!(survivor.ack_timeouts, 0, "{details}");
    // Reading the page, polling the epoch and the notification cost no
    // exit: beyond its console lines, result and exit, only the accepted
    // and the two refused acknowledgements.
    assert_steady_exits(outcome, "survivor", acks + 2);
}

#[test]
fn a_survivor_sees_death_restart_and_exit_and_reattaches_its_channel() {
    let outcome = boot_layout(&layout_config(layout(&toml(true, "victim"), "watch.toml")));
    assert_membership(&outcome, true);
    assert_backend(&outcome, "svm");
}

#[test]
fn a_write_into_the_status_page_is_stopped_and_changes_nothing() {
    let outcome = boot_layout(&layout_config(layout(&toml(true, "vandal"), "vandal.toml")));
    assert_membership(&outcome, true);
    let epoch_word = abi::boot::GROUP_STATUS_GPA + 8 * abi::group::W_EPOCH as u64;
    let gpas: Vec<Option<u64>> = partition(&outcome, "victim")
        .faults
        .iter()
        .map(|f| f.gpa)
        .collect();
    assert_eq!(gpas, [Some(epoch_word)], "{}", outcome.details());
}

/// Three members on a line, the victim `b` in the middle, with a channel to
/// each survivor.
const LINE_OF_THREE: &str = r#"
[machine]
cpus = 3
memory = "256 MiB"
timeout = 120

[defaults]
memory = "16 MiB"
workload = "watch"

[[partition]]
name = "a"
cpu = 0
args = { role = "survivor", rounds = 5 }

[[partition]]
name = "b"
cpu = 1
args = { role = "victim", rounds = 5 }
on_fault = "restart"
max_restarts = 1

[[partition]]
name = "c"
cpu = 2
args = { role = "survivor", rounds = 5 }

[[channel]]
between = ["a", "b"]
slots = 16
notify = "poll"

[[channel]]
between = ["b", "c"]
slots = 16
notify = "poll"

[[group]]
name = "line"
members = ["a", "b", "c"]
"#;

#[test]
fn both_survivors_of_a_group_of_three_see_the_same_epochs() {
    let outcome = boot_layout(&layout_config(layout(LINE_OF_THREE, "watch-three.toml")));
    assert_passed(&outcome);
    let details = outcome.details();
    let b = partition(&outcome, "b");
    assert_eq!((b.restarts, b.ack_timeouts), (1, 0), "{details}");
    assert_eq!(result_of(&outcome, "b", "channels"), 2, "{details}");
    assert_eq!(result_of(&outcome, "b", "generation"), 1, "{details}");
    for name in ["a", "c"] {
        for (key, value) in [
            ("death_epoch", 2),
            ("death_alive", 0b101),
            ("alive_epoch", 3),
            ("alive_alive", 0b111),
            ("incarnation", 1),
            ("generation", 1),
            ("acks", 3),
        ] {
            assert_eq!(
                result_of(&outcome, name, key),
                value,
                "{name} {key}: {details}"
            );
        }
        // b's exit, and perhaps the other survivor's exit before it is read.
        let exit = result_of(&outcome, name, "exit_epoch");
        assert!(
            exit == 4 || exit == 5,
            "{name} exit epoch {exit}: {details}"
        );
        assert_eq!(
            result_of(&outcome, name, "exit_alive") & 0b010,
            0,
            "{details}"
        );
        assert!(result_of(&outcome, name, "notifications") >= 3, "{details}");
        assert_eq!(partition(&outcome, name).membership_acks, 3, "{details}");
        assert_steady_exits(&outcome, name, 3 + 2);
    }
}

#[test]
fn a_restart_goes_on_after_its_bounded_wait_when_no_member_acknowledges() {
    let outcome = boot_layout(&layout_config(layout(
        &toml(false, "victim"),
        "watch-no-ack.toml",
    )));
    assert_membership(&outcome, false);
}

#[test]
fn bochs_vmx_a_survivor_sees_death_restart_and_exit() {
    let config = layout_config(layout(&toml(true, "victim"), "bochs-watch.toml"))
        .with_emulator(Emulator::bochs());
    let outcome = boot_layout(&config);
    assert_membership(&outcome, true);
    assert_backend(&outcome, "vmx");
}
