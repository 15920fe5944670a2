//! The virtual machine control block: one 4 KiB page per partition, control
//! area then state-save area (the offsets are in [`hypervisor::svm::regs`]).

use crate::arch::x86_64::common::frames::alloc_pages;

/// One VMCB page, owned by one virtual CPU.
#[derive(Debug)]
pub struct Vmcb {
    pa: u64,
}

impl Vmcb {
    /// A zeroed VMCB; `None` when out of memory.
    pub fn new() -> Option<Vmcb> {
        alloc_pages(1).map(|pa| Vmcb { pa })
    }

    /// Physical address (for VMRUN, VMLOAD, VMSAVE).
    pub fn pa(&self) -> u64 {
        self.pa
    }

    fn ptr(&self, offset: usize, size: usize) -> *mut u8 {
        assert!(
            offset + size <= 4096 && offset.is_multiple_of(size),
            "VMCB offset {offset:#x}"
        );
        (self.pa as usize + offset) as *mut u8
    }

    /// Reads a 64-bit field.
    pub fn read64(&self, offset: usize) -> u64 {
        // SAFETY: the VMCB page is a live 4 KiB frame owned by `self`; the
        // offset is in bounds and aligned (asserted); the hardware writes it
        // only during VMRUN, never concurrently with this core's code.
        unsafe { self.ptr(offset, 8).cast::<u64>().read_volatile() }
    }

    /// Writes a 64-bit field.
    pub fn write64(&mut self, offset: usize, value: u64) {
        // SAFETY: as in `read64`.
        unsafe { self.ptr(offset, 8).cast::<u64>().write_volatile(value) }
    }

    /// Writes a 32-bit field.
    pub fn write32(&mut self, offset: usize, value: u32) {
        // SAFETY: as in `read64`.
        unsafe { self.ptr(offset, 4).cast::<u32>().write_volatile(value) }
    }

    /// Writes a 16-bit field.
    pub fn write16(&mut self, offset: usize, value: u16) {
        // SAFETY: as in `read64`.
        unsafe { self.ptr(offset, 2).cast::<u16>().write_volatile(value) }
    }

    /// Reads an 8-bit field.
    pub fn read8(&self, offset: usize) -> u8 {
        // SAFETY: as in `read64`.
        unsafe { self.ptr(offset, 1).read_volatile() }
    }

    /// Writes an 8-bit field.
    pub fn write8(&mut self, offset: usize, value: u8) {
        // SAFETY: as in `read64`.
        unsafe { self.ptr(offset, 1).write_volatile(value) }
    }

    /// Writes a segment register: selector, attributes (VMCB compressed
    /// format), limit and base.
    pub fn write_segment(
        &mut self,
        offset: usize,
        selector: u16,
        attrib: u16,
        limit: u32,
        base: u64,
    ) {
        self.write16(offset, selector);
        self.write16(offset + 2, attrib);
        self.write32(offset + 4, limit);
        self.write64(offset + 8, base);
    }
}
