//! Reading what this core is: CPUID and the virtualization capability MSRs.

use super::{fixup, instr};
use hypervisor::exit_handler::CpuRefused;
use hypervisor::virt_caps::{RawVirtInfo, RawVmx};
use raw_cpuid::native_cpuid::cpuid_count;

use abi::regs::{amd_msr::VM_CR, cpuid::ext1, cpuid::leaf1_ecx, VMX_BASIC_TRUE_CONTROLS};
use x86::controlregs::Cr4;
use x86::msr::{
    IA32_FEATURE_CONTROL, IA32_VMX_BASIC, IA32_VMX_ENTRY_CTLS, IA32_VMX_EPT_VPID_CAP,
    IA32_VMX_EXIT_CTLS, IA32_VMX_PINBASED_CTLS, IA32_VMX_PROCBASED_CTLS, IA32_VMX_PROCBASED_CTLS2,
    IA32_VMX_TRUE_ENTRY_CTLS, IA32_VMX_TRUE_EXIT_CTLS, IA32_VMX_TRUE_PINBASED_CTLS,
    IA32_VMX_TRUE_PROCBASED_CTLS,
};
use x86::vmx::vmcs::control::{PrimaryControls, SecondaryControls};

/// Reads the raw virtualization information of the calling core. MSRs are
/// read only when CPUID says they exist.
pub fn read_virt_info() -> RawVirtInfo {
    let leaf0 = cpuid_count(0, 0);
    let mut vendor = [0u8; 12];
    vendor[..4].copy_from_slice(&leaf0.ebx.to_le_bytes());
    vendor[4..8].copy_from_slice(&leaf0.edx.to_le_bytes());
    vendor[8..].copy_from_slice(&leaf0.ecx.to_le_bytes());
    let leaf1_ecx = cpuid_count(1, 0).ecx;
    let max_ext = cpuid_count(0x8000_0000, 0).eax;
    let ext1_ecx = if max_ext >= 0x8000_0001 {
        cpuid_count(0x8000_0001, 0).ecx
    } else {
        0
    };

    let svm = ext1_ecx & ext1::ECX_SVM != 0;
    let svm_leaf = (svm && max_ext >= 0x8000_000a).then(|| {
        let l = cpuid_count(0x8000_000a, 0);
        (l.eax, l.ebx, l.edx)
    });
    // SAFETY: VM_CR exists on every CPU that reports SVM (AMD APM Vol. 2 §15.30.1).
    let vm_cr = svm.then(|| unsafe { instr::rdmsr(VM_CR) });

    let vmx = (leaf1_ecx & leaf1_ecx::VMX != 0).then(|| {
        // SAFETY: the VMX capability MSRs and IA32_FEATURE_CONTROL exist on
        // every CPU that reports VMX (Intel SDM Vol. 3 Appendix A.1); the
        // TRUE variant exists when VMX_BASIC bit 55 says so, and CTLS2 when
        // the secondary-controls bit may be 1, and EPT_VPID_CAP when EPT or
        // VPID may be 1 in CTLS2 (Appendix A.10).
        unsafe {
            let basic = instr::rdmsr(IA32_VMX_BASIC);
            let pick = |true_msr, msr| {
                if basic & VMX_BASIC_TRUE_CONTROLS != 0 {
                    instr::rdmsr(true_msr)
                } else {
                    instr::rdmsr(msr)
                }
            };
            let procbased = pick(IA32_VMX_TRUE_PROCBASED_CTLS, IA32_VMX_PROCBASED_CTLS);
            // Allowed-1 settings are the high halves (Appendix A.3.2, A.3.3).
            let secondary = u64::from(PrimaryControls::SECONDARY_CONTROLS.bits()) << 32;
            let procbased2 = if procbased & secondary != 0 {
                instr::rdmsr(IA32_VMX_PROCBASED_CTLS2)
            } else {
                0
            };
            let ept_or_vpid = SecondaryControls::ENABLE_EPT | SecondaryControls::ENABLE_VPID;
            let ept_or_vpid = (procbased2 >> 32) & u64::from(ept_or_vpid.bits()) != 0;
            RawVmx {
                feature_control: instr::rdmsr(IA32_FEATURE_CONTROL),
                basic,
                pinbased: pick(IA32_VMX_TRUE_PINBASED_CTLS, IA32_VMX_PINBASED_CTLS),
                procbased,
                procbased2,
                exit: pick(IA32_VMX_TRUE_EXIT_CTLS, IA32_VMX_EXIT_CTLS),
                entry: pick(IA32_VMX_TRUE_ENTRY_CTLS, IA32_VMX_ENTRY_CTLS),
                ept_vpid_cap: if ept_or_vpid {
                    instr::rdmsr(IA32_VMX_EPT_VPID_CAP)
                } else {
                    0
                },
            }
        }
    });
    RawVirtInfo {
        vendor,
        leaf1_ecx,
        ext1_ecx,
        svm_leaf,
        vm_cr,
        vmx,
    }
}

/// Executes CPUID on this core.
pub fn host_cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// Sets CR4.OSXSAVE on this core when the CPU has XSAVE, so that the
/// hypervisor can load a partition's validated XCR0 (XSETBV needs it).
pub fn enable_xsave() {
    if cpuid_count(1, 0).ecx & leaf1_ecx::XSAVE == 0 {
        return;
    }
    // SAFETY: CR4.OSXSAVE exists when CPUID reports XSAVE; setting it only
    // enables XGETBV/XSETBV and XSAVE-family instructions, which the
    // hypervisor itself never uses except to load a guest's XCR0.
    // Hand-written: `x86::controlregs::cr4()` drops the bits its `Cr4` does
    // not name (CET, PKS), so a read-modify-write through it could clear them.
    unsafe {
        let cr4: usize;
        core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack, preserves_flags));
        let cr4 = cr4 | Cr4::CR4_ENABLE_OS_XSAVE.bits();
        core::arch::asm!("mov cr4, {}", in(reg) cr4, options(nostack));
    }
}

/// Loads XCR0 on this core, under the exception fixup. The caller
/// validated `value` (`hypervisor::xcr0_policy::check_xsetbv`); a CPU that
/// still refuses it (#GP, or #UD without CR4.OSXSAVE) makes this return
/// [`CpuRefused`] instead of faulting the hypervisor.
pub fn write_xcr0(value: u64) -> Result<(), CpuRefused> {
    // SAFETY: XCR0 governs only the XSAVE-managed state of this core, which
    // belongs to the partition running on it (the hypervisor uses no SIMD
    // or x87 state); a refused value is recovered by the fixup.
    unsafe { fixup::checked_xsetbv(0, value) }
}
