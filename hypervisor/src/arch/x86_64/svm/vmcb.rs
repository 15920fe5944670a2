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

    fn ptr<T: Field>(&self, offset: usize) -> *mut T {
        let size = size_of::<T>();
        assert!(
            offset + size <= 4096 && offset.is_multiple_of(size),
            "VMCB offset {offset:#x}"
        );
        (self.pa as *mut u8).wrapping_add(offset).cast::<T>()
    }

    /// Reads a field (`T` its width).
    pub fn read<T: Field>(&self, offset: usize) -> T {
        // SAFETY: the VMCB page is a live 4 KiB frame owned by `self`; the
        // offset is in bounds and aligned (asserted); the hardware writes it
        // only during VMRUN, never concurrently with this core's code.
        unsafe { self.ptr::<T>(offset).read_volatile() }
    }

    /// Writes a field (`T` its width).
    pub fn write<T: Field>(&mut self, offset: usize, value: T) {
        // SAFETY: as in `read`.
        unsafe { self.ptr::<T>(offset).write_volatile(value) }
    }

    /// Writes a segment register: selector, attributes (VMCB compressed
    /// format), limit and base 0.
    pub fn write_segment(&mut self, offset: usize, selector: u16, attrib: u16, limit: u32) {
        self.write(offset, selector);
        self.write(offset + 2, attrib);
        self.write(offset + 4, limit);
        self.write(offset + 8, 0u64);
    }
}

/// The widths of VMCB fields: an integer literal without a suffix does not
/// compile as one, so every access says its width.
pub trait Field: Copy {}
impl Field for u8 {}
impl Field for u16 {}
impl Field for u32 {}
impl Field for u64 {}
