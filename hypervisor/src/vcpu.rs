//! The backend contract: one trait for "run this partition's virtual CPU on
//! this core and tell me why it stopped", with an arch-neutral exit type.
//! SVM and VMX implement it under `arch::x86_64::{svm,vmx}`; everything
//! above it (exit handling, hypercalls, containment) is written once.

use abi::fault::ExitReason;

/// General-purpose registers a handler may read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gpr {
    /// rax
    Rax,
    /// rbx
    Rbx,
    /// rcx
    Rcx,
    /// rdx
    Rdx,
    /// rsi
    Rsi,
    /// rdi
    Rdi,
}

/// Why the guest stopped running, independent of the vendor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmExit {
    /// VMMCALL / VMCALL.
    Hypercall,
    /// CPUID with `eax`/`ecx` in the guest registers.
    Cpuid,
    /// RDMSR of `msr` (intercepted).
    MsrRead {
        /// MSR number.
        msr: u32,
    },
    /// WRMSR of `value` to `msr` (intercepted).
    MsrWrite {
        /// MSR number.
        msr: u32,
        /// Value the guest tried to write.
        value: u64,
    },
    /// Port I/O to a port the partition was not granted.
    Io {
        /// Port number.
        port: u16,
        /// Access size in bytes.
        size: u8,
        /// Whether it is an OUT.
        write: bool,
    },
    /// Guest-physical access outside the partition's nested page tables.
    NestedPageFault {
        /// Faulting guest-physical address.
        gpa: u64,
        /// Whether the access was a write.
        write: bool,
        /// Whether it was an instruction fetch.
        fetch: bool,
    },
    /// The guest triple-faulted (shutdown).
    TripleFault,
    /// An INIT signal arrived.
    Init,
    /// The guest executed a virtualization instruction (`name`).
    VirtualizationInstruction {
        /// Mnemonic.
        name: &'static str,
    },
    /// XSETBV: write `value` to extended control register `xcr`.
    Xsetbv {
        /// XCR number (ECX).
        xcr: u32,
        /// Value (EDX:EAX).
        value: u64,
    },
    /// A control-register access the backend must emulate (VMX: a CR0 or
    /// CR4 write that touches a bit the hypervisor owns).
    ControlRegisterAccess,
    /// An NMI arrived (another core asked this one to stop its partition).
    Nmi,
    /// The hardware refused the guest state (a hypervisor bug, reported).
    InvalidState {
        /// Vendor-specific code.
        code: u64,
    },
    /// Anything else, with the vendor's exit code.
    Other {
        /// Vendor-specific exit code.
        code: u64,
    },
}

impl VmExit {
    /// The reason counted in the run report.
    pub fn reason(&self) -> ExitReason {
        match self {
            VmExit::Hypercall => ExitReason::Hypercall,
            VmExit::Cpuid => ExitReason::Cpuid,
            VmExit::MsrRead { .. } => ExitReason::MsrRead,
            VmExit::MsrWrite { .. } => ExitReason::MsrWrite,
            VmExit::Io { .. } => ExitReason::Io,
            VmExit::NestedPageFault { .. } => ExitReason::Npf,
            VmExit::TripleFault => ExitReason::TripleFault,
            VmExit::Init => ExitReason::Init,
            VmExit::VirtualizationInstruction { .. } => ExitReason::VirtInstruction,
            VmExit::Xsetbv { .. } => ExitReason::Xsetbv,
            VmExit::ControlRegisterAccess => ExitReason::CrAccess,
            VmExit::Nmi => ExitReason::Nmi,
            VmExit::InvalidState { .. } => ExitReason::InvalidState,
            VmExit::Other { .. } => ExitReason::Other,
        }
    }
}

/// A virtual CPU of one partition, pinned to the calling core.
pub trait Vcpu {
    /// The backend's name in reports: `"svm"` or `"vmx"`.
    fn backend(&self) -> &'static str;
    /// Enters the guest until the next exit.
    fn run(&mut self) -> VmExit;
    /// Reads a guest register.
    fn gpr(&self, reg: Gpr) -> u64;
    /// Writes a guest register.
    fn set_gpr(&mut self, reg: Gpr, value: u64);
    /// Guest RIP.
    fn rip(&self) -> u64;
    /// The guest's current privilege level (0–3): SVM keeps it in the
    /// VMCB save area; on VMX it is the DPL of the guest's SS (Intel SDM
    /// Vol. 3C §25.4.1, Guest Register State: the SS DPL always equals the
    /// CPL).
    fn cpl(&self) -> u8;
    /// Moves RIP past the instruction that caused the last exit (for
    /// hypercalls, CPUID and emulated MSR accesses).
    fn skip_instruction(&mut self);
}
