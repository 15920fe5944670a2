//! The compat platform of a stock-kernel partition (`compat = "linux"`),
//! seen from a guest: the guest kernel's own ELF, given by path with the
//! opt-in, runs `rogue` attacks that stop a strict partition. Under compat
//! an MSR it cannot reach raises #GP in the guest (the guest kernel's
//! exception handler reports vector 13 and exits with its exception code)
//! instead of faulting the partition, and ports not granted float (reads
//! all ones) or reach the virtual UART; the run report counts each use.
//! The same attack in a strict partition beside them still faults, and a
//! built-in partition computes its known result. Under QEMU TCG (SVM) and
//! Bochs (VMX).

use e2e::{
    boot_layout, console_line_with, images, layout, layout_config, partition, primes_below,
    Emulator, LayoutOutcome,
};
use tools::report::PartitionState;

/// The exit codes of the guest kernel: an attack that was not stopped,
/// and an exception it took (`flotilla_rt::exit_code::EXCEPTION`).
const NOT_STOPPED: u64 = 3;
const EXCEPTION: u64 = 255;

fn toml() -> String {
    let rogue = |name: &str, cpu: u32, attack: &str, compat: bool| {
        let compat = if compat { "compat = \"linux\"\n" } else { "" };
        format!(
            "[[partition]]\nname = \"{name}\"\ncpu = {cpu}\nmemory = \"16 MiB\"\n\
             kernel = \"guest.elf\"\n{compat}workload = \"rogue\"\nargs = {{ attack = \"{attack}\" }}\n\n"
        )
    };
    format!(
        "[machine]\ncpus = 6\nmemory = \"256 MiB\"\ntimeout = 90\n\n\
         [[partition]]\nname = \"calc\"\ncpu = 0\nmemory = \"16 MiB\"\nworkload = \"compute\"\n\
         args = {{ n = 10000 }}\n\n{}{}{}{}{}",
        rogue("msr-gp", 1, "msr-tsc", true),
        rogue("pci-float", 2, "port-pci-data", true),
        rogue("kbc-float", 3, "port-keyboard-64", true),
        rogue("uart", 4, "port-in", true),
        rogue("strict", 5, "msr-tsc", false),
    )
}

fn run(emulator: Emulator) -> LayoutOutcome {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::copy(&images().guest_kernel, dir.path().join("guest.elf")).expect("copy the ELF");
    let layout = layout(&toml(), &dir.path().join("compat.toml").to_string_lossy());
    boot_layout(&layout_config(layout).with_emulator(emulator))
}

fn check(outcome: &LayoutOutcome) {
    let ended = |name: &str, code: u64| {
        let p = partition(outcome, name);
        assert!(
            p.state == PartitionState::Exited && p.exit_code == Some(code),
            "{name}: expected exit {code}, got {:?} {:?}\n{}",
            p.state,
            p.exit_code,
            outcome.details()
        );
        p.compat.unwrap_or_default()
    };
    let calc = partition(outcome, "calc");
    assert!(calc.exited_ok(), "{}", outcome.details());
    assert_eq!(calc.result_u64("primes"), Some(primes_below(10_000)));
    assert_eq!(
        calc.compat, None,
        "a strict partition uses no compat platform"
    );

    // WRMSR to the TSC: #GP(0) delivered through the guest's IDT.
    let used = ended("msr-gp", EXCEPTION);
    console_line_with(
        outcome,
        "msr-gp",
        "exception 13 (#GP general protection) error 0x0",
    );
    assert_eq!((used.msr_gp, used.ports_floated), (1, 0));

    // Floating ports: a dword and a byte of all ones.
    let used = ended("pci-float", NOT_STOPPED);
    console_line_with(outcome, "pci-float", "PCI data port read 0xffffffff");
    assert_eq!((used.msr_gp, used.ports_floated), (0, 1));
    let used = ended("kbc-float", NOT_STOPPED);
    console_line_with(outcome, "kbc-float", "keyboard controller status 0xff");
    assert_eq!(used.ports_floated, 1);

    // COM1's line status is the virtual UART's: ready to transmit, no float.
    let used = ended("uart", NOT_STOPPED);
    console_line_with(outcome, "uart", "COM1 line status 0x60");
    assert_eq!(used.ports_floated, 0);

    // Strict, beside them: the same WRMSR stops the partition.
    let strict = partition(outcome, "strict");
    assert_eq!(
        strict.state,
        PartitionState::Faulted,
        "{}",
        outcome.details()
    );
    assert_eq!(strict.fault_kind(), Some(abi::fault::FaultKind::MsrDenied));
    assert_eq!(strict.compat, None);
}

#[test]
fn compat_partitions_get_gp_and_floating_ports_under_qemu_svm() {
    check(&run(Emulator::qemu_tcg()));
}

#[test]
fn compat_partitions_get_gp_and_floating_ports_under_bochs_vmx() {
    check(&run(Emulator::bochs()));
}
