//! The I/O ports the platform owns: one table that `flotilla check` (layout
//! validation), the manifest decoder and the hypervisor's run plan all use to
//! refuse a layout that grants any of them (`docs/layout.md`, "I/O ports").
//!
//! Why here: the table is a contract between the host tools and the
//! hypervisor, and `abi` is the one dependency-free `no_std` crate both sides
//! (and the guest kernel) already share. It also holds the run-end ports
//! ([`crate::run_end`]) this table must cover, so the debug-exit and Bochs
//! shutdown entries are written from those constants, not copied.
//!
//! A port is platform-owned when granting it would let one partition reach
//! past itself: end or reset the run, forge the hypervisor's console, program
//! DMA or PCI devices (memory anywhere), or change a device every core shares
//! (interrupt controllers, timers, the RTC, ACPI power management). The table
//! names the legacy PC devices and the emulators' own devices Flotilla runs
//! on (QEMU `pc`/`q35`, Bochs); the hypervisor additionally refuses the ports
//! the machine's ACPI FADT declares (power-management blocks, SMI command,
//! reset register), which is where real firmware puts them.
//!
//! Ports not in the table stay grantable — in particular the spare UARTs
//! COM2–COM4 ([`SPARE_UARTS`]), the floppy, IDE and VGA ports (whole devices
//! a layout may hand to one partition), and ports no device decodes.
//!
//! Sources (read, not copied): the legacy PC map as QEMU's `hw/i386/pc.c`,
//! `hw/isa/piix.c`, `hw/isa/lpc_ich9.c`, `hw/acpi/{piix4,ich9,pcihp,cpu_hotplug,
//! memory_hotplug}.c`, `hw/nvram/fw_cfg.c`, `hw/misc/pvpanic-isa.c`,
//! `hw/char/debugcon.c` and `hw/i386/vmport.c` register it; Bochs'
//! `iodev/{unmapped,biosdev,iodebug,cmos,devices}.cc`; SeaBIOS `src/hw/ioport.h`
//! and `src/fw/paravirt.c` (PM base 0xB000, moved to 0x600 under QEMU, SMBus
//! at PM base + 0x100; QEMU's `hw/i2c/pm_smbus.c` decodes 64 bytes there).

use crate::run_end::{BOCHS_SHUTDOWN_PORT, QEMU_DEBUG_EXIT_PORT, QEMU_DEBUG_EXIT_SIZE};

/// An inclusive range of I/O ports (`first <= last`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
}

impl PortRange {
    /// The ports `first..=last`.
    #[must_use]
    pub const fn new(first: u16, last: u16) -> Self {
        Self { first, last }
    }

    /// The single port `port`.
    #[must_use]
    pub const fn single(port: u16) -> Self {
        Self {
            first: port,
            last: port,
        }
    }

    /// Whether the two ranges share at least one port.
    #[must_use]
    pub const fn overlaps(&self, other: &Self) -> bool {
        self.first <= other.last && other.first <= self.last
    }

    /// Whether `port` is in the range.
    #[must_use]
    pub const fn contains(&self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }
}

impl core::fmt::Display for PortRange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.first == self.last {
            write!(f, "{:#x}", self.first)
        } else {
            write!(f, "{:#x}-{:#x}", self.first, self.last)
        }
    }
}

/// One platform-owned port range: never grantable to a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlatformPort {
    /// The ports.
    pub range: PortRange,
    /// A short name of what owns them.
    pub name: &'static str,
    /// Why a partition may not have them.
    pub reason: &'static str,
    /// What a layout should grant instead, when there is a usual
    /// alternative (a spare UART for the hypervisor's).
    pub instead: Option<&'static str>,
}

/// The hypervisor's console UART (COM1): its own output and the run report.
pub const HYPERVISOR_UART: PortRange = PortRange::new(0x3f8, 0x3ff);

/// A 16550 UART a layout may give to one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpareUart {
    /// Its usual name.
    pub name: &'static str,
    /// Its eight registers.
    pub range: PortRange,
}

/// The PC's other standard UARTs, all grantable.
pub const SPARE_UARTS: [SpareUart; 3] = [
    SpareUart {
        name: "COM2",
        range: PortRange::new(0x2f8, 0x2ff),
    },
    SpareUart {
        name: "COM3",
        range: PortRange::new(0x3e8, 0x3ef),
    },
    SpareUart {
        name: "COM4",
        range: PortRange::new(0x2e8, 0x2ef),
    },
];

const fn owned(first: u16, last: u16, name: &'static str, reason: &'static str) -> PlatformPort {
    PlatformPort {
        range: PortRange::new(first, last),
        name,
        reason,
        instead: None,
    }
}

