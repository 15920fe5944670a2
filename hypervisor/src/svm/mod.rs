//! The pure part of the SVM backend: its constants ([`regs`]), the MSR
//! permission map's layout and exit decoding, as plain functions of the raw
//! VMCB fields, unit-tested against the AMD APM on the host. The backend
//! itself (`arch::x86_64::svm`) reads the fields and calls them.

pub mod regs;

use crate::instruction_length::Opcode;
use crate::permission_map::MsrMapLayout;
use crate::vcpu::VmExit;
use abi::regs::half::{edx_eax, low16, low32};
use regs::exit;

/// The MSRPM (APM Vol. 2 §15.11): 8 KiB, two bits per MSR (read, write) for
/// MSRs 0000_0000h–0000_1FFFh at byte 0, C000_0000h–C000_1FFFh at byte
/// 0x800 and C001_0000h–C001_1FFFh at byte 0x1000.
pub const MSRPM: MsrMapLayout = MsrMapLayout {
    ranges: &[(0, 0), (0xc000_0000, 0x800 * 8), (0xc001_0000, 0x1000 * 8)],
    stride: 2,
    write: 1,
};
/// Bytes of the MSR permission map.
pub const MSRPM_SIZE: usize = 8192;
/// Bytes of the I/O permission map (§15.10.1: one bit per port, 12 KiB).
pub const IOPM_SIZE: usize = 12288;

/// The VMCB fields an exit is decoded from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitFields {
    /// EXITCODE.
    pub code: u64,
    /// EXITINFO1.
    pub info1: u64,
    /// EXITINFO2.
    pub info2: u64,
    /// Guest RAX (from the VMCB).
    pub rax: u64,
    /// Guest RCX.
    pub rcx: u64,
    /// Guest RDX.
    pub rdx: u64,
}

/// Decodes an exit from its raw fields, with the instruction behind it
/// when its length must be decoded from the guest's bytes (on a CPU without
/// next-RIP saving). After an IOIO exit the guest continues at EXITINFO2
/// (§15.10.2).
pub fn decode_exit(f: &ExitFields) -> (VmExit, Option<Opcode>) {
    // ECX and EDX:EAX; RCX[63:32], RDX[63:32] and RAX[63:32] are ignored.
    let (value, msr, xcr) = (edx_eax(f.rdx, f.rax), low32(f.rcx), low32(f.rcx));
    let virt = |name| (VmExit::VirtualizationInstruction { name }, None);
    match f.code {
        exit::VMMCALL => (VmExit::Hypercall, Some(Opcode::Vmmcall)),
        exit::CPUID => (VmExit::Cpuid, Some(Opcode::Cpuid)),
        exit::MSR if f.info1 == 0 => (VmExit::MsrRead { msr }, Some(Opcode::Rdmsr)),
        exit::MSR => (VmExit::MsrWrite { msr, value }, Some(Opcode::Wrmsr)),
        exit::XSETBV => (VmExit::Xsetbv { xcr, value }, Some(Opcode::Xsetbv)),
        // EXITINFO1 (APM Vol. 2 §15.10.2, Figure 15-2): bit 0 TYPE
        // (1 = IN), bits 6:4 SZ32/SZ16/SZ8, bits 31:16 the port.
        exit::IOIO => {
            let size = match (f.info1 >> 4) & 0b111 {
                0b001 => 1,
                0b010 => 2,
                _ => 4,
            };
            let (port, write) = (low16(f.info1 >> 16), f.info1 & 1 == 0);
            (VmExit::Io { port, size, write }, None)
        }
        // EXITINFO1 is a #PF error code (§15.25.6): bit 1 W, bit 4 I/D.
        exit::NPF => {
            let (gpa, write, fetch) = (f.info2, f.info1 & 0b10 != 0, f.info1 & 0b1_0000 != 0);
            (VmExit::NestedPageFault { gpa, write, fetch }, None)
        }
        exit::SHUTDOWN => (VmExit::TripleFault, None),
        exit::INIT => (VmExit::Init, None),
        exit::NMI => (VmExit::Nmi, None),
        exit::INVALID => (VmExit::InvalidState { code: f.code }, None),
        exit::VMRUN => virt("vmrun"),
        exit::VMLOAD => virt("vmload"),
        exit::VMSAVE => virt("vmsave"),
        exit::STGI => virt("stgi"),
        exit::CLGI => virt("clgi"),
        exit::SKINIT => virt("skinit"),
        exit::INVD => virt("invd"),
        exit::INVLPGA => virt("invlpga"),
        code => (VmExit::Other { code }, None),
    }
}

