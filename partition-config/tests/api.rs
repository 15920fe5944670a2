//! The public API the CLI uses: loading, rendering, locations, explain,
//! schema.

use partition_config::{load, parse_str, schema, Layout, DEFAULT_LAYOUT};

#[test]
fn unreadable_file_is_a_diagnostic() {
    let d = load("/nonexistent/flotilla/layout.toml").expect_err("missing file");
    assert_eq!(d.len(), 1);
    let first = d.iter().next().expect("one");
    assert_eq!(first.code, "unreadable-file");
    assert!(d
        .render_plain()
        .contains("cannot read `/nonexistent/flotilla/layout.toml`"));
}

#[test]
fn locations_are_one_based_line_and_column() {
    let src = "[machine]\ncpus = 1\nmemory = \"128 MiB\"\n\n[[partition]]\nname = \"a\"\ncpu = 3\nmemory = \"16 MiB\"\nworkload = \"hello\"\n";
    let d = parse_str(src, "loc.toml").expect_err("cpu 3 of 1");
    let first = d.iter().next().expect("one error");
    assert_eq!(first.code, "cpu-out-of-range");
    assert_eq!(d.location(first), Some((7, 7)));
    assert!(d.render_plain().contains("--> loc.toml:7:7"));
    assert_eq!(d.file_name(), "loc.toml");
}

#[test]
fn colored_rendering_uses_ansi_and_plain_does_not() {
    let d = parse_str("[machine]\ncpus = 0\n", "c.toml").expect_err("invalid");
    assert!(d.render_colored().contains("\u{1b}["));
    assert!(!d.render_plain().contains('\u{1b}'));
    assert_eq!(d.to_string(), d.render_plain());
}

#[test]
fn all_errors_are_reported_at_once() {
    let src = "[machine]\ncpus = 2\nmemory = \"256 MiB\"\n[[partition]]\nname = \"A\"\ncpu = 9\nmemory = \"3 MiB\"\nworkload = \"helo\"\n";
    let d = parse_str(src, "many.toml").expect_err("invalid");
    let codes: Vec<&str> = d.iter().map(|x| x.code).collect();
    assert_eq!(
        codes,
        [
            "bad-name",
            "cpu-out-of-range",
            "bad-memory",
            "unknown-workload"
        ]
    );
}

#[test]
fn default_layout_explains_itself() {
    let layout = Layout::default_layout().expect("valid");
    let text = layout.explain();
    assert!(text.contains("channel 0: ping <-> pong"));
    assert!(text.contains("hypervisor (reserved)"));
    assert!(text.contains("firmware (reserved)"));
    assert!(DEFAULT_LAYOUT.contains("[[channel]]"));
    // Placement is exposed: ping is first, at 64 MiB.
    assert_eq!(layout.partitions[0].region.base, 64 << 20);
    assert_eq!(
        layout.partition("pong").map(|p| p.region.base),
        Some(96 << 20)
    );
}

#[test]
fn schema_covers_the_format() {
    let s: serde_json::Value = serde_json::from_str(&schema()).expect("JSON");
    for key in ["machine", "defaults", "partition", "channel"] {
        assert!(s["properties"].get(key).is_some(), "{key}");
    }
    let ports = &s["properties"]["partition"]["items"]["properties"]["ports"];
    let description = ports["description"].as_str().expect("described");
    assert!(
        description.contains("0x3f8-0x3ff") && description.contains("0xcf8-0xcff"),
        "{description}"
    );
    let owned = &ports["items"]["oneOf"][1]["not"]["anyOf"];
    assert!(
        owned
            .as_array()
            .expect("ranges")
            .iter()
            .any(|r| r["minimum"] == 0x3f8 && r["maximum"] == 0x3ff),
        "{owned}"
    );
    for w in ["hello", "compute", "rogue", "pingpong", "stream"] {
        assert!(
            s["x-flotilla-guest-kernel-workloads"].get(w).is_some(),
            "{w}"
        );
    }
}

/// `docs/layout.md` lists the platform-owned ports: exactly the table in
/// `abi::ports`, row for row (printed in full when they differ).
#[test]
fn layout_doc_lists_the_platform_ports() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/layout.md"))
        .expect("docs/layout.md");
    let expected: Vec<String> = abi::ports::PLATFORM_PORTS
        .iter()
        .map(|p| format!("| `{}` | {} | {} |", p.range, p.name, p.reason))
        .collect();
    let listed: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.starts_with("| ports | owner | why it cannot be granted |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(
        listed,
        expected,
        "docs/layout.md's platform-port table is out of date; it should read:\n{}",
        expected.join("\n")
    );
}

#[test]
fn json_diagnostics_have_a_location_or_nulls() {
    let err = partition_config::parse_str("[machine]\ncpus = 0\nmemory = \"512 MiB\"\n", "j.toml")
        .unwrap_err();
    let lines: Vec<serde_json::Value> = err
        .render_json()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), err.len());
    let cpus = lines
        .iter()
        .find(|d| d["code"] == "bad-cpus")
        .expect("bad-cpus");
    assert_eq!(cpus["line"], 2);
    assert_eq!(cpus["column"], 8);
    assert_eq!(cpus["file"], "j.toml");
    // A malformed declaration in a workload crate names, and is located
    // in, the crate's Cargo.toml.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/invalid");
    let layout = "[machine]\ncpus = 1\nmemory = \"256 MiB\"\n[[partition]]\nname = \"m\"\ncpu = 0\nmemory = \"16 MiB\"\nkernel = { crate = \"../crates/bad-declaration\" }\nworkload = \"worker\"\n";
    let err =
        partition_config::parse_str(layout, &dir.join("m.toml").display().to_string()).unwrap_err();
    let lines: Vec<serde_json::Value> = err
        .render_json()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let first = &lines[0];
    assert_eq!(first["code"], "bad-arg-declaration");
    assert!(
        first["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("crates/bad-declaration/Cargo.toml")),
        "{first}"
    );
    assert_eq!(
        (first["line"].clone(), first["column"].clone()),
        (11.into(), 11.into())
    );
    assert!(lines.iter().all(|d| d["code"] == "bad-arg-declaration"));
    let unreadable = partition_config::load("/nonexistent/x.toml").unwrap_err();
    let d: serde_json::Value = serde_json::from_str(unreadable.render_json().trim()).expect("JSON");
    assert_eq!(d["code"], "unreadable-file");
    assert!(d["line"].is_null() && d["span"].is_null() && d["label"].is_null());
}

#[test]
fn explain_stays_aligned_with_long_names_and_says_ends_are_exclusive() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/valid/long-names.toml");
    let layout = partition_config::load(&path).expect("valid");
    let text = layout.explain();
    assert!(text.contains("ends are exclusive"), "{text}");
    let section = |title: &str| -> Vec<String> {
        text.lines()
            .skip_while(|l| !l.starts_with(title))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    // Every row's cpu column ends where the header's does.
    let rows = section("Partitions");
    let end = rows[0].find("cpu").expect("header") + 3;
    for row in &rows[1..] {
        let before = &row[..end];
        assert!(
            before.ends_with(|c: char| c.is_ascii_digit()),
            "misaligned row {row:?} in\n{text}"
        );
        assert_eq!(row.as_bytes().get(end), Some(&b' '), "{row:?}");
    }
    let channels = section("Channels");
    let slots = channels[0].find("slots").expect("header") + 5;
    assert_eq!(&channels[1][slots - 2..slots], "64", "{text}");
}
