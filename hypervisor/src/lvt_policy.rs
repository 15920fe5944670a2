//! Which local vector table writes a partition may have the hypervisor
//! perform on its core's x2APIC: the bit-by-bit layout of every LVT entry
//! (Intel SDM Vol. 3A §11.5.1, Figure 11-8 "Local Vector Table") and the
//! policy on top of it. In x2APIC mode a WRMSR that sets a reserved bit
//! raises #GP (§11.12.1.2), so a value this rule accepts is one the CPU
//! takes; the write still runs under the exception fixup
//! (`arch::x86_64::common::fixup`) in case a CPU disagrees.
//!
//! Policy: a value is written only if no reserved bit is set, the upper 32
//! bits are zero, and it either delivers a fixed interrupt (vector 16–255)
//! or is masked with a delivery mode the entry supports. SMI, NMI, INIT and
//! ExtINT reach the core beneath the guest and are never unmasked.

use abi::regs::delivery::{
    EXTINT as MODE_EXTINT, FIXED as MODE_FIXED, INIT as MODE_INIT, MASK as DELIVERY_MODE,
    NMI as MODE_NMI, SHIFT as DELIVERY_SHIFT, SMI as MODE_SMI,
};
use abi::regs::lvt::*;
use core::fmt;
use x86::msr;

/// One local vector table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lvt {
    /// Corrected machine-check interrupt (CMCI).
    Cmci,
    /// APIC timer.
    Timer,
    /// Thermal sensor.
    Thermal,
    /// Performance-monitoring counters.
    Pmc,
    /// LINT0 pin.
    Lint0,
    /// LINT1 pin.
    Lint1,
    /// APIC error.
    Error,
}

impl Lvt {
    /// Every entry, in MSR order.
    pub const ALL: [Lvt; 7] = [
        Lvt::Cmci,
        Lvt::Timer,
        Lvt::Thermal,
        Lvt::Pmc,
        Lvt::Lint0,
        Lvt::Lint1,
        Lvt::Error,
    ];

    /// The entry behind an x2APIC MSR.
    pub fn from_msr(number: u32) -> Option<Lvt> {
        Lvt::ALL.into_iter().find(|l| l.msr() == number)
    }

    /// Its x2APIC MSR.
    pub fn msr(self) -> u32 {
        match self {
            Lvt::Cmci => msr::IA32_X2APIC_LVT_CMCI,
            Lvt::Timer => msr::IA32_X2APIC_LVT_TIMER,
            Lvt::Thermal => msr::IA32_X2APIC_LVT_THERMAL,
            Lvt::Pmc => msr::IA32_X2APIC_LVT_PMI,
            Lvt::Lint0 => msr::IA32_X2APIC_LVT_LINT0,
            Lvt::Lint1 => msr::IA32_X2APIC_LVT_LINT1,
            Lvt::Error => msr::IA32_X2APIC_LVT_ERROR,
        }
    }

    /// Its name in fault details.
    pub fn name(self) -> &'static str {
        match self {
            Lvt::Cmci => "CMCI LVT",
            Lvt::Timer => "timer LVT",
            Lvt::Thermal => "thermal LVT",
            Lvt::Pmc => "performance-counter LVT",
            Lvt::Lint0 => "LINT0 LVT",
            Lvt::Lint1 => "LINT1 LVT",
            Lvt::Error => "error LVT",
        }
    }

    /// Bits software may write; every other bit of the low 32 is reserved
    /// (Figure 11-8).
    fn writable(self) -> u32 {
        match self {
            Lvt::Timer => VECTOR | MASK | TIMER_MODE,
            Lvt::Error => VECTOR | MASK,
            Lvt::Lint0 | Lvt::Lint1 => VECTOR | DELIVERY_MODE | POLARITY | TRIGGER_MODE | MASK,
            Lvt::Cmci | Lvt::Thermal | Lvt::Pmc => VECTOR | DELIVERY_MODE | MASK,
        }
    }

    /// Read-only status bits: a guest's read-modify-write may carry them
    /// back, so they are accepted and cleared before the write.
    fn read_only(self) -> u32 {
        match self {
            Lvt::Lint0 | Lvt::Lint1 => DELIVERY_STATUS | REMOTE_IRR,
            _ => DELIVERY_STATUS,
        }
    }

    /// Whether the entry supports delivery `mode` (§11.5.1: INIT and ExtINT
    /// are not supported for the CMCI, thermal and performance-counter
    /// entries; the timer and error entries have no delivery-mode field).
    fn supports_mode(self, mode: u32) -> bool {
        match self {
            Lvt::Timer | Lvt::Error => mode == MODE_FIXED,
            Lvt::Lint0 | Lvt::Lint1 => {
                matches!(
                    mode,
                    MODE_FIXED | MODE_SMI | MODE_NMI | MODE_INIT | MODE_EXTINT
                )
            }
            Lvt::Cmci | Lvt::Thermal | Lvt::Pmc => matches!(mode, MODE_FIXED | MODE_SMI | MODE_NMI),
        }
    }

    /// The smallest "Max LVT Entry" (APIC version register bits 23:16,
    /// entries minus one) of a local APIC that has this entry (Intel SDM
    /// Vol. 3A §11.4.8: 3 on Pentium — timer, LINT0/1, error; 4 on P6 with
    /// the performance counters; 5 with thermal; 6 with CMCI).
    fn min_max_entry(self) -> u8 {
        match self {
            Lvt::Timer | Lvt::Lint0 | Lvt::Lint1 | Lvt::Error => 3,
            Lvt::Pmc => 4,
            Lvt::Thermal => 5,
            Lvt::Cmci => 6,
        }
    }
}

