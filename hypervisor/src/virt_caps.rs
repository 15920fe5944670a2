//! Decoding of the virtualization support a core reports (CPUID and the
//! VMX capability MSRs) into [`VirtSupport`], and its one-line summary.
//!
//! Bit positions: AMD APM Vol. 3, CPUID Fn8000_0001 ECX bit 2 (SVM) and
//! Fn8000_000A (SVM revision, ASIDs, features in EDX); AMD APM Vol. 2
//! §15.30.1 VM_CR (SVMDIS, bit 4). Intel SDM Vol. 3 Appendix A:
//! IA32_VMX_BASIC (0x480; bit 55 = TRUE controls), IA32_VMX_PROCBASED_CTLS
//! (0x482; allowed-1 bit 31 = secondary controls), IA32_VMX_PROCBASED_CTLS2
//! (0x48B; allowed-1 bits 1 EPT, 5 VPID, 7 unrestricted guest),
//! IA32_FEATURE_CONTROL (0x3A; bit 0 lock, bit 2 VMX outside SMX).
//!
//! This is the one place that decides whether a core can host partitions:
//! [`VirtSupport::usable`] (the boot-time line of every core, and the run's
//! choice of backend) and the VMX controls the backend programs
//! ([`VirtSupport::vmx_controls`], from [`VMX_REQUIRED`] and
//! [`VMX_OPTIONAL`]) come from the same requirement lists, so a core the
//! line calls usable is one the backend can set up.

use crate::vmx::regs::{
    FEATURE_CONTROL_LOCK as FC_LOCK, FEATURE_CONTROL_VMX_OUTSIDE_SMX as FC_VMXON, REVISION_MASK,
};
use abi::regs::cpuid::{ext1, leaf1_ecx};
use abi::regs::{half, VMX_BASIC_TRUE_CONTROLS as TRUE_CONTROLS};
use core::fmt;
use x86::vmx::vmcs::control::SecondaryControls as Proc2Ctl;
use x86::vmx::vmcs::control::{EntryControls as EntryCtl, ExitControls as ExitCtl};
use x86::vmx::vmcs::control::{PinbasedControls as PinCtl, PrimaryControls as ProcCtl};

/// Raw values read from one core; `None` where the feature is absent (and
/// the MSR therefore must not be read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawVirtInfo {
    /// CPUID vendor string.
    pub vendor: [u8; 12],
    /// CPUID.1:ECX.
    pub leaf1_ecx: u32,
    /// CPUID.8000_0001h:ECX (0 if the leaf is absent).
    pub ext1_ecx: u32,
    /// CPUID.8000_000Ah EAX, EBX, EDX, when SVM is reported.
    pub svm_leaf: Option<(u32, u32, u32)>,
    /// VM_CR MSR, when SVM is reported.
    pub vm_cr: Option<u64>,
    /// VMX MSRs, when VMX is reported.
    pub vmx: Option<RawVmx>,
}

/// The VMX capability MSRs that matter to Flotilla. Each control MSR holds
/// the allowed-0 settings in its low half (bits that must be 1) and the
/// allowed-1 settings in its high half (bits that may be 1), SDM Vol. 3D
/// Appendix A.3–A.5; the TRUE variants are read when IA32_VMX_BASIC bit 55
/// says they exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawVmx {
    /// IA32_FEATURE_CONTROL.
    pub feature_control: u64,
    /// IA32_VMX_BASIC.
    pub basic: u64,
    /// IA32_VMX_PINBASED_CTLS (or the TRUE variant).
    pub pinbased: u64,
    /// IA32_VMX_PROCBASED_CTLS (or the TRUE variant).
    pub procbased: u64,
    /// IA32_VMX_PROCBASED_CTLS2 (0 when secondary controls are not allowed).
    pub procbased2: u64,
    /// IA32_VMX_EXIT_CTLS (or the TRUE variant).
    pub exit: u64,
    /// IA32_VMX_ENTRY_CTLS (or the TRUE variant).
    pub entry: u64,
    /// IA32_VMX_EPT_VPID_CAP (0 when neither EPT nor VPID may be enabled).
    pub ept_vpid_cap: u64,
}

