//! Which MSRs a partition touches directly — the same for both backends,
//! each of which encodes it in its own permission bitmap. Everything not
//! listed is intercepted, and the exit handler decides (EFER writes are
//! emulated; everything else is a contained fault).

use x86::msr::*;

/// MSRs a partition reads and writes without an exit: its own x2APIC's
/// task priority, EOI, spurious vector, error status, timer initial count
/// and divide configuration, and self-IPI registers (none can deliver
/// anything but a fixed interrupt to its own core; the timer's initial
/// count keeps the tick free of exits; while the timer LVT is periodic the
/// backend intercepts writes to the count and divide registers again, see
/// [`crate::timer_policy`]); the SYSENTER MSRs (switched with
/// the guest state); the SYSCALL MSRs and the FS/GS/KernelGS bases. PAT is
/// emulated on both backends (the guest's PAT lives in the VMCB/VMCS): SVM
/// does not switch the PAT MSR by itself, so a passed-through write would
/// reach the host's.
#[rustfmt::skip]
pub const PASSTHROUGH: &[u32] = &[
    IA32_X2APIC_TPR, IA32_X2APIC_EOI, IA32_X2APIC_SIVR, IA32_X2APIC_ESR,
    IA32_X2APIC_INIT_COUNT, IA32_X2APIC_DIV_CONF, IA32_X2APIC_SELF_IPI,
    IA32_SYSENTER_CS, IA32_SYSENTER_ESP, IA32_SYSENTER_EIP,
    IA32_STAR, IA32_LSTAR, IA32_CSTAR, IA32_FMASK, // SFMASK
    IA32_FS_BASE, IA32_GS_BASE, IA32_KERNEL_GSBASE,
];

/// MSRs a partition may read without an exit but not write: the APIC base
/// (a write is the `apic-base` fault), the x2APIC ID, version, logical
/// destination, interrupt command (writes are validated IPIs), current
/// count, and the local vector table entries of [`VALIDATED_LVT`]. EFER is
/// neither: reads and writes are emulated, so the guest never sees SVME and
/// may set only SCE, LME and NXE.
#[rustfmt::skip]
pub const READ_ONLY: &[u32] = &[
    IA32_APIC_BASE, IA32_X2APIC_APICID, IA32_X2APIC_VERSION, IA32_X2APIC_LDR, IA32_X2APIC_ICR,
    IA32_X2APIC_CUR_COUNT, IA32_X2APIC_LVT_TIMER, IA32_X2APIC_LVT_THERMAL, IA32_X2APIC_LVT_PMI,
    IA32_X2APIC_LVT_LINT0, IA32_X2APIC_LVT_LINT1, IA32_X2APIC_LVT_ERROR,
];

/// The local vector table entries a partition may program: timer,
/// thermal, performance counter, LINT0, LINT1 and error. Readable without
/// an exit; each write exits and is written by the hypervisor only if
/// [`crate::lvt_policy::check_lvt`] accepts it (no reserved bit, masked or
/// fixed delivery: never an SMI, NMI, INIT or ExtINT on the core beneath
/// the guest). The CMCI entry (0x82F) is not among them: machine-check
/// architecture is not offered (CPUID hides it), so it is `msr-denied`.
/// The timer is programmed once at setup; its initial count (0x838) and
/// divide configuration (0x83E) are passed through while it is one-shot
/// and checked against the minimum period while it is periodic
/// ([`crate::timer_policy`]): ticking costs no exit either way.
pub const VALIDATED_LVT: core::ops::RangeInclusive<u32> =
    IA32_X2APIC_LVT_TIMER..=IA32_X2APIC_LVT_ERROR;

/// IA32_PAT: reads and writes are emulated (the guest's copy is G_PAT on
/// SVM, the guest-state PAT field on VMX).
pub use x86::msr::IA32_PAT as MSR_PAT;

/// Whether `value` is a valid PAT: every entry one of the memory types UC
/// (0), WC (1), WT (4), WP (5), WB (6), UC- (7) (Intel SDM Vol. 3 §13.12.2).
pub fn pat_valid(value: u64) -> bool {
    value
        .to_le_bytes()
        .iter()
        .all(|t| matches!(t, 0 | 1 | 4 | 5 | 6 | 7))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_handler::{MSR_APIC_BASE, MSR_EFER, MSR_X2APIC_ICR};

    #[test]
    fn validated_msrs_are_never_passed_through_for_writes() {
        for msr in [MSR_APIC_BASE, MSR_X2APIC_ICR] {
            assert!(!PASSTHROUGH.contains(&msr), "{msr:#x} must exit on write");
            assert!(READ_ONLY.contains(&msr), "{msr:#x} is readable");
        }
        assert!(
            !PASSTHROUGH.contains(&MSR_EFER) && !READ_ONLY.contains(&MSR_EFER),
            "EFER is emulated"
        );
        for msr in VALIDATED_LVT {
            assert!(
                !PASSTHROUGH.contains(&msr) && READ_ONLY.contains(&msr),
                "{msr:#x}"
            );
        }
        for lvt in crate::lvt_policy::Lvt::ALL {
            assert_eq!(
                VALIDATED_LVT.contains(&lvt.msr()),
                lvt != crate::lvt_policy::Lvt::Cmci,
                "{lvt:?}"
            );
        }
        assert!(PASSTHROUGH.contains(&0x838), "the timer's initial count");
        assert!(READ_ONLY.contains(&0x1b) && PASSTHROUGH.contains(&0xc000_0102));
        assert!(
            !PASSTHROUGH.contains(&MSR_PAT) && !READ_ONLY.contains(&MSR_PAT),
            "PAT is emulated"
        );
        assert!(pat_valid(0x0007_0406_0007_0406), "the power-on PAT");
        assert!(!pat_valid(0x0007_0406_0007_0402), "type 2 is reserved");
        assert!(!pat_valid(0x0800_0000_0000_0006), "type 8 is reserved");
        // No MSR is in both lists.
        assert!(PASSTHROUGH.iter().all(|m| !READ_ONLY.contains(m)));
    }
}
