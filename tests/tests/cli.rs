//! The `flotilla` binary itself: `check`, `explain` and `schema` on
//! layouts, and `flotilla run` with no argument booting the default layout
//! and printing the report table.
//!
//! The binary is built once per test binary with the same cargo and target
//! directory as the tests ([`flotilla`]); every command runs under a hard
//! timeout and a failure prints its whole output.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{flotilla_binary, Boot, Emulator, Firmware};
use tools::build::Workspace;
use tools::runner::RunConfig;

/// What a command did.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Ran {
    fn show(&self) -> String {
        format!(
            "exit {:?} after {:.1}s\n----- stdout -----\n{}----- stderr -----\n{}------------------",
            self.code,
            self.took.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `flotilla ARGS` from the workspace root, killed after `timeout`.
fn run(args: &[&str], timeout: Duration) -> Ran {
    run_env(args, &[], timeout)
}

/// As [`run`], with `env` set (and the color variables unset unless given).
fn run_env(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Ran {
    let mut command = Command::new(flotilla_binary());
    for key in ["NO_COLOR", "CLICOLOR_FORCE", "TERM"] {
        command.env_remove(key);
    }
    command.envs(env.iter().copied());
    let mut child = command
        .args(args)
        .current_dir(Workspace::locate().root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting flotilla");
    let start = Instant::now();
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let code = loop {
        if let Some(status) = child.try_wait().expect("waiting for flotilla") {
            break status.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ran {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        took: start.elapsed(),
    }
}

const QUICK: Duration = Duration::from_secs(60);

#[test]
fn check_accepts_a_valid_example() {
    let ran = run(&["check", "examples/default.toml"], QUICK);
    assert_eq!(ran.code, Some(0), "{}", ran.show());
    assert!(
        ran.stdout
            .contains("examples/default.toml: ok: 4 partition(s)"),
        "{}",
        ran.show()
    );
}

#[test]
fn check_rejects_an_invalid_layout_with_located_diagnostics() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[machine]\ncpus = 2\nmemory = \"256 MiB\"\n\n[[partition]]\nname = \"a\"\ncpu = 5\n\
         memory = \"16 MiB\"\nworkload = \"hello\"\nmemroy = 1\n",
    )
    .unwrap();
    let ran = run(&["check", path.to_str().unwrap()], QUICK);
    assert_eq!(
        ran.code,
        Some(2),
        "an invalid layout is exit status 2\n{}",
        ran.show()
    );
    assert!(
        ran.stdout.is_empty(),
        "diagnostics go to stderr\n{}",
        ran.show()
    );
    // Both errors, each at file:line:column with the text underlined.
    let located = format!("{}:7:7", path.display());
    assert!(
        ran.stderr.contains(&located),
        "no {located} in\n{}",
        ran.show()
    );
    assert!(ran.stderr.contains("cpu-out-of-range"), "{}", ran.show());
    assert!(
        ran.stderr.contains(&format!("{}:10:1", path.display())),
        "{}",
        ran.show()
    );
    assert!(
        ran.stderr.contains("did you mean `memory`"),
        "{}",
        ran.show()
    );
    assert!(ran.stderr.contains("^"), "{}", ran.show());
    // `run` refuses it the same way, before building anything.
    let ran = run(&["run", path.to_str().unwrap()], QUICK);
    assert_eq!(ran.code, Some(2), "{}", ran.show());
    let ran = run(&["explain", path.to_str().unwrap()], QUICK);
    assert_eq!(ran.code, Some(2), "{}", ran.show());
    assert!(ran.stderr.contains(&located), "{}", ran.show());
}

#[test]
fn explain_prints_the_memory_map_and_who_talks_to_whom() {
    let ran = run(&["explain", "examples/default.toml"], QUICK);
    assert_eq!(ran.code, Some(0), "{}", ran.show());
    for expected in ["Host-physical memory map", "partition ping", "ping", "pong"] {
        assert!(
            ran.stdout.contains(expected),
            "no {expected:?} in\n{}",
            ran.show()
        );
    }
}

#[test]
fn check_prints_warnings_and_still_succeeds() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("line.toml");
    // A group on a line: its middle member is a cut vertex (a warning).
    std::fs::write(
        &path,
        "[machine]\ncpus = 3\nmemory = \"256 MiB\"\n\n[defaults]\nmemory = \"16 MiB\"\n\
         workload = \"pingpong\"\n\n[[partition]]\nname = \"a\"\ncpu = 0\n\n[[partition]]\n\
         name = \"b\"\ncpu = 1\n\n[[partition]]\nname = \"c\"\ncpu = 2\n\n[[channel]]\n\
         between = [\"a\", \"b\"]\n\n[[channel]]\nbetween = [\"b\", \"c\"]\n\n[[group]]\n\
         name = \"g\"\nmembers = [\"a\", \"b\", \"c\"]\n",
    )
    .unwrap();
    let ran = run(&["check", path.to_str().unwrap()], QUICK);
    assert_eq!(ran.code, Some(0), "{}", ran.show());
    assert!(ran.stdout.contains("ok: 3 partition(s)"), "{}", ran.show());
    assert!(
        ran.stderr.contains("warning[group-cut-vertex]"),
        "{}",
        ran.show()
    );
    assert!(
        ran.stderr.contains(&format!("{}:29:", path.display())),
        "{}",
        ran.show()
    );
    assert!(ran.stderr.contains("1 warning in"), "{}", ran.show());
    assert!(!ran.stderr.contains("error"), "{}", ran.show());
}

#[test]
fn explain_prints_each_groups_tree() {
    let ran = run(&["explain", "examples/replicated.toml"], QUICK);
    assert_eq!(ran.code, Some(0), "{}", ran.show());
    for expected in [
        "group state: 4 members (0=north 1=east 2=south 3=west), leader north",
        "depth 0  north -> east, west",
        "depth 1  east -> south",
        "cut vertices: none",
    ] {
        assert!(
            ran.stdout.contains(expected),
            "no {expected:?} in\n{}",
            ran.show()
        );
    }
    let ran = run(&["check", "examples/replicated.toml"], QUICK);
    assert_eq!(ran.code, Some(0), "{}", ran.show());
    assert!(ran.stderr.is_empty(), "{}", ran.show());
    assert!(
        ran.stdout
            .contains("group state      north, east, south, west"),
        "{}",
        ran.show()
    );
}

#[test]
fn schema_is_json() {
    let ran = run(&["schema"], QUICK);
    assert_eq!(ran.code, Some(0), "{}", ran.show());
    let schema: serde_json::Value = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", ran.show()));
    assert!(schema.get("$schema").is_some(), "{}", ran.show());
    assert!(
        schema["properties"].get("partition").is_some(),
        "{}",
        ran.show()
    );
}

#[test]
fn run_without_a_layout_boots_the_default_layout_and_prints_the_table() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let report = dir.path().join("report.json");
    let ran = run(
        &["run", "--quiet", "--report", report.to_str().unwrap()],
        Duration::from_secs(300),
    );
    assert_eq!(ran.code, Some(0), "{}", ran.show());
    let header = ran
        .stdout
        .lines()
        .position(|l| l.starts_with("partition") && l.contains("state"))
        .unwrap_or_else(|| panic!("no report table in\n{}", ran.show()));
    let rows: Vec<&str> = ran.stdout.lines().skip(header + 1).collect();
    for name in ["ping", "pong", "hello", "compute"] {
        assert!(
            rows.iter()
                .any(|r| r.starts_with(name) && r.contains(" exited ")),
            "no exited row for {name} in\n{}",
            ran.show()
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("the report was written"))
            .expect("the report is JSON");
    assert_eq!(json["version"], 1);
    assert_eq!(json["verdict"], "passed");
    assert_eq!(json["reasons"].as_array().map(Vec::len), Some(0));
    assert_eq!(json["layout"], "examples/default.toml");
    assert!(json["duration_ms"].as_u64().is_some_and(|ms| ms > 0));
    assert_eq!(json["emulator"], "qemu-tcg");
    assert_eq!(json["backend"], "svm");
    assert_eq!(json["partitions"].as_array().map(Vec::len), Some(4));
}

#[test]
fn run_exit_status_follows_the_expectations() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("rogue.toml");
    std::fs::write(
        &path,
        "[machine]\ncpus = 2\nmemory = \"128 MiB\"\ntimeout = 30\n\n\
         [[partition]]\nname = \"rogue\"\ncpu = 0\nmemory = \"16 MiB\"\nworkload = \"rogue\"\n\
         args = { attack = \"port-com1\" }\n\n\
         [[partition]]\nname = \"hello\"\ncpu = 1\nmemory = \"16 MiB\"\nworkload = \"hello\"\n",
    )
    .unwrap();
    let layout = path.to_str().unwrap();
    let timeout = Duration::from_secs(300);
    let ran = run(&["run", "-q", layout], timeout);
    assert_eq!(
        ran.code,
        Some(1),
        "an unexpected fault fails the run\n{}",
        ran.show()
    );
    assert!(
        ran.stderr.contains("partition rogue faulted (port-denied"),
        "{}",
        ran.show()
    );
    let ran = run(
        &["run", "-q", layout, "--expect-fault", "rogue=port-denied"],
        timeout,
    );
    assert_eq!(ran.code, Some(0), "{}", ran.show());
    let ran = run(
        &["run", "-q", layout, "--expect-fault", "rogue=npf"],
        timeout,
    );
    assert_eq!(
        ran.code,
        Some(1),
        "the wrong kind fails the run\n{}",
        ran.show()
    );
    let ran = run(&["run", "-q", layout, "--expect-fault", "nobody"], QUICK);
    assert_eq!(ran.code, Some(2), "a usage error\n{}", ran.show());
    assert!(ran.stderr.contains("no such partition"), "{}", ran.show());
}

/// On a machine set up by `ci/setup.sh` every required tool is there, so
/// the doctor says `ready:` and exits 0; KVM is optional and only reported.
#[test]
fn doctor_is_ready_on_a_machine_set_up_by_ci_setup() {
    let ran = run(&["doctor"], QUICK);
    assert_eq!(ran.code, Some(0), "{}", ran.show());
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("ready: ")),
        "no `ready:` line in\n{}",
        ran.show()
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("MISS")),
        "something is missing\n{}",
        ran.show()
    );
    let kvm = lines
        .iter()
        .filter(|l| l.starts_with("KVM with nested virtualization: "))
        .count();
    assert_eq!(kvm, 1, "one KVM line expected in\n{}", ran.show());
}

