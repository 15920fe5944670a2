//! The MSR and I/O permission maps of both backends: physically contiguous
//! frames, everything intercepted by default, then holes for what a
//! partition may touch directly. Where each MSR's and port's bits are is
//! the vendor's layout ([`hypervisor::permission_map`]).

use crate::arch::x86_64::common::frames::alloc_pages;
use hypervisor::msr_policy;
use hypervisor::permission_map::{port_bit, MsrMapLayout};
use hypervisor::timer_policy::{MSR_TIMER_DIVIDE, MSR_TIMER_INITIAL};

/// A permission bitmap in physically contiguous frames.
#[derive(Debug)]
pub struct Bitmap {
    pa: u64,
    len: usize,
}

impl Bitmap {
    /// A map of `len` bytes (whole pages) that intercepts everything;
    /// `None` when out of memory.
    fn all_ones(len: usize) -> Option<Bitmap> {
        let pa = alloc_pages(len.div_ceil(4096))?;
        // SAFETY: the frames were just allocated for `self` (len bytes).
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0xff, len) };
        Some(Bitmap { pa, len })
    }

    fn set(&mut self, bit: usize, value: bool) {
        let byte = bit / 8;
        assert!(byte < self.len);
        let p = (self.pa as *mut u8).wrapping_add(byte);
        let mask = 1 << (bit % 8);
        // SAFETY: in bounds (asserted) of live frames owned by `self`.
        unsafe {
            let old = p.read_volatile();
            p.write_volatile(if value { old | mask } else { old & !mask });
        }
    }

    /// Physical address (for the VMCB or VMCS).
    pub fn pa(&self) -> u64 {
        self.pa
    }

    /// Lets the guest read (or, with `write`, write) `msr` without an exit
    /// (`allow`) or makes the access exit (again). An MSR outside the
    /// layout's ranges always exits. The map is this vCPU's own, changed
    /// only in the hypervisor between entries of this one core: the
    /// processor reads it at each access (no VMCB clean bit covers it, APM
    /// Vol. 2 §15.15.3; SDM Vol. 3C §25.11.4).
    pub fn set_msr(&mut self, layout: &MsrMapLayout, msr: u32, write: bool, allow: bool) {
        if let Some(bit) = layout.bit(msr, write) {
            self.set(bit, !allow);
        }
    }

    /// An MSR map of `len` bytes in `layout` granting the MSRs of
    /// `msr_policy`.
    pub fn msrs(layout: &MsrMapLayout, len: usize) -> Option<Bitmap> {
        let mut map = Bitmap::all_ones(len)?;
        for &msr in msr_policy::PASSTHROUGH {
            map.set_msr(layout, msr, false, true);
            map.set_msr(layout, msr, true, true);
        }
        for &msr in msr_policy::READ_ONLY {
            map.set_msr(layout, msr, false, true);
        }
        Some(map)
    }

    /// Whether writes to the timer's initial count and divide configuration
    /// exit (`timer_policy`).
    pub fn intercept_timer_writes(&mut self, layout: &MsrMapLayout, intercept: bool) {
        for msr in [MSR_TIMER_INITIAL, MSR_TIMER_DIVIDE] {
            self.set_msr(layout, msr, true, !intercept);
        }
    }

    /// Lets the guest read and write IA32_TSC_DEADLINE (its own core's
    /// timer, in TSC-deadline mode only; a mode change disarms it).
    pub fn pass_tsc_deadline(&mut self, layout: &MsrMapLayout) {
        for write in [false, true] {
            self.set_msr(layout, x86::msr::IA32_TSC_DEADLINE, write, true);
        }
    }

    /// An I/O map of `len` bytes letting the guest access the ports of
    /// `ports` (inclusive ranges) without an exit.
    pub fn ports(len: usize, ports: &[(u16, u16)]) -> Option<Bitmap> {
        let mut map = Bitmap::all_ones(len)?;
        for &(first, last) in ports {
            for port in first..=last {
                map.set(port_bit(port), false);
            }
        }
        Some(map)
    }
}