/// A VMX control field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlField {
    /// Pin-based VM-execution controls.
    Pin,
    /// Primary processor-based VM-execution controls.
    Proc,
    /// Secondary processor-based VM-execution controls.
    Proc2,
    /// VM-exit controls.
    Exit,
    /// VM-entry controls.
    Entry,
}

/// A control bit the VMX backend sets, and why a core fails without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmxControl {
    /// Which control field.
    pub field: ControlField,
    /// The bit (a mask with one bit set).
    pub bit: u32,
    /// What a core lacking it is missing, for the boot line.
    pub missing: &'static str,
}

const fn ctl(field: ControlField, bit: u32, missing: &'static str) -> VmxControl {
    VmxControl {
        field,
        bit,
        missing,
    }
}

/// Controls the VMX backend cannot run without (SDM Vol. 3C §25.6–25.8).
#[rustfmt::skip]
pub const VMX_REQUIRED: &[VmxControl] = &[
    ctl(ControlField::Pin, PinCtl::NMI_EXITING.bits(), "VMX without NMI exiting"),
    ctl(ControlField::Proc, ProcCtl::USE_IO_BITMAPS.bits(), "VMX without I/O bitmaps"),
    ctl(ControlField::Proc, ProcCtl::USE_MSR_BITMAPS.bits(), "VMX without MSR bitmaps"),
    ctl(ControlField::Proc, ProcCtl::SECONDARY_CONTROLS.bits(), "VMX without secondary controls"),
    ctl(ControlField::Proc2, Proc2Ctl::ENABLE_EPT.bits(), "VMX without EPT"),
    ctl(ControlField::Proc2, Proc2Ctl::ENABLE_VPID.bits(), "VMX without VPID"),
    ctl(ControlField::Proc2, Proc2Ctl::UNRESTRICTED_GUEST.bits(), "VMX without unrestricted guest"),
    ctl(ControlField::Exit, ExitCtl::SAVE_DEBUG_CONTROLS.bits(),
        "VMX without saving debug controls on exit"),
    ctl(ControlField::Exit, ExitCtl::HOST_ADDRESS_SPACE_SIZE.bits(), "VMX without a 64-bit host"),
    ctl(ControlField::Exit, ExitCtl::SAVE_IA32_PAT.bits(), "VMX without saving PAT on exit"),
    ctl(ControlField::Exit, ExitCtl::LOAD_IA32_PAT.bits(), "VMX without loading PAT on exit"),
    ctl(ControlField::Exit, ExitCtl::SAVE_IA32_EFER.bits(), "VMX without saving EFER on exit"),
    ctl(ControlField::Exit, ExitCtl::LOAD_IA32_EFER.bits(), "VMX without loading EFER on exit"),
    ctl(ControlField::Entry, EntryCtl::LOAD_DEBUG_CONTROLS.bits(),
        "VMX without loading debug controls on entry"),
    ctl(ControlField::Entry, EntryCtl::LOAD_IA32_PAT.bits(), "VMX without loading PAT on entry"),
    ctl(ControlField::Entry, EntryCtl::LOAD_IA32_EFER.bits(), "VMX without loading EFER on entry"),
];

/// Controls set when the core allows them: RDTSCP (and RDPID) and INVPCID
/// run in the guest with their enable controls, and raise #UD there
/// otherwise, when CPUID hides them (Intel SDM Vol. 3C §25.6.2).
pub const VMX_OPTIONAL: &[VmxControl] = &[
    ctl(
        ControlField::Proc2,
        Proc2Ctl::ENABLE_RDTSCP.bits(),
        "RDTSCP",
    ),
    ctl(
        ControlField::Proc2,
        Proc2Ctl::ENABLE_INVPCID.bits(),
        "INVPCID",
    ),
];

/// IA32_VMX_EPT_VPID_CAP bits the EPT builder's tables need (SDM Vol. 3D
/// Appendix A.10): 4-level walks (bit 6), write-back paging structures
/// (bit 14), 2 MiB pages (bit 16). INVEPT and INVVPID are not needed: each
/// core runs one partition with one EPT root for the whole boot, and each
/// incarnation of it gets a VPID never used before on that core, so no
/// stale translation of another context can serve it.
pub const EPT_REQUIRED: &[(u32, &str)] = &[
    (6, "VMX without 4-level EPT walks"),
    (14, "VMX without write-back EPT structures"),
    (16, "VMX without 2 MiB EPT pages"),
];