/// `flotilla image LAYOUT` puts the layout's boot bundle on the ISO: booted
/// from CD (SeaBIOS, GRUB multiboot2), the machine goes straight into the
/// layout's partitions.
#[test]
fn image_with_a_layout_boots_into_its_partitions() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let iso = dir.path().join("single.iso");
    let iso_arg = iso.to_string_lossy().into_owned();
    let ran = run(
        &[
            "image",
            "examples/single.toml",
            "-o",
            &iso_arg,
            "--exit",
            "qemu",
        ],
        Duration::from_secs(300),
    );
    assert_eq!(
        ran.code,
        Some(0),
        "flotilla image failed:\n{}{}",
        ran.stdout,
        ran.stderr
    );
    let config = RunConfig {
        emulator: Emulator::qemu_tcg(),
        boot: Boot::Iso {
            iso: iso.clone(),
            firmware: Firmware::Bios,
        },
        cpus: 1,
        memory_mib: 128,
        timeout: Duration::from_secs(120),
        echo: false,
    };
    let outcome = e2e::boot(&config);
    e2e::assert_succeeded(&outcome);
    if !outcome.console.contains("[hello] hello from hello") {
        e2e::fail(
            &outcome,
            "the ISO should boot the layout's `hello` partition",
        );
    }
}