/// Every platform-owned port range, sorted by first port, disjoint.
#[rustfmt::skip]
pub const PLATFORM_PORTS: &[PlatformPort] = &[
    owned(0x00, 0x1f, "DMA controller 1 (8237)",
        "ISA DMA writes host-physical memory outside every partition"),
    owned(0x20, 0x21, "PIC 1 (8259)",
        "one interrupt controller shared by every core"),
    owned(0x40, 0x43, "PIT (8254)",
        "the one interval timer, shared by every core"),
    owned(0x60, 0x60, "keyboard controller data (8042)",
        "the 8042 drives the A20 gate and the CPU reset line"),
    owned(0x61, 0x61, "system control port B",
        "gates PIT channel 2 and masks the platform's NMI sources"),
    owned(0x62, 0x62, "embedded controller data",
        "the ACPI embedded controller (where present) runs fans, batteries and power"),
    owned(0x64, 0x64, "keyboard controller command (8042)",
        "command 0xFE pulses the CPU reset line: the machine reboots"),
    owned(0x66, 0x66, "embedded controller command",
        "the ACPI embedded controller (where present) runs fans, batteries and power"),
    owned(0x70, 0x71, "RTC/CMOS",
        "the one real-time clock and the firmware's settings; the index port also masks NMI"),
    owned(0x72, 0x73, "extended CMOS",
        "the firmware's second CMOS bank"),
    owned(0x80, 0x8f, "DMA page registers and POST port",
        "the upper address bits of ISA DMA; 0x80 is the firmware's POST code port"),
    owned(0x92, 0x92, "system control port A",
        "bit 0 resets the CPU (fast reset), bit 1 is the fast A20 gate"),
    owned(0xa0, 0xa1, "PIC 2 (8259)",
        "one interrupt controller shared by every core"),
    owned(0xb2, 0xb3, "APM control and status (SMI)",
        "a write to 0xB2 raises an SMI: firmware runs in SMM with the whole machine"),
    owned(0xc0, 0xdf, "DMA controller 2 (8237)",
        "ISA DMA writes host-physical memory outside every partition"),
    owned(0xe9, 0xe9, "debug console (QEMU debugcon, Bochs port 0xE9 hack)",
        "writes the emulator's own log: a partition could forge host-side output"),
    owned(QEMU_DEBUG_EXIT_PORT, QEMU_DEBUG_EXIT_PORT + (QEMU_DEBUG_EXIT_SIZE - 1),
        "QEMU isa-debug-exit",
        "a write ends the QEMU run with an exit status the partition chooses"),
    PlatformPort {
        range: HYPERVISOR_UART,
        name: "COM1 (the hypervisor's console UART)",
        reason: "carries the hypervisor's console and the run report: a partition could forge them",
        instead: Some("a spare UART: COM2 \"0x2f8-0x2ff\", COM3 \"0x3e8-0x3ef\" or COM4 \"0x2e8-0x2ef\""),
    },
    owned(0x400, 0x403, "BIOS panic and debug ports (Bochs BIOS, SeaBIOS)",
        "a write to 0x400 or 0x401 makes Bochs panic and end the run; 0x402/0x403 write the firmware log"),
    owned(0x4d0, 0x4d1, "ELCR (PIC edge/level control)",
        "sets edge or level triggering of every legacy interrupt line"),
    owned(0x500, 0x503, "VGA BIOS panic and debug ports (Bochs)",
        "a write to 0x501 or 0x502 makes Bochs panic and end the run"),
    owned(0x505, 0x505, "QEMU pvpanic",
        "reports a guest panic to QEMU, which may stop or end the run"),
    owned(0x510, 0x51b, "QEMU fw_cfg (selector, data, DMA at 0x514)",
        "the firmware configuration interface; its DMA writes host-physical memory anywhere"),
    owned(0x600, 0x67f, "ACPI power management (QEMU PIIX4/ICH9 PMBASE)",
        "a write to PM1 control powers the machine off; also the PM timer, GPEs, SMI enables and the TCO watchdog"),
    owned(0x700, 0x73f, "SMBus host controller (QEMU)",
        "the chipset's SMBus reaches the memory SPD EEPROMs and other platform devices"),
    owned(0xa00, 0xa17, "QEMU ACPI memory hotplug",
        "plugs and ejects the machine's memory"),
    owned(0xcc4, 0xcdb, "QEMU ACPI PCI hotplug (q35)",
        "ejects PCI devices from the whole machine"),
    owned(0xcf8, 0xcff, "PCI configuration (0xCF8 address, 0xCFC data) and reset control 0xCF9",
        "configures every PCI device (bus mastering and BARs give DMA anywhere); 0xCF9 resets the machine"),
    owned(0x5658, 0x5658, "QEMU vmport (VMware backdoor)",
        "a host interface shared by the whole machine"),
    owned(BOCHS_SHUTDOWN_PORT, BOCHS_SHUTDOWN_PORT, "Bochs shutdown port (SeaBIOS APM shutdown)",
        "writing \"Shutdown\" ends the Bochs run"),
    owned(0x8a00, 0x8a01, "Bochs I/O debugger port",
        "drives Bochs' debugger hooks"),
    owned(0xae00, 0xae17, "QEMU ACPI PCI hotplug (i440fx)",
        "ejects PCI devices from the whole machine"),
    owned(0xaf00, 0xaf1f, "QEMU ACPI CPU hotplug",
        "plugs and ejects the machine's cores"),
    owned(0xafe0, 0xafe3, "QEMU ACPI GPE0 block (i440fx)",
        "general-purpose event status and enables of the whole machine"),
    owned(0xb000, 0xb03f, "ACPI power management (Bochs BIOS PIIX4 PMBASE)",
        "a write to PM1 control powers the machine off; also the PM timer and SMI enables"),
    owned(0xb100, 0xb13f, "SMBus host controller (Bochs BIOS)",
        "the chipset's SMBus reaches the memory SPD EEPROMs and other platform devices"),
];

