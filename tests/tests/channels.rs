//! Channels end to end under QEMU TCG (SVM), issue #5: `pingpong` and
//! `stream` over `poll` and `ipi` channels, between 2 and 4 partitions, and
//! `pingpong` over every channel of a partition in turn.
//!
//! What each side reports (guest-kernel/src/workloads/{pingpong,stream}.rs):
//! its result, one console line with the `SEND_IPI` hypercalls it made
//! (`... N IPIs sent`), and the kernel's last line `guest-kernel: exit 0
//! (ticks T, ipis M)`, where `ipis` counts the channel IPIs it *received*.
//! The invariants ([`e2e::assert_channel_pair`]):
//! - both sides exit 0 with the right results (rounds; messages, sent and
//!   checksums that agree);
//! - `poll`: zero VM exits per message — steady-state exits are exactly the
//!   console lines, `REPORT_RESULT` and `EXIT`, whatever the message count,
//!   and no IPI is sent or received;
//! - `ipi`: one exit per IPI on the sender (`SEND_IPI`) and none on the
//!   receiver — steady-state hypercalls are the console lines + 2 + the IPIs
//!   the partition sent, nothing but hypercalls.

use e2e::{
    assert_backend, assert_channel_pair, assert_passed, assert_result, boot_layout,
    channel_layout_toml, console_line_with, layout, layout_config, partition, result_of,
    ChannelPair, ChannelWorkload, LayoutOutcome, Notify,
};

/// Boots `pairs` under QEMU TCG; asserts the run passed on the SVM backend
/// and every pair's invariants.
fn run(pairs: &[ChannelPair<'_>], name: &str) -> LayoutOutcome {
    let toml = channel_layout_toml(pairs, 60);
    let outcome = boot_layout(&layout_config(layout(&toml, name)));
    assert_passed(&outcome);
    assert_backend(&outcome, "svm");
    assert_eq!(outcome.report.emulator, "qemu-tcg", "{}", outcome.details());
    assert_eq!(outcome.report.partitions.len(), 2 * pairs.len());
    for pair in pairs {
        assert_channel_pair(&outcome, pair);
    }
    outcome
}

fn pair(workload: ChannelWorkload, count: u64, notify: Notify) -> ChannelPair<'static> {
    let (a, b) = match workload {
        ChannelWorkload::PingPong => ("ping", "pong"),
        ChannelWorkload::Stream => ("src", "sink"),
    };
    ChannelPair {
        workload,
        count,
        a,
        b,
        notify,
    }
}

/// A polled pair twice, with 10 times the messages the second time: the
/// steady-state exits of each side are the same (none per message).
fn poll_exits_do_not_depend_on_the_count(workload: ChannelWorkload, small: u64) {
    let few = pair(workload, small, Notify::Poll);
    let many = pair(workload, small * 10, Notify::Poll);
    let name = workload.name_and_arg().0;
    let first = run(&[few], &format!("{name}-poll-{small}.toml"));
    let second = run(&[many], &format!("{name}-poll-{}.toml", small * 10));
    for side in [few.a, few.b] {
        let (x, y) = (
            &partition(&first, side).vm_exits.steady,
            &partition(&second, side).vm_exits.steady,
        );
        assert_eq!(
            x,
            y,
            "{side}: steady-state exits with {small} and {} messages differ\n{}",
            small * 10,
            second.details()
        );
    }
}

#[test]
fn pingpong_over_poll_costs_no_exit_per_round() {
    poll_exits_do_not_depend_on_the_count(ChannelWorkload::PingPong, 200);
}

#[test]
fn stream_over_poll_costs_no_exit_per_message() {
    poll_exits_do_not_depend_on_the_count(ChannelWorkload::Stream, 2_000);
}

#[test]
fn pingpong_over_ipi_costs_one_exit_per_ipi_on_the_sender_only() {
    run(
        &[pair(ChannelWorkload::PingPong, 2_000, Notify::Ipi)],
        "pingpong-ipi.toml",
    );
}

#[test]
fn stream_over_ipi_costs_one_exit_per_ipi_on_the_sender_only() {
    run(
        &[pair(ChannelWorkload::Stream, 20_000, Notify::Ipi)],
        "stream-ipi.toml",
    );
}

#[test]
fn four_partitions_pingpong_over_poll_and_stream_over_ipi() {
    run(
        &[
            pair(ChannelWorkload::PingPong, 2_000, Notify::Poll),
            pair(ChannelWorkload::Stream, 20_000, Notify::Ipi),
        ],
        "four-pingpong-poll-stream-ipi.toml",
    );
}

#[test]
fn four_partitions_pingpong_over_ipi_and_stream_over_poll() {
    run(
        &[
            pair(ChannelWorkload::PingPong, 2_000, Notify::Ipi),
            pair(ChannelWorkload::Stream, 20_000, Notify::Poll),
        ],
        "four-pingpong-ipi-stream-poll.toml",
    );
}

/// Three partitions, each pair joined by a channel: every partition runs
/// its rounds on both of its channels in turn (layout order), pinging where
/// it is endpoint A and echoing where it is B, and reports both channels
/// and none broken.
#[test]
fn pingpong_runs_on_every_channel_in_turn() {
    let toml = r#"
[machine]
cpus = 3
memory = "256 MiB"
timeout = 60

[defaults]
memory = "16 MiB"
workload = "pingpong"
args = { rounds = 300 }

[[partition]]
name = "a"
cpu = 0

[[partition]]
name = "b"
cpu = 1

[[partition]]
name = "c"
cpu = 2

[[channel]]
between = ["a", "b"]
notify = "poll"

[[channel]]
between = ["a", "c"]
notify = "ipi"

[[channel]]
between = ["b", "c"]
notify = "poll"
"#;
    let outcome = boot_layout(&layout_config(layout(toml, "pingpong-triangle.toml")));
    assert_passed(&outcome);
    assert_backend(&outcome, "svm");
    for name in ["a", "b", "c"] {
        assert_result(&outcome, name, "rounds", 300);
        assert_result(&outcome, name, "channels", 2);
        assert_result(&outcome, name, "broken_channels", 0);
    }
    // a pings b and c; b echoes a and pings c; c echoes both.
    console_line_with(&outcome, "a", "pingpong: 300 round trips with b:");
    console_line_with(&outcome, "a", "pingpong: 300 round trips with c:");
    console_line_with(&outcome, "b", "pingpong: echoed 300 messages from a ");
    console_line_with(&outcome, "b", "pingpong: 300 round trips with c:");
    console_line_with(&outcome, "c", "pingpong: echoed 300 messages from a ");
    console_line_with(&outcome, "c", "pingpong: echoed 300 messages from b ");
    for name in ["a", "b"] {
        let (median, p99) = (
            result_of(&outcome, name, "median_cycles"),
            result_of(&outcome, name, "p99_cycles"),
        );
        assert!(0 < median && median <= p99, "{name}: {median} / {p99}");
    }
}