/// `run` refuses a bad option at once, as a usage error (exit status 2),
/// before it builds or boots anything.
#[test]
fn run_refuses_bad_options_before_building() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("no-such-dir").join("report.json");
    let cases: [(&[&str], &str); 7] = [
        (
            &["run", "--report", missing.to_str().unwrap()],
            "does not exist",
        ),
        (
            &["run", "--report", dir.path().to_str().unwrap()],
            "is a directory",
        ),
        (
            &["run", "--expect-fault", "ping=npff"],
            "unknown fault kind",
        ),
        (&["run", "--timeout", "0"], "at least 1 second"),
        (&["run", "--memory", "1 MiB"], "at least \"80 MiB\""),
        (&["run", "--memory", "512MB"], "write \"512 MiB\""),
        (&["run", "--memory", "512"], "no unit"),
    ];
    for (args, expected) in cases {
        let ran = run(args, QUICK);
        assert_eq!(ran.code, Some(2), "{args:?}\n{}", ran.show());
        assert!(ran.stderr.contains(expected), "{args:?}\n{}", ran.show());
        assert!(
            !ran.stderr.contains("building"),
            "{args:?} built first\n{}",
            ran.show()
        );
    }
}

/// `check` takes several files (each checked, the status 2 if any is
/// invalid), `-` for standard input, and refuses what is not a file.
#[test]
fn check_reads_several_files_stdin_and_refuses_non_files() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[machine]\ncpus = 1\nmemory = \"512 MiB\"\npartition = []\n",
    )
    .unwrap();
    let ran = run(
        &[
            "check",
            "examples/default.toml",
            bad.to_str().unwrap(),
            "examples/single.toml",
        ],
        QUICK,
    );
    assert_eq!(ran.code, Some(2), "{}", ran.show());
    assert!(
        ran.stdout.contains("examples/default.toml: ok"),
        "{}",
        ran.show()
    );
    assert!(
        ran.stdout.contains("examples/single.toml: ok"),
        "{}",
        ran.show()
    );
    assert!(
        ran.stderr.contains("error[no-partitions]"),
        "{}",
        ran.show()
    );

    let layout = std::fs::read(Workspace::locate().root.join("examples/default.toml"))
        .expect("the default layout");
    let ran = run_with_stdin(&["check", "-"], &layout);
    assert_eq!(ran.code, Some(0), "{}", ran.show());
    assert!(
        ran.stdout.starts_with("<stdin>: ok: 4 partition(s)"),
        "{}",
        ran.show()
    );
    let ran = run_with_stdin(&["check", "-"], b"[machine]\ncpus = 1\n# caf\xe9\n");
    assert_eq!(ran.code, Some(2), "{}", ran.show());
    assert!(ran.stderr.contains("<stdin>:3:6"), "{}", ran.show());
    assert!(ran.stderr.contains("error[not-utf8]"), "{}", ran.show());

    let ran = run(&["check", "/dev/zero"], QUICK);
    assert_eq!(ran.code, Some(2), "{}", ran.show());
    assert!(
        ran.stderr
            .contains("is a character device, not a regular file"),
        "{}",
        ran.show()
    );
    let fifo = dir.path().join("fifo.toml");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let ran = run(&["check", fifo.to_str().unwrap()], QUICK);
        assert_eq!(ran.code, Some(2), "{}", ran.show());
        assert!(
            ran.stderr.contains("is a FIFO (named pipe)"),
            "{}",
            ran.show()
        );
    }
}

