//! The `flotilla` binary as a user meets it: help, usage errors, and the
//! one-line error for a missing system tool.

use std::process::{Command, Output};

fn flotilla(args: &[&str], path: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flotilla"));
    cmd.args(args);
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    cmd.output().expect("the flotilla binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_lists_the_subcommands() {
    let out = flotilla(&["--help"], None);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "run", "image", "build", "check", "explain", "schema", "doctor",
    ] {
        assert!(text.contains(word), "help lacks {word}:\n{text}");
    }
    let out = flotilla(&["run", "--help"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--timeout",
        "--accel",
        "--cpus",
        "--memory",
        "--emulator",
        "--cpu-model",
        "--boot",
        "--quiet",
    ] {
        assert!(text.contains(option), "run --help lacks {option}:\n{text}");
    }
}

#[test]
fn missing_qemu_is_one_line_naming_the_package() {
    let out = flotilla(&["run"], Some("/nonexistent"));
    assert_eq!(
        out.status.code(),
        Some(3),
        "a missing tool is exit status 3"
    );
    assert_eq!(
        stderr(&out),
        "error: qemu-system-x86_64 not found: install the Debian package qemu-system-x86 \
         (ci/setup.sh installs everything)\n"
    );
}

#[test]
fn missing_bochs_and_grub_are_named_too() {
    let out = flotilla(&["run", "--emulator", "bochs"], Some("/nonexistent"));
    assert!(stderr(&out).starts_with("error: bochs not found: install the Debian package bochs"));
    let out = flotilla(&["image", "-o", "/nonexistent/x.iso"], Some("/nonexistent"));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out)
            .starts_with("error: grub-mkrescue not found: install the Debian package grub-common"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bochs_rejects_qemu_only_options() {
    let out = flotilla(&["run", "--emulator", "bochs", "--accel", "kvm"], None);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(
        stderr(&out).contains("--accel applies to QEMU only"),
        "{}",
        stderr(&out)
    );
    let out = flotilla(&["run", "--emulator", "bochs", "--boot", "iso-uefi"], None);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(stderr(&out).contains("BIOS only"), "{}", stderr(&out));
}

#[test]
fn bad_memory_size_is_a_usage_error() {
    let out = flotilla(&["run", "--memory", "lots"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a memory size"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_documents_the_exit_statuses_and_streams() {
    let out = flotilla(&["--help"], None);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "Exit status:",
        "0  success",
        "1  the run failed",
        "2  usage error or invalid layout",
        "3  a required tool is missing",
        "diagnostics, progress and errors go to stderr",
    ] {
        assert!(text.contains(line), "help lacks {line:?}:\n{text}");
    }
}

#[test]
fn build_checks_its_layout_before_building() {
    let dir = std::env::temp_dir().join(format!("flotilla-cli-build-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("directory");
    let layout = dir.join("bad.toml");
    std::fs::write(
        &layout,
        "[machine]\ncpus = 1\nmemory = \"512 MiB\"\npartition = []\n",
    )
    .expect("written");
    let out = flotilla(
        &[
            "build",
            layout.to_str().unwrap(),
            "-o",
            dir.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("error[no-partitions]"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("building"), "{}", stderr(&out));
    assert!(!dir.join("hypervisor.elf").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
