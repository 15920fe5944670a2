//! Intel VMX with EPT: entering VMX operation on a core and the
//! [`vcpu::VmxVcpu`] backend.

pub mod bitmaps;
pub mod entry;
pub mod vcpu;
pub mod vmcs;

use crate::arch::x86_64::common::frames::alloc_pages;
use crate::arch::x86_64::common::instr;
use core::arch::asm;

const IA32_FEATURE_CONTROL: u32 = 0x3a;
const IA32_VMX_BASIC: u32 = 0x480;
const IA32_VMX_CR0_FIXED0: u32 = 0x486;
const IA32_VMX_CR0_FIXED1: u32 = 0x487;
const IA32_VMX_CR4_FIXED0: u32 = 0x488;
const IA32_VMX_CR4_FIXED1: u32 = 0x489;
const FEATURE_CONTROL_LOCK: u64 = 1 << 0;
const FEATURE_CONTROL_VMX_OUTSIDE_SMX: u64 = 1 << 2;
const CR4_VMXE: u64 = 1 << 13;

/// Why VMX operation could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmxError {
    /// Firmware locked IA32_FEATURE_CONTROL with VMX off.
    DisabledByFirmware,
    /// No memory for the VMXON region.
    OutOfMemory,
    /// VMXON failed.
    VmxonFailed,
}

/// The VMCS revision identifier of this CPU.
pub fn revision() -> u32 {
    // SAFETY: IA32_VMX_BASIC exists on every CPU with VMX (checked by the
    // caller before choosing this backend).
    (unsafe { instr::rdmsr(IA32_VMX_BASIC) } & 0x7fff_ffff) as u32
}

/// Enters VMX operation on the calling core: feature control, the CR0/CR4
/// fixed bits, CR4.VMXE, and VMXON with a fresh region.
pub fn enable() -> Result<(), VmxError> {
    // SAFETY: every MSR read here exists on CPUs with VMX; the writes set
    // the feature-control lock only when firmware left it unlocked (as the
    // SDM §24.7 prescribes) and adjust CR0/CR4 to the values VMX operation
    // requires (NE, VMXE), which the hypervisor itself is fine with.
    unsafe {
        let fc = instr::rdmsr(IA32_FEATURE_CONTROL);
        if fc & FEATURE_CONTROL_LOCK == 0 {
            instr::wrmsr(
                IA32_FEATURE_CONTROL,
                fc | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX,
            );
        } else if fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX == 0 {
            return Err(VmxError::DisabledByFirmware);
        }
        let cr0 =
            (read_cr0() | instr::rdmsr(IA32_VMX_CR0_FIXED0)) & instr::rdmsr(IA32_VMX_CR0_FIXED1);
        let cr4 = (read_cr4() | CR4_VMXE | instr::rdmsr(IA32_VMX_CR4_FIXED0))
            & instr::rdmsr(IA32_VMX_CR4_FIXED1);
        asm!("mov cr0, {}", in(reg) cr0, options(nostack));
        asm!("mov cr4, {}", in(reg) cr4, options(nostack));
    }
    let region = alloc_pages(1).ok_or(VmxError::OutOfMemory)?;
    // SAFETY: the frame was just allocated for the VMXON region.
    unsafe { (region as *mut u32).write_volatile(revision()) };
    let failed: u8;
    // SAFETY: CR0/CR4 satisfy the fixed bits, feature control allows VMX,
    // and the operand holds the physical address of a 4 KiB-aligned region
    // with the revision identifier, owned by this core for the whole run.
    unsafe {
        asm!("vmxon qword ptr [{}]", "setna {}", in(reg) &region, out(reg_byte) failed, options(nostack));
    }
    if failed != 0 {
        return Err(VmxError::VmxonFailed);
    }
    Ok(())
}

/// Reads CR0.
pub fn read_cr0() -> u64 {
    let v: u64;
    // SAFETY: reading CR0 has no side effects at CPL 0.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads CR3.
pub fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects at CPL 0.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads CR4.
pub fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects at CPL 0.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}
