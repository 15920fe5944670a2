//! The exception fixup (hypervisor `arch/x86_64/common/fixup.rs`) under
//! QEMU TCG: `flotilla.selftest=xsetbv-fixup` and `wrmsr-fixup` make the
//! hypervisor execute, through its checked path, an XSETBV and an x2APIC
//! WRMSR that the CPU refuses with #GP. The run must print that it
//! recovered and then succeed — not end with `exception #GP ... run failed`.
//!
//! The shared runner boots the hypervisor with the standard command line
//! only, so these tests start QEMU themselves with the same arguments
//! (`tools::qemu::arguments`) plus the self-test key.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use abi::run_end::{qemu_exit_status, QEMU_SUCCESS_VALUE};
use tools::accel::Accel;
use tools::image::kernel_cmdline;
use tools::qemu::{arguments, QemuBoot, QemuInvocation};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Boots the bare machine (two cores) with `flotilla.selftest=<test>` and
/// returns the console and QEMU's exit status.
fn boot_selftest(test: &str) -> (String, Option<i32>) {
    let qemu = tools::system::QEMU
        .locate()
        .unwrap_or_else(|e| panic!("{e}"));
    let invocation = QemuInvocation {
        accel: Accel::Tcg,
        cpu_model: None,
        cpus: 2,
        memory_mib: 256,
        boot: QemuBoot::Kernel {
            elf: e2e::hypervisor().to_path_buf(),
            cmdline: format!(
                "{} flotilla.selftest={test}",
                kernel_cmdline(abi::cmdline::ExitMethod::Qemu)
            ),
            initrd: None,
        },
    };
    let mut child = Command::new(qemu)
        .args(arguments(&invocation))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting QEMU");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut console = String::new();
        let _ = stdout.read_to_string(&mut console);
        let _ = tx.send(console);
    });
    let console = match rx.recv_timeout(TIMEOUT) {
        Ok(console) => console,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("selftest {test}: QEMU did not finish within {TIMEOUT:?}");
        }
    };
    let status = child.wait().expect("waiting for QEMU").code();
    (console, status)
}

fn assert_recovered(test: &str) {
    let (console, status) = boot_selftest(test);
    let recovered = format!("flotilla: selftest recovered {test}:");
    assert!(
        console.lines().any(|l| l.starts_with(&recovered)),
        "no `{recovered}` line\n{console}"
    );
    assert!(
        !console.contains("flotilla: exception"),
        "the hypervisor took the exception as fatal\n{console}"
    );
    assert!(
        console.contains("flotilla: run succeeded"),
        "the run did not go on to succeed\n{console}"
    );
    assert_eq!(
        status,
        Some(qemu_exit_status(QEMU_SUCCESS_VALUE)),
        "{console}"
    );
}

#[test]
fn a_refused_xsetbv_is_recovered() {
    assert_recovered("xsetbv-fixup");
}

#[test]
fn a_refused_x2apic_wrmsr_is_recovered() {
    assert_recovered("wrmsr-fixup");
}

/// The fixup resumes only its own instructions: any other exception in the
/// hypervisor is still fatal and reported.
#[test]
fn other_exceptions_stay_fatal() {
    let (console, status) = boot_selftest("ud2");
    assert!(
        console.contains("flotilla: exception #UD"),
        "no #UD report\n{console}"
    );
    assert_ne!(
        status,
        Some(qemu_exit_status(QEMU_SUCCESS_VALUE)),
        "{console}"
    );
}
