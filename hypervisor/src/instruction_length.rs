//! The length of the instruction behind an exit, decoded from the guest's
//! bytes, for SVM without next-RIP saving (QEMU TCG): the exit says which
//! instruction it was, not how long it is — a prefixed form (`66 0f a2`,
//! a REX prefix before RDMSR, `2e 0f 01 d9`) is longer than the bare
//! opcode, and skipping a fixed length would resume the guest in the middle
//! of an instruction.
//!
//! The bytes are read at CS:RIP through the guest's page tables
//! ([`crate::guest_paging`]), legacy prefixes (and REX prefixes in 64-bit
//! mode) are skipped, and the opcode must be the one the exit names; the
//! whole instruction is at most 15 bytes (Intel SDM Vol. 2A §2.1, AMD APM
//! Vol. 3 §1.1). Anything else is a [`DecodeFailure`] that stops the
//! partition (`decode-failed`): the hypervisor never guesses.

use crate::guest_memory::{read_checked, GuestMemory};
use crate::guest_paging::{translate, PagingState};

/// Longest x86 instruction.
pub const MAX_INSTRUCTION_LEN: usize = 15;

/// An instruction an exit names, by its opcode bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// `0f 01 d9`.
    Vmmcall,
    /// `0f a2`.
    Cpuid,
    /// `0f 32`.
    Rdmsr,
    /// `0f 30`.
    Wrmsr,
    /// `0f 01 d1`.
    Xsetbv,
}

impl Opcode {
    /// The opcode bytes (AMD APM Vol. 3, Appendix A opcode maps).
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Opcode::Vmmcall => abi::hypercall::Instruction::Vmmcall.bytes(),
            Opcode::Cpuid => &[0x0f, 0xa2],
            Opcode::Rdmsr => &[0x0f, 0x32],
            Opcode::Wrmsr => &[0x0f, 0x30],
            Opcode::Xsetbv => &[0x0f, 0x01, 0xd1],
        }
    }
}

/// Where the guest executes, as the exit left it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodeLocation {
    /// How the guest translates addresses.
    pub paging: PagingState,
    /// CS base (ignored in 64-bit mode).
    pub cs_base: u64,
    /// CS.L: a 64-bit code segment (meaningful in IA-32e mode).
    pub cs_long: bool,
    /// RIP.
    pub rip: u64,
}

impl CodeLocation {
    /// 64-bit mode: IA-32e mode with a 64-bit code segment.
    pub fn is_64bit(&self) -> bool {
        self.paging.long_mode() && self.cs_long
    }

    fn linear(&self, offset: u64) -> u64 {
        if self.is_64bit() {
            self.rip.wrapping_add(offset)
        } else {
            // Legacy and compatibility mode: CS base + EIP, 32-bit wrap.
            self.cs_base.wrapping_add(self.rip).wrapping_add(offset) & 0xffff_ffff
        }
    }
}

/// The instruction could not be decoded as the exit's: the bytes read
/// (`len` of them, fewer than 15 when a page was unreachable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeFailure {
    /// The bytes at CS:RIP.
    pub bytes: [u8; MAX_INSTRUCTION_LEN],
    /// How many of them could be read.
    pub len: u8,
}

fn is_legacy_prefix(b: u8) -> bool {
    matches!(
        b,
        0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3
    )
}

/// The length of the instruction in `bytes` if it is `opcode` behind
/// prefixes: legacy prefixes anywhere before it, REX (0x40–0x4f) only in
/// 64-bit mode (elsewhere those bytes are INC/DEC, another instruction).
pub fn prefixed_length(bytes: &[u8], opcode: Opcode, is_64bit: bool) -> Option<u64> {
    let op = opcode.bytes();
    let window = bytes.get(..bytes.len().min(MAX_INSTRUCTION_LEN))?;
    let prefixes = window
        .iter()
        .take_while(|&&b| is_legacy_prefix(b) || (is_64bit && (0x40..=0x4f).contains(&b)))
        .count();
    let end = prefixes.checked_add(op.len())?;
    (window.get(prefixes..end)? == op).then_some(end as u64)
}

/// Reads the up to 15 bytes at `at`, page by page; stops at the first page
/// that does not translate or lies outside the partition's RAM.
fn fetch(at: &CodeLocation, mem: &impl GuestMemory) -> ([u8; MAX_INSTRUCTION_LEN], usize) {
    let mut bytes = [0u8; MAX_INSTRUCTION_LEN];
    let mut got = 0;
    while got < MAX_INSTRUCTION_LEN {
        let linear = at.linear(got as u64);
        let Ok(gpa) = translate(&at.paging, linear, mem) else {
            break;
        };
        let in_page = usize::from(0x1000 - (abi::regs::half::low16(linear) & 0xfff));
        let n = in_page.min(MAX_INSTRUCTION_LEN - got);
        let Some(chunk) = bytes.get_mut(got..got + n) else {
            break;
        };
        if read_checked(mem, gpa, chunk).is_err() {
            break;
        }
        got += n;
    }
    (bytes, got)
}

