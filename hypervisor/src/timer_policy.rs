//! A minimum period for a partition's periodic x2APIC timer: the rule and
//! its arithmetic (the exit handler applies it, the backends flip the MSR
//! intercepts).
//!
//! Why: a periodic timer with initial count 1 and divide by 1 interrupts
//! its core as fast as the APIC can count. On hardware that floods only
//! the partition's own core, but an emulator that services the APIC timer
//! on a shared loop (QEMU TCG, under its global lock) stalls every core
//! with it. The defence is the one KVM has (`min_timer_period_us`): while
//! the timer LVT selects periodic mode, a period shorter than
//! [`MIN_PERIOD_US`] is raised to it.
//!
//! Mechanism (no exit in a timer's steady state): the initial-count
//! (0x838) and divide-configuration (0x83E) MSRs are passed through while
//! the timer is one-shot; every timer LVT write already exits (it is
//! validated by `lvt_policy`), and a write that selects periodic mode turns
//! the two intercepts on (one-shot turns them off again). While periodic:
//! * an initial count with `count × divide` below the floor is written as
//!   the smallest count that meets it;
//! * a divide that would bring the running `count × divide` below the
//!   floor is written as asked, and the initial count is rewritten to meet
//!   the floor (written first, so the period is never short);
//! * switching the LVT to periodic with a too-short count already loaded
//!   rewrites the count.
//!
//! Deviations from the architecture a guest can see (documented in
//! `docs/threat-model.md`): a rewritten initial count restarts the
//! countdown (Intel SDM Vol. 3A §11.5.4: a write to the initial-count
//! register starts a new count), and a read of 0x838 returns the clamped
//! count. A count of 0 (timer stopped) is never changed. Bits 63:32 of
//! either MSR and the reserved bits of the divide register stop the
//! partition (`msr-denied`) while the timer is periodic, as the hardware
//! would raise #GP on them (§11.12.1.2); while one-shot the write reaches
//! the CPU directly and the #GP is the guest's own.

use core::fmt;
use x86::msr;

/// x2APIC timer initial count.
pub const MSR_TIMER_INITIAL: u32 = msr::IA32_X2APIC_INIT_COUNT;
/// x2APIC timer divide configuration.
pub const MSR_TIMER_DIVIDE: u32 = msr::IA32_X2APIC_DIV_CONF;
/// x2APIC timer local vector table entry.
pub const MSR_TIMER_LVT: u32 = msr::IA32_X2APIC_LVT_TIMER;

/// The shortest period of a periodic APIC timer, in microseconds: at most
/// 10 000 interrupts per second. Half of KVM's default 200 µs, because the
/// partition owns its core (nothing else is scheduled there, so a 10 kHz
/// tick is a legitimate choice for a real-time guest) while 10 kHz is
/// still three orders of magnitude below a count-1 storm and cheap for an
/// emulator's timer loop.
pub const MIN_PERIOD_US: u64 = 100;

/// The floor (timer ticks at divide by 1) when the boot calibration of the
/// APIC timer failed: [`MIN_PERIOD_US`] at 1 GHz, the fastest APIC timer
/// clock in sight (QEMU's; hardware runs it at the 25–200 MHz bus or core
/// crystal clock), so the real floor is never below [`MIN_PERIOD_US`].
pub const FALLBACK_FLOOR_TICKS: u64 = MIN_PERIOD_US * 1000;

/// Why a timer register write is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerError {
    /// Bits 63:32 are reserved in the x2APIC timer MSRs.
    UpperBits,
    /// Reserved bits of the divide configuration register are set.
    ReservedDivide(u32),
}

impl fmt::Display for TimerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerError::UpperBits => f.write_str("bits 63:32 are reserved"),
            TimerError::ReservedDivide(bits) => {
                write!(f, "reserved divide-configuration bits {bits:#x} set")
            }
        }
    }
}

/// A 64-bit MSR value as the 32-bit register it must be.
pub fn register_value(value: u64) -> Result<u32, TimerError> {
    u32::try_from(value).map_err(|_| TimerError::UpperBits)
}

/// The divisor a divide configuration selects (Figure 11-10): bits 3,1,0
/// = 000 → 2, 001 → 4, 010 → 8, 011 → 16, 100 → 32, 101 → 64, 110 → 128,
/// 111 → 1.
pub fn divide_by(config: u32) -> Result<u32, TimerError> {
    let reserved = config & !abi::regs::timer_divide::BITS;
    if reserved != 0 {
        return Err(TimerError::ReservedDivide(reserved));
    }
    let code = ((config >> 1) & 0b100) | (config & 0b11);
    Ok(if code == 0b111 { 1 } else { 2 << code })
}

