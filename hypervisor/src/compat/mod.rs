//! The virtual platform of a stock-kernel partition (`compat = "linux"`,
//! `docs/linux.md`, addresses in [`abi::compat`]), as plain functions of the
//! exit and this state. A partition without the opt-in never reaches it.
//! Ports not granted go to the emulated devices ([`uart`], [`rtc`], the
//! ACPI sleep and reset registers) or float: reads all ones,
//! writes dropped (a string INS/OUTS completes without moving data). An MSR
//! neither passed through nor emulated raises #GP; IA32_MISC_ENABLE reads a
//! fixed value; an unmasked ExtINT/NMI on LINT0/1 (or NMI on the PMC LVT)
//! is stored masked; CPUID also hides the thermal, power and TSC_ADJUST MSRs' features. Nothing here reaches
//! hardware or another partition; every use is counted ([`CompatCounts`],
//! in the run report).

pub mod rtc;
pub mod uart;

use crate::event::{EventKind, PendingEvent};
use crate::exit_handler::ExitHost;
use crate::partition::{End, Partition, RunRecord};
use crate::vcpu::{Gpr, Vcpu};
use abi::compat::{
    POWER_OFF_EXIT_CODE, REBOOT_EXIT_CODE, RESET_PORT, RESET_VALUE, SLEEP_CONTROL_PORT,
    SLEEP_STATUS_PORT, SLP_EN, SLP_TYP_S5, SLP_TYP_SHIFT, VIRT_UART,
};
use abi::regs::cmos;
use abi::regs::cpuid::{leaf1_edx, leaf6, leaf7};
use abi::regs::delivery::{EXTINT, MASK as DELIVERY_MODE, NMI, SHIFT as DELIVERY_SHIFT};
use abi::regs::half::{low32, low8};
use abi::regs::lvt::MASK as LVT_MASK;
use abi::regs::{misc_enable, pit};
use alloc::string::String;
use rtc::Rtc;
use uart::Uart;

pub use x86::msr::IA32_MISC_ENABLE as MSR_MISC_ENABLE;

/// IA32_MISC_ENABLE: fast strings (bit 0), no BTS, no PEBS (bits 11, 12),
/// nothing else (Intel SDM Vol. 4 Table 2-2). Writes raise #GP.
pub const MISC_ENABLE_VALUE: u64 =
    misc_enable::FAST_STRINGS | misc_enable::BTS_UNAVAILABLE | misc_enable::PEBS_UNAVAILABLE;

/// The keyboard controller's command port (0xFE pulses reset: a reboot).
pub const KBC_COMMAND_PORT: u16 = 0x64;
const KBC_PULSE_RESET: u8 = 0xfe;

/// Uses of the compat platform (the run report's `compat` object).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompatCounts {
    /// RDMSR/WRMSR answered with #GP.
    pub msr_gp: u64,
    /// Port accesses that floated (no device behind the port).
    pub ports_floated: u64,
    /// Bytes written to the virtual UART's transmitter.
    pub uart_bytes: u64,
    /// LINT0/LINT1 writes stored masked.
    pub lvt_masked: u64,
}

/// What a port access does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoOutcome {
    /// An IN completes with this value (its low `size` bytes).
    In(u32),
    /// An OUT was taken (or dropped).
    Out,
    /// An OUT ended a console line of the UART.
    Line(String),
    /// The partition ends with this exit code (power-off, reset).
    Exit(u64),
}

/// The emulated devices of one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Platform {
    uart: Uart,
    rtc: Rtc,
    /// TSC ticks per second and the TSC when the partition started.
    tsc_hz: u64,
    tsc_start: u64,
}

