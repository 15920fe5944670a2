//! The layout tests of the SVM backend, under Bochs `corei7_skylake_x`
//! with VMX (issue #6): hello and compute, the exit budget, channels
//! (`pingpong` and `stream` over `poll` and `ipi`), a restart
//! (`on_fault = "restart"`, a new VMCS per incarnation) and the example
//! layouts.
//! The rogue matrix under Bochs is in `bochs_rogue.rs`.
//!
//! Every run must report the `vmx` backend. The emulated cores take turns on
//! one host thread, so the channel and budget tests use two cores and small
//! counts; the example layouts run as they are (measured at Bochs' 20 M
//! instructions per emulated second: `single.toml` ~3 s, `default.toml`
//! ~15 s, `eight.toml` — 8 cores, a million-message stream — ~45 s).

use e2e::{
    assert_backend, assert_channel_pair, assert_passed, assert_plan_printed, assert_result,
    assert_steady_exits, boot_layout, channel_layout_toml, examples_dir, fail_layout, layout,
    layout_config, partition, primes_below, result_of, ChannelPair, ChannelWorkload, Emulator,
    LayoutOutcome, Notify,
};
use partition_config::Layout;

/// Boots `layout` under Bochs; asserts the run passed on the VMX backend.
fn run(layout: Layout) -> LayoutOutcome {
    let config = layout_config(layout).with_emulator(Emulator::bochs());
    let outcome = boot_layout(&config);
    assert_passed(&outcome);
    assert_backend(&outcome, "vmx");
    assert_eq!(
        outcome.report.emulator,
        "bochs:corei7_skylake_x",
        "{}",
        outcome.details()
    );
    outcome
}

/// `hello` waits for a timer tick; `compute` counts the primes below n.
fn hello_and_compute(n: u64) -> String {
    format!(
        r#"
[machine]
cpus = 2
memory = "128 MiB"
timeout = 60

[defaults]
memory = "16 MiB"

[[partition]]
name = "hello"
cpu = 0
workload = "hello"

[[partition]]
name = "calc"
cpu = 1
workload = "compute"
args = {{ n = {n} }}
"#
    )
}

#[test]
fn bochs_vmx_hello_and_compute() {
    let outcome = run(layout(&hello_and_compute(10_000), "bochs-compute.toml"));
    assert_result(&outcome, "calc", "primes", primes_below(10_000));
    if result_of(&outcome, "hello", "ticks") == 0 {
        fail_layout(&outcome, "hello should exit 0 after a timer tick");
    }
}

/// The exit budget (see `exit_budget.rs`): a ticking `compute` and a
/// `hello` idling in `hlt` until its timer ticks exit only for their
/// console lines, `REPORT_RESULT` and `EXIT` in steady state.
#[test]
fn bochs_vmx_ticking_partitions_exit_only_for_hypercalls() {
    let n = 1_000_000;
    let outcome = run(layout(&hello_and_compute(n), "bochs-exit-budget.toml"));
    assert_result(&outcome, "calc", "primes", primes_below(n));
    for name in ["calc", "hello"] {
        if result_of(&outcome, name, "ticks") == 0 {
            fail_layout(
                &outcome,
                &format!("{name}'s timer should tick (result ticks > 0)"),
            );
        }
        assert_steady_exits(&outcome, name, 0);
    }
}

/// One channel pair on two cores: the invariants of `channels.rs`. (Both
/// pairs in one 4-core run take about twice as long as a 2-core run, and
/// the 4-core `default.toml` below already runs a channel next to other
/// partitions.)
fn channel_under_bochs(workload: ChannelWorkload, count: u64, notify: Notify) {
    let (a, b) = match workload {
        ChannelWorkload::PingPong => ("ping", "pong"),
        ChannelWorkload::Stream => ("src", "sink"),
    };
    let pair = ChannelPair {
        workload,
        count,
        a,
        b,
        notify,
    };
    let name = format!(
        "bochs-{}-{}.toml",
        workload.name_and_arg().0,
        notify.as_str()
    );
    let outcome = run(layout(&channel_layout_toml(&[pair], 60), &name));
    assert_channel_pair(&outcome, &pair);
}

#[test]
fn bochs_vmx_pingpong_over_poll() {
    channel_under_bochs(ChannelWorkload::PingPong, 500, Notify::Poll);
}

