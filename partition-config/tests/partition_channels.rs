//! A partition may be an endpoint of at most 32 channels (the boot
//! protocol's limit), whatever the layout's total.

use partition_config::limits::MAX_CHANNELS_PER_PARTITION;
use partition_config::parse_str;
use std::fmt::Write;

fn hub_layout(spokes: usize) -> String {
    let mut s = format!("[machine]\ncpus = {}\nmemory = \"3 GiB\"\n\n", spokes + 1);
    s.push_str("[defaults]\nmemory = \"2 MiB\"\nworkload = \"hello\"\n\n");
    s.push_str("[[partition]]\nname = \"hub\"\ncpu = 0\n\n");
    for i in 1..=spokes {
        let _ = write!(s, "[[partition]]\nname = \"p{i}\"\ncpu = {i}\n\n");
    }
    for i in 1..=spokes {
        let _ = write!(
            s,
            "[[channel]]\nbetween = [\"hub\", \"p{i}\"]\nslots = 2\nnotify = \"poll\"\n\n"
        );
    }
    s
}

#[test]
fn thirty_two_channels_at_one_partition_are_fine() {
    let layout = parse_str(&hub_layout(MAX_CHANNELS_PER_PARTITION), "hub.toml");
    assert!(
        layout.is_ok(),
        "{}",
        layout.err().map(|d| d.render_plain()).unwrap_or_default()
    );
}

#[test]
fn thirty_three_channels_at_one_partition_are_refused_with_a_location() {
    let errors = parse_str(&hub_layout(MAX_CHANNELS_PER_PARTITION + 1), "hub.toml")
        .expect_err("33 channels at `hub` must be refused");
    let text = errors.render_plain();
    assert!(text.contains("too-many-partition-channels"), "{text}");
    assert!(
        text.contains("is an endpoint of 33 channels; at most 32 are allowed"),
        "{text}"
    );
    assert!(text.contains("hub.toml:"), "located: {text}");
}