/// A segment's VMCB attributes (APM Vol. 2 §15.5.1: the descriptor's
/// attribute bits 7:0 and 15:12 packed into 11:0) from VMX-layout access
/// rights ([`crate::vcpu::Segment::access`]).
pub fn attributes(access: u32) -> u16 {
    low16(u64::from(((access >> 4) & 0xf00) | (access & 0xff)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(code: u64, info1: u64, info2: u64) -> (VmExit, Option<Opcode>) {
        decode_exit(&ExitFields {
            code,
            info1,
            info2,
            rax: 0xdead_beef_0000_0011,
            rcx: 0x1_c000_0080,
            rdx: 0x22,
        })
    }

    #[test]
    fn exit_codes_follow_apm_appendix_c() {
        let plain = |code| decode(code, 0, 0).0;
        assert_eq!(plain(0x61), VmExit::Nmi);
        assert_eq!(plain(0x63), VmExit::Init);
        assert_eq!(plain(0x7f), VmExit::TripleFault);
        assert_eq!(plain(u64::MAX), VmExit::InvalidState { code: u64::MAX });
        for (code, name) in [
            (0x76, "invd"),
            (0x7a, "invlpga"),
            (0x80, "vmrun"),
            (0x82, "vmload"),
            (0x83, "vmsave"),
            (0x84, "stgi"),
            (0x85, "clgi"),
            (0x86, "skinit"),
        ] {
            assert_eq!(plain(code), VmExit::VirtualizationInstruction { name });
        }
        // HLT (0x78) and a #PF intercept (0x4e) are not set up: unexpected.
        assert_eq!(plain(0x78), VmExit::Other { code: 0x78 });
        assert_eq!(plain(0x4e), VmExit::Other { code: 0x4e });
    }

    #[test]
    fn instruction_exits_name_their_opcode() {
        let hypercall = (VmExit::Hypercall, Some(Opcode::Vmmcall));
        assert_eq!(decode(0x81, 0, 0), hypercall);
        assert_eq!(decode(0x72, 0, 0), (VmExit::Cpuid, Some(Opcode::Cpuid)));
        // MSR (§15.11): EXITINFO1 0 = RDMSR, 1 = WRMSR of EDX:EAX; ECX's
        // upper half is ignored.
        let msr = 0xc000_0080;
        let read = (VmExit::MsrRead { msr }, Some(Opcode::Rdmsr));
        assert_eq!(decode(0x7c, 0, 0), read);
        let value = 0x22_0000_0011;
        let write = (VmExit::MsrWrite { msr, value }, Some(Opcode::Wrmsr));
        assert_eq!(decode(0x7c, 1, 0), write);
        let xsetbv = (VmExit::Xsetbv { xcr: msr, value }, Some(Opcode::Xsetbv));
        assert_eq!(decode(0x8d, 0, 0), xsetbv);
    }

    #[test]
    fn ioio_exitinfo1_follows_apm_15_10_2() {
        // OUT DX, AL to 0x3f8: TYPE 0, SZ8 (bit 4), port in 31:16; no
        // instruction to decode (the next RIP is EXITINFO2).
        let out = VmExit::Io {
            port: 0x3f8,
            size: 1,
            write: true,
        };
        assert_eq!(decode(0x7b, 0x03f8_0010, 0x1234), (out, None));
        // IN AX, DX from 0xcf8: TYPE 1, SZ16 (bit 5).
        let io = decode(0x7b, 0x0cf8_0021, 0).0;
        assert_eq!(
            io,
            VmExit::Io {
                port: 0xcf8,
                size: 2,
                write: false
            }
        );
        // IN EAX with the string and REP bits set: SZ32 (bit 6).
        let io = decode(0x7b, 0xffff_004d, 0).0;
        assert_eq!(
            io,
            VmExit::Io {
                port: 0xffff,
                size: 4,
                write: false
            }
        );
    }

    #[test]
    fn npf_error_code_follows_apm_15_25_6() {
        let npf = |info1| decode(0x400, info1, 0x1_0000_0000).0;
        let fault = |write, fetch| VmExit::NestedPageFault {
            gpa: 0x1_0000_0000,
            write,
            fetch,
        };
        assert_eq!(npf(0b0_0100), fault(false, false)); // read, not present (U/S set)
        assert_eq!(npf(0b0_0110), fault(true, false));
        assert_eq!(npf(0b1_0100), fault(false, true));
        // Bits 32/33 (final/table walk) do not change the access.
        assert_eq!(npf(0x1_0000_0010), fault(false, true));
    }

    #[test]
    fn attributes_pack_the_descriptor_bits() {
        assert_eq!(attributes(0xc09b), 0xc9b);
        assert_eq!(attributes(0xc093), 0xc93);
        assert_eq!(attributes(0x8b), 0x8b);
        assert_eq!(attributes(0xa09b), 0xa9b); // 64-bit code: L at bit 9
    }
}