/// The VMX control values a core gets, computed from its capability MSRs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmxControls {
    /// Pin-based VM-execution controls.
    pub pin: u32,
    /// Primary processor-based VM-execution controls.
    pub proc: u32,
    /// Secondary processor-based VM-execution controls.
    pub proc2: u32,
    /// VM-exit controls.
    pub exit: u32,
    /// VM-entry controls.
    pub entry: u32,
}

impl VmxControls {
    fn field_mut(&mut self, field: ControlField) -> &mut u32 {
        match field {
            ControlField::Pin => &mut self.pin,
            ControlField::Proc => &mut self.proc,
            ControlField::Proc2 => &mut self.proc2,
            ControlField::Exit => &mut self.exit,
            ControlField::Entry => &mut self.entry,
        }
    }

    /// Computes the controls for a core: every required bit, the optional
    /// ones it allows, and the bits it forces to 1 (allowed-0 settings);
    /// `Err` names the first requirement it cannot meet.
    pub fn compute(raw: &RawVmx) -> Result<VmxControls, &'static str> {
        let secondary = raw.procbased >> 63 & 1 == 1;
        let cap = |field| match field {
            ControlField::Pin => raw.pinbased,
            ControlField::Proc => raw.procbased,
            ControlField::Proc2 if secondary => raw.procbased2,
            ControlField::Proc2 => 0,
            ControlField::Exit => raw.exit,
            ControlField::Entry => raw.entry,
        };
        let may = |field, bit: u32| half::split_u64(cap(field)).0 & bit != 0;
        let mut c = VmxControls::default();
        for r in VMX_REQUIRED {
            if !may(r.field, r.bit) {
                return Err(r.missing);
            }
            *c.field_mut(r.field) |= r.bit;
        }
        for o in VMX_OPTIONAL {
            if may(o.field, o.bit) {
                *c.field_mut(o.field) |= o.bit;
            }
        }
        for &(bit, missing) in EPT_REQUIRED {
            if raw.ept_vpid_cap >> bit & 1 == 0 {
                return Err(missing);
            }
        }
        for field in [
            ControlField::Pin,
            ControlField::Proc,
            ControlField::Proc2,
            ControlField::Exit,
            ControlField::Entry,
        ] {
            let (allowed, must) = half::split_u64(cap(field));
            let value = c.field_mut(field);
            *value |= must;
            // A bit the core forces to 1 but does not allow to be 1 is a
            // contradiction in its MSRs (never on a real CPU); refuse it.
            if *value & !allowed != 0 {
                return Err("VMX capability MSRs force a control they do not allow");
            }
        }
        Ok(c)
    }
}

/// AMD SVM features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SvmSupport {
    /// SVM revision.
    pub revision: u8,
    /// Number of ASIDs.
    pub asids: u32,
    /// Nested paging.
    pub npt: bool,
    /// Next-RIP save on #VMEXIT.
    pub nrip_save: bool,
    /// VMCB clean bits.
    pub vmcb_clean: bool,
    /// TLB flush by ASID.
    pub flush_by_asid: bool,
    /// Decode assists.
    pub decode_assists: bool,
    /// Virtual GIF.
    pub vgif: bool,
    /// AVIC.
    pub avic: bool,
    /// Firmware disabled SVM (VM_CR.SVMDIS).
    pub disabled_by_firmware: bool,
    /// What the core lacks to host partitions besides the above (the
    /// first unmet requirement), if anything.
    pub missing: Option<&'static str>,
}

/// CPUID Fn8000_000A EDX bits the SVM backend cannot run without (AMD APM
/// Vol. 3, CPUID Fn8000_000A): nested paging. Next-RIP save is used when
/// present (otherwise the instruction length is decoded from guest memory).
pub const SVM_REQUIRED: &[(u32, &str)] = &[(0, "SVM without nested paging")];

/// Intel VMX features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmxSupport {
    /// VMCS revision identifier.
    pub revision: u32,
    /// The TRUE capability MSRs exist.
    pub true_controls: bool,
    /// Extended page tables.
    pub ept: bool,
    /// Virtual-processor identifiers.
    pub vpid: bool,
    /// Unrestricted guest.
    pub unrestricted_guest: bool,
    /// IA32_FEATURE_CONTROL is locked with VMX outside SMX disabled.
    pub disabled_by_firmware: bool,
    /// The controls the backend programs, or the first missing
    /// requirement.
    pub controls: Result<VmxControls, &'static str>,
}

