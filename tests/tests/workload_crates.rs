//! Workload crates named in layouts (`kernel = { crate = "…" }`): the
//! examples `examples/sieve.toml` and `examples/kv.toml` are built from
//! their crates and booted under
//! QEMU TCG and under Bochs VMX, and its collector's checked total is in
//! the report (the sieve's checked total, the key-value clients' checks);
//! a crate
//! that does not compile is a diagnostic at the layout's `kernel =` with
//! cargo's own error; and what a new user does: `flotilla new` into a
//! temporary directory, then `flotilla run` on its layout.

use e2e::{
    assert_backend, assert_passed, boot_layout, console_line_with, examples_dir, fail_layout,
    flotilla_binary, layout_config, layout_file, partition, primes_below, result_of, Emulator,
    LayoutOutcome,
};
use std::process::{Command, Stdio};

use tools::build::Workspace;
use tools::layout_run::LayoutSource;

/// The sieve's counts: worker0's slice, the workers' sum, the collector's
/// checked total.
fn assert_sieve_counts(outcome: &LayoutOutcome) {
    assert_passed(outcome);
    assert_eq!(
        result_of(outcome, "worker0", "primes"),
        primes_below(200_000)
    );
    let sum: u64 = (0..3)
        .map(|i| result_of(outcome, &format!("worker{i}"), "primes"))
        .sum();
    assert_eq!(sum, primes_below(1_000_000));
    assert_eq!(
        result_of(outcome, "collector", "primes"),
        primes_below(1_000_000)
    );
    assert_eq!(result_of(outcome, "collector", "parts"), 3);
    let collector = partition(outcome, "collector");
    assert_eq!(
        collector.result.as_ref().and_then(|r| r.get("ok")),
        Some(&serde_json::Value::Bool(true)),
        "{collector:?}"
    );
}

#[test]
fn the_sieve_example_counts_primes_across_partitions() {
    let layout = layout_file(&examples_dir().join("sieve.toml"));
    assert_sieve_counts(&boot_layout(&layout_config(layout)));
}

/// The same under Bochs (`corei7_skylake_x`): the VMX backend.
#[test]
fn the_sieve_example_under_bochs_vmx() {
    let layout = layout_file(&examples_dir().join("sieve.toml"));
    let outcome = boot_layout(&layout_config(layout).with_emulator(Emulator::bochs()));
    assert_backend(&outcome, "vmx");
    assert_sieve_counts(&outcome);
}

/// The key-value example: 2 clients x 200 puts and 200 gets, all checked.
fn assert_kv_served(outcome: &LayoutOutcome) {
    assert_passed(outcome);
    assert_eq!(result_of(outcome, "server", "requests"), 800);
    assert_eq!(result_of(outcome, "server", "keys"), 400);
    assert_eq!(result_of(outcome, "server", "clients"), 2);
    for client in ["client-a", "client-b"] {
        assert_eq!(result_of(outcome, client, "gets"), 200);
        let p = partition(outcome, client);
        assert_eq!(
            p.result.as_ref().and_then(|r| r.get("ok")),
            Some(&serde_json::Value::Bool(true)),
            "{p:?}"
        );
    }
}

#[test]
fn the_kv_example_serves_its_clients() {
    let layout = layout_file(&examples_dir().join("kv.toml"));
    assert_kv_served(&boot_layout(&layout_config(layout)));
}

#[test]
fn the_kv_example_under_bochs_vmx() {
    let layout = layout_file(&examples_dir().join("kv.toml"));
    let outcome = boot_layout(&layout_config(layout).with_emulator(Emulator::bochs()));
    assert_backend(&outcome, "vmx");
    assert_kv_served(&outcome);
}

#[test]
fn a_crate_that_does_not_compile_is_reported_at_the_layout() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    temporary_crate(
        dir.path(),
        "broken",
        "#![no_std]\n#![no_main]\nfn run(_: &mut flotilla_rt::Context) -> flotilla_rt::Result {\n    undefined_thing()\n}\nflotilla_rt::entry!(run);\n",
    );
    let layout = dir.path().join("layout.toml");
    std::fs::write(
        &layout,
        "[machine]\ncpus = 1\nmemory = \"128 MiB\"\n\n[[partition]]\nname = \"b\"\ncpu = 0\nmemory = \"16 MiB\"\nkernel = { crate = \"broken\" }\nworkload = \"x\"\n",
    )
    .expect("writing the layout");
    let diagnostics = match LayoutSource::File(layout.clone()).load() {
        Ok(_) => panic!("a crate that does not compile was accepted"),
        Err(d) => d.render_plain(),
    };
    for needle in [
        "error[crate-build-failed]: workload crate `broken` did not build",
        "kernel = { crate = \"broken\" }",
        "undefined_thing",
        "E0425",
    ] {
        assert!(
            diagnostics.contains(needle),
            "no {needle:?} in:\n{diagnostics}"
        );
    }
}

