//! Hypercalls, version 3 (`docs/hypercalls.md`).
//!
//! A guest executes the backend's [`Instruction`] (`vmmcall` on AMD,
//! `vmcall` on Intel; [`crate::cpuid::Backend::hypercall`]) with the number in
//! `rax` and arguments in `rdi`, `rsi`, `rdx`; the result comes back in
//! `rax`: 0 or a positive value on success, a negative [`Error`] otherwise.
//! Pointers are guest-physical addresses and must lie wholly inside the
//! caller's RAM. Unknown numbers return [`Error::Unknown`]; they do not stop
//! the partition. Only the partition's kernel (CPL 0) may call: a call from
//! CPL > 0 does nothing and returns [`Error::Denied`] (since version 2).
//! Version 3 added [`MEMBERSHIP_ACK`].

/// Version of the hypercall interface, returned by [`VERSION`].
pub const HYPERCALL_VERSION: u64 = 3;

/// `VERSION() -> HYPERCALL_VERSION`.
pub const VERSION: u64 = 0;
/// `CONSOLE_WRITE(ptr, len)`: print one line (no newline needed; at most
/// [`MAX_CONSOLE_LINE`] bytes of UTF-8). The hypervisor prefixes it with the
/// partition's name.
pub const CONSOLE_WRITE: u64 = 1;
/// `EXIT(code)`: the partition ends with `code` (0 = success). Does not return.
pub const EXIT: u64 = 2;
/// `REPORT_RESULT(ptr, len)`: the workload's result as `key=value` words
/// (values: integers, `true`/`false`, or strings without spaces), at most
/// [`MAX_RESULT`] bytes; it appears in the run report. A later call replaces
/// an earlier one.
pub const REPORT_RESULT: u64 = 3;
/// `SEND_IPI(channel_id)`: raise the channel's IPI at the peer. Allowed only
/// on `ipi` channels of the caller.
pub const SEND_IPI: u64 = 4;
/// `MEMBERSHIP_ACK(group, epoch) -> current epoch`: the caller, a member of
/// group `group` (its layout index, `GroupInfo::group`), has adopted
/// `epoch` of the group's status page: it no longer writes to the channels
/// of members that epoch shows dead. Recorded as the member's acknowledged
/// epoch (never lowered). [`Error::Denied`]: not a member of such a group;
/// [`Error::Invalid`]: `epoch` is ahead of the page's.
pub const MEMBERSHIP_ACK: u64 = 5;

/// Longest console line.
pub const MAX_CONSOLE_LINE: u64 = 256;
/// Longest result text.
pub const MAX_RESULT: u64 = 512;

/// The instruction a hypercall is made with; which one is given by the
/// backend id in CPUID leaf [`crate::cpuid::LEAF_INTERFACE`]. The other one
/// raises #UD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instruction {
    /// `VMMCALL` (AMD SVM): `0f 01 d9` (AMD APM Vol. 3, "VMMCALL").
    Vmmcall,
    /// `VMCALL` (Intel VMX): `0f 01 c1` (Intel SDM Vol. 2C, "VMCALL").
    Vmcall,
}

impl Instruction {
    /// The instruction's bytes (no prefixes).
    pub const fn bytes(self) -> &'static [u8; 3] {
        match self {
            Instruction::Vmmcall => &[0x0f, 0x01, 0xd9],
            Instruction::Vmcall => &[0x0f, 0x01, 0xc1],
        }
    }
}

/// Hypercall errors, returned as their negative value in `rax`.
#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Unknown hypercall number.
    Unknown = -1,
    /// A pointer/length is outside the caller's RAM.
    Fault = -2,
    /// A length exceeds the documented limit.
    TooLong = -3,
    /// The text is not valid UTF-8 or not well-formed.
    Invalid = -4,
    /// Not allowed by the layout (e.g. an IPI on a channel that is not the caller's).
    Denied = -5,
}

impl Error {
    /// The value placed in `rax`.
    pub const fn to_rax(self) -> u64 {
        (self as i64).cast_unsigned()
    }

    /// Decodes a `rax` value; `None` for success values.
    pub fn from_rax(rax: u64) -> Option<Error> {
        match rax.cast_signed() {
            -1 => Some(Error::Unknown),
            -2 => Some(Error::Fault),
            -3 => Some(Error::TooLong),
            -4 => Some(Error::Invalid),
            -5 => Some(Error::Denied),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_bytes_are_the_manuals() {
        assert_eq!(Instruction::Vmmcall.bytes(), &[0x0f, 0x01, 0xd9]);
        assert_eq!(Instruction::Vmcall.bytes(), &[0x0f, 0x01, 0xc1]);
    }

    #[test]
    fn errors_round_trip_through_rax() {
        for e in [
            Error::Unknown,
            Error::Fault,
            Error::TooLong,
            Error::Invalid,
            Error::Denied,
        ] {
            assert_eq!(Error::from_rax(e.to_rax()), Some(e));
            assert!(e.to_rax().cast_signed() < 0);
        }
        assert_eq!(Error::from_rax(0), None);
        assert_eq!(Error::from_rax(7), None);
    }
}
