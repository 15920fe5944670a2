//! Why the hypervisor stopped a partition, and why a partition left its
//! guest: the typed vocabulary of the run report (`docs/run-report.md`).
//!
//! [`FaultKind`] and [`ExitReason`] are written by the hypervisor, parsed
//! by the host tools and listed in the docs from one place. Each has a
//! stable name ([`FaultKind::as_str`], the `kind` and `by_reason` keys of
//! the report), a parser that refuses any other name ([`core::str::FromStr`]),
//! and `ALL`, so the documentation and the tests can enumerate them.

use core::fmt;
use core::str::FromStr;

/// Version of the run report these names are part of (`docs/run-report.md`):
/// the hypervisor writes it in `report-begin`, the host tools accept only it.
pub const REPORT_VERSION: u32 = 4;

/// Defines a fieldless enum with stable names, `ALL`, `as_str`, `FromStr`
/// and `Display`, from one list.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident, unknown = $unknown:ident {
            $( $variant:ident = $text:literal, $desc:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name {
            $( #[doc = $desc] $variant ),+
        }

        impl $name {
            /// Every value, in report order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name used in the run report and on the command line.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// What it means, one sentence (the docs' table).
            pub const fn description(self) -> &'static str {
                match self {
                    $($name::$variant => $desc),+
                }
            }

            /// Position in [`Self::ALL`] (a dense index for counters).
            pub const fn index(self) -> usize {
                self as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = $unknown;

            fn from_str(text: &str) -> Result<Self, $unknown> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == text)
                    .ok_or($unknown)
            }
        }
    };
}

/// A name that is not a [`FaultKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownFaultKind;

impl fmt::Display for UnknownFaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown fault kind (expected one of: ")?;
        write_names(f, FaultKind::ALL.iter().map(|k| k.as_str()))?;
        f.write_str(")")
    }
}

/// A name that is not an [`ExitReason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownExitReason;

impl fmt::Display for UnknownExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown exit reason (expected one of: ")?;
        write_names(f, ExitReason::ALL.iter().map(|r| r.as_str()))?;
        f.write_str(")")
    }
}

fn write_names<'a>(
    f: &mut fmt::Formatter<'_>,
    names: impl Iterator<Item = &'a str>,
) -> fmt::Result {
    for (i, name) in names.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        f.write_str(name)?;
    }
    Ok(())
}

named_enum! {
    /// Why the hypervisor stopped a partition (the report's `fault.kind`).
    pub enum FaultKind, unknown = UnknownFaultKind {
        Npf = "npf",
            "A guest-physical access the partition's nested page tables do not allow: outside its RAM and channel windows, or a write to a page mapped read-only for it.";
        TripleFault = "triple-fault",
            "The guest triple-faulted (shutdown).";
        PortDenied = "port-denied",
            "Port I/O on a port the layout did not grant.";
        MsrDenied = "msr-denied",
            "An intercepted MSR the partition may not read or write, or a value it may not write (EFER bits other than SCE/LME/NXE, a PAT with a reserved memory type).";
        ApicBase = "apic-base",
            "A write to `IA32_APIC_BASE`.";
        IpiDenied = "ipi-denied",
            "An x2APIC ICR write that is not a fixed, physical-destination IPI to a channel peer on its vector, or to the sender itself.";
        VirtInstruction = "virt-instruction",
            "A virtualization instruction (VMRUN, VMLOAD, VMSAVE, STGI, CLGI, SKINIT, INVLPGA; VMXON and the other VMX instructions; GETSEC) or INVD.";
        Init = "init",
            "An INIT signal reached the partition's core.";
        XsetbvDenied = "xsetbv-denied",
            "An XSETBV the partition may not execute (Intel SDM Vol. 1 §13.3): an XCR0 without x87, with AVX but no SSE, with the AVX-512 components not all-or-none or without AVX, with the MPX or AMX pair split, with components the CPU lacks or supervisor ones, or an XCR other than 0; or a value the CPU itself refused with #GP (recovered by the exception fixup: the detail says so). The detail names the rule.";
        CrDenied = "cr-denied",
            "A control-register write the backend cannot allow (VMX: e.g. CR0.PG without PE).";
        LvtDenied = "lvt-denied",
            "A write to the timer, thermal, performance-counter, LINT0, LINT1 or error LVT the partition may not make (Intel SDM Vol. 3A §11.5.1): a reserved bit or bits 63:32 set, a delivery mode the entry does not have, timer mode TSC-deadline or 11b, an illegal vector (0-15), or an unmasked delivery other than fixed (SMI, NMI, INIT, ExtINT); or a value the CPU itself refused with #GP (recovered by the exception fixup). The detail names the rule.";
        InvalidState = "invalid-state",
            "The hardware refused the guest state at VM entry, or a VMCS read or write failed (VMX: code bit 32 set, the field encoding in bits 31:0); a hypervisor bug, reported.";
        DecodeFailed = "decode-failed",
            "The instruction behind an exit is not the one the exit names, or cannot be read (SVM without next-RIP save decodes its length from the guest's bytes); the detail gives the bytes at RIP.";
        UnexpectedExit = "unexpected-exit",
            "A VM exit the hypervisor does not handle; the detail gives the vendor's code.";
        LoadFailed = "load-failed",
            "The partition could not be started (its image, memory or this core's virtualization support); it never ran.";
    }
}