/// All ones in the low `size` bytes.
fn ones(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

/// RAX after an IN of `size` bytes of `value` (IN EAX zero-extends).
pub fn in_result(rax: u64, size: u8, value: u32) -> u64 {
    let mask = u64::from(ones(size));
    match size {
        1 | 2 => (rax & !mask) | (u64::from(value) & mask),
        _ => u64::from(value),
    }
}

impl Platform {
    /// The devices of a partition starting at TSC `tsc_now` (`tsc_khz`).
    pub fn new(tsc_khz: u64, tsc_now: u64) -> Platform {
        Platform {
            tsc_hz: tsc_khz.saturating_mul(1000).max(1),
            tsc_start: tsc_now,
            ..Platform::default()
        }
    }

    /// Seconds since the partition started, at TSC `tsc`.
    fn seconds(&self, tsc: u64) -> u64 {
        tsc.wrapping_sub(self.tsc_start) / self.tsc_hz.max(1)
    }

    /// An access to a port not granted: OUT of `value` or IN, at TSC `tsc`.
    pub fn io(
        &mut self,
        (port, size, write): (u16, u8, bool),
        value: u32,
        tsc: u64,
        counts: &mut CompatCounts,
    ) -> IoOutcome {
        // A byte register takes the low byte.
        let byte = low8(u64::from(value));
        match (port, write) {
            (p, false) if size == 1 && VIRT_UART.contains(p) => {
                IoOutcome::In(u32::from(self.uart.read(p - VIRT_UART.first)))
            }
            (p, true) if size == 1 && VIRT_UART.contains(p) => {
                let offset = p - VIRT_UART.first;
                if offset == 0 {
                    counts.uart_bytes = counts.uart_bytes.saturating_add(1);
                }
                self.uart
                    .write(offset, byte)
                    .map_or(IoOutcome::Out, IoOutcome::Line)
            }
            (cmos::INDEX_PORT, true) if size == 1 => {
                self.rtc.select(byte);
                IoOutcome::Out
            }
            (cmos::DATA_PORT, false) if size == 1 => {
                IoOutcome::In(u32::from(self.rtc.read(self.seconds(tsc))))
            }
            (cmos::DATA_PORT, true) if size == 1 => IoOutcome::Out,
            (SLEEP_STATUS_PORT | SLEEP_CONTROL_PORT | RESET_PORT, false) => IoOutcome::In(0),
            (SLEEP_CONTROL_PORT, true)
                if byte & SLP_EN != 0 && (byte >> SLP_TYP_SHIFT) & 7 == SLP_TYP_S5 =>
            {
                IoOutcome::Exit(POWER_OFF_EXIT_CODE)
            }
            (RESET_PORT, true) if byte == RESET_VALUE => IoOutcome::Exit(REBOOT_EXIT_CODE),
            (KBC_COMMAND_PORT, true) if byte == KBC_PULSE_RESET => {
                IoOutcome::Exit(REBOOT_EXIT_CODE)
            }
            (SLEEP_STATUS_PORT | SLEEP_CONTROL_PORT | RESET_PORT, true) => IoOutcome::Out,
            (_, write) => {
                counts.ports_floated = counts.ports_floated.saturating_add(1);
                match (write, port) {
                    (true, _) => IoOutcome::Out,
                    // No PIT: its counters read a stopped 0 (all ones would
                    // be a count of 0xffff that never moves, which Linux's
                    // quick TSC calibration polls 50 000 times).
                    (false, pit::COUNTER0..=pit::COUNTER2) => IoOutcome::In(0),
                    (false, _) => IoOutcome::In(ones(size)),
                }
            }
        }
    }
}

/// #GP(0), what an MSR the partition cannot reach raises.
pub const GENERAL_PROTECTION: PendingEvent = PendingEvent {
    kind: EventKind::Exception,
    vector: 13,
    error_code: Some(0),
    instruction_len: 0,
};

/// A port exit of a compat partition ([`Platform::io`]); a UART line is
/// counted like a `CONSOLE_WRITE` line.
pub fn port_exit(
    (port, size, write): (u16, u8, bool),
    vcpu: &mut impl Vcpu,
    partition: &Partition,
    record: &mut RunRecord,
    host: &mut impl ExitHost,
) -> Option<End> {
    let rax = vcpu.gpr(Gpr::Rax);
    let tsc = host.tsc();
    let access = (port, size, write);
    match host
        .platform()
        .io(access, low32(rax), tsc, &mut record.compat)
    {
        IoOutcome::In(value) => vcpu.set_gpr(Gpr::Rax, in_result(rax, size, value)),
        IoOutcome::Out => {}
        IoOutcome::Line(line) if host.console_line(&partition.name, &line) => {
            record.console_lines = record.console_lines.saturating_add(1);
        }
        IoOutcome::Line(_) => record.console_dropped = record.console_dropped.saturating_add(1),
        IoOutcome::Exit(code) => return Some(End::Exited(code)),
    }
    vcpu.skip_instruction();
    None
}

/// A LINT0/LINT1 or performance-counter LVT write: unmasked ExtINT or NMI
/// masked (counted); then `lvt_policy` checks it as for every partition.
pub fn lint_value(value: u64, counts: &mut CompatCounts) -> u64 {
    let low = low32(value);
    let mode = (low & DELIVERY_MODE) >> DELIVERY_SHIFT;
    let unmasked = low & LVT_MASK == 0;
    if unmasked && (mode == EXTINT || mode == NMI) {
        counts.lvt_masked = counts.lvt_masked.saturating_add(1);
        value | u64::from(LVT_MASK)
    } else {
        value
    }
}

/// CPUID for a compat partition, on top of `cpuid_policy`'s answer.
pub fn cpuid(leaf: u32, regs: &mut [u32; 4]) {
    match leaf {
        1 => regs[3] &= !(leaf1_edx::ACPI | leaf1_edx::TM),
        // Thermal and power management: only ARAT (no MSR behind it).
        6 => *regs = [regs[0] & leaf6::EAX_ARAT, 0, 0, 0],
        7 => regs[1] &= !leaf7::EBX_TSC_ADJUST,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A 1 GHz TSC (QEMU TCG's), the partition started at TSC 1000.
    fn platform() -> Platform {
        Platform::new(1_000_000, 1000)
    }

    fn inb(p: &mut Platform, port: u16, c: &mut CompatCounts) -> IoOutcome {
        p.io((port, 1, false), 0, 1000, c)
    }

    fn outb(p: &mut Platform, port: u16, value: u8, c: &mut CompatCounts) -> IoOutcome {
        p.io((port, 1, true), u32::from(value), 1000, c)
    }

    #[test]
    fn unassigned_ports_float_and_are_counted() {
        let (mut p, mut c) = (platform(), CompatCounts::default());
        assert_eq!(inb(&mut p, 0x61, &mut c), IoOutcome::In(0xff));
        assert_eq!(p.io((0xcfc, 2, false), 0, 0, &mut c), IoOutcome::In(0xffff));
        assert_eq!(
            p.io((0xcfc, 4, false), 0, 0, &mut c),
            IoOutcome::In(0xffff_ffff)
        );
        assert_eq!(outb(&mut p, 0x80, 0, &mut c), IoOutcome::Out);
        assert_eq!(outb(&mut p, 0x64, 0xd1, &mut c), IoOutcome::Out);
        // The PIT's counters read a stopped 0, its other ports float.
        assert_eq!(inb(&mut p, 0x42, &mut c), IoOutcome::In(0));
        assert_eq!(inb(&mut p, 0x43, &mut c), IoOutcome::In(0xff));
        // A word access to the UART is no 8250 access: it floats.
        assert_eq!(p.io((0x3f8, 2, false), 0, 0, &mut c), IoOutcome::In(0xffff));
        assert_eq!(c.ports_floated, 8);
        assert_eq!(c.uart_bytes, 0);
    }

    mod hostile {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any sequence of port accesses: no panic, an IN answers within
            /// its size, every line is at most 256 bytes without control
            /// characters, and only the documented ports end the partition.
            #[test]
            fn any_port_accesses_are_contained(
                accesses in proptest::collection::vec(
                    (prop_oneof![0x3f8u16..0x400, 0x600u16..0x610, 0x60u16..0x72, any::<u16>()],
                     prop_oneof![Just(1u8), Just(2), Just(4)], any::<bool>(), any::<u32>(),
                     any::<u64>()),
                    0..300,
                ),
                khz in 0u64..5_000_000,
            ) {
                let (mut p, mut c) = (Platform::new(khz, 0), CompatCounts::default());
                for (port, size, write, value, tsc) in accesses {
                    match p.io((port, size, write), value, tsc, &mut c) {
                        IoOutcome::In(v) => {
                            prop_assert!(!write);
                            prop_assert!(size == 4 || v < 1 << (8 * u32::from(size)));
                        }
                        IoOutcome::Out => prop_assert!(write),
                        IoOutcome::Line(l) => {
                            prop_assert!(write && l.len() <= 256 * 3);
                            prop_assert!(!l.chars().any(|ch| ch.is_control() && ch != '\t'));
                        }
                        IoOutcome::Exit(code) => {
                            prop_assert!(write && matches!(port, 0x604 | 0x60c | 0x64));
                            prop_assert!(code == 0 || code == 0x52);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn in_keeps_the_rest_of_rax_like_the_cpu() {
        let rax = 0x1122_3344_5566_7788;
        assert_eq!(in_result(rax, 1, 0xff), 0x1122_3344_5566_77ff);
        assert_eq!(in_result(rax, 2, 0xffff), 0x1122_3344_5566_ffff);
        assert_eq!(in_result(rax, 4, 0xffff_ffff), 0xffff_ffff);
    }

    #[test]
    fn the_uart_prints_lines_and_counts_bytes() {
        let (mut p, mut c) = (platform(), CompatCounts::default());
        let mut lines = Vec::new();
        for b in b"Linux version 6.1\r\nrest" {
            if let IoOutcome::Line(l) = outb(&mut p, 0x3f8, *b, &mut c) {
                lines.push(l);
            }
        }
        assert_eq!(lines, vec!["Linux version 6.1"]);
        assert_eq!(c.uart_bytes, 23);
        assert_eq!(inb(&mut p, 0x3fd, &mut c), IoOutcome::In(0x60));
        assert_eq!(outb(&mut p, 0x3fb, 0x03, &mut c), IoOutcome::Out);
        assert_eq!(c.uart_bytes, 23, "only transmitted bytes count");
        assert_eq!(c.ports_floated, 0);
    }

    #[test]
    fn there_is_no_pm_timer_where_pc_firmware_puts_one() {
        // The ACPI tables name no PM timer; its usual port floats.
        let (mut p, mut c) = (platform(), CompatCounts::default());
        let read = p.io((0x608, 4, false), 0, 2_000_001_000, &mut c);
        assert_eq!(read, IoOutcome::In(u32::MAX));
        assert_eq!(p.io((0x608, 4, true), 5, 0, &mut c), IoOutcome::Out);
        assert_eq!(c.ports_floated, 2);
    }

    #[test]
    fn s5_powers_off_and_the_reset_register_reboots() {
        let (mut p, mut c) = (platform(), CompatCounts::default());
        // SLP_TYP 5, SLP_EN: power off, exit 0.
        assert_eq!(
            outb(&mut p, 0x604, 5 << 2 | 1 << 5, &mut c),
            IoOutcome::Exit(0)
        );
        // Another sleep type, or S5 without SLP_EN: dropped.
        assert_eq!(outb(&mut p, 0x604, 3 << 2 | 1 << 5, &mut c), IoOutcome::Out);
        assert_eq!(outb(&mut p, 0x604, 5 << 2, &mut c), IoOutcome::Out);
        assert_eq!(inb(&mut p, 0x600, &mut c), IoOutcome::In(0));
        assert_eq!(outb(&mut p, 0x600, 0x80, &mut c), IoOutcome::Out);
        assert_eq!(outb(&mut p, 0x60c, 1, &mut c), IoOutcome::Exit(0x52));
        assert_eq!(outb(&mut p, 0x60c, 2, &mut c), IoOutcome::Out);
        assert_eq!(outb(&mut p, 0x64, 0xfe, &mut c), IoOutcome::Exit(0x52));
        assert_eq!(c.ports_floated, 0);
    }

    #[test]
    fn the_cmos_clock_answers_without_an_update_in_progress() {
        let (mut p, mut c) = (platform(), CompatCounts::default());
        assert_eq!(outb(&mut p, 0x70, 0x8a, &mut c), IoOutcome::Out);
        assert_eq!(inb(&mut p, 0x71, &mut c), IoOutcome::In(0x26));
        outb(&mut p, 0x70, 0x00, &mut c);
        // 61 s after the start: seconds register 0x01 (BCD).
        let secs = p.io((0x71, 1, false), 0, 1000 + 61_000_000_000, &mut c);
        assert_eq!(secs, IoOutcome::In(0x01));
        assert_eq!(
            outb(&mut p, 0x71, 0x55, &mut c),
            IoOutcome::Out,
            "read-only"
        );
        assert_eq!(inb(&mut p, 0x71, &mut c), IoOutcome::In(0x00));
        assert_eq!(c.ports_floated, 0);
    }

    #[test]
    fn only_unmasked_extint_and_nmi_on_the_lint_pins_are_masked() {
        let mut c = CompatCounts::default();
        assert_eq!(lint_value(0x700, &mut c), 0x1_0700, "ExtINT");
        assert_eq!(lint_value(0x400, &mut c), 0x1_0400, "NMI");
        assert_eq!(c.lvt_masked, 2);
        for v in [0x1_0700, 0x1_0400, 0x30, 0x200, 0x500, 1 << 32 | 0x700] {
            let expect = if v >> 32 != 0 { v | 0x1_0000 } else { v };
            assert_eq!(lint_value(v, &mut c), expect, "{v:#x}");
        }
        assert_eq!(c.lvt_masked, 3, "the upper-half value was masked too");
    }

    #[test]
    fn cpuid_hides_thermal_power_and_tsc_adjust() {
        let mut regs = [0x77, 1, 0x9, 2];
        cpuid(6, &mut regs);
        assert_eq!(regs, [0x4, 0, 0, 0], "only ARAT: no APERF/MPERF, EPB, HWP");
        let mut regs = [0, 0, 1, 1 << 29 | 1 << 22 | 1 << 4];
        cpuid(1, &mut regs);
        assert_eq!(regs, [0, 0, 1, 1 << 4]);
        let mut regs = [0, 0x3, 0, 0];
        cpuid(7, &mut regs);
        assert_eq!(regs, [0, 0x1, 0, 0]);
        // The default platform (no TSC rate) never divides by zero.
        let (mut p, mut c) = (Platform::default(), CompatCounts::default());
        assert_eq!(p.io((0x70, 1, true), 0, 5, &mut c), IoOutcome::Out);
        assert!(matches!(
            p.io((0x71, 1, false), 0, 5, &mut c),
            IoOutcome::In(_)
        ));
    }
}
