//! `flotilla new NAME`: a new workload crate in directory `NAME`, with a
//! layout that runs it next to a built-in partition, ready for
//! `cargo flotilla run NAME/layout.toml`.
//!
//! The crate depends on this checkout's `flotilla-rt` by absolute path, has
//! a `[workspace]` table of its own (it is not a member of Flotilla's
//! workspace) and no build script (`flotilla` passes the link flags, see
//! [`crate::build::WORKLOAD_RUSTFLAGS`]). It declares its one workload,
//! `main`, and that workload's argument `rounds` in its metadata, so the
//! layout's `args` are type-checked. Its program prints a greeting, sends
//! `rounds` words over a channel to the built-in `pingpong` workload, which
//! echoes them, and reports what came back.

use std::path::{Path, PathBuf};

/// The name of the layout's built-in partition, the crate's channel peer.
pub const ECHO_PARTITION: &str = "builtin-echo";

/// What [`create`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scaffold {
    /// The crate's (and its partition's) name.
    pub name: String,
    /// The new directory.
    pub dir: PathBuf,
    /// The files written, in order.
    pub files: Vec<PathBuf>,
}

/// Why `name` cannot name a workload crate and its partition, if it
/// cannot: 1 to 32 characters `a-z`, `0-9`, `-`, `_`, starting with a
/// letter (a crate name that is also a partition name), and not the
/// built-in partition's.
pub fn name_problem(name: &str) -> Option<String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    let starts = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if name.is_empty() || name.len() > 32 || !ok_chars || !starts {
        return Some(format!(
            "`{name}` cannot name a workload crate: use 1 to 32 characters a-z, 0-9, `-` or `_`, starting with a letter"
        ));
    }
    if name == ECHO_PARTITION {
        return Some(format!(
            "`{name}` is the name of the layout's built-in partition: pick another"
        ));
    }
    None
}

/// Creates the workload crate in `dir` (which must not exist; its last
/// component is the name), depending on the runtime at `runtime`.
///
/// # Errors
/// Why not (one sentence): an existing directory, a bad name, a file that
/// could not be written.
pub fn create(dir: &Path, runtime: &Path) -> Result<Scaffold, String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_owned();
    if let Some(problem) = name_problem(&name) {
        return Err(problem);
    }
    if dir.exists() {
        return Err(format!(
            "{} already exists: `flotilla new` makes a new directory",
            dir.display()
        ));
    }
    let files = [
        (PathBuf::from("Cargo.toml"), cargo_toml(&name, runtime)),
        (PathBuf::from("src/main.rs"), main_rs(&name)),
        (PathBuf::from("layout.toml"), layout_toml(&name)),
    ];
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(Scaffold {
        name,
        dir: dir.to_path_buf(),
        files: written,
    })
}

fn cargo_toml(name: &str, runtime: &Path) -> String {
    // TOML basic strings escape like Rust's Debug for paths without control
    // characters; a literal string would refuse a path with a `'`.
    let runtime = format!("{:?}", runtime.display().to_string());
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
# Flotilla's guest runtime (docs/guest-sdk.md), from the checkout that made
# this crate.
flotilla-rt = {{ path = {runtime} }}

# The workloads this crate runs (the layout's `workload`) and their
# arguments: `flotilla check` type-checks a layout's `args` against them
# (docs/guest-sdk.md, "Declaring arguments").
[package.metadata.flotilla.workloads.main]
doc = "greets, sends words to the echo partition and checks each echo"
args.rounds = {{ type = "integer", min = 1, max = 1000000, default = 3, doc = "words to send (the echo partition's `rounds` must be the same)" }}

# Not a member of any other workspace: `flotilla` builds this crate on its
# own (release, x86_64-unknown-none, with the runtime's link flags).
[workspace]

[profile.release]
debug = 1
"#
    )
}

fn main_rs(name: &str) -> String {
    format!(
        r#"//! `{name}`: a Flotilla workload. It greets, sends three words over its
//! channel to the partition `{ECHO_PARTITION}` (the built-in `pingpong`
//! workload, which echoes them) and reports how many came back.
//!
//! Run it: `cargo flotilla run {name}/layout.toml` (from the Flotilla
//! checkout). The API: docs/guest-sdk.md.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

#[cfg(target_os = "none")]
#[macro_use]
extern crate flotilla_rt;

/// The entry: called once the partition has booted.
#[cfg(target_os = "none")]
fn run(ctx: &mut flotilla_rt::Context) -> flotilla_rt::Result {{
    extern crate alloc;
    use alloc::format;
    use flotilla_rt::{{Failure, Outcome, Report}};

    // Declared in Cargo.toml; the layout gives it (or its default, 3).
    let rounds = ctx.args().u64_or("rounds", 3)?;
    println!("hello from {{}} on core {{}}", ctx.name(), ctx.cpu());
    let mut echo = ctx
        .take_channel("{ECHO_PARTITION}")
        .map_err(|e| Failure::new(5, format!("no channel to {ECHO_PARTITION}: {{e:?}}")))?;
    let mut echoed = 0u64;
    for word in 0..rounds {{
        echo.send(&word)
            .map_err(|e| Failure::new(5, format!("sending {{word}}: {{e:?}}")))?;
        let back: u64 = echo
            .recv()
            .map_err(|e| Failure::new(5, format!("receiving the echo: {{e:?}}")))?;
        if back != word {{
            return Err(Failure::new(6, format!("sent {{word}}, got {{back}} back")));
        }}
        echoed += 1;
    }}
    println!("{{}} echoed {{echoed}} words", echo.peer());
    Ok(Outcome::ok(Report::new().with("greeted", true).with("echoed", echoed)))
}}

#[cfg(target_os = "none")]
flotilla_rt::entry!(run);

#[cfg(not(target_os = "none"))]
fn main() {{}}
"#
    )
}