/// The length of the `opcode` instruction at `at` in the guest's memory.
pub fn instruction_length(
    at: &CodeLocation,
    opcode: Opcode,
    mem: &impl GuestMemory,
) -> Result<u64, DecodeFailure> {
    let (bytes, got) = fetch(at, mem);
    bytes
        .get(..got)
        .and_then(|b| prefixed_length(b, opcode, at.is_64bit()))
        .ok_or(DecodeFailure {
            bytes,
            len: u8::try_from(got).unwrap_or(u8::MAX), // at most 15
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest_memory::FakeGuestMemory;
    use crate::guest_paging::tests::long_mode_tables;

    #[test]
    fn bare_opcodes_have_their_own_length() {
        for (op, len) in [
            (Opcode::Vmmcall, 3),
            (Opcode::Cpuid, 2),
            (Opcode::Rdmsr, 2),
            (Opcode::Wrmsr, 2),
            (Opcode::Xsetbv, 3),
        ] {
            assert_eq!(prefixed_length(op.bytes(), op, true), Some(len), "{op:?}");
        }
    }

    #[test]
    fn prefixes_are_counted() {
        assert_eq!(
            prefixed_length(&[0x66, 0x0f, 0xa2], Opcode::Cpuid, false),
            Some(3)
        );
        assert_eq!(
            prefixed_length(&[0x48, 0x0f, 0x32], Opcode::Rdmsr, true),
            Some(3)
        );
        assert_eq!(
            prefixed_length(&[0x2e, 0x3e, 0x0f, 0x01, 0xd9, 0x90], Opcode::Vmmcall, true),
            Some(5),
            "trailing bytes are the next instruction"
        );
        assert_eq!(
            prefixed_length(&[0x66, 0x41, 0x0f, 0x30], Opcode::Wrmsr, true),
            Some(4)
        );
        let mut long = [0x66u8; 15];
        long[13] = 0x0f;
        long[14] = 0xa2;
        assert_eq!(prefixed_length(&long, Opcode::Cpuid, false), Some(15));
    }

    #[test]
    fn anything_else_is_refused() {
        // REX is INC/DEC outside 64-bit mode.
        assert_eq!(
            prefixed_length(&[0x48, 0x0f, 0x32], Opcode::Rdmsr, false),
            None
        );
        assert_eq!(
            prefixed_length(&[0x0f, 0xa2], Opcode::Rdmsr, true),
            None,
            "wrong opcode"
        );
        assert_eq!(
            prefixed_length(&[0x66, 0x0f], Opcode::Cpuid, true),
            None,
            "truncated"
        );
        assert_eq!(
            prefixed_length(&[0x0f, 0x01, 0xd8], Opcode::Vmmcall, true),
            None,
            "VMRUN, not VMMCALL"
        );
        let mut too_long = [0x66u8; 16];
        too_long[14] = 0x0f;
        too_long[15] = 0xa2;
        assert_eq!(
            prefixed_length(&too_long, Opcode::Cpuid, false),
            None,
            "16 bytes"
        );
    }

    #[test]
    fn reads_through_the_guest_page_tables_and_across_pages() {
        let (mut mem, paging) = long_mode_tables();
        // Linear 0x5ffe -> 0x9ffe: `66 0f` at the end of the page, then
        // `a2` on linear 0x6000, which is not mapped.
        mem.0[0x9ffe] = 0x66;
        mem.0[0x9fff] = 0x0f;
        let at = CodeLocation {
            paging,
            cs_long: true,
            rip: 0x5ffe,
            ..CodeLocation::default()
        };
        let err = instruction_length(&at, Opcode::Cpuid, &mem).unwrap_err();
        assert_eq!((err.len, &err.bytes[..2]), (2, &[0x66, 0x0f][..]));
        // At linear 0x20_0ffe (a 2 MiB page) the instruction crosses into
        // the next page of the same large page.
        mem.0[0x20_0ffe] = 0x66;
        mem.0[0x20_0fff] = 0x0f;
        mem.0[0x20_1000] = 0xa2;
        let at = CodeLocation {
            rip: 0x20_0ffe,
            ..at
        };
        assert_eq!(instruction_length(&at, Opcode::Cpuid, &mem), Ok(3));
    }

    #[test]
    fn legacy_mode_adds_the_cs_base() {
        let mut mem = FakeGuestMemory(vec![0; 0x2_0000]);
        mem.0[0x1_0010..0x1_0013].copy_from_slice(abi::hypercall::Instruction::Vmmcall.bytes());
        let at = CodeLocation {
            cs_base: 0x1_0000,
            rip: 0x10,
            ..CodeLocation::default()
        };
        assert_eq!(instruction_length(&at, Opcode::Vmmcall, &mem), Ok(3));
        let outside = CodeLocation {
            rip: 0xfff_0000,
            ..at
        };
        assert_eq!(
            instruction_length(&outside, Opcode::Vmmcall, &mem)
                .unwrap_err()
                .len,
            0
        );
    }
}
