//! The pure part of the VMX backend: its constants ([`regs`]), the MSR
//! bitmap's layout, exit decoding and the control-register qualification,
//! as plain functions of the raw VMCS fields, unit-tested against the Intel
//! SDM on the host. The backend itself (`arch::x86_64::vmx`) reads the
//! fields and calls them.

pub mod regs;

use crate::permission_map::MsrMapLayout;
use crate::vcpu::VmExit;
use abi::regs::half::{edx_eax, low16, low32, low8};
use regs::exit;

/// The MSR bitmap (SDM Vol. 3C §25.6.9): one 4 KiB page, read bitmaps for
/// MSRs 0–1FFFh at byte 0 and C000_0000h–C000_1FFFh at byte 1024, the write
/// bitmaps 2048 bytes after them.
pub const MSR_BITMAP: MsrMapLayout = MsrMapLayout {
    ranges: &[(0, 0), (0xc000_0000, 1024 * 8)],
    stride: 1,
    write: 2048 * 8,
};

/// The VMCS fields an exit is decoded from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitFields {
    /// Exit reason (basic reason in bits 15:0).
    pub reason: u64,
    /// Exit qualification.
    pub qualification: u64,
    /// Guest-physical address (EPT violations).
    pub gpa: u64,
    /// VM-exit interruption information.
    pub interruption: u64,
    /// Guest RAX.
    pub rax: u64,
    /// Guest RCX.
    pub rcx: u64,
    /// Guest RDX.
    pub rdx: u64,
}

/// Decodes an exit from its raw fields.
pub fn decode_exit(f: &ExitFields) -> VmExit {
    let (q, code) = (f.qualification, f.reason);
    if code & regs::EXIT_REASON_ENTRY_FAILURE != 0 {
        return VmExit::InvalidState { code };
    }
    let (value, msr, xcr) = (edx_eax(f.rdx, f.rax), low32(f.rcx), low32(f.rcx));
    let nmi = (f.interruption >> 8) & 0b111 == regs::INTERRUPTION_TYPE_NMI;
    let name = |name| VmExit::VirtualizationInstruction { name };
    let basic = low16(f.reason);
    match basic {
        exit::VMCALL => VmExit::Hypercall,
        exit::CPUID => VmExit::Cpuid,
        exit::RDMSR => VmExit::MsrRead { msr },
        exit::WRMSR => VmExit::MsrWrite { msr, value },
        exit::XSETBV => VmExit::Xsetbv { xcr, value },
        // Table 28-5: bits 2:0 size - 1, bit 3 direction (1 = IN), 31:16 port.
        exit::IO => {
            let (port, size, write) = (low16(q >> 16), low8(q & 0b111) + 1, q & 0b1000 == 0);
            VmExit::Io { port, size, write }
        }
        exit::CR_ACCESS => VmExit::ControlRegisterAccess,
        // Table 28-7: bit 1 a data write, bit 2 an instruction fetch.
        exit::EPT_VIOLATION => {
            let (gpa, write, fetch) = (f.gpa, q & 0b10 != 0, q & 0b100 != 0);
            VmExit::NestedPageFault { gpa, write, fetch }
        }
        exit::TRIPLE_FAULT => VmExit::TripleFault,
        exit::INIT => VmExit::Init,
        exit::EXCEPTION_NMI if nmi => VmExit::Nmi,
        exit::VMCLEAR..=exit::VMXON => name(VMX_INSTRUCTIONS[usize::from(basic - exit::VMCLEAR)]),
        exit::INVEPT => name("invept"),
        exit::INVVPID => name("invvpid"),
        exit::GETSEC => name("getsec"),
        exit::INVD => name("invd"),
        exit::INVALID_GUEST_STATE | exit::MSR_LOADING | exit::EPT_MISCONFIG => {
            VmExit::InvalidState { code }
        }
        other => VmExit::Other { code: other.into() },
    }
}

/// Exit reasons 19–27 in order (SDM Vol. 3D Table C-1).
const VMX_INSTRUCTIONS: [&str; 9] = [
    "vmclear", "vmlaunch", "vmptrld", "vmptrst", "vmread", "vmresume", "vmwrite", "vmxoff", "vmxon",
];

/// A control-register access exit's qualification (SDM Vol. 3C Table 28-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrAccess {
    /// The control register (bits 3:0).
    pub cr: u8,
    /// Whether it is a MOV to the register (access type 0, bits 5:4); CLTS,
    /// LMSW and MOV from CR are the other types.
    pub mov_to: bool,
    /// The general-purpose register (bits 11:8, 0 = RAX, 1 = RCX, 2 = RDX,
    /// 3 = RBX, 4 = RSP, 5 = RBP, 6 = RSI, 7 = RDI, 8–15 = R8–R15).
    pub gpr: u8,
}

