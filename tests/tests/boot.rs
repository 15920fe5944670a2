//! The hypervisor booted directly by QEMU (`-kernel`, PVH) under TCG with
//! emulated SVM: every core comes online and the run succeeds.

use e2e::{assert_all_cores_online, boot, hypervisor, machine, Boot, Emulator};

/// Generous for a run that takes well under a second on an idle machine.
const TIMEOUT_SECS: u64 = 60;

fn every_core_reports(cpus: u32) {
    let config = machine(
        Emulator::qemu_tcg(),
        Boot::Kernel {
            elf: hypervisor().to_path_buf(),
            initrd: None,
        },
        cpus,
        TIMEOUT_SECS,
    );
    let outcome = boot(&config);
    assert_all_cores_online(&outcome, cpus);
    assert_eq!(
        outcome.exit_status,
        Some(abi::run_end::qemu_exit_status(
            abi::run_end::QEMU_SUCCESS_VALUE
        ))
    );
}

#[test]
fn qemu_tcg_1_core() {
    every_core_reports(1);
}

#[test]
fn qemu_tcg_2_cores() {
    every_core_reports(2);
}

#[test]
fn qemu_tcg_4_cores() {
    every_core_reports(4);
}

#[test]
fn qemu_tcg_8_cores() {
    every_core_reports(8);
}
