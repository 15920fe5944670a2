//! Detecting Flotilla: its CPUID leaves, signature and backend ids (guest
//! boot protocol v2, `docs/boot-protocol.md` §5).
//!
//! The hypervisor answers the leaves `LEAF_SIGNATURE ..= LEAF_LAST` itself
//! (leaves it does not define read as zero); a guest reads
//! [`LEAF_SIGNATURE`] for the signature and [`LEAF_INTERFACE`] for the
//! [`Backend`], which says which hypercall instruction to use.

use crate::hypercall::Instruction;

/// `eax` = highest hypervisor leaf; `ebx`, `ecx`, `edx` = [`SIGNATURE`].
pub const LEAF_SIGNATURE: u32 = 0x4000_0000;
/// `eax` = the [`Backend`] id; `ebx`, `ecx`, `edx` = 0.
pub const LEAF_INTERFACE: u32 = 0x4000_0001;
/// Last leaf of the hypervisor range (the leaves after [`LEAF_INTERFACE`]
/// up to here read as zero).
pub const LEAF_LAST: u32 = 0x4000_00ff;
/// The highest hypervisor leaf with a meaning, reported in `eax` of
/// [`LEAF_SIGNATURE`].
pub const LEAF_MAX: u32 = LEAF_INTERFACE;
/// First leaf of the hypervisor range without a meaning (reads as zero
/// up to [`LEAF_LAST`]).
pub const LEAF_UNUSED: u32 = LEAF_MAX + 1;

/// The 12 signature bytes, as `ebx`, `ecx`, `edx` of [`LEAF_SIGNATURE`].
pub const SIGNATURE: [u8; 12] = *b"FlotillaHV\0\0";

/// [`SIGNATURE`] as the three registers `[ebx, ecx, edx]`.
pub const fn signature_registers() -> [u32; 3] {
    let s = SIGNATURE;
    [
        u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        u32::from_le_bytes([s[4], s[5], s[6], s[7]]),
        u32::from_le_bytes([s[8], s[9], s[10], s[11]]),
    ]
}

/// Whether `[ebx, ecx, edx]` of [`LEAF_SIGNATURE`] is Flotilla's signature.
pub const fn is_signature(registers: [u32; 3]) -> bool {
    let [b, c, d] = signature_registers();
    registers[0] == b && registers[1] == c && registers[2] == d
}

/// The virtualization backend a partition runs under: `eax` of
/// [`LEAF_INTERFACE`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// AMD SVM: hypercalls with `vmmcall`.
    Svm = 1,
    /// Intel VMX: hypercalls with `vmcall`.
    Vmx = 2,
}

impl Backend {
    /// Every backend.
    pub const ALL: [Backend; 2] = [Backend::Svm, Backend::Vmx];

    /// The id reported in `eax` of [`LEAF_INTERFACE`].
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The backend with id `id`; `None` for an id this ABI does not know.
    pub const fn from_id(id: u32) -> Option<Backend> {
        match id {
            1 => Some(Backend::Svm),
            2 => Some(Backend::Vmx),
            _ => None,
        }
    }

    /// The instruction a guest makes hypercalls with under this backend.
    pub const fn hypercall(self) -> Instruction {
        match self {
            Backend::Svm => Instruction::Vmmcall,
            Backend::Vmx => Instruction::Vmcall,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_and_signature_are_the_documented_ones() {
        assert_eq!((LEAF_SIGNATURE, LEAF_INTERFACE), (0x4000_0000, 0x4000_0001));
        let mut text = [0u8; 12];
        for (i, r) in signature_registers().iter().enumerate() {
            text[i * 4..i * 4 + 4].copy_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&text, b"FlotillaHV\0\0");
        assert!(is_signature(signature_registers()));
        assert!(!is_signature([0x756e_6547, 0x6c65_746e, 0x4965_6e69]));
    }

    #[test]
    fn backend_ids_round_trip() {
        for b in Backend::ALL {
            assert_eq!(Backend::from_id(b.id()), Some(b));
        }
        assert_eq!((Backend::Svm.id(), Backend::Vmx.id()), (1, 2));
        assert_eq!(Backend::from_id(0), None);
        assert_eq!(Backend::from_id(3), None);
        assert_eq!(Backend::Svm.hypercall(), Instruction::Vmmcall);
        assert_eq!(Backend::Vmx.hypercall(), Instruction::Vmcall);
    }
}