/// The floor in timer ticks at divide by 1 from the boot calibration:
/// `ticks` counted by the APIC timer (divide by 1) in `elapsed_us` of the
/// TSC. A failed calibration (nothing counted, no time, an overflow) gives
/// [`FALLBACK_FLOOR_TICKS`]. At most `u32::MAX` (a count the register
/// holds at divide by 1).
pub fn floor_ticks(ticks: u64, elapsed_us: u64) -> u64 {
    let floor = ticks
        .checked_mul(MIN_PERIOD_US)
        .and_then(|t| t.checked_div(elapsed_us))
        .filter(|&f| f > 0)
        .unwrap_or(FALLBACK_FLOOR_TICKS);
    floor.min(u64::from(u32::MAX))
}

/// The initial count to write instead of `count` at `divide` for a
/// periodic timer whose period must be at least `floor` ticks (at divide
/// by 1), or `None` if `count` is fine as it is: 0 (stopped), or
/// `count × divide ≥ floor`. The replacement is the smallest count that
/// meets the floor (saturated at `u32::MAX`).
pub fn clamp_count(count: u32, divide: u32, floor: u64) -> Option<u32> {
    let divide = u64::from(divide.max(1));
    if count == 0 || u64::from(count) * divide >= floor {
        return None;
    }
    let needed = floor.div_ceil(divide);
    Some(u32::try_from(needed).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU's APIC timer: 1 GHz at divide by 1, so 100 µs is 100 000 ticks.
    const QEMU_FLOOR: u64 = 100_000;

    #[test]
    fn divide_configuration_follows_figure_11_10() {
        let table = [
            (0b0000, 2),
            (0b0001, 4),
            (0b0010, 8),
            (0b0011, 16),
            (0b1000, 32),
            (0b1001, 64),
            (0b1010, 128),
            (0b1011, 1),
        ];
        for (config, divide) in table {
            assert_eq!(divide_by(config), Ok(divide), "config {config:#06b}");
        }
        assert_eq!(divide_by(0b0100), Err(TimerError::ReservedDivide(0b100)));
        assert_eq!(divide_by(0x1b), Err(TimerError::ReservedDivide(0x10)));
        assert_eq!(
            divide_by(0x8000_000b),
            Err(TimerError::ReservedDivide(0x8000_0000))
        );
    }

    #[test]
    fn register_values_are_32_bits() {
        assert_eq!(register_value(0xffff_ffff), Ok(u32::MAX));
        assert_eq!(register_value(1 << 32), Err(TimerError::UpperBits));
    }

    #[test]
    fn the_floor_comes_from_the_calibration_or_the_fallback() {
        // 10 ms of a 1 GHz timer (QEMU).
        assert_eq!(floor_ticks(10_000_000, 10_000), QEMU_FLOOR);
        // 10 ms of a 25 MHz crystal clock.
        assert_eq!(floor_ticks(250_000, 10_000), 2_500);
        for (ticks, us) in [
            (0, 10_000),
            (10_000_000, 0),
            (u64::MAX, 10_000),
            (1, 10_000),
        ] {
            assert_eq!(
                floor_ticks(ticks, us),
                FALLBACK_FLOOR_TICKS,
                "{ticks} in {us} us"
            );
        }
        assert_eq!(floor_ticks(u64::MAX / 100, 1), u64::from(u32::MAX));
    }

    #[test]
    fn short_periods_are_raised_to_the_floor() {
        // The storm: count 1 at divide by 1.
        assert_eq!(clamp_count(1, 1, QEMU_FLOOR), Some(100_000));
        assert_eq!(clamp_count(1, 16, QEMU_FLOOR), Some(6_250));
        assert_eq!(clamp_count(6_249, 16, QEMU_FLOOR), Some(6_250));
        // Rounded up: 100 000 / 128 is 781.25.
        assert_eq!(clamp_count(1, 128, QEMU_FLOOR), Some(782));
        // A floor larger than the register saturates.
        assert_eq!(clamp_count(1, 1, u64::MAX), Some(u32::MAX));
    }

    #[test]
    fn long_periods_and_a_stopped_timer_are_left_alone() {
        // The guest kernel's tick: 62 500 at divide by 16 (1 ms on QEMU).
        assert_eq!(clamp_count(62_500, 16, QEMU_FLOOR), None);
        assert_eq!(
            clamp_count(6_250, 16, QEMU_FLOOR),
            None,
            "exactly the floor"
        );
        assert_eq!(clamp_count(100_000, 1, QEMU_FLOOR), None);
        assert_eq!(clamp_count(u32::MAX, 128, QEMU_FLOOR), None);
        assert_eq!(clamp_count(0, 1, QEMU_FLOOR), None, "stopped");
    }
}