#[test]
fn bochs_vmx_pingpong_over_ipi() {
    channel_under_bochs(ChannelWorkload::PingPong, 500, Notify::Ipi);
}

#[test]
fn bochs_vmx_stream_over_poll() {
    channel_under_bochs(ChannelWorkload::Stream, 5_000, Notify::Poll);
}

#[test]
fn bochs_vmx_stream_over_ipi() {
    channel_under_bochs(ChannelWorkload::Stream, 5_000, Notify::Ipi);
}

/// Replaces `from` (which must occur exactly once) with `to` in an example.
fn shrink(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the example should contain {from:?} once:\n{text}"
    );
    text.replacen(from, to, 1)
}

#[test]
fn bochs_vmx_single_example() {
    let path = examples_dir().join("single.toml");
    let layout = e2e::layout_file(&path);
    let outcome = run(layout.clone());
    assert_plan_printed(&outcome, &layout);
    assert_eq!(outcome.report.partitions.len(), 1);
}

/// `examples/eight.toml` as it is: eight cores, ping-pong, a million-message
/// stream, hello and three computes.
#[test]
fn bochs_vmx_eight_example() {
    let path = examples_dir().join("eight.toml");
    let layout = e2e::layout_file(&path);
    let outcome = run(layout.clone());
    assert_plan_printed(&outcome, &layout);
    assert_eq!(outcome.report.partitions.len(), 8);
    assert_result(&outcome, "consumer", "messages", 1_000_000);
    for worker in ["worker-a", "worker-b", "worker-c"] {
        assert_result(&outcome, worker, "primes", primes_below(1_000_000));
    }
}

/// `examples/default.toml` as it is but for its counts: ping-pong over its
/// polled channel, hello and compute on four cores.
#[test]
fn bochs_vmx_default_example_shrunk() {
    let path = examples_dir().join("default.toml");
    let text = std::fs::read_to_string(&path).expect("examples/default.toml is readable");
    let text = shrink(&text, "args = { n = 200000 }", "args = { n = 10000 }");
    let text = text.replace("args = { rounds = 10000 }", "args = { rounds = 200 }");
    let layout = layout(&text, "default-shrunk.toml");
    let outcome = run(layout.clone());
    assert_plan_printed(&outcome, &layout);
    assert_eq!(outcome.report.partitions.len(), 4);
    assert_result(&outcome, "compute", "primes", primes_below(10_000));
    assert_result(&outcome, "ping", "rounds", 200);
    assert_result(&outcome, "pong", "rounds", 200);
    let channel = &layout.channels[0];
    assert_eq!(
        channel.notify.as_str(),
        "poll",
        "the example's channel is polled"
    );
    assert_channel_pair(
        &outcome,
        &ChannelPair {
            workload: ChannelWorkload::PingPong,
            count: 200,
            a: "ping",
            b: "pong",
            notify: Notify::Poll,
        },
    );
    if result_of(&outcome, "hello", "ticks") == 0 {
        fail_layout(&outcome, "hello should exit 0 after a timer tick");
    }
}

/// A rogue that faults only in its first incarnation, with a channel to
/// `calc`: restarted once on a new VMCS, it exits 0; `calc` is unaffected.
#[test]
fn bochs_vmx_a_rogue_is_restarted_once_and_exits() {
    let toml = r#"
[machine]
cpus = 2
memory = "128 MiB"
timeout = 60

[defaults]
memory = "16 MiB"

[[partition]]
name = "calc"
cpu = 0
workload = "compute"
args = { n = 10000 }

[[partition]]
name = "rogue"
cpu = 1
workload = "rogue"
args = { attack = "write-outside", only_first = "true" }
on_fault = "restart"

[[channel]]
between = ["rogue", "calc"]
slots = 16
notify = "poll"

# A restarting partition's channels are group links (restart-channel-outside-group).
[[group]]
name = "pair"
members = ["rogue", "calc"]
"#;
    let outcome = run(layout(toml, "bochs-restart.toml"));
    let rogue = partition(&outcome, "rogue");
    assert_eq!(rogue.restarts, 1, "{}", outcome.details());
    assert!(rogue.exited_ok(), "{}", outcome.details());
    assert_eq!(
        rogue.result_u64("incarnation"),
        Some(1),
        "{}",
        outcome.details()
    );
    assert_result(&outcome, "calc", "primes", primes_below(10_000));
}
