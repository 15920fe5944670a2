//! The GRUB multiboot2 ISO (what `flotilla image` makes) booted by QEMU with
//! BIOS, by QEMU with UEFI (OVMF), and by Bochs with a VMX CPU model.

use abi::cmdline::ExitMethod;
use e2e::{assert_all_cores_online, boot, iso, machine, Boot, Emulator, Firmware};

fn iso_boot(exit: ExitMethod, firmware: Firmware) -> Boot {
    Boot::Iso {
        iso: iso(exit).to_path_buf(),
        firmware,
    }
}

#[test]
fn iso_qemu_bios() {
    let config = machine(
        Emulator::qemu_tcg(),
        iso_boot(ExitMethod::Qemu, Firmware::Bios),
        2,
        120,
    );
    assert_all_cores_online(&boot(&config), 2);
}

#[test]
fn iso_qemu_uefi() {
    // OVMF alone takes several seconds under TCG.
    let config = machine(
        Emulator::qemu_tcg(),
        iso_boot(ExitMethod::Qemu, Firmware::Uefi),
        2,
        240,
    );
    assert_all_cores_online(&boot(&config), 2);
}

#[test]
fn iso_bochs_vmx_2_cores() {
    // Bochs needs 10-20 s for BIOS and GRUB before the first console line.
    let config = machine(
        Emulator::bochs(),
        iso_boot(ExitMethod::Bochs, Firmware::Bios),
        2,
        300,
    );
    let outcome = boot(&config);
    assert_all_cores_online(&outcome, 2);
    if !outcome.console.contains(" vmx ") {
        e2e::fail(
            &outcome,
            "expected the cores to report VMX under Bochs' corei7_skylake_x",
        );
    }
}