/// A workload crate in a temporary directory: `Cargo.toml` naming the
/// runtime by path, `src/main.rs` as given.
fn temporary_crate(dir: &std::path::Path, name: &str, main_rs: &str) {
    let krate = dir.join(name);
    std::fs::create_dir_all(krate.join("src")).expect("creating the crate");
    let runtime = Workspace::locate().root.join("flotilla-rt");
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nflotilla-rt = {{ path = {:?} }}\n\n[workspace]\n",
            runtime.display().to_string()
        ),
    )
    .expect("writing Cargo.toml");
    std::fs::write(krate.join("src/main.rs"), main_rs).expect("writing main.rs");
}

/// A workload whose stack overflows and one that panics: each ends its own
/// partition with the runtime's documented code and message (the overflow
/// hits the kernel stack's guard page instead of overwriting what lies
/// below the stack), and the partition beside them runs on.
#[test]
fn a_stack_overflow_and_a_panic_end_only_their_partition() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    temporary_crate(
        dir.path(),
        "crash",
        r#"#![no_std]
#![no_main]
use flotilla_rt::{Context, Outcome, Report};

/// Recursion the compiler cannot turn into a loop: each frame's array is
/// read by the next call, and the result is used after it returns.
#[inline(never)]
fn deep(depth: u64, parent: &[u64; 64]) -> u64 {
    let mine = core::hint::black_box([depth ^ parent[0]; 64]);
    if core::hint::black_box(depth == u64::MAX) {
        return mine[1];
    }
    deep(depth + 1, &mine) ^ parent[3]
}

fn run(ctx: &mut Context) -> flotilla_rt::Result {
    match ctx.workload() {
        "overflow" => {
            let n = deep(0, &[1; 64]);
            Ok(Outcome::ok(Report::new().with("n", n)))
        }
        _ => panic!("gave up on purpose after {} words", 3),
    }
}
flotilla_rt::entry!(run);
"#,
    );
    let layout = dir.path().join("layout.toml");
    std::fs::write(
        &layout,
        "[machine]\ncpus = 3\nmemory = \"128 MiB\"\ntimeout = 60\n\n\
         [[partition]]\nname = \"deep\"\ncpu = 0\nmemory = \"16 MiB\"\n\
         kernel = { crate = \"crash\" }\nworkload = \"overflow\"\n\n\
         [[partition]]\nname = \"quitter\"\ncpu = 1\nmemory = \"16 MiB\"\n\
         kernel = { crate = \"crash\" }\nworkload = \"panic\"\n\n\
         [[partition]]\nname = \"bystander\"\ncpu = 2\nmemory = \"16 MiB\"\nworkload = \"compute\"\n",
    )
    .expect("writing the layout");
    let outcome = boot_layout(&layout_config(layout_file(&layout)));
    // The overflow is a page fault (vector 14) delivered on its own stack.
    let expected = [
        (
            "deep",
            flotilla_rt::exit_code::EXCEPTION,
            [
                "crash: stack overflow: the 128 KiB kernel stack ran into its guard page",
                "crash: exception 14 (#PF page fault)",
            ],
        ),
        (
            "quitter",
            flotilla_rt::exit_code::PANIC,
            [
                "crash: panic: panicked at src/main.rs:",
                "gave up on purpose after 3 words",
            ],
        ),
    ];
    for (name, code, lines) in expected {
        if partition(&outcome, name).exit_code != Some(code) {
            fail_layout(&outcome, &format!("partition {name} did not exit {code}"));
        }
        for line in lines {
            console_line_with(&outcome, name, line);
        }
    }
    // The built-in kernel beside them has the same guard.
    console_line_with(&outcome, "bystander", "(stack 128 KiB with a guard page,");
    let bystander = partition(&outcome, "bystander");
    if !bystander.exited_ok() {
        fail_layout(&outcome, "the partition beside them did not exit 0");
    }
}

#[test]
fn a_new_crate_runs_as_scaffolded() {
    let flotilla = flotilla_binary();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().join("my-first");
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(flotilla)
            .args(args)
            .current_dir(Workspace::locate().root)
            .stdin(Stdio::null())
            .output()
            .expect("running flotilla");
        let text = format!(
            "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (code, text) = run(&["new".as_ref(), dir.as_os_str()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(dir.join("src/main.rs").is_file(), "{text}");
    // A second `new` into the same directory is refused, and changes nothing.
    let before = std::fs::read_to_string(dir.join("src/main.rs")).expect("main.rs");
    let (code, text) = run(&["new".as_ref(), dir.as_os_str()]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("already exists"), "{text}");
    assert_eq!(
        std::fs::read_to_string(dir.join("src/main.rs")).expect("main.rs"),
        before
    );

    let layout = dir.join("layout.toml");
    let (code, text) = run(&["run".as_ref(), layout.as_os_str()]);
    assert_eq!(code, Some(0), "{text}");
    for needle in [
        "[my-first] hello from my-first on core 0",
        "builtin-echo echoed 3 words",
        "echoed=3 greeted=true",
        "run passed",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
}
