//! Time for bring-up delays: the TSC, calibrated once against the PIT.

use super::instr;
use core::sync::atomic::{AtomicU64, Ordering};

const PIT_HZ: u64 = 1_193_182;
const PIT_CHANNEL2: u16 = 0x42;
const PIT_COMMAND: u16 = 0x43;
const PORT_B: u16 = 0x61;
/// Fallback when calibration fails: assume 1 GHz.
const FALLBACK_TSC_KHZ: u64 = 1_000_000;

static TSC_KHZ: AtomicU64 = AtomicU64::new(FALLBACK_TSC_KHZ);

/// Measures the TSC frequency over a 10 ms PIT one-shot on channel 2 and
/// returns it in kHz. Run on the bootstrap core before the APs start.
pub fn calibrate() -> u64 {
    let ticks = PIT_HZ / 100; // 10 ms
                              // SAFETY: ports 0x42, 0x43 and 0x61 are the PIT's channel 2 and the
                              // speaker/gate port on every PC; channel 2 drives only the speaker, which
                              // stays off (bit 1 clear).
    let khz = unsafe {
        let gate = instr::inb(PORT_B) & !0x02;
        instr::outb(PORT_B, gate & !0x01);
        instr::outb(PIT_COMMAND, 0b1011_0000); // channel 2, lo/hi, mode 0
        instr::outb(PIT_CHANNEL2, ticks.to_le_bytes()[0]); // low byte, then high
        instr::outb(PIT_CHANNEL2, ticks.to_le_bytes()[1]);
        instr::outb(PORT_B, gate | 0x01); // start counting
        let start = instr::rdtsc();
        let mut done = false;
        for _ in 0..50_000_000u32 {
            if instr::inb(PORT_B) & 0x20 != 0 {
                done = true;
                break;
            }
        }
        let elapsed = instr::rdtsc().wrapping_sub(start);
        instr::outb(PORT_B, gate & !0x01);
        if done {
            elapsed / 10
        } else {
            0
        }
    };
    let khz = if khz == 0 { FALLBACK_TSC_KHZ } else { khz };
    TSC_KHZ.store(khz, Ordering::Relaxed);
    khz
}

/// Microseconds since an arbitrary point (TSC-based).
pub fn now_us() -> u64 {
    instr::rdtsc() / (TSC_KHZ.load(Ordering::Relaxed) / 1000).max(1)
}

/// Spins for at least `us` microseconds.
pub fn delay_us(us: u64) {
    let end = now_us() + us;
    while now_us() < end {
        core::hint::spin_loop();
    }
}
