//! The virtual-machine control structure: one per partition, and the
//! VMREAD/VMWRITE accessors. Field encodings from Intel SDM Vol. 3,
//! Appendix B.

use crate::arch::x86_64::common::frames::alloc_pages;
use core::arch::asm;

/// VMCS field encodings used by Flotilla.
#[allow(missing_docs)]
pub mod field {
    // 16-bit control and guest/host state.
    pub const VPID: u32 = 0x0000;
    pub const GUEST_ES_SELECTOR: u32 = 0x0800;
    pub const GUEST_CS_SELECTOR: u32 = 0x0802;
    pub const GUEST_SS_SELECTOR: u32 = 0x0804;
    pub const GUEST_DS_SELECTOR: u32 = 0x0806;
    pub const GUEST_FS_SELECTOR: u32 = 0x0808;
    pub const GUEST_GS_SELECTOR: u32 = 0x080a;
    pub const GUEST_LDTR_SELECTOR: u32 = 0x080c;
    pub const GUEST_TR_SELECTOR: u32 = 0x080e;
    pub const HOST_ES_SELECTOR: u32 = 0x0c00;
    pub const HOST_CS_SELECTOR: u32 = 0x0c02;
    pub const HOST_SS_SELECTOR: u32 = 0x0c04;
    pub const HOST_DS_SELECTOR: u32 = 0x0c06;
    pub const HOST_FS_SELECTOR: u32 = 0x0c08;
    pub const HOST_GS_SELECTOR: u32 = 0x0c0a;
    pub const HOST_TR_SELECTOR: u32 = 0x0c0c;
    // 64-bit control.
    pub const IO_BITMAP_A: u32 = 0x2000;
    pub const IO_BITMAP_B: u32 = 0x2002;
    pub const MSR_BITMAP: u32 = 0x2004;
    pub const EPT_POINTER: u32 = 0x201a;
    pub const GUEST_PHYSICAL_ADDRESS: u32 = 0x2400;
    pub const VMCS_LINK_POINTER: u32 = 0x2800;
    pub const GUEST_IA32_DEBUGCTL: u32 = 0x2802;
    pub const GUEST_IA32_PAT: u32 = 0x2804;
    pub const GUEST_IA32_EFER: u32 = 0x2806;
    pub const GUEST_PDPTE0: u32 = 0x280a;
    pub const GUEST_PDPTE1: u32 = 0x280c;
    pub const GUEST_PDPTE2: u32 = 0x280e;
    pub const GUEST_PDPTE3: u32 = 0x2810;
    pub const HOST_IA32_PAT: u32 = 0x2c00;
    pub const HOST_IA32_EFER: u32 = 0x2c02;
    // 32-bit control.
    pub const PIN_BASED_CONTROLS: u32 = 0x4000;
    pub const PRIMARY_PROC_CONTROLS: u32 = 0x4002;
    pub const EXCEPTION_BITMAP: u32 = 0x4004;
    pub const PF_ERROR_CODE_MASK: u32 = 0x4006;
    pub const PF_ERROR_CODE_MATCH: u32 = 0x4008;
    pub const CR3_TARGET_COUNT: u32 = 0x400a;
    pub const EXIT_CONTROLS: u32 = 0x400c;
    pub const EXIT_MSR_STORE_COUNT: u32 = 0x400e;
    pub const EXIT_MSR_LOAD_COUNT: u32 = 0x4010;
    pub const ENTRY_CONTROLS: u32 = 0x4012;
    pub const ENTRY_MSR_LOAD_COUNT: u32 = 0x4014;
    pub const ENTRY_INTERRUPTION_INFO: u32 = 0x4016;
    pub const ENTRY_EXCEPTION_ERROR_CODE: u32 = 0x4018;
    pub const ENTRY_INSTRUCTION_LEN: u32 = 0x401a;
    pub const SECONDARY_PROC_CONTROLS: u32 = 0x401e;
    pub const VM_INSTRUCTION_ERROR: u32 = 0x4400;
    pub const EXIT_REASON: u32 = 0x4402;
    pub const EXIT_INTERRUPTION_INFO: u32 = 0x4404;
    pub const IDT_VECTORING_INFO: u32 = 0x4408;
    pub const IDT_VECTORING_ERROR_CODE: u32 = 0x440a;
    pub const EXIT_INSTRUCTION_LEN: u32 = 0x440c;
    // 32-bit guest state.
    pub const GUEST_ES_LIMIT: u32 = 0x4800;
    pub const GUEST_CS_LIMIT: u32 = 0x4802;
    pub const GUEST_SS_LIMIT: u32 = 0x4804;
    pub const GUEST_DS_LIMIT: u32 = 0x4806;
    pub const GUEST_FS_LIMIT: u32 = 0x4808;
    pub const GUEST_GS_LIMIT: u32 = 0x480a;
    pub const GUEST_LDTR_LIMIT: u32 = 0x480c;
    pub const GUEST_TR_LIMIT: u32 = 0x480e;
    pub const GUEST_GDTR_LIMIT: u32 = 0x4810;
    pub const GUEST_IDTR_LIMIT: u32 = 0x4812;
    pub const GUEST_ES_AR: u32 = 0x4814;
    pub const GUEST_CS_AR: u32 = 0x4816;
    pub const GUEST_SS_AR: u32 = 0x4818;
    pub const GUEST_DS_AR: u32 = 0x481a;
    pub const GUEST_FS_AR: u32 = 0x481c;
    pub const GUEST_GS_AR: u32 = 0x481e;
    pub const GUEST_LDTR_AR: u32 = 0x4820;
    pub const GUEST_TR_AR: u32 = 0x4822;
    pub const GUEST_INTERRUPTIBILITY: u32 = 0x4824;
    pub const GUEST_ACTIVITY_STATE: u32 = 0x4826;
    pub const GUEST_SYSENTER_CS: u32 = 0x482a;
    pub const HOST_SYSENTER_CS: u32 = 0x4c00;
    // Natural-width control.
    pub const CR0_GUEST_HOST_MASK: u32 = 0x6000;
    pub const CR4_GUEST_HOST_MASK: u32 = 0x6002;
    pub const CR0_READ_SHADOW: u32 = 0x6004;
    pub const CR4_READ_SHADOW: u32 = 0x6006;
    pub const EXIT_QUALIFICATION: u32 = 0x6400;
    // Natural-width guest state.
    pub const GUEST_CR0: u32 = 0x6800;
    pub const GUEST_CR3: u32 = 0x6802;
    pub const GUEST_CR4: u32 = 0x6804;
    pub const GUEST_ES_BASE: u32 = 0x6806;
    pub const GUEST_CS_BASE: u32 = 0x6808;
    pub const GUEST_SS_BASE: u32 = 0x680a;
    pub const GUEST_DS_BASE: u32 = 0x680c;
    pub const GUEST_FS_BASE: u32 = 0x680e;
    pub const GUEST_GS_BASE: u32 = 0x6810;
    pub const GUEST_LDTR_BASE: u32 = 0x6812;
    pub const GUEST_TR_BASE: u32 = 0x6814;
    pub const GUEST_GDTR_BASE: u32 = 0x6816;
    pub const GUEST_IDTR_BASE: u32 = 0x6818;
    pub const GUEST_DR7: u32 = 0x681a;
    pub const GUEST_RSP: u32 = 0x681c;
    pub const GUEST_RIP: u32 = 0x681e;
    pub const GUEST_RFLAGS: u32 = 0x6820;
    pub const GUEST_PENDING_DBG: u32 = 0x6822;
    pub const GUEST_SYSENTER_ESP: u32 = 0x6824;
    pub const GUEST_SYSENTER_EIP: u32 = 0x6826;
    // Natural-width host state.
    pub const HOST_CR0: u32 = 0x6c00;
    pub const HOST_CR3: u32 = 0x6c02;
    pub const HOST_CR4: u32 = 0x6c04;
    pub const HOST_FS_BASE: u32 = 0x6c06;
    pub const HOST_GS_BASE: u32 = 0x6c08;
    pub const HOST_TR_BASE: u32 = 0x6c0a;
    pub const HOST_GDTR_BASE: u32 = 0x6c0c;
    pub const HOST_IDTR_BASE: u32 = 0x6c0e;
    pub const HOST_SYSENTER_ESP: u32 = 0x6c10;
    pub const HOST_SYSENTER_EIP: u32 = 0x6c12;
    pub const HOST_RSP: u32 = 0x6c14;
    pub const HOST_RIP: u32 = 0x6c16;
}