/// What the core's local APIC and the partition offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LvtCaps {
    /// "Max LVT Entry" of the x2APIC version register (MSR 0x803, bits
    /// 23:16).
    pub max_entry: u8,
    /// Whether the partition may use TSC-deadline mode (the CPU has it,
    /// CPUID.1:ECX\[24\], *and* the partition can program the deadline MSR).
    pub tsc_deadline: bool,
}

/// Why an LVT write is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LvtError {
    /// Bits 63:32 are reserved in every x2APIC LVT MSR.
    UpperBits,
    /// Reserved bits of the entry are set.
    Reserved(u32),
    /// This local APIC has no such entry.
    Absent,
    /// A delivery mode that is reserved or that this entry does not have.
    UnsupportedMode(u32),
    /// An unmasked delivery mode other than fixed (SMI, NMI, INIT, ExtINT).
    NotFixed(u32),
    /// Timer mode 11b is reserved.
    ReservedTimerMode,
    /// TSC-deadline mode, which the partition cannot use.
    TscDeadline,
    /// An unmasked fixed interrupt on vector 0–15 (illegal, §11.5.2).
    IllegalVector(u8),
}

fn mode_name(mode: u32) -> &'static str {
    match mode {
        MODE_FIXED => "fixed",
        MODE_SMI => "SMI",
        MODE_NMI => "NMI",
        MODE_INIT => "INIT",
        MODE_EXTINT => "ExtINT",
        _ => "reserved",
    }
}

impl fmt::Display for LvtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LvtError::UpperBits => f.write_str("bits 63:32 are reserved"),
            LvtError::Reserved(bits) => write!(f, "reserved bits {bits:#x} set"),
            LvtError::Absent => f.write_str("this local APIC has no such entry"),
            LvtError::UnsupportedMode(m) => write!(
                f,
                "delivery mode {m:#05b} ({}) is not supported by this entry",
                mode_name(*m)
            ),
            LvtError::NotFixed(m) => write!(
                f,
                "only fixed delivery or masked ({} unmasked)",
                mode_name(*m)
            ),
            LvtError::ReservedTimerMode => f.write_str("timer mode 11b is reserved"),
            LvtError::TscDeadline => f.write_str("TSC-deadline mode is not offered to partitions"),
            LvtError::IllegalVector(v) => write!(f, "vector {v} is illegal (0-15)"),
        }
    }
}

/// Whether a timer LVT value selects periodic mode (bits 18:17 = 01b),
/// masked or not: a masked periodic timer still counts down and reloads
/// (Intel SDM Vol. 3A §11.5.4), only its interrupt is suppressed.
pub fn timer_is_periodic(lvt_timer: u32) -> bool {
    lvt_timer & TIMER_MODE == TIMER_PERIODIC
}

