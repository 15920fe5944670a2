//! Which XSETBV a partition may have the hypervisor execute: the complete
//! validity rule for XCR0, from the Intel SDM Vol. 1 §13.3 ("Enabling the
//! XSAVE feature set and XSAVE-enabled features") and the XSETBV reference
//! (Intel SDM Vol. 2C; AMD APM Vol. 4 "XSETBV", Vol. 2 §11.5.2). A value
//! this rule accepts is one the CPU accepts; the hypervisor still executes
//! it through the exception fixup (`arch::x86_64::common::fixup`), so a CPU
//! that disagrees stops only the partition.
//!
//! The rule is a pure function of the value and of the host's XSAVE
//! capabilities ([`XsaveCaps`], read once from CPUID leaf 0Dh).

use abi::regs::half::join_u32;
use core::fmt;
use x86::controlregs::Xcr0;

const X87: u64 = Xcr0::XCR0_FPU_MMX_STATE.bits();
const SSE: u64 = Xcr0::XCR0_SSE_STATE.bits();
const AVX: u64 = Xcr0::XCR0_AVX_STATE.bits();
const MPX: u64 = Xcr0::XCR0_BNDREG_STATE.bits() | Xcr0::XCR0_BNDCSR_STATE.bits();
const AVX512: u64 = Xcr0::XCR0_OPMASK_STATE.bits()
    | Xcr0::XCR0_ZMM_HI256_STATE.bits()
    | Xcr0::XCR0_HI16_ZMM_STATE.bits();
pub use abi::regs::XCR0_AMX;

/// Supervisor state components, managed only through IA32_XSS and never
/// valid in XCR0 (Intel SDM Vol. 1 §13.1, Table 13-1): PT (8), PASID (10),
/// CET_U (11), CET_S (12), HDC (13), UINTR (14), LBR (15), HWP (16).
pub const SUPERVISOR_COMPONENTS: u64 =
    (1 << 8) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 15) | (1 << 16);

/// What the host's XSAVE feature set supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XsaveCaps {
    /// The user state components XCR0 may contain: CPUID.(EAX=0Dh,ECX=0)
    /// EDX:EAX, minus every supervisor component (those CPUID.(0Dh,1)
    /// ECX:EDX lists, and the architectural ones). Zero without XSAVE.
    pub user_mask: u64,
}

impl XsaveCaps {
    /// From the host's CPUID: leaf 1 (`[eax, ebx, ecx, edx]`, for the
    /// XSAVE bit ECX\[26\]) and leaf 0Dh sub-leaves 0 and 1. Without XSAVE,
    /// leaf 0Dh means nothing and no XCR0 is allowed.
    pub fn from_cpuid(leaf1: [u32; 4], d0: [u32; 4], d1: [u32; 4]) -> XsaveCaps {
        if leaf1[2] & (1 << 26) == 0 {
            return XsaveCaps { user_mask: 0 };
        }
        let supported = join_u32(d0[3], d0[0]); // EDX:EAX
        let xss = join_u32(d1[3], d1[2]); // EDX:ECX
        XsaveCaps {
            user_mask: supported & !xss & !SUPERVISOR_COMPONENTS,
        }
    }
}

/// Why an XSETBV is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsetbvError {
    /// Only XCR0 (ECX = 0) is writable; XCR1 is read-only (XGETBV only)
    /// and others do not exist.
    NotXcr0(u32),
    /// The host has no XSAVE feature set.
    NoXsave,
    /// Bit 0 (x87) must always be set.
    NoX87,
    /// AVX (bit 2) needs SSE (bit 1).
    AvxWithoutSse,
    /// Opmask, ZMM_Hi256 and Hi16_ZMM (bits 5–7) are set all or none.
    Avx512Partial,
    /// The AVX-512 components need AVX and SSE.
    Avx512WithoutAvx,
    /// MPX BNDREGS and BNDCSR (bits 3, 4) are set both or neither.
    MpxPartial,
    /// AMX TILECFG and TILEDATA (bits 17, 18) are set both or neither.
    AmxPartial,
    /// Components the host does not support as user state (e.g. PKRU
    /// without PKU, a supervisor component, a reserved bit).
    Unsupported(u64),
}

impl fmt::Display for XsetbvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XsetbvError::NotXcr0(xcr) => write!(f, "XCR{xcr} is not writable (only XCR0)"),
            XsetbvError::NoXsave => f.write_str("this CPU has no XSAVE"),
            XsetbvError::NoX87 => f.write_str("x87 (bit 0) must be set"),
            XsetbvError::AvxWithoutSse => f.write_str("AVX (bit 2) needs SSE (bit 1)"),
            XsetbvError::Avx512Partial => {
                f.write_str("AVX-512 components (bits 5-7) must be all set or all clear")
            }
            XsetbvError::Avx512WithoutAvx => {
                f.write_str("AVX-512 components (bits 5-7) need AVX and SSE")
            }
            XsetbvError::MpxPartial => {
                f.write_str("MPX BNDREGS and BNDCSR (bits 3-4) must be both set or both clear")
            }
            XsetbvError::AmxPartial => {
                f.write_str("AMX TILECFG and TILEDATA (bits 17-18) must be both set or both clear")
            }
            XsetbvError::Unsupported(bits) => {
                write!(f, "components {bits:#x} are not supported user state")
            }
        }
    }
}

