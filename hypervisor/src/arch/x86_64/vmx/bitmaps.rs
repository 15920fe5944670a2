//! VMX MSR and I/O bitmaps: everything intercepted by default, then holes
//! for what a partition may touch directly.
//!
//! MSR bitmap (Intel SDM Vol. 3 §25.6.9): one 4 KiB page — read bitmap for
//! MSRs 0–1FFFh at byte 0, read bitmap for C000_0000h–C000_1FFFh at 1024,
//! write bitmaps at 2048 and 3072. MSRs outside these ranges always exit.
//! I/O bitmaps A and B (§25.6.4): one bit per port, ports 0–7FFFh and
//! 8000h–FFFFh.

use crate::arch::x86_64::common::frames::alloc_pages;

/// A bitmap page (or pages) all set to 1.
#[derive(Debug)]
pub struct Bitmap {
    pa: u64,
    len: usize,
}

impl Bitmap {
    fn all_ones(pages: usize) -> Option<Bitmap> {
        let pa = alloc_pages(pages)?;
        let len = pages * 4096;
        // SAFETY: the frames were just allocated for `self` (len bytes).
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0xff, len) };
        Some(Bitmap { pa, len })
    }

    fn clear_bit(&mut self, bit: usize) {
        let byte = bit / 8;
        assert!(byte < self.len);
        let p = (self.pa as usize + byte) as *mut u8;
        // SAFETY: in bounds (asserted) of frames owned by `self`.
        unsafe { p.write_volatile(p.read_volatile() & !(1 << (bit % 8))) };
    }

    fn set_bit(&mut self, bit: usize) {
        let byte = bit / 8;
        assert!(byte < self.len);
        let p = (self.pa as usize + byte) as *mut u8;
        // SAFETY: in bounds (asserted) of frames owned by `self`.
        unsafe { p.write_volatile(p.read_volatile() | (1 << (bit % 8))) };
    }

    /// Physical address.
    pub fn pa(&self) -> u64 {
        self.pa
    }

    /// The MSR bitmap, intercepting everything.
    pub fn msr() -> Option<Bitmap> {
        Bitmap::all_ones(1)
    }

    /// I/O bitmaps A and B (two contiguous pages), intercepting everything.
    pub fn io() -> Option<Bitmap> {
        Bitmap::all_ones(2)
    }

    fn msr_offset(msr: u32) -> Option<usize> {
        match msr {
            0x0000_0000..=0x0000_1fff => Some(msr as usize),
            0xc000_0000..=0xc000_1fff => Some(1024 * 8 + (msr - 0xc000_0000) as usize),
            _ => None,
        }
    }

    /// Lets the guest read `msr` without an exit.
    pub fn allow_msr_read(&mut self, msr: u32) {
        if let Some(bit) = Bitmap::msr_offset(msr) {
            self.clear_bit(bit);
        }
    }

    /// Lets the guest write `msr` without an exit.
    pub fn allow_msr_write(&mut self, msr: u32) {
        if let Some(bit) = Bitmap::msr_offset(msr) {
            self.clear_bit(2048 * 8 + bit);
        }
    }

    /// Makes the guest's writes to `msr` exit (again). The bitmap is this
    /// vCPU's own, referenced only by its VMCS, and changed in root
    /// operation between VM entries of that one core, as Intel SDM Vol. 3C
    /// §25.11.4 ("Software Access to Related Structures") requires.
    pub fn intercept_msr_write(&mut self, msr: u32) {
        if let Some(bit) = Bitmap::msr_offset(msr) {
            self.set_bit(2048 * 8 + bit);
        }
    }

    /// Lets the guest access `port` without an exit.
    pub fn allow_port(&mut self, port: u16) {
        self.clear_bit(usize::from(port));
    }

    /// Physical address of I/O bitmap B (the second page).
    pub fn second_page(&self) -> u64 {
        self.pa + 4096
    }
}