/// A VMCS region, current on this core once loaded.
#[derive(Debug)]
pub struct Vmcs {
    pa: u64,
}

/// A VMX instruction failed (CF or ZF set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmxFail;

impl Vmcs {
    /// A cleared VMCS with `revision` and made current on this core; `None`
    /// when out of memory or if VMCLEAR/VMPTRLD fail.
    pub fn new_current(revision: u32) -> Option<Vmcs> {
        let pa = alloc_pages(1)?;
        // SAFETY: the frame was just allocated, 4 KiB-aligned and owned here.
        unsafe { (pa as *mut u32).write_volatile(revision & 0x7fff_ffff) };
        let vmcs = Vmcs { pa };
        let (clear_failed, load_failed): (u8, u8);
        // SAFETY: VMX is on (the caller enabled it on this core); the operand
        // is the physical address of a VMCS region with the right revision
        // that no other core uses. Each instruction's failure (CF or ZF) is
        // read right after it.
        unsafe {
            asm!(
                "vmclear qword ptr [{pa}]",
                "setna {c}",
                "vmptrld qword ptr [{pa}]",
                "setna {l}",
                pa = in(reg) &vmcs.pa,
                c = out(reg_byte) clear_failed,
                l = out(reg_byte) load_failed,
            );
        }
        (clear_failed == 0 && load_failed == 0).then_some(vmcs)
    }

    /// Reads a field of the current VMCS (0 if the read fails).
    pub fn read(&self, field: u32) -> u64 {
        let value: u64;
        // SAFETY: this VMCS is current on this core (made so in
        // `new_current`, never replaced: one partition per core); VMREAD
        // has no side effects.
        unsafe {
            asm!("vmread {v}, {f}", f = in(reg) u64::from(field), v = out(reg) value, options(nostack));
        }
        value
    }

    /// Writes a field of the current VMCS.
    pub fn write(&mut self, field: u32, value: u64) -> Result<(), VmxFail> {
        let failed: u8;
        // SAFETY: as in `read`; a write to a valid field only changes this
        // partition's VMCS.
        unsafe {
            asm!(
                "vmwrite {f}, {v}",
                "setna {failed}",
                f = in(reg) u64::from(field),
                v = in(reg) value,
                failed = out(reg_byte) failed,
                options(nostack),
            );
        }
        if failed == 0 {
            Ok(())
        } else {
            Err(VmxFail)
        }
    }
}