fn layout_toml(name: &str) -> String {
    format!(
        r#"# `{name}` next to a built-in partition that echoes what it is sent.
# Run: cargo flotilla run {name}/layout.toml   (docs/layout.md: every key)

[machine]
cpus = 2
memory = "256 MiB"
timeout = 60

[[partition]]
name = "{name}"
cpu = 0
memory = "16 MiB"
kernel = {{ crate = "." }}       # this crate (the directory of this file)
workload = "main"               # declared in Cargo.toml: ctx.workload()
args = {{ rounds = 3 }}           # typed by Cargo.toml: ctx.args()

[[partition]]
name = "{ECHO_PARTITION}"
cpu = 1
memory = "32 MiB"
kernel = "guest-kernel"         # the built-in kernel
workload = "pingpong"           # on the second end of a channel: echoes
args = {{ rounds = 3 }}

[[channel]]
between = ["{name}", "{ECHO_PARTITION}"]   # {name} is side A, it speaks first
notify = "ipi"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_crate_and_partition_names() {
        assert_eq!(name_problem("my-work_1"), None);
        for bad in [
            "",
            "1st",
            "Big",
            "a b",
            "ü",
            &"x".repeat(33),
            ECHO_PARTITION,
        ] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn an_existing_directory_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("taken");
        std::fs::create_dir(&dir).unwrap();
        let err = create(&dir, Path::new("/rt")).unwrap_err();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn the_layout_is_valid_and_names_the_crate() {
        let tmp = tempfile::tempdir().unwrap();
        let made = create(&tmp.path().join("demo"), Path::new("/rt/flotilla-rt")).unwrap();
        assert_eq!(made.files.len(), 3);
        let manifest = std::fs::read_to_string(made.dir.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("flotilla-rt = { path = \"/rt/flotilla-rt\" }"),
            "{manifest}"
        );
        let layout = made.dir.join("layout.toml");
        let text = std::fs::read_to_string(&layout).unwrap();
        let (layout, warnings) =
            partition_config::parse_str_with_warnings(&text, &layout.display().to_string())
                .unwrap_or_else(|d| panic!("{}", d.render_plain()));
        assert!(warnings.is_empty(), "{}", warnings.render_plain());
        assert_eq!(layout.partitions[0].name, "demo");
        assert!(matches!(
            &layout.kernels[layout.partitions[0].kernel],
            partition_config::Kernel::Crate { written, .. } if written == "."
        ));
        assert_eq!(
            layout.partitions[0].args,
            [("rounds".to_owned(), partition_config::ArgValue::Integer(3))]
        );
    }

    #[test]
    fn the_crate_declares_its_argument_and_check_types_it() {
        let tmp = tempfile::tempdir().unwrap();
        let made = create(&tmp.path().join("demo"), Path::new("/rt/flotilla-rt")).unwrap();
        let layout = made.dir.join("layout.toml");
        let text = std::fs::read_to_string(&layout).unwrap();
        let name = layout.display().to_string();
        let edited = text.replacen(
            "args = { rounds = 3 }",
            "args = { rounds = 0, round = 1 }",
            1,
        );
        assert_ne!(edited, text, "the scaffold's layout gives `rounds`");
        let errors = partition_config::parse_str(&edited, &name).unwrap_err();
        let codes: Vec<&str> = errors.iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            ["arg-range", "unknown-arg"],
            "{}",
            errors.render_plain()
        );
        // Left out, the argument takes the crate's declared default.
        let defaulted = text.replacen("args = { rounds = 3 }", "", 1);
        let layout = partition_config::parse_str(&defaulted, &name)
            .unwrap_or_else(|d| panic!("{}", d.render_plain()));
        assert_eq!(
            layout.partitions[0].args,
            [("rounds".to_owned(), partition_config::ArgValue::Integer(3))]
        );
    }
}
