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

use core::fmt;

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

/// The VMX capability MSRs that matter to Flotilla.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawVmx {
    /// IA32_FEATURE_CONTROL.
    pub feature_control: u64,
    /// IA32_VMX_BASIC.
    pub basic: u64,
    /// IA32_VMX_PROCBASED_CTLS (or the TRUE variant).
    pub procbased: u64,
    /// IA32_VMX_PROCBASED_CTLS2 (0 when secondary controls are not allowed).
    pub procbased2: u64,
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
}

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

fn bit(value: u64, n: u32) -> bool {
    value >> n & 1 == 1
}

impl VirtSupport {
    /// Decodes the raw values.
    pub fn decode(raw: &RawVirtInfo) -> VirtSupport {
        if bit(u64::from(raw.ext1_ecx), 2) {
            if let Some((eax, ebx, edx)) = raw.svm_leaf {
                let edx = u64::from(edx);
                return VirtSupport::Svm(SvmSupport {
                    revision: eax as u8,
                    asids: ebx,
                    npt: bit(edx, 0),
                    nrip_save: bit(edx, 3),
                    vmcb_clean: bit(edx, 5),
                    flush_by_asid: bit(edx, 6),
                    decode_assists: bit(edx, 7),
                    avic: bit(edx, 13),
                    vgif: bit(edx, 16),
                    disabled_by_firmware: raw.vm_cr.is_some_and(|v| bit(v, 4)),
                });
            }
        }
        if bit(u64::from(raw.leaf1_ecx), 5) {
            if let Some(vmx) = raw.vmx {
                let secondary = bit(vmx.procbased, 63);
                let allowed2 = if secondary { vmx.procbased2 >> 32 } else { 0 };
                let fc = vmx.feature_control;
                return VirtSupport::Vmx(VmxSupport {
                    revision: (vmx.basic & 0x7fff_ffff) as u32,
                    true_controls: bit(vmx.basic, 55),
                    ept: bit(allowed2, 1),
                    vpid: bit(allowed2, 5),
                    unrestricted_guest: bit(allowed2, 7),
                    disabled_by_firmware: bit(fc, 0) && !bit(fc, 2),
                });
            }
        }
        VirtSupport::None
    }

    /// Whether Flotilla can partition this core (SVM with NPT, or VMX with
    /// EPT and unrestricted guest), and if not, why.
    pub fn usable(&self) -> Result<(), &'static str> {
        match self {
            VirtSupport::Svm(s) if s.disabled_by_firmware => {
                Err("SVM is disabled by firmware (VM_CR.SVMDIS)")
            }
            VirtSupport::Svm(s) if !s.npt => Err("SVM without nested paging"),
            VirtSupport::Svm(_) => Ok(()),
            VirtSupport::Vmx(v) if v.disabled_by_firmware => {
                Err("VMX is disabled by firmware (IA32_FEATURE_CONTROL)")
            }
            VirtSupport::Vmx(v) if !v.ept => Err("VMX without EPT"),
            VirtSupport::Vmx(v) if !v.unrestricted_guest => Err("VMX without unrestricted guest"),
            VirtSupport::Vmx(_) => Ok(()),
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

    #[test]
    fn decodes_qemu_tcg_svm() {
        // QEMU -cpu max under TCG: NPT and vGIF, 16 ASIDs, no nRIP save.
        let raw = RawVirtInfo {
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
        assert_eq!(
            v.to_string(),
            "svm rev 1 npt=yes nrip-save=no vmcb-clean=no flush-by-asid=no decode-assists=no vgif=yes avic=no asids=16"
        );
    }

    #[test]
    fn decodes_vmx_with_secondary_controls() {
        let raw = RawVirtInfo {
            leaf1_ecx: 1 << 5,
            vmx: Some(RawVmx {
                feature_control: 0b101,
                basic: (1 << 55) | 0x2b,
                procbased: 1 << 63,
                procbased2: ((1 << 1) | (1 << 5) | (1 << 7)) << 32,
            }),
            ..RawVirtInfo::default()
        };
        let v = VirtSupport::decode(&raw);
        assert_eq!(
            v,
            VirtSupport::Vmx(VmxSupport {
                revision: 0x2b,
                true_controls: true,
                ept: true,
                vpid: true,
                unrestricted_guest: true,
                disabled_by_firmware: false,
            })
        );
        assert_eq!(v.usable(), Ok(()));
    }

    #[test]
    fn secondary_bits_ignored_without_the_secondary_control() {
        let raw = RawVirtInfo {
            leaf1_ecx: 1 << 5,
            vmx: Some(RawVmx {
                feature_control: 0b001,
                basic: 0x2b,
                procbased: 0,
                procbased2: u64::MAX,
            }),
            ..RawVirtInfo::default()
        };
        let v = VirtSupport::decode(&raw);
        let VirtSupport::Vmx(x) = v else {
            panic!("expected VMX")
        };
        assert!(!x.ept && !x.unrestricted_guest && x.disabled_by_firmware);
        assert!(v.usable().is_err());
    }

    #[test]
    fn nothing_reported_is_none() {
        let v = VirtSupport::decode(&RawVirtInfo::default());
        assert_eq!(v, VirtSupport::None);
        assert!(v.usable().is_err());
    }
}
