//! The virtual platform of a stock-kernel partition (`compat = "linux"`,
//! `docs/linux.md`): the guest-physical addresses and I/O ports of the
//! devices the hypervisor emulates for it, and the values the ACPI tables
//! the host tools build for it describe.
//!
//! Why here: the host tools write these numbers into the partition's ACPI
//! tables (FADT, DSDT) and the hypervisor answers accesses at them; both
//! must agree, so they are written once. None of these is a physical
//! device: every access is emulated by the hypervisor on the partition's own
//! core, so granting one never reaches past the partition. The port numbers
//! follow the places PC firmware usually puts these devices (ACPI 6.5
//! §4.8.3 "hardware-reduced" sleep registers), so a kernel's defaults and
//! its tables agree. There is no ACPI PM timer (optional on a
//! hardware-reduced platform, §4.8.3.3): the TSC is the clocksource, and a
//! timer a kernel may read keeps costing exits while it idles.

use crate::ports::PortRange;

/// The emulated 16550 UART the partition sees as COM1 (8 registers).
pub const VIRT_UART: PortRange = PortRange::new(0x3f8, 0x3ff);

/// ACPI sleep status register (hardware-reduced, FADT `SLEEP_STATUS_REG`,
/// one byte): reads `WAK_STS` clear, writes are ignored.
pub const SLEEP_STATUS_PORT: u16 = 0x600;
/// ACPI sleep control register (hardware-reduced, FADT `SLEEP_CONTROL_REG`,
/// one byte): a write with `SLP_EN` and `SLP_TYP` = [`SLP_TYP_S5`] powers the
/// partition off (exit code [`POWER_OFF_EXIT_CODE`]).
pub const SLEEP_CONTROL_PORT: u16 = 0x604;
/// ACPI reset register (FADT `RESET_REG`, one byte, system I/O).
pub const RESET_PORT: u16 = 0x60c;
/// The value the FADT tells the kernel to write to [`RESET_PORT`]; it ends
/// the partition with [`REBOOT_EXIT_CODE`].
pub const RESET_VALUE: u8 = 0x01;

/// `SLP_EN`, bit 5 of the sleep control register.
pub const SLP_EN: u8 = 1 << 5;
/// Bit position of `SLP_TYP` (bits 2..=4) in the sleep control register.
pub const SLP_TYP_SHIFT: u8 = 2;
/// The `SLP_TYP` value the DSDT's `\_S5` package declares.
pub const SLP_TYP_S5: u8 = 5;

/// Exit code of a partition that powered itself off (ACPI S5).
pub const POWER_OFF_EXIT_CODE: u64 = 0;
/// Exit code of a partition that asked for a reset (the ACPI reset
/// register, or the keyboard controller's pulse on port 0x64).
pub const REBOOT_EXIT_CODE: u64 = 0x52; // 'R'

/// Guest-physical address of the partition's ACPI tables (RSDP first,
/// 16-byte aligned, then XSDT, FADT, DSDT, MADT), in the legacy BIOS area
/// the memory map reserves (`docs/boot-protocol.md` §6).
pub const ACPI_TABLES_GPA: u64 = 0xE_0000;
/// The most bytes the ACPI tables may take.
pub const ACPI_TABLES_MAX: u64 = 0x1_0000;

/// Top of the low RAM a stock kernel gets in its memory map (its real-mode
/// trampoline lives there): `0x1_0000 .. LOW_RAM_END` is RAM for a compat
/// partition, reserved for the others.
pub const LOW_RAM_END: u64 = 0x9_F000;

// The layout rules, checked when the crate compiles.
const _: () = {
    assert!(SLP_TYP_S5 <= 7, "SLP_TYP is three bits");
    assert!(
        SLP_EN & (7 << SLP_TYP_SHIFT) == 0,
        "SLP_EN is outside SLP_TYP"
    );
    assert!(LOW_RAM_END <= ACPI_TABLES_GPA, "tables above low RAM");
    assert!(
        ACPI_TABLES_GPA + ACPI_TABLES_MAX <= 0x10_0000,
        "tables below 1 MiB"
    );
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_do_not_overlap_each_other_or_the_uart() {
        let ports = [SLEEP_STATUS_PORT, SLEEP_CONTROL_PORT, RESET_PORT];
        for (i, a) in ports.iter().enumerate() {
            assert!(!VIRT_UART.contains(*a));
            for b in &ports[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