/// What a core offers for hardware virtualization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtSupport {
    /// AMD SVM.
    Svm(SvmSupport),
    /// Intel VMX.
    Vmx(VmxSupport),
    /// Neither.
    None,
}

/// What a core lacks to host partitions whatever the vendor.
fn common_requirements(raw: &RawVirtInfo) -> Result<(), &'static str> {
    // Partitions get their local APIC in x2APIC mode.
    if raw.leaf1_ecx & leaf1_ecx::X2APIC == 0 {
        return Err("no x2APIC");
    }
    Ok(())
}

fn bit(value: u64, n: u32) -> bool {
    value >> n & 1 == 1
}

impl VirtSupport {
    /// Decodes the raw values.
    pub fn decode(raw: &RawVirtInfo) -> VirtSupport {
        if raw.ext1_ecx & ext1::ECX_SVM != 0 {
            if let Some((eax, ebx, edx)) = raw.svm_leaf {
                let edx = u64::from(edx);
                return VirtSupport::Svm(SvmSupport {
                    revision: half::low8(u64::from(eax)),
                    asids: ebx,
                    npt: bit(edx, 0),
                    nrip_save: bit(edx, 3),
                    vmcb_clean: bit(edx, 5),
                    flush_by_asid: bit(edx, 6),
                    decode_assists: bit(edx, 7),
                    avic: bit(edx, 13),
                    vgif: bit(edx, 16),
                    disabled_by_firmware: raw.vm_cr.is_some_and(|v| bit(v, 4)),
                    missing: SVM_REQUIRED
                        .iter()
                        .find(|&&(b, _)| !bit(edx, b))
                        .map(|&(_, why)| why)
                        .or(common_requirements(raw).err()),
                });
            }
        }
        if raw.leaf1_ecx & leaf1_ecx::VMX != 0 {
            if let Some(vmx) = raw.vmx {
                // The allowed-1 halves of the capability MSRs (SDM Vol. 3D A.3).
                let may = |cap: u64, ctl: u32| half::split_u64(cap).0 & ctl != 0;
                let secondary = may(vmx.procbased, ProcCtl::SECONDARY_CONTROLS.bits());
                let may2 = |ctl: Proc2Ctl| secondary && may(vmx.procbased2, ctl.bits());
                let fc = vmx.feature_control;
                return VirtSupport::Vmx(VmxSupport {
                    revision: half::low32(vmx.basic & REVISION_MASK),
                    true_controls: vmx.basic & TRUE_CONTROLS != 0,
                    ept: may2(Proc2Ctl::ENABLE_EPT),
                    vpid: may2(Proc2Ctl::ENABLE_VPID),
                    unrestricted_guest: may2(Proc2Ctl::UNRESTRICTED_GUEST),
                    disabled_by_firmware: fc & FC_LOCK != 0 && fc & FC_VMXON == 0,
                    controls: common_requirements(raw).and(VmxControls::compute(&vmx)),
                });
            }
        }
        VirtSupport::None
    }

