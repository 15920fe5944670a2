//! Time: the TSC in cycles, converted to nanoseconds with the partition's
//! TSC rate (the block's `tsc_khz`; unknown, 0, when bare), the timer's
//! tick count, and `sleep`.
//!
//! The conversions are pure (host-tested); the clock reads and `sleep` are
//! bare metal only.

/// `cycles` TSC cycles in nanoseconds at `tsc_khz` kHz; `None` when the
/// rate is unknown (0). Saturates at `u64::MAX`.
pub fn cycles_to_ns(cycles: u64, tsc_khz: u64) -> Option<u64> {
    if tsc_khz == 0 {
        return None;
    }
    let ns = u128::from(cycles) * 1_000_000 / u128::from(tsc_khz);
    Some(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// `ns` nanoseconds in TSC cycles at `tsc_khz` kHz; `None` when the rate
/// is unknown (0). Saturates at `u64::MAX`.
pub fn ns_to_cycles(ns: u64, tsc_khz: u64) -> Option<u64> {
    if tsc_khz == 0 {
        return None;
    }
    let cycles = (u128::from(ns) * u128::from(tsc_khz)).div_ceil(1_000_000);
    Some(u64::try_from(cycles).unwrap_or(u64::MAX))
}

/// Why the runtime cannot sleep for a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeError {
    /// The TSC rate is unknown (bare, without a Flotilla block).
    UnknownRate,
}

#[cfg(target_os = "none")]
mod clock {
    use super::{cycles_to_ns, ns_to_cycles, TimeError};
    use crate::arch::{cpu, idt};
    use core::sync::atomic::{AtomicU64, Ordering};

    /// The partition's TSC rate in kHz, set once at boot.
    pub(crate) static TSC_KHZ: AtomicU64 = AtomicU64::new(0);

    /// The time-stamp counter, in cycles.
    pub fn cycles() -> u64 {
        cpu::rdtsc()
    }

    /// The TSC rate in kHz (0: unknown).
    pub fn tsc_khz() -> u64 {
        TSC_KHZ.load(Ordering::Relaxed)
    }

    /// The TSC in nanoseconds (since the TSC's reset), if the rate is
    /// known.
    pub fn now_ns() -> Option<u64> {
        cycles_to_ns(cycles(), tsc_khz())
    }

    /// Timer ticks since the runtime started the timer (about one a
    /// millisecond; the hypervisor may stretch the period).
    pub fn ticks() -> u64 {
        idt::TICKS.load(Ordering::Relaxed)
    }

    /// Channel IPIs received so far.
    pub fn ipis() -> u64 {
        idt::IPIS.load(Ordering::Relaxed)
    }

    /// Waits for the next interrupt (a timer tick at the latest), idling
    /// the core in `hlt`.
    pub fn wait_for_interrupt() {
        cpu::wait_for_interrupt();
    }

    /// Sleeps at least `ns` nanoseconds, idling in `hlt` between timer
    /// ticks.
    pub fn sleep_ns(ns: u64) -> Result<(), TimeError> {
        let span = ns_to_cycles(ns, tsc_khz()).ok_or(TimeError::UnknownRate)?;
        let end = cycles().saturating_add(span);
        while cycles() < end {
            cpu::wait_for_interrupt();
        }
        Ok(())
    }

    /// Sleeps at least `d`.
    pub fn sleep(d: core::time::Duration) -> Result<(), TimeError> {
        sleep_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

#[cfg(target_os = "none")]
pub(crate) use clock::TSC_KHZ;
#[cfg(target_os = "none")]
pub use clock::{cycles, ipis, now_ns, sleep, sleep_ns, ticks, tsc_khz, wait_for_interrupt};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(
            cycles_to_ns(2_000_000, 2_000_000),
            Some(1_000_000),
            "1 ms at 2 GHz"
        );
        assert_eq!(cycles_to_ns(3, 1_000_000), Some(3));
        assert_eq!(cycles_to_ns(1, 0), None);
        assert_eq!(ns_to_cycles(1_000, 2_000_000), Some(2_000));
        assert_eq!(ns_to_cycles(1, 3), Some(1), "rounds up");
        assert_eq!(ns_to_cycles(5, 0), None);
        assert_eq!(cycles_to_ns(u64::MAX, 1), Some(u64::MAX));
        assert_eq!(ns_to_cycles(u64::MAX, u64::MAX), Some(u64::MAX));
    }
}