/// Whether all of `group` or none of it is in `value`.
fn all_or_none(value: u64, group: u64) -> bool {
    let set = value & group;
    set == 0 || set == group
}

/// Checks an XSETBV of `value` to XCR `xcr` against the host's `caps`
/// (Intel SDM Vol. 1 §13.3; Vol. 2C XSETBV "Protected Mode Exceptions":
/// #GP(0) for an invalid XCR, a reserved bit, bit 0 clear, bits 2:1 = 10b,
/// bits 4:3 neither 00b nor 11b, bits 7:5 neither 000b nor 111b, bits 7:5
/// set with bits 2:1 not 11b, bits 18:17 neither 00b nor 11b).
pub fn check_xsetbv(xcr: u32, value: u64, caps: XsaveCaps) -> Result<(), XsetbvError> {
    if xcr != 0 {
        return Err(XsetbvError::NotXcr0(xcr));
    }
    if caps.user_mask == 0 {
        return Err(XsetbvError::NoXsave);
    }
    let unsupported = value & !caps.user_mask;
    if unsupported != 0 {
        return Err(XsetbvError::Unsupported(unsupported));
    }
    if value & X87 == 0 {
        return Err(XsetbvError::NoX87);
    }
    if value & AVX != 0 && value & SSE == 0 {
        return Err(XsetbvError::AvxWithoutSse);
    }
    if !all_or_none(value, AVX512) {
        return Err(XsetbvError::Avx512Partial);
    }
    if value & AVX512 != 0 && value & (SSE | AVX) != SSE | AVX {
        return Err(XsetbvError::Avx512WithoutAvx);
    }
    if !all_or_none(value, MPX) {
        return Err(XsetbvError::MpxPartial);
    }
    if !all_or_none(value, XCR0_AMX) {
        return Err(XsetbvError::AmxPartial);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const XSAVE: [u32; 4] = [0, 0, 1 << 26, 0];

    fn caps(d0_eax: u32, d1_ecx: u32) -> XsaveCaps {
        XsaveCaps::from_cpuid(XSAVE, [d0_eax, 0, 0, 0], [0, 0, d1_ecx, 0])
    }

    // CPUID.(0Dh,0).EAX of real and emulated CPUs (EDX is 0 on all):
    /// Skylake-SP (Xeon Scalable 1st gen): x87, SSE, AVX, MPX, AVX-512,
    /// PKRU; IA32_XSS supports PT (bit 8).
    fn skylake_sp() -> XsaveCaps {
        caps(0x2ff, 0x100)
    }
    /// Zen 3 (EPYC Milan): x87, SSE, AVX, PKRU. (Zen 2 has no PKU: 0x7.)
    fn zen3() -> XsaveCaps {
        caps(0x207, 0x0)
    }
    /// Zen 4 (EPYC Genoa): AVX-512 and PKRU, no MPX.
    fn zen4() -> XsaveCaps {
        caps(0x2e7, 0x1800)
    }
    /// Sapphire Rapids: AVX-512, PKRU and AMX, no MPX; IA32_XSS supports
    /// PT, CET_U, CET_S, UINTR and LBR (bits 8, 11, 12, 14, 15).
    fn sapphire_rapids() -> XsaveCaps {
        caps(0x602e7, 0xd900)
    }
    /// QEMU 10 TCG `-cpu max` (measured): x87, SSE, AVX, MPX, PKRU.
    fn qemu_tcg_max() -> XsaveCaps {
        caps(0x21f, 0)
    }
    /// Bochs `corei7_skylake_x` (measured): x87, SSE, AVX, AVX-512; no MPX,
    /// no PKRU.
    fn bochs_skylake_x() -> XsaveCaps {
        caps(0xe7, 0)
    }

    #[test]
    fn the_usual_kernel_values_are_allowed_where_supported() {
        for c in [
            skylake_sp(),
            zen3(),
            zen4(),
            sapphire_rapids(),
            qemu_tcg_max(),
            bochs_skylake_x(),
        ] {
            assert_eq!(check_xsetbv(0, 0x1, c), Ok(()), "x87 only");
            assert_eq!(check_xsetbv(0, 0x3, c), Ok(()), "x87 + SSE");
            assert_eq!(check_xsetbv(0, 0x7, c), Ok(()), "x87 + SSE + AVX");
        }
        assert_eq!(check_xsetbv(0, 0x2ff, skylake_sp()), Ok(()));
        assert_eq!(check_xsetbv(0, 0x602e7, sapphire_rapids()), Ok(()));
        assert_eq!(check_xsetbv(0, 0x21f, qemu_tcg_max()), Ok(()));
        assert_eq!(check_xsetbv(0, 0xe7, bochs_skylake_x()), Ok(()));
        assert_eq!(check_xsetbv(0, 0x207, zen3()), Ok(()));
    }

    #[test]
    fn the_red_team_values_are_refused() {
        // MPX BNDREGS without BNDCSR: accepted by the old check, #GP in QEMU.
        assert_eq!(
            check_xsetbv(0, 0x0f, qemu_tcg_max()),
            Err(XsetbvError::MpxPartial)
        );
        assert_eq!(
            check_xsetbv(0, 0x17, qemu_tcg_max()),
            Err(XsetbvError::MpxPartial)
        );
        // AVX-512 without AVX, or not all-or-none: #GP in Bochs.
        assert_eq!(
            check_xsetbv(0, 0xe3, bochs_skylake_x()),
            Err(XsetbvError::Avx512WithoutAvx)
        );
        assert_eq!(
            check_xsetbv(0, 0x27, bochs_skylake_x()),
            Err(XsetbvError::Avx512Partial)
        );
        assert_eq!(
            check_xsetbv(0, 0x67, skylake_sp()),
            Err(XsetbvError::Avx512Partial)
        );
        // The AMX pair split.
        assert_eq!(
            check_xsetbv(0, 0x200e7, sapphire_rapids()),
            Err(XsetbvError::AmxPartial)
        );
        assert_eq!(
            check_xsetbv(0, 0x400e7, sapphire_rapids()),
            Err(XsetbvError::AmxPartial)
        );
    }

    #[test]
    fn every_architectural_rule_holds() {
        let spr = sapphire_rapids();
        assert_eq!(check_xsetbv(0, 0x6, spr), Err(XsetbvError::NoX87));
        assert_eq!(check_xsetbv(0, 0x0, spr), Err(XsetbvError::NoX87));
        assert_eq!(check_xsetbv(0, 0x5, spr), Err(XsetbvError::AvxWithoutSse));
        assert_eq!(check_xsetbv(1, 0x3, spr), Err(XsetbvError::NotXcr0(1)));
        assert_eq!(
            check_xsetbv(0xffff_ffff, 0x3, spr),
            Err(XsetbvError::NotXcr0(0xffff_ffff))
        );
        // Components the CPU lacks: MPX on Sapphire Rapids and Zen 4, PKRU
        // on Bochs, AVX-512 on Zen 3, AMX everywhere but Sapphire Rapids.
        assert_eq!(
            check_xsetbv(0, 0x1f, spr),
            Err(XsetbvError::Unsupported(0x18))
        );
        assert_eq!(
            check_xsetbv(0, 0x1f, zen4()),
            Err(XsetbvError::Unsupported(0x18))
        );
        assert_eq!(
            check_xsetbv(0, 0x207, bochs_skylake_x()),
            Err(XsetbvError::Unsupported(0x200))
        );
        assert_eq!(
            check_xsetbv(0, 0xe7, zen3()),
            Err(XsetbvError::Unsupported(0xe0))
        );
        assert_eq!(
            check_xsetbv(0, 0x602e7, skylake_sp()),
            Err(XsetbvError::Unsupported(0x60000))
        );
        // Supervisor components are never XCR0 bits, even where the CPU
        // has them (PT on Skylake-SP; CET on Sapphire Rapids), and even if
        // a CPUID lists them in leaf 0Dh sub-leaf 0 by mistake.
        assert_eq!(
            check_xsetbv(0, 0x103, skylake_sp()),
            Err(XsetbvError::Unsupported(0x100))
        );
        assert_eq!(
            check_xsetbv(0, 0x1803, spr),
            Err(XsetbvError::Unsupported(0x1800))
        );
        let odd = caps(0x1ff, 0);
        assert_eq!(odd.user_mask, 0xff);
        // High bits (EDX) and reserved bits.
        assert_eq!(
            check_xsetbv(0, (1 << 62) | 0x3, zen3()),
            Err(XsetbvError::Unsupported(1 << 62))
        );
    }

    #[test]
    fn without_xsave_nothing_is_allowed() {
        let none = XsaveCaps::from_cpuid([0; 4], [0x7, 0, 0, 0], [0; 4]);
        assert_eq!(none.user_mask, 0);
        assert_eq!(check_xsetbv(0, 0x1, none), Err(XsetbvError::NoXsave));
        // Leaf 0Dh EDX holds the upper half of the mask.
        let high = XsaveCaps::from_cpuid(XSAVE, [0x3, 0, 0, 0x4000_0000], [0; 4]);
        assert_eq!(high.user_mask, (1 << 62) | 0x3);
    }
}