/// Checks a write of `value` to `lvt` and returns the 32-bit value to
/// write (read-only status bits cleared).
pub fn check_lvt(lvt: Lvt, value: u64, caps: LvtCaps) -> Result<u32, LvtError> {
    let Ok(low) = u32::try_from(value) else {
        return Err(LvtError::UpperBits);
    };
    if caps.max_entry < lvt.min_max_entry() {
        return Err(LvtError::Absent);
    }
    let reserved = low & !(lvt.writable() | lvt.read_only());
    if reserved != 0 {
        return Err(LvtError::Reserved(reserved));
    }
    let low = low & !lvt.read_only();
    let mode = (low & DELIVERY_MODE) >> DELIVERY_SHIFT;
    if !lvt.supports_mode(mode) {
        return Err(LvtError::UnsupportedMode(mode));
    }
    if lvt == Lvt::Timer {
        match low & TIMER_MODE {
            TIMER_ONE_SHOT | TIMER_PERIODIC => {}
            TIMER_TSC_DEADLINE if caps.tsc_deadline => {}
            TIMER_TSC_DEADLINE => return Err(LvtError::TscDeadline),
            _ => return Err(LvtError::ReservedTimerMode),
        }
    }
    let masked = low & MASK != 0;
    if !masked {
        if mode != MODE_FIXED {
            return Err(LvtError::NotFixed(mode));
        }
        let vector = (low & VECTOR) as u8;
        if vector < 16 {
            return Err(LvtError::IllegalVector(vector));
        }
    }
    Ok(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Nehalem-or-later APIC (7 entries) without TSC-deadline for the
    /// partition: what Flotilla offers today.
    const CAPS: LvtCaps = LvtCaps {
        max_entry: 6,
        tsc_deadline: false,
    };
    /// QEMU's APIC: 6 entries (no CMCI).
    const QEMU: LvtCaps = LvtCaps {
        max_entry: 5,
        tsc_deadline: false,
    };

    #[test]
    fn msr_numbers_round_trip() {
        for lvt in Lvt::ALL {
            assert_eq!(Lvt::from_msr(lvt.msr()), Some(lvt));
        }
        assert_eq!(Lvt::from_msr(0x832), Some(Lvt::Timer));
        assert_eq!(Lvt::from_msr(0x837), Some(Lvt::Error));
        assert_eq!(Lvt::from_msr(0x838), None, "initial count is no LVT");
        assert_eq!(Lvt::from_msr(0x830), None);
    }

    #[test]
    fn what_kernels_write_is_allowed() {
        // The guest kernel's periodic timer on vector 0x20, one-shot, masked.
        assert_eq!(check_lvt(Lvt::Timer, 0x2_0020, CAPS), Ok(0x2_0020));
        assert_eq!(check_lvt(Lvt::Timer, 0x0_00ef, CAPS), Ok(0xef));
        assert_eq!(check_lvt(Lvt::Timer, 0x1_0000, CAPS), Ok(0x1_0000));
        assert_eq!(check_lvt(Lvt::Error, 0xfe, CAPS), Ok(0xfe));
        assert_eq!(check_lvt(Lvt::Error, 0x1_0000, CAPS), Ok(0x1_0000));
        // LINT0 masked as ExtINT (Linux's default when the PIC is unused),
        // LINT1 masked as NMI, a level-triggered active-low fixed LINT0.
        assert_eq!(check_lvt(Lvt::Lint0, 0x1_0700, CAPS), Ok(0x1_0700));
        assert_eq!(check_lvt(Lvt::Lint1, 0x1_0400, CAPS), Ok(0x1_0400));
        assert_eq!(check_lvt(Lvt::Lint0, 0xa031, CAPS), Ok(0xa031));
        // Thermal, PMC and CMCI: fixed, or masked NMI/SMI.
        assert_eq!(check_lvt(Lvt::Pmc, 0xf1, CAPS), Ok(0xf1));
        assert_eq!(check_lvt(Lvt::Pmc, 0x1_0400, CAPS), Ok(0x1_0400));
        assert_eq!(check_lvt(Lvt::Thermal, 0x1_0200, CAPS), Ok(0x1_0200));
        assert_eq!(check_lvt(Lvt::Cmci, 0xf2, CAPS), Ok(0xf2));
    }

    #[test]
    fn read_only_status_bits_are_dropped() {
        // A read-modify-write while an interrupt was pending.
        assert_eq!(check_lvt(Lvt::Timer, 0x1_1020, CAPS), Ok(0x1_0020));
        assert_eq!(check_lvt(Lvt::Lint1, 0x1_5400, CAPS), Ok(0x1_0400));
    }

    #[test]
    fn delivery_modes_beneath_the_guest_are_refused_unmasked() {
        for (lvt, mode) in [
            (Lvt::Lint0, MODE_SMI),
            (Lvt::Lint0, MODE_NMI),
            (Lvt::Lint0, MODE_INIT),
            (Lvt::Lint0, MODE_EXTINT),
            (Lvt::Lint1, MODE_NMI),
            (Lvt::Thermal, MODE_SMI),
            (Lvt::Pmc, MODE_NMI),
            (Lvt::Cmci, MODE_SMI),
        ] {
            assert_eq!(
                check_lvt(lvt, u64::from(mode << 8) | 0x40, CAPS),
                Err(LvtError::NotFixed(mode)),
                "{lvt:?} mode {mode:#b}"
            );
        }
    }

    #[test]
    fn reserved_and_unsupported_modes_are_refused_even_masked() {
        for lvt in [Lvt::Lint0, Lvt::Lint1, Lvt::Thermal, Lvt::Pmc, Lvt::Cmci] {
            for mode in [0b001, 0b011, 0b110] {
                assert_eq!(
                    check_lvt(lvt, u64::from(MASK | (mode << 8)), CAPS),
                    Err(LvtError::UnsupportedMode(mode)),
                    "{lvt:?} mode {mode:#b}"
                );
            }
        }
        for lvt in [Lvt::Thermal, Lvt::Pmc, Lvt::Cmci] {
            for mode in [MODE_INIT, MODE_EXTINT] {
                assert_eq!(
                    check_lvt(lvt, u64::from(MASK | (mode << 8)), CAPS),
                    Err(LvtError::UnsupportedMode(mode))
                );
            }
        }
        // The timer and error entries have no delivery-mode field: its bits
        // are reserved there (the red team's SMI timer LVT).
        assert_eq!(
            check_lvt(Lvt::Timer, 0x220, CAPS),
            Err(LvtError::Reserved(0x200))
        );
        assert_eq!(
            check_lvt(Lvt::Error, 0x1_0400, CAPS),
            Err(LvtError::Reserved(0x400))
        );
    }

    #[test]
    fn reserved_bits_are_refused() {
        assert_eq!(
            check_lvt(Lvt::Timer, 1 << 32 | 0x20, CAPS),
            Err(LvtError::UpperBits)
        );
        assert_eq!(
            check_lvt(Lvt::Timer, 0x8_0020, CAPS),
            Err(LvtError::Reserved(0x8_0000))
        );
        assert_eq!(
            check_lvt(Lvt::Timer, 0x2020, CAPS),
            Err(LvtError::Reserved(0x2000)),
            "no polarity on the timer"
        );
        assert_eq!(
            check_lvt(Lvt::Error, 0x2_0020, CAPS),
            Err(LvtError::Reserved(0x2_0000)),
            "no timer mode on the error entry"
        );
        assert_eq!(
            check_lvt(Lvt::Lint0, 0x820, CAPS),
            Err(LvtError::Reserved(0x800)),
            "bit 11"
        );
        assert_eq!(
            check_lvt(Lvt::Lint1, 0x2_0020, CAPS),
            Err(LvtError::Reserved(0x2_0000))
        );
        assert_eq!(
            check_lvt(Lvt::Pmc, 0x8020, CAPS),
            Err(LvtError::Reserved(0x8000)),
            "no trigger mode on the PMC entry"
        );
        assert_eq!(
            check_lvt(Lvt::Thermal, 0x8000_0020, CAPS),
            Err(LvtError::Reserved(0x8000_0000))
        );
    }

    #[test]
    fn timer_modes() {
        assert_eq!(
            check_lvt(Lvt::Timer, 0x6_0020, CAPS),
            Err(LvtError::ReservedTimerMode)
        );
        assert_eq!(
            check_lvt(Lvt::Timer, 0x4_0020, CAPS),
            Err(LvtError::TscDeadline)
        );
        let deadline = LvtCaps {
            tsc_deadline: true,
            ..CAPS
        };
        assert_eq!(check_lvt(Lvt::Timer, 0x4_0020, deadline), Ok(0x4_0020));
    }

    #[test]
    fn periodic_is_decided_by_the_mode_not_the_mask() {
        assert!(timer_is_periodic(0x2_0020), "the guest kernel's tick");
        assert!(timer_is_periodic(0x3_0020), "masked periodic still reloads");
        assert!(!timer_is_periodic(0x0_0020), "one-shot");
        assert!(
            !timer_is_periodic(0x1_0000),
            "masked one-shot (reset value)"
        );
        assert!(!timer_is_periodic(0x4_0020), "TSC-deadline");
        assert!(!timer_is_periodic(0x6_0020), "reserved mode 11b");
    }

    #[test]
    fn vectors_and_absent_entries() {
        assert_eq!(
            check_lvt(Lvt::Timer, 0x0f, CAPS),
            Err(LvtError::IllegalVector(15))
        );
        assert_eq!(
            check_lvt(Lvt::Lint0, 0x0, CAPS),
            Err(LvtError::IllegalVector(0))
        );
        assert_eq!(check_lvt(Lvt::Lint0, 0x1_0000, CAPS), Ok(0x1_0000));
        assert_eq!(check_lvt(Lvt::Cmci, 0x1_0000, QEMU), Err(LvtError::Absent));
        assert_eq!(check_lvt(Lvt::Thermal, 0x1_0000, QEMU), Ok(0x1_0000));
        let p6 = LvtCaps {
            max_entry: 4,
            tsc_deadline: false,
        };
        assert_eq!(check_lvt(Lvt::Thermal, 0x1_0000, p6), Err(LvtError::Absent));
        assert_eq!(check_lvt(Lvt::Pmc, 0x1_0000, p6), Ok(0x1_0000));
    }
}