named_enum! {
    /// Why a partition's virtual CPU left the guest (the report's
    /// `vm_exits.by_reason` keys).
    pub enum ExitReason, unknown = UnknownExitReason {
        Hypercall = "hypercall",
            "VMMCALL / VMCALL.";
        Cpuid = "cpuid",
            "CPUID (filtered: the hypervisor hides what the partition cannot use and adds its own leaves).";
        MsrRead = "msr-read",
            "An intercepted RDMSR.";
        MsrWrite = "msr-write",
            "An intercepted WRMSR.";
        Io = "io",
            "Port I/O on a port not granted.";
        Npf = "npf",
            "A nested page fault (NPF / EPT violation).";
        TripleFault = "triple-fault",
            "Shutdown (triple fault).";
        Init = "init",
            "An INIT signal.";
        VirtInstruction = "virt-instruction",
            "A virtualization instruction.";
        Xsetbv = "xsetbv",
            "XSETBV (validated, then loaded by the hypervisor).";
        CrAccess = "cr-access",
            "A control-register access the backend emulates (VMX: a CR0/CR4 write touching a bit VMX forces on).";
        Nmi = "nmi",
            "An NMI (the run's stop request, or a stray one).";
        InvalidState = "invalid-state",
            "The hardware refused the guest state, or a VMCS access failed.";
        Other = "other",
            "Anything else (the detail of the fault gives the vendor's code).";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn names_round_trip_and_are_unique() {
        for (i, kind) in FaultKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(kind.as_str().parse::<FaultKind>(), Ok(*kind));
            assert_eq!(kind.to_string(), kind.as_str());
            let dups = FaultKind::ALL
                .iter()
                .filter(|k| k.as_str() == kind.as_str());
            assert_eq!(dups.count(), 1, "{kind}");
        }
        for (i, reason) in ExitReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
            assert_eq!(reason.as_str().parse::<ExitReason>(), Ok(*reason));
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_list() {
        assert_eq!("npff".parse::<FaultKind>(), Err(UnknownFaultKind));
        assert_eq!("NPF".parse::<FaultKind>(), Err(UnknownFaultKind));
        assert_eq!("".parse::<ExitReason>(), Err(UnknownExitReason));
        let message = UnknownFaultKind.to_string();
        assert!(
            message.contains("npf, triple-fault, port-denied"),
            "{message}"
        );
        assert!(message.ends_with("load-failed)"), "{message}");
    }
}