/// The platform-owned entries `range` overlaps, in table order.
pub fn platform_overlaps(range: PortRange) -> impl Iterator<Item = &'static PlatformPort> {
    PLATFORM_PORTS
        .iter()
        .filter(move |p| p.range.overlaps(&range))
}

/// The first platform-owned entry `range` overlaps, if any.
#[must_use]
pub fn first_platform_overlap(range: PortRange) -> Option<&'static PlatformPort> {
    platform_overlaps(range).next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_disjoint_and_well_formed() {
        for p in PLATFORM_PORTS {
            assert!(p.range.first <= p.range.last, "{}", p.name);
            assert!(!p.name.is_empty() && !p.reason.is_empty());
        }
        for pair in PLATFORM_PORTS.windows(2) {
            assert!(
                pair[0].range.last < pair[1].range.first,
                "{} and {} are out of order or overlap",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn overlap_at_either_end_is_found() {
        // COM1 is 0x3f8..=0x3ff: a range ending on its first port, one
        // starting on its last, one inside and one around it all overlap.
        for (first, last) in [
            (0x3f0, 0x3f8),
            (0x3ff, 0x3ff),
            (0x3fa, 0x3fb),
            (0x3e0, 0x400),
        ] {
            let hit = first_platform_overlap(PortRange::new(first, last))
                .unwrap_or_else(|| panic!("{first:#x}-{last:#x} overlaps COM1"));
            assert!(hit.range.contains(0x3f8) || hit.range.contains(0x400));
        }
        assert_eq!(
            first_platform_overlap(PortRange::new(0x3f0, 0x3f7)),
            None,
            "the floppy controller, just below COM1, stays grantable"
        );
        // The edges of the port space.
        assert_eq!(
            first_platform_overlap(PortRange::single(0)).map(|p| p.range),
            Some(PortRange::new(0x00, 0x1f))
        );
        assert_eq!(first_platform_overlap(PortRange::single(0xffff)), None);
        assert_eq!(
            first_platform_overlap(PortRange::new(0xb13f, 0xffff)).map(|p| p.range),
            Some(PortRange::new(0xb100, 0xb13f))
        );
        assert_eq!(first_platform_overlap(PortRange::new(0xb140, 0xffff)), None);
    }

    #[test]
    fn a_wide_range_reports_every_entry_it_covers() {
        let hits: alloc::vec::Vec<_> = platform_overlaps(PortRange::new(0x60, 0x72))
            .map(|p| p.range.first)
            .collect();
        assert_eq!(hits, [0x60, 0x61, 0x62, 0x64, 0x66, 0x70, 0x72]);
        assert_eq!(
            platform_overlaps(PortRange::new(0, 0xffff)).count(),
            PLATFORM_PORTS.len()
        );
    }

    #[test]
    fn the_spare_uarts_are_grantable() {
        for uart in SPARE_UARTS {
            assert_eq!(first_platform_overlap(uart.range), None, "{}", uart.name);
            assert!(!uart.range.overlaps(&HYPERVISOR_UART));
        }
    }

    #[test]
    fn the_ports_that_end_or_reset_the_run_are_owned() {
        for port in [
            QEMU_DEBUG_EXIT_PORT,
            QEMU_DEBUG_EXIT_PORT + QEMU_DEBUG_EXIT_SIZE - 1,
            BOCHS_SHUTDOWN_PORT,
            0x3f8,  // the hypervisor's console
            0xcf8,  // PCI configuration address
            0xcf9,  // reset control
            0xcfc,  // PCI configuration data
            0x92,   // fast reset
            0x64,   // 8042 reset
            0x400,  // Bochs BIOS panic
            0x501,  // Bochs VGA BIOS panic
            0x604,  // QEMU PM1a control
            0xb004, // Bochs PM1a control
            0xb2,   // SMI
            0x510,  // fw_cfg
            0x514,  // fw_cfg DMA
            0xe9,   // debugcon
        ] {
            assert!(
                first_platform_overlap(PortRange::single(port)).is_some(),
                "{port:#x} must be platform-owned"
            );
        }
        assert!(
            first_platform_overlap(HYPERVISOR_UART)
                .and_then(|p| p.instead)
                .is_some_and(|hint| hint.contains("COM2")),
            "COM1 suggests a spare UART"
        );
    }

    #[test]
    fn ranges_print_like_the_layout_writes_them() {
        use alloc::string::ToString;
        assert_eq!(PortRange::new(0x2f8, 0x2ff).to_string(), "0x2f8-0x2ff");
        assert_eq!(PortRange::single(0x92).to_string(), "0x92");
    }
}