    /// The VMX controls to program on this core, if it is a usable VMX
    /// core.
    pub fn vmx_controls(&self) -> Result<VmxControls, &'static str> {
        self.usable()?;
        match self {
            VirtSupport::Vmx(v) => v.controls,
            _ => Err("not a VMX core"),
        }
    }

    /// Whether Flotilla can partition this core — SVM with [`SVM_REQUIRED`],
    /// or VMX with every control of [`VMX_REQUIRED`] and [`EPT_REQUIRED`],
    /// and an x2APIC either way — and if not, why.
    pub fn usable(&self) -> Result<(), &'static str> {
        match self {
            VirtSupport::Svm(s) if s.disabled_by_firmware => {
                Err("SVM is disabled by firmware (VM_CR.SVMDIS)")
            }
            VirtSupport::Svm(s) => s.missing.map_or(Ok(()), Err),
            VirtSupport::Vmx(v) if v.disabled_by_firmware => {
                Err("VMX is disabled by firmware (IA32_FEATURE_CONTROL)")
            }
            VirtSupport::Vmx(v) => v.controls.map(|_| ()),
            VirtSupport::None => Err("no hardware virtualization (neither SVM nor VMX)"),
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl fmt::Display for VirtSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VirtSupport::Svm(s) => write!(
                f,
                "svm rev {} npt={} nrip-save={} vmcb-clean={} flush-by-asid={} decode-assists={} vgif={} avic={} asids={}{}",
                s.revision,
                yes_no(s.npt),
                yes_no(s.nrip_save),
                yes_no(s.vmcb_clean),
                yes_no(s.flush_by_asid),
                yes_no(s.decode_assists),
                yes_no(s.vgif),
                yes_no(s.avic),
                s.asids,
                if s.disabled_by_firmware { " (disabled by firmware)" } else { "" },
            ),
            VirtSupport::Vmx(v) => write!(
                f,
                "vmx rev {:#x} ept={} unrestricted-guest={} vpid={} true-controls={}{}",
                v.revision,
                yes_no(v.ept),
                yes_no(v.unrestricted_guest),
                yes_no(v.vpid),
                yes_no(v.true_controls),
                if v.disabled_by_firmware { " (disabled by firmware)" } else { "" },
            ),
            VirtSupport::None => write!(f, "no-virtualization"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    const X2APIC: u32 = leaf1_ecx::X2APIC;

    /// A Skylake-like core with TRUE controls (shaped like Bochs'
    /// `corei7_skylake_x`): the low halves force the SDM's default-1 bits
    /// (Appendix A.2), the high halves allow what the model implements.
    fn skylake() -> RawVmx {
        let both = |must: u64, may: u64| (may << 32) | must;
        RawVmx {
            feature_control: 0b101,
            basic: (1 << 55) | 0x2b,
            pinbased: both(0x16, 0x16 | (1 << 3) | (1 << 5) | (1 << 6)),
            procbased: both(0x0401_e172, 0xfff9_fffe),
            procbased2: both(0, (1 << 1) | (1 << 3) | (1 << 5) | (1 << 7) | (1 << 12)),
            exit: both(0x0003_6dfb, 0x003f_ffff),
            entry: both(0x0000_11fb, 0x0000_f3ff),
            ept_vpid_cap: (1 << 6) | (1 << 14) | (1 << 16) | (1 << 17) | (1 << 20),
        }
    }

    fn vmx_info(vmx: RawVmx) -> RawVirtInfo {
        RawVirtInfo {
            leaf1_ecx: (1 << 5) | X2APIC,
            vmx: Some(vmx),
            ..RawVirtInfo::default()
        }
    }

    #[test]
    fn decodes_qemu_tcg_svm() {
        // QEMU -cpu max under TCG: NPT and vGIF, 16 ASIDs, no nRIP save.
        let raw = RawVirtInfo {
            leaf1_ecx: X2APIC,
            ext1_ecx: 1 << 2,
            svm_leaf: Some((1, 16, (1 << 0) | (1 << 16))),
            vm_cr: Some(0),
            ..RawVirtInfo::default()
        };
        let v = VirtSupport::decode(&raw);
        let VirtSupport::Svm(s) = v else {
            panic!("expected SVM, got {v:?}")
        };
        assert!(s.npt && s.vgif && !s.nrip_save && !s.decode_assists);
        assert_eq!(s.asids, 16);
        assert_eq!(v.usable(), Ok(()));
        assert_eq!(v.vmx_controls(), Err("not a VMX core"));
        assert_eq!(
            v.to_string(),
            "svm rev 1 npt=yes nrip-save=no vmcb-clean=no flush-by-asid=no decode-assists=no vgif=yes avic=no asids=16"
        );
    }

    #[test]
    fn svm_needs_nested_paging_and_an_x2apic() {
        let mut raw = RawVirtInfo {
            ext1_ecx: 1 << 2,
            svm_leaf: Some((1, 16, 1 << 3)),
            vm_cr: Some(0),
            ..RawVirtInfo::default()
        };
        raw.leaf1_ecx = X2APIC;
        assert_eq!(
            VirtSupport::decode(&raw).usable(),
            Err("SVM without nested paging")
        );
        // Bochs `ryzen`: NPT and nRIP save, but no x2APIC.
        raw.svm_leaf = Some((1, 16, 0b1001));
        raw.leaf1_ecx = 0;
        assert_eq!(VirtSupport::decode(&raw).usable(), Err("no x2APIC"));
        raw.vm_cr = Some(1 << 4);
        assert_eq!(
            VirtSupport::decode(&raw).usable(),
            Err("SVM is disabled by firmware (VM_CR.SVMDIS)")
        );
    }

    #[test]
    fn skylake_controls_carry_every_requirement_and_the_forced_bits() {
        let v = VirtSupport::decode(&vmx_info(skylake()));
        let VirtSupport::Vmx(x) = v else {
            panic!("expected VMX")
        };
        assert!(x.ept && x.vpid && x.unrestricted_guest && x.true_controls);
        assert_eq!(v.usable(), Ok(()));
        let c = v.vmx_controls().unwrap();
        assert_eq!(c.pin, 0x16 | (1 << 3));
        assert_eq!(
            c.proc,
            0x0401_e172 | (1 << 25) | (1 << 28) | (1 << 31),
            "forced bits kept"
        );
        assert_eq!(
            c.proc2,
            (1 << 1) | (1 << 3) | (1 << 5) | (1 << 7) | (1 << 12),
            "RDTSCP and INVPCID allowed: set"
        );
        assert_eq!(c.exit & 0b100, 0b100, "save debug controls");
        assert_eq!(c.entry & 0b100, 0b100, "load debug controls");
        for r in VMX_REQUIRED {
            let value = match r.field {
                ControlField::Pin => c.pin,
                ControlField::Proc => c.proc,
                ControlField::Proc2 => c.proc2,
                ControlField::Exit => c.exit,
                ControlField::Entry => c.entry,
            };
            assert_ne!(value & r.bit, 0, "{}", r.missing);
        }
        assert_eq!(
            v.to_string(),
            "vmx rev 0x2b ept=yes unrestricted-guest=yes vpid=yes true-controls=yes"
        );
    }

    #[test]
    fn each_missing_requirement_is_named_by_the_one_decision() {
        for r in VMX_REQUIRED {
            let mut raw = skylake();
            let clear = u64::from(r.bit) << 32;
            match r.field {
                ControlField::Pin => raw.pinbased &= !clear,
                ControlField::Proc => raw.procbased &= !clear,
                ControlField::Proc2 => raw.procbased2 &= !clear,
                ControlField::Exit => raw.exit &= !clear,
                ControlField::Entry => raw.entry &= !clear,
            }
            let v = VirtSupport::decode(&vmx_info(raw));
            assert_eq!(v.usable(), Err(r.missing));
            assert_eq!(v.vmx_controls(), Err(r.missing));
        }
        for &(bit, missing) in EPT_REQUIRED {
            let mut raw = skylake();
            raw.ept_vpid_cap &= !(1 << bit);
            assert_eq!(VirtSupport::decode(&vmx_info(raw)).usable(), Err(missing));
        }
        let mut raw = skylake();
        raw.procbased2 &= !(1u64 << (32 + 3));
        let c = VirtSupport::decode(&vmx_info(raw)).vmx_controls().unwrap();
        assert_eq!(c.proc2 & (1 << 3), 0, "RDTSCP is optional");
        let mut no_x2apic = vmx_info(skylake());
        no_x2apic.leaf1_ecx &= !X2APIC;
        assert_eq!(VirtSupport::decode(&no_x2apic).usable(), Err("no x2APIC"));
    }

    #[test]
    fn secondary_bits_ignored_without_the_secondary_control() {
        let raw = vmx_info(RawVmx {
            feature_control: 0b001,
            basic: 0x2b,
            procbased2: u64::MAX,
            ..RawVmx::default()
        });
        let v = VirtSupport::decode(&raw);
        let VirtSupport::Vmx(x) = v else {
            panic!("expected VMX")
        };
        assert!(!x.ept && !x.unrestricted_guest && x.disabled_by_firmware);
        assert!(v.usable().is_err());
        let mut raw = skylake();
        raw.procbased &= !(1 << 63);
        assert_eq!(
            VirtSupport::decode(&vmx_info(raw)).usable(),
            Err("VMX without secondary controls")
        );
    }

    #[test]
    fn nothing_reported_is_none() {
        let v = VirtSupport::decode(&RawVirtInfo::default());
        assert_eq!(v, VirtSupport::None);
        assert!(v.usable().is_err());
    }
}
