//! The virtual-machine control structure: one per partition, and the
//! VMREAD/VMWRITE accessors (field encodings: `x86::vmx::vmcs`, Intel SDM
//! Vol. 3D Appendix B). The accessors are written here, not taken from
//! `x86::bits64::vmx`, because that crate reads the failure flags in a
//! separate `asm!` block after the instruction; here `setna` reads them in
//! the same block.
//!
//! A VMREAD or VMWRITE that fails after setup is remembered (the first one)
//! and surfaces as `VmExit::InvalidState` on the next run instead of being
//! dropped.

use super::SetupError;
use crate::arch::x86_64::common::frames::alloc_pages;
use core::arch::asm;
use core::cell::Cell;
use hypervisor::vmx::regs::REVISION_MASK;
use x86::vmx::vmcs::ro::VM_INSTRUCTION_ERROR;

/// `VmExit::InvalidState`'s code for a failed VMREAD or VMWRITE after
/// setup: this bit, and the field's encoding in the low half
/// (VM-instruction errors and exit reasons stay below it).
pub const FAILED_ACCESS: u64 = 1 << 32;

/// A VMCS region, current on this core once loaded.
#[derive(Debug)]
pub struct Vmcs {
    pa: u64,
    /// The first VMREAD or VMWRITE that failed.
    failed: Cell<Option<VmxFail>>,
}

/// A VMREAD or VMWRITE failed (CF or ZF set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmxFail {
    /// The VMCS field encoding.
    pub field: u32,
    /// The VM-instruction error (SDM Vol. 3C §31.4), `u64::MAX` if unreadable.
    pub error: u64,
}

impl Vmcs {
    /// A cleared VMCS with `revision`, made current on this core.
    pub fn new_current(revision: u32) -> Result<Vmcs, SetupError> {
        let pa = alloc_pages(1).ok_or(SetupError::OutOfMemory("VMCS"))?;
        // SAFETY: the frame was just allocated, 4 KiB-aligned and owned here.
        unsafe {
            (pa as *mut u32).write_volatile(revision & abi::regs::half::low32(REVISION_MASK))
        };
        let vmcs = Vmcs {
            pa,
            failed: Cell::new(None),
        };
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
        let ok = clear_failed == 0 && load_failed == 0;
        ok.then_some(vmcs).ok_or(SetupError::VmcsLoad)
    }

    /// Reads a field of the current VMCS (0 if the read fails, which is
    /// remembered for [`Vmcs::failure_code`]).
    pub fn read(&self, field: u32) -> u64 {
        self.read_or(field, 0)
    }

    /// [`Vmcs::read`] with the value a failed read gives: callers whose
    /// decision a 0 would make permissive pass the restrictive value.
    pub fn read_or(&self, field: u32, failed: u64) -> u64 {
        self.try_read(field).unwrap_or_else(|| {
            self.failed(field);
            failed
        })
    }

    fn try_read(&self, field: u32) -> Option<u64> {
        let (value, failed): (u64, u8);
        // SAFETY: this VMCS is current on this core (made so in
        // `new_current`; one partition per core, whose restart drops its
        // vCPU before making a new VMCS current); VMREAD
        // has no side effects.
        unsafe {
            asm!(
                "vmread {v}, {f}",
                "setna {failed}",
                f = in(reg) u64::from(field),
                v = out(reg) value,
                failed = out(reg_byte) failed,
                options(nostack),
            );
        }
        (failed == 0).then_some(value)
    }

    /// Writes a field of the current VMCS (a failure is remembered).
    pub fn write(&mut self, field: u32, value: u64) {
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
        if failed != 0 {
            self.failed(field);
        }
    }

    fn failed(&self, field: u32) {
        if self.failed.get().is_none() {
            let error = self.try_read(VM_INSTRUCTION_ERROR).unwrap_or(u64::MAX);
            self.failed.set(Some(VmxFail { field, error }));
        }
    }

    /// The first VMREAD or VMWRITE that failed since the last call, as
    /// `VmExit::InvalidState`'s code ([`FAILED_ACCESS`]).
    pub fn failure_code(&self) -> Option<u64> {
        let failed = self.failed.take();
        failed.map(|f| FAILED_ACCESS | u64::from(f.field))
    }

    /// Writes `fields` (at setup): the first failure is the error.
    pub fn write_all(&mut self, fields: &[(u32, u64)]) -> Result<(), SetupError> {
        for &(field, value) in fields {
            self.write(field, value);
        }
        self.failed
            .take()
            .map_or(Ok(()), |f| Err(SetupError::VmcsWrite(f)))
    }
}
