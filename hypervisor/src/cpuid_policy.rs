//! What CPUID tells a partition: the host's answer filtered down to what the
//! partition can actually use, plus Flotilla's own leaves. A feature is
//! shown only if its instructions run and its MSRs are reachable under the
//! intercepts of `msr_policy` and the backend's controls; otherwise a
//! well-behaved kernel that trusts CPUID would stop on its first use.
//!
//! Bit positions: `abi::regs::cpuid`. The backend reports what it enables ([`GuestFeatures`]);
//! the guest's own CR4 decides the OS-enabled bits (OSXSAVE, OSPKE).

use abi::cpuid::{
    signature_registers, LEAF_INTERFACE, LEAF_LAST, LEAF_MAX, LEAF_SIGNATURE, LEAF_UNUSED,
};
use abi::regs::cpuid::{ext1, ext8_ebx, leaf1_ecx, leaf1_edx, leaf7, leafd1_eax};
use x86::controlregs::Cr4;

/// What the backend lets a partition use beyond the baseline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestFeatures {
    /// RDTSCP and RDPID run (VMX: "enable RDTSCP" set; SVM: not intercepted).
    pub rdtscp: bool,
    /// INVPCID runs (VMX: "enable INVPCID" set; SVM: not intercepted).
    pub invpcid: bool,
    /// TSC-deadline timer mode works (IA32_TSC_DEADLINE passed through:
    /// compat partitions on a CPU with it, `Vcpu::pass_tsc_deadline`).
    pub tsc_deadline: bool,
}

/// The partition's state CPUID depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuidView {
    /// The backend (its [`abi::cpuid::Backend::id`] answers leaf [`LEAF_INTERFACE`]).
    pub backend: abi::cpuid::Backend,
    /// What the backend enables.
    pub features: GuestFeatures,
    /// The guest's CR4 as the guest sees it.
    pub guest_cr4: u64,
}

/// Sets or clears `bit` in `reg`.
fn set(reg: &mut u32, bit: u32, on: bool) {
    if on {
        *reg |= bit;
    } else {
        *reg &= !bit;
    }
}

/// Clears `bit` in `reg` unless `allowed` (a feature is never invented).
fn keep_if(reg: &mut u32, bit: u32, allowed: bool) {
    if !allowed {
        *reg &= !bit;
    }
}

