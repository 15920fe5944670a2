//! AMD SVM with nested paging: enabling SVM on a core and the
//! [`vcpu::SvmVcpu`] backend.

pub mod bitmaps;
pub mod entry;
pub mod vcpu;
pub mod vmcb;

use crate::arch::x86_64::common::frames::alloc_pages;
use crate::arch::x86_64::common::instr;

const IA32_EFER: u32 = 0xc000_0080;
const VM_HSAVE_PA: u32 = 0xc001_0117;
const EFER_SVME: u64 = 1 << 12;
const EFER_NXE: u64 = 1 << 11;

/// Enables SVM on the calling core: EFER.SVME, EFER.NXE (the nested page
/// tables use the NX bit, which is reserved — a fault — without it) and a
/// host save area.
/// Returns `false` when out of memory.
pub fn enable() -> bool {
    let Some(hsave) = alloc_pages(1) else {
        return false;
    };
    // SAFETY: the caller checked CPUID for SVM (and that firmware did not
    // disable it) before choosing this backend; EFER.SVME only enables the
    // SVM instructions, EFER.NXE only gives the NX bit meaning (every CPU
    // with SVM has NX), and VM_HSAVE_PA gets a frame owned by this core for
    // the rest of the run.
    unsafe {
        instr::wrmsr(IA32_EFER, instr::rdmsr(IA32_EFER) | EFER_SVME | EFER_NXE);
        instr::wrmsr(VM_HSAVE_PA, hsave);
    }
    true
}
