//! The virtual machine control block: one 4 KiB page per partition, control
//! area then state-save area. Offsets from AMD APM Vol. 2, Appendix B
//! ("Layout of VMCB"), tables B-1 (control area) and B-2 (state save area,
//! which starts at 0x400).

use crate::arch::x86_64::common::frames::alloc_pages;

/// Control-area offsets.
pub mod control {
    /// Intercept vector 3 (INTR, NMI, INIT, CPUID, IOIO_PROT, MSR_PROT, SHUTDOWN, ...).
    pub const INTERCEPT_MISC1: usize = 0x00c;
    /// Intercept vector 4 (VMRUN, VMMCALL, VMLOAD, VMSAVE, STGI, CLGI, SKINIT, ...).
    pub const INTERCEPT_MISC2: usize = 0x010;
    /// Physical address of the I/O permission map.
    pub const IOPM_BASE_PA: usize = 0x040;
    /// Physical address of the MSR permission map.
    pub const MSRPM_BASE_PA: usize = 0x048;
    /// Guest ASID.
    pub const GUEST_ASID: usize = 0x058;
    /// TLB control (1 = flush everything on VMRUN).
    pub const TLB_CONTROL: usize = 0x05c;
    /// Virtual interrupt control.
    pub const V_INTR: usize = 0x060;
    /// Exit code.
    pub const EXIT_CODE: usize = 0x070;
    /// Exit information 1.
    pub const EXIT_INFO1: usize = 0x078;
    /// Exit information 2.
    pub const EXIT_INFO2: usize = 0x080;
    /// Nested paging enable (bit 0).
    pub const NP_ENABLE: usize = 0x090;
    /// Nested page-table root.
    pub const N_CR3: usize = 0x0b0;
    /// VMCB clean bits.
    pub const CLEAN_BITS: usize = 0x0c0;
    /// Next sequential instruction pointer (with nRIP save).
    pub const NEXT_RIP: usize = 0x0c8;
}

/// State-save-area offsets (absolute, from the VMCB's start).
pub mod state {
    /// ES; every segment is selector u16, attributes u16, limit u32, base u64.
    pub const ES: usize = 0x400;
    /// CS.
    pub const CS: usize = 0x410;
    /// SS.
    pub const SS: usize = 0x420;
    /// DS.
    pub const DS: usize = 0x430;
    /// FS.
    pub const FS: usize = 0x440;
    /// GS.
    pub const GS: usize = 0x450;
    /// GDTR (limit, base).
    pub const GDTR: usize = 0x460;
    /// LDTR.
    pub const LDTR: usize = 0x470;
    /// IDTR.
    pub const IDTR: usize = 0x480;
    /// TR.
    pub const TR: usize = 0x490;
    /// CPL.
    pub const CPL: usize = 0x4cb;
    /// EFER.
    pub const EFER: usize = 0x4d0;
    /// CR4.
    pub const CR4: usize = 0x548;
    /// CR3.
    pub const CR3: usize = 0x550;
    /// CR0.
    pub const CR0: usize = 0x558;
    /// DR7.
    pub const DR7: usize = 0x560;
    /// DR6.
    pub const DR6: usize = 0x568;
    /// RFLAGS.
    pub const RFLAGS: usize = 0x570;
    /// RIP.
    pub const RIP: usize = 0x578;
    /// RSP.
    pub const RSP: usize = 0x5d8;
    /// RAX.
    pub const RAX: usize = 0x5f8;
    /// Guest PAT (with nested paging).
    pub const G_PAT: usize = 0x668;
}

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