impl CrAccess {
    /// Decodes the qualification.
    pub fn decode(q: u64) -> CrAccess {
        CrAccess {
            cr: (q & 0xf) as u8,
            mov_to: (q >> 4) & 0b11 == 0,
            gpr: ((q >> 8) & 0xf) as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(reason: u64, qualification: u64) -> VmExit {
        decode_exit(&ExitFields {
            reason,
            qualification,
            gpa: 0xfee0_0000,
            interruption: 0,
            rax: 0xdead_beef_0000_0011,
            rcx: 0x1_0000_0277,
            rdx: 0x22,
        })
    }

    #[test]
    fn basic_exit_reasons_follow_sdm_appendix_c() {
        assert_eq!(decode(18, 0), VmExit::Hypercall);
        assert_eq!(decode(10, 0), VmExit::Cpuid);
        assert_eq!(decode(2, 0), VmExit::TripleFault);
        assert_eq!(decode(3, 0), VmExit::Init);
        assert_eq!(decode(28, 0), VmExit::ControlRegisterAccess);
        assert_eq!(decode(31, 0), VmExit::MsrRead { msr: 0x277 });
        let value = 0x22_0000_0011;
        assert_eq!(decode(32, 0), VmExit::MsrWrite { msr: 0x277, value });
        assert_eq!(decode(55, 0), VmExit::Xsetbv { xcr: 0x277, value });
        let names = [
            (19, "vmclear"),
            (20, "vmlaunch"),
            (21, "vmptrld"),
            (22, "vmptrst"),
            (23, "vmread"),
            (24, "vmresume"),
            (25, "vmwrite"),
            (26, "vmxoff"),
            (27, "vmxon"),
            (50, "invept"),
            (53, "invvpid"),
            (11, "getsec"),
            (13, "invd"),
        ];
        for (reason, name) in names {
            assert_eq!(
                decode(reason, 0),
                VmExit::VirtualizationInstruction { name }
            );
        }
        // HLT (12) and RDTSC (16) are not intercepted: unexpected.
        assert_eq!(decode(12, 0), VmExit::Other { code: 12 });
        assert_eq!(decode(16, 0), VmExit::Other { code: 16 });
    }

    #[test]
    fn failed_entries_are_invalid_state() {
        for reason in [0x8000_0021, 0x8000_0022, 49] {
            assert_eq!(decode(reason, 0), VmExit::InvalidState { code: reason });
        }
        // Bit 31 wins over the basic reason.
        let failed_cpuid = 0x8000_000a;
        assert_eq!(
            decode(failed_cpuid, 0),
            VmExit::InvalidState { code: failed_cpuid }
        );
    }

    #[test]
    fn nmi_is_told_from_exceptions_by_interruption_type() {
        let exit = |interruption| {
            decode_exit(&ExitFields {
                interruption,
                ..ExitFields::default()
            })
        };
        // Table 25-18: valid (31), type 2 (NMI) in 10:8, vector 2.
        assert_eq!(exit(0x8000_0202), VmExit::Nmi);
        // A #GP (type 3, hardware exception) is not an NMI.
        assert_eq!(exit(0x8000_030d), VmExit::Other { code: 0 });
    }

    #[test]
    fn io_qualification_follows_table_28_5() {
        // OUT DX, AL to 0x3f8: size 0 (1 byte), direction 0, DX operand (bit 6).
        assert_eq!(
            decode(30, 0x03f8_0040),
            VmExit::Io {
                port: 0x3f8,
                size: 1,
                write: true
            }
        );
        // IN AX, 0x60: size 1, direction 1 (bit 3), immediate.
        assert_eq!(
            decode(30, 0x0060_0009),
            VmExit::Io {
                port: 0x60,
                size: 2,
                write: false
            }
        );
        // REP OUTSD to 0xcfc: size 3, string (4) and REP (5).
        assert_eq!(
            decode(30, 0x0cfc_0073),
            VmExit::Io {
                port: 0xcfc,
                size: 4,
                write: true
            }
        );
    }

    #[test]
    fn ept_violation_qualification_follows_table_28_7() {
        let npf = |write, fetch| VmExit::NestedPageFault {
            gpa: 0xfee0_0000,
            write,
            fetch,
        };
        assert_eq!(decode(48, 0b001), npf(false, false));
        assert_eq!(decode(48, 0b010), npf(true, false));
        assert_eq!(decode(48, 0b100), npf(false, true));
        // Bit 7 (linear address valid) and bit 8 change nothing.
        assert_eq!(decode(48, 0x182), npf(true, false));
    }

    #[test]
    fn cr_access_qualification_follows_table_28_3() {
        // MOV CR4, RCX: CR 4, type 0, GPR 1.
        assert_eq!(
            CrAccess::decode(0x104),
            CrAccess {
                cr: 4,
                mov_to: true,
                gpr: 1
            }
        );
        // MOV CR0, R15.
        assert_eq!(
            CrAccess::decode(0xf00),
            CrAccess {
                cr: 0,
                mov_to: true,
                gpr: 15
            }
        );
        // MOV RAX, CR3 (type 1), CLTS (2), LMSW (3).
        for q in [0x13, 0x20, 0x30] {
            assert!(!CrAccess::decode(q).mov_to, "{q:#x}");
        }
    }
}