/// Runs `flotilla ARGS` with `input` on its standard input.
fn run_with_stdin(args: &[&str], input: &[u8]) -> Ran {
    use std::io::Write;
    let start = Instant::now();
    let mut child = Command::new(flotilla_binary())
        .args(args)
        .current_dir(Workspace::locate().root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting flotilla");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("writing stdin");
    let out = child.wait_with_output().expect("flotilla ends");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
}

/// A layout with one error (line 6) and one warning (line 9).
const ONE_ERROR_ONE_WARNING: &str = "[machine]\ncpus = 1\nmemory = \"512 MiB\"\n[[partition]]\n\
    name = \"a\"\ncpu = 9\nmemory = \"16 MiB\"\nworkload = \"hello\"\nmax_restarts = 2\n";

/// A valid layout with one warning.
const ONE_WARNING: &str = "[machine]\ncpus = 1\nmemory = \"512 MiB\"\n[[partition]]\n\
    name = \"a\"\ncpu = 0\nmemory = \"16 MiB\"\nworkload = \"hello\"\nmax_restarts = 2\n";

#[test]
fn check_prints_json_diagnostics_on_request() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, ONE_ERROR_ONE_WARNING).unwrap();
    let bad = bad.to_str().unwrap();
    let ran = run(
        &[
            "check",
            "--message-format",
            "json",
            bad,
            "examples/default.toml",
        ],
        QUICK,
    );
    assert_eq!(ran.code, Some(2), "{}", ran.show());
    assert!(ran.stderr.is_empty(), "{}", ran.show());
    let objects: Vec<serde_json::Value> = ran
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(objects.len(), 4, "{}", ran.show());
    let error = &objects[0];
    assert_eq!(error["reason"], "diagnostic");
    assert_eq!(error["code"], "cpu-out-of-range");
    assert_eq!(error["severity"], "error");
    assert_eq!(error["file"], bad);
    assert_eq!(
        (error["line"].as_u64(), error["column"].as_u64()),
        (Some(6), Some(7))
    );
    assert_eq!(error["span"]["start"].as_u64(), Some(69));
    assert_eq!(error["span"]["end"].as_u64(), Some(70));
    assert_eq!(error["message"], "cpu 9 does not exist");
    assert!(error["help"].is_string());
    assert_eq!(objects[1]["severity"], "warning");
    assert_eq!(objects[1]["line"].as_u64(), Some(9));
    assert_eq!(objects[2]["reason"], "layout-checked");
    assert_eq!(objects[2]["valid"], false);
    assert_eq!(objects[2]["errors"].as_u64(), Some(1));
    assert_eq!(objects[3]["file"], "examples/default.toml");
    assert_eq!(objects[3]["valid"], true);
}

