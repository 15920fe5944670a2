//! The MSR and I/O permission maps: everything intercepted by default, then
//! holes for what a partition may touch directly.
//!
//! MSRPM (AMD APM Vol. 2 §15.11): 8 KiB, two bits per MSR (read, write) for
//! three ranges — 0000_0000h–0000_1FFFh at byte 0, C000_0000h–C000_1FFFh at
//! byte 0x800, C001_0000h–C001_1FFFh at byte 0x1000; MSRs outside them are
//! always intercepted. IOPM (§15.10): 12 KiB, one bit per port.

use crate::arch::x86_64::common::frames::alloc_pages;

/// Bytes of the MSR permission map.
pub const MSRPM_SIZE: usize = 8192;
/// Bytes of the I/O permission map.
pub const IOPM_SIZE: usize = 12288;

/// A permission bitmap in physically contiguous frames.
#[derive(Debug)]
pub struct Bitmap {
    pa: u64,
    len: usize,
}

impl Bitmap {
    fn all_ones(len: usize) -> Option<Bitmap> {
        let pa = alloc_pages(len / 4096)?;
        let mut map = Bitmap { pa, len };
        for i in 0..len {
            map.set_byte(i, 0xff);
        }
        Some(map)
    }

    fn set_byte(&mut self, index: usize, value: u8) {
        assert!(index < self.len);
        // SAFETY: the frames are live, owned by `self`, and index < len.
        unsafe { ((self.pa as usize + index) as *mut u8).write_volatile(value) }
    }

    fn byte(&self, index: usize) -> u8 {
        assert!(index < self.len);
        // SAFETY: as in `set_byte`.
        unsafe { ((self.pa as usize + index) as *const u8).read_volatile() }
    }

    fn clear_bit(&mut self, bit: usize) {
        let b = self.byte(bit / 8) & !(1 << (bit % 8));
        self.set_byte(bit / 8, b);
    }

    fn set_bit(&mut self, bit: usize) {
        let b = self.byte(bit / 8) | (1 << (bit % 8));
        self.set_byte(bit / 8, b);
    }

    /// Physical address (for the VMCB).
    pub fn pa(&self) -> u64 {
        self.pa
    }

    /// An MSR permission map that intercepts everything.
    pub fn msrpm() -> Option<Bitmap> {
        Bitmap::all_ones(MSRPM_SIZE)
    }

    /// An I/O permission map that intercepts every port.
    pub fn iopm() -> Option<Bitmap> {
        Bitmap::all_ones(IOPM_SIZE)
    }

    fn msr_bit(msr: u32) -> Option<usize> {
        let (base, offset) = match msr {
            0x0000_0000..=0x0000_1fff => (0, msr),
            0xc000_0000..=0xc000_1fff => (0x800, msr - 0xc000_0000),
            0xc001_0000..=0xc001_1fff => (0x1000, msr - 0xc001_0000),
            _ => return None,
        };
        Some(base * 8 + offset as usize * 2)
    }

    /// Lets the guest read `msr` without an exit.
    pub fn allow_msr_read(&mut self, msr: u32) {
        if let Some(bit) = Bitmap::msr_bit(msr) {
            self.clear_bit(bit);
        }
    }

    /// Lets the guest write `msr` without an exit.
    pub fn allow_msr_write(&mut self, msr: u32) {
        if let Some(bit) = Bitmap::msr_bit(msr) {
            self.clear_bit(bit + 1);
        }
    }

    /// Makes the guest's writes to `msr` exit (again). The map is this
    /// vCPU's own; the processor reads it at each MSR access, and no VMCB
    /// clean bit covers its contents (APM Vol. 2 §15.15.3 caches only the
    /// MSRPM base address).
    pub fn intercept_msr_write(&mut self, msr: u32) {
        if let Some(bit) = Bitmap::msr_bit(msr) {
            self.set_bit(bit + 1);
        }
    }

    /// Lets the guest access `port` without an exit.
    pub fn allow_port(&mut self, port: u16) {
        self.clear_bit(usize::from(port));
    }
}