/// Filters the host's CPUID answer `host` for leaf `leaf`, sub-leaf
/// `subleaf`, for a partition in `view`.
pub fn guest_cpuid(leaf: u32, subleaf: u32, host: [u32; 4], view: &CpuidView) -> [u32; 4] {
    let [mut eax, mut ebx, mut ecx, mut edx] = host;
    let f = view.features;
    let cr4 = view.guest_cr4;
    match leaf {
        1 => {
            // VMX is the hypervisor's; PDCM and DS/DTES64 need MSRs
            // (PERF_CAPABILITIES, DS_AREA) that are intercepted.
            ecx &= !(leaf1_ecx::VMX | leaf1_ecx::PDCM | leaf1_ecx::DTES64);
            keep_if(&mut ecx, leaf1_ecx::TSC_DEADLINE, f.tsc_deadline);
            // OSXSAVE mirrors the guest's CR4 (only where XSAVE exists).
            let xsave = ecx & leaf1_ecx::XSAVE != 0;
            set(
                &mut ecx,
                leaf1_ecx::OSXSAVE,
                xsave && cr4 & Cr4::CR4_ENABLE_OS_XSAVE.bits() as u64 != 0,
            );
            ecx |= leaf1_ecx::HYPERVISOR;
            // Machine-check and MTRR MSRs are intercepted (msr-denied).
            edx &= !(leaf1_edx::MCE | leaf1_edx::MCA | leaf1_edx::MTRR | leaf1_edx::DS);
        }
        7 if subleaf == 0 => {
            keep_if(&mut ebx, leaf7::EBX_INVPCID, f.invpcid);
            keep_if(&mut ecx, leaf7::ECX_RDPID, f.rdtscp);
            // OSPKE mirrors the guest's CR4 (only where PKU exists).
            let pku = ecx & leaf7::ECX_PKU != 0;
            set(
                &mut ecx,
                leaf7::ECX_OSPKE,
                pku && cr4 & Cr4::CR4_ENABLE_PROTECTION_KEY.bits() as u64 != 0,
            );
            edx &= !(leaf7::EDX_SRBDS_CTRL
                | leaf7::EDX_IBRS_IBPB
                | leaf7::EDX_STIBP
                | leaf7::EDX_L1D_FLUSH
                | leaf7::EDX_ARCH_CAPABILITIES
                | leaf7::EDX_CORE_CAPABILITIES
                | leaf7::EDX_SSBD);
        }
        // Architectural performance monitoring: its MSRs are intercepted.
        0xa => [eax, ebx, ecx, edx] = [0; 4],
        0xd if subleaf == 1 => {
            // XSAVES needs IA32_XSS and XFD its MSRs: both intercepted; no
            // supervisor state component is offered.
            eax &= !(leafd1_eax::XSAVES | leafd1_eax::XFD);
            ecx = 0;
            edx = 0;
        }
        0x8000_0001 => {
            ecx &= !(ext1::ECX_SVM
                | ext1::ECX_PERFCTR_CORE
                | ext1::ECX_PERFCTR_NB
                | ext1::ECX_PERFCTR_LLC);
            edx &= !(ext1::EDX_MCE | ext1::EDX_MCA | ext1::EDX_MTRR);
            keep_if(&mut edx, ext1::EDX_RDTSCP, f.rdtscp);
        }
        0x8000_0008 => {
            ebx &= !(ext8_ebx::IBPB
                | ext8_ebx::IBRS
                | ext8_ebx::STIBP
                | ext8_ebx::SSBD
                | ext8_ebx::VIRT_SSBD);
        }
        // SVM features; SME/SEV (its MSRs are intercepted).
        0x8000_000a | 0x8000_001f => [eax, ebx, ecx, edx] = [0; 4],
        LEAF_SIGNATURE => {
            let [b, c, d] = signature_registers();
            [eax, ebx, ecx, edx] = [LEAF_MAX, b, c, d];
        }
        LEAF_INTERFACE => [eax, ebx, ecx, edx] = [view.backend.id(), 0, 0, 0],
        LEAF_UNUSED..=LEAF_LAST => [eax, ebx, ecx, edx] = [0; 4],
        _ => {}
    }
    [eax, ebx, ecx, edx]
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const CR4_OSXSAVE: u64 = Cr4::CR4_ENABLE_OS_XSAVE.bits() as u64;
    const CR4_PKE: u64 = Cr4::CR4_ENABLE_PROTECTION_KEY.bits() as u64;

    fn view(features: GuestFeatures, guest_cr4: u64) -> CpuidView {
        CpuidView {
            backend: abi::cpuid::Backend::Svm,
            features,
            guest_cr4,
        }
    }

    const SVM: GuestFeatures = GuestFeatures {
        rdtscp: true,
        invpcid: true,
        tsc_deadline: false,
    };
    const VMX_NO_EXTRAS: GuestFeatures = GuestFeatures {
        rdtscp: false,
        invpcid: false,
        tsc_deadline: false,
    };

    // Host answers measured under the emulators the tests use, as
    // [eax, ebx, ecx, edx]. Bochs corei7_skylake_x (the host CR4 had
    // OSXSAVE set: leaf 1 ECX bit 27).
    const BOCHS_SKX_1: [u32; 4] = [0x0005_0654, 0x0001_0800, 0x7ffa_f3bf, 0xbfeb_fbff];
    const BOCHS_SKX_7: [u32; 4] = [0, 0xd19f_27eb, 0, 0];
    const BOCHS_SKX_A: [u32; 4] = [0x0730_0404, 0, 0, 0x603];
    const BOCHS_SKX_D1: [u32; 4] = [0xf, 0, 0, 0];
    // QEMU 10 TCG -cpu max.
    const QEMU_MAX_1: [u32; 4] = [0x663, 0x800, 0xfef8_320b, 0x0fcb_fbfd];
    const QEMU_MAX_7: [u32; 4] = [1, 0x219c_43a9, 0x8041_020c, 0x10];
    const QEMU_MAX_EXT1: [u32; 4] = [0x663, 0, 0x177, 0xedd3_fbfd];
    // Bochs ryzen.
    const BOCHS_RYZEN_EXT1: [u32; 4] = [0x0080_0f11, 0x2000_0000, 0x35c2_23ff, 0x2fd3_fbff];
    // A Zen 3 host's Fn8000_0008 EBX (IBPB, IBRS, STIBP, SSBD, ...).
    const ZEN3_EXT8: [u32; 4] = [0x3030, 0x111e_f657, 0x707f, 0x10007];
    // A Skylake-SP host's leaf 7 EDX (IBRS/IBPB, STIBP, L1D_FLUSH,
    // ARCH_CAPABILITIES, SSBD, MD_CLEAR).
    const SKX_7: [u32; 4] = [0, 0xd39f_fffb, 0x8, 0xbc00_0400];

    #[test]
    fn hides_virtualization_and_signs_flotilla() {
        let v = view(SVM, 0);
        assert_eq!(guest_cpuid(1, 0, [0; 4], &v)[2], 1 << 31);
        assert_eq!(guest_cpuid(1, 0, BOCHS_SKX_1, &v)[2] & (1 << 5), 0);
        assert_eq!(
            guest_cpuid(0x8000_0001, 0, BOCHS_RYZEN_EXT1, &v)[2] & (1 << 2),
            0
        );
        assert_eq!(guest_cpuid(0x8000_000a, 0, [u32::MAX; 4], &v), [0; 4]);
        let sig = guest_cpuid(LEAF_SIGNATURE, 0, [0; 4], &v);
        let mut text = Vec::new();
        for r in &sig[1..] {
            text.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(text, abi::cpuid::SIGNATURE);
        let vmx = CpuidView {
            backend: abi::cpuid::Backend::Vmx,
            ..v
        };
        assert_eq!(guest_cpuid(LEAF_INTERFACE, 0, [9; 4], &vmx), [2, 0, 0, 0]);
    }

    #[test]
    fn features_whose_msrs_are_denied_are_hidden() {
        let v = view(SVM, 0);
        let l1 = guest_cpuid(1, 0, BOCHS_SKX_1, &v);
        assert_ne!(BOCHS_SKX_1[2] & (1 << 24), 0, "Bochs has TSC-deadline");
        assert_eq!(l1[2] & (1 << 24), 0, "TSC-deadline hidden");
        assert_eq!(l1[2] & (1 << 15), 0, "PDCM hidden");
        assert_eq!(l1[3] & ((1 << 7) | (1 << 14)), 0, "MCE/MCA hidden");
        assert_eq!(l1[3] & (1 << 12), 0, "MTRR hidden");
        assert_eq!(l1[3] & (1 << 21), 0, "DS hidden");
        assert_ne!(l1[3] & 1, 0, "FPU still shown");
        assert_ne!(l1[2] & (1 << 21), 0, "x2APIC still shown");
        assert_ne!(l1[2] & (1 << 26), 0, "XSAVE still shown");
        assert_eq!(guest_cpuid(0xa, 0, BOCHS_SKX_A, &v), [0; 4], "no PMU");
        let d1 = guest_cpuid(0xd, 1, BOCHS_SKX_D1, &v);
        assert_eq!(d1[0], 0x7, "XSAVEOPT, XSAVEC, XGETBV1 stay; XSAVES goes");
        let skx7 = guest_cpuid(7, 0, SKX_7, &v);
        assert_eq!(skx7[3], 0x400, "only MD_CLEAR (VERW) stays");
        let zen3 = guest_cpuid(0x8000_0008, 0, ZEN3_EXT8, &v);
        assert_eq!(
            zen3[1] & ((1 << 12) | (1 << 14) | (1 << 15) | (1 << 24) | (1 << 25)),
            0
        );
        assert_eq!(zen3[0], ZEN3_EXT8[0], "address sizes untouched");
        let ext1 = guest_cpuid(0x8000_0001, 0, BOCHS_RYZEN_EXT1, &v);
        assert_eq!(ext1[2] & (1 << 23), 0, "no core performance counters");
        assert_eq!(ext1[3] & ((1 << 7) | (1 << 14)), 0);
        // Sub-leaves other than 0 of leaf 7 pass untouched.
        assert_eq!(guest_cpuid(7, 1, [0x1c80, 0, 0, 0], &v), [0x1c80, 0, 0, 0]);
    }

    #[test]
    fn backend_features_decide_rdtscp_and_invpcid() {
        let svm = view(SVM, 0);
        assert_ne!(
            guest_cpuid(0x8000_0001, 0, QEMU_MAX_EXT1, &svm)[3] & (1 << 27),
            0
        );
        assert_ne!(guest_cpuid(7, 0, BOCHS_SKX_7, &svm)[1] & (1 << 10), 0);
        let vmx = view(VMX_NO_EXTRAS, 0);
        assert_eq!(
            guest_cpuid(0x8000_0001, 0, QEMU_MAX_EXT1, &vmx)[3] & (1 << 27),
            0
        );
        assert_eq!(guest_cpuid(7, 0, BOCHS_SKX_7, &vmx)[1] & (1 << 10), 0);
        assert_eq!(
            guest_cpuid(7, 0, QEMU_MAX_7, &vmx)[2] & (1 << 22),
            0,
            "RDPID"
        );
        // A feature the host lacks is never invented.
        assert_eq!(guest_cpuid(0x8000_0001, 0, [0; 4], &svm)[3], 0);
        let deadline = view(
            GuestFeatures {
                tsc_deadline: true,
                ..SVM
            },
            0,
        );
        assert_eq!(guest_cpuid(1, 0, QEMU_MAX_1, &deadline)[2] & (1 << 24), 0);
        assert_ne!(guest_cpuid(1, 0, BOCHS_SKX_1, &deadline)[2] & (1 << 24), 0);
    }

    #[test]
    fn os_enabled_bits_follow_the_guest_cr4() {
        // Bochs' host CR4 has OSXSAVE; a guest that has not set it sees 0.
        assert_ne!(BOCHS_SKX_1[2] & (1 << 27), 0);
        let fresh = view(SVM, 0);
        assert_eq!(guest_cpuid(1, 0, BOCHS_SKX_1, &fresh)[2] & (1 << 27), 0);
        assert_eq!(guest_cpuid(7, 0, QEMU_MAX_7, &fresh)[2] & (1 << 4), 0);
        let enabled = view(SVM, CR4_OSXSAVE | CR4_PKE);
        assert_ne!(guest_cpuid(1, 0, QEMU_MAX_1, &enabled)[2] & (1 << 27), 0);
        assert_ne!(guest_cpuid(7, 0, QEMU_MAX_7, &enabled)[2] & (1 << 4), 0);
    }
}