#[test]
fn deny_warnings_fails_a_layout_with_warnings() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("warned.toml");
    std::fs::write(&path, ONE_WARNING).unwrap();
    let path = path.to_str().unwrap();
    let ran = run(&["check", path], QUICK);
    assert_eq!(ran.code, Some(0), "{}", ran.show());
    let ran = run(&["check", "--deny-warnings", path], QUICK);
    assert_eq!(ran.code, Some(2), "{}", ran.show());
    assert!(ran.stderr.contains("warnings are denied"), "{}", ran.show());
    let ran = run(
        &["check", "--deny-warnings", "examples/default.toml"],
        QUICK,
    );
    assert_eq!(ran.code, Some(0), "{}", ran.show());
}

#[test]
fn color_follows_the_option_and_the_environment() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, ONE_ERROR_ONE_WARNING).unwrap();
    let path = path.to_str().unwrap();
    let colored = |args: &[&str], env: &[(&str, &str)]| {
        let ran = run_env(args, env, QUICK);
        assert_eq!(ran.code, Some(2), "{}", ran.show());
        ran.stderr.contains("\x1b[")
    };
    // stderr is a pipe here: plain unless forced.
    assert!(!colored(&["check", path], &[]));
    assert!(colored(&["check", "--color", "always", path], &[]));
    assert!(colored(
        &["--color", "always", "check", path],
        &[("NO_COLOR", "1")]
    ));
    assert!(!colored(
        &["check", "--color", "never", path],
        &[("CLICOLOR_FORCE", "1")]
    ));
    assert!(colored(&["check", path], &[("CLICOLOR_FORCE", "1")]));
    assert!(!colored(
        &["check", path],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
    ));
    assert!(!colored(&["check", path], &[("CLICOLOR_FORCE", "0")]));
    assert!(!colored(&["check", path], &[("TERM", "dumb")]));
}

#[test]
fn initramfs_refuses_a_missing_busybox_before_building() {
    let ran = run(
        &[
            "initramfs",
            "/nonexistent/out.cpio",
            "--busybox",
            "/nonexistent/busybox",
        ],
        QUICK,
    );
    assert_eq!(ran.code, Some(2), "{}", ran.show());
    assert!(
        ran.stderr
            .contains("--busybox /nonexistent/busybox: no such file"),
        "{}",
        ran.show()
    );
}
