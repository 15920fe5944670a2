//! The backend contract: [`VirtBackend`] enables virtualization on a core
//! and creates the vCPU from the arch-neutral [`GuestEntry`]; [`Vcpu`] runs
//! it until an arch-neutral [`VmExit`]. SVM and VMX implement both under
//! `arch::x86_64::{svm,vmx}` (pure exit decoding: [`crate::svm`],
//! [`crate::vmx`]); everything above them is written once.

use crate::cpuid_policy::GuestFeatures;
use crate::nested_paging::EntryFormat;
use abi::fault::ExitReason;
use core::fmt::Display;
use x86::controlregs::Cr0;

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
    /// The instruction behind an exit (`exit`, its reason) could not be
    /// decoded to find its length (SVM without next-RIP saving): the bytes
    /// at CS:RIP, `len` of them readable.
    DecodeFailed {
        /// The reason of the exit it interrupted.
        exit: ExitReason,
        /// The bytes at CS:RIP.
        bytes: [u8; 15],
        /// How many could be read.
        len: u8,
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
            // Counted as the exit it was.
            VmExit::DecodeFailed { exit, .. } => *exit,
            VmExit::Other { .. } => ExitReason::Other,
        }
    }
}

/// A partition's virtual CPU, pinned to the calling core: running it, and
/// the backend-specific operations the neutral exit handler needs.
pub trait Vcpu {
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
    /// Loads a guest EFER value (only
    /// [`EFER_GUEST_BITS`](crate::exit_handler::EFER_GUEST_BITS); the
    /// backend keeps LMA and what it needs itself, e.g. SVME).
    fn write_efer(&mut self, value: u64);
    /// The guest's view of EFER (without bits only the backend needs).
    fn read_efer(&self) -> u64;
    /// The guest's PAT.
    fn read_pat(&self) -> u64;
    /// Loads a (validated) guest PAT.
    fn write_pat(&mut self, value: u64);
    /// The backend, whose id CPUID leaf `abi::cpuid::LEAF_INTERFACE` reports.
    fn backend(&self) -> abi::cpuid::Backend;
    /// Emulates the control-register access behind the last exit;
    /// `Err` says why it cannot be allowed.
    fn emulate_control_register_access(&mut self) -> Result<(), &'static str>;
    /// The guest's CR4 as the guest sees it (its read shadow on VMX), for
    /// the OS-enabled CPUID bits.
    fn guest_cr4(&self) -> u64;
    /// What this backend lets the partition use beyond the baseline (for
    /// CPUID and the LVT rule).
    fn guest_features(&self) -> GuestFeatures;
    /// Whether writes to the timer's initial count and divide configuration
    /// exit (while the timer is periodic, `timer_policy`) or reach the APIC
    /// directly (one-shot).
    fn intercept_timer_writes(&mut self, intercept: bool);
    /// Injects a hardware exception on the next entry (RIP stays at the
    /// instruction that raised it).
    fn inject_exception(&mut self, event: &crate::event::PendingEvent);
    /// Passes IA32_TSC_DEADLINE through and offers TSC-deadline mode (a
    /// compat partition on a CPU that has it).
    fn pass_tsc_deadline(&mut self);
}

/// A virtualization backend on the calling core: enables the extension
/// there and creates the partition's [`Vcpu`] (one partition per core).
pub trait VirtBackend {
    /// The backend's name in reports: `"svm"` or `"vmx"`.
    const NAME: &'static str;
    /// The format of its nested page tables (NPT or EPT).
    type Tables: EntryFormat;
    /// Its virtual CPU.
    type Vcpu: Vcpu;
    /// Why enabling or creating failed (reported as the setup fault).
    type Error: Display;
    /// Enables virtualization on the calling core.
    fn enable(&mut self) -> Result<(), Self::Error>;
    /// Creates the vCPU: `entry` behind the nested tables at `nested_root`,
    /// with the I/O port ranges `ports` granted.
    fn create(
        &mut self,
        entry: &GuestEntry,
        nested_root: u64,
        ports: &[(u16, u16)],
    ) -> Result<Self::Vcpu, Self::Error>;
}

/// A segment register's initial value. `access` is in the VMX access-rights
/// layout (Intel SDM Vol. 3C §25.4.1, Table 25-2: type 3:0, S 4, DPL 6:5,
/// P 7, AVL 12, L 13, D/B 14, G 15); SVM's compressed attributes are the
/// same bits with 11:8 dropped (AMD APM Vol. 2 §15.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Selector.
    pub selector: u16,
    /// Access rights.
    pub access: u32,
    /// Limit (bytes).
    pub limit: u32,
}

/// The initial state of a partition's virtual CPU, described once for both
/// vendors: the PVH entry (Xen's `docs/misc/pvh.pandoc` protocol, which
/// Flotilla's boot protocol follows) in 32-bit protected mode with paging
/// off, flat 4 GiB segments based at 0, the start info's address in `rbx`,
/// and every other register at its reset value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestEntry {
    /// CS: selector 0x08, code, execute/read, accessed, 32-bit, 4 KiB granular.
    pub cs: Segment,
    /// DS, ES, SS, FS and GS: selector 0x10, data, read/write, accessed.
    pub data: Segment,
    /// TR: a busy 32-bit TSS of 0x68 bytes (VM entry needs a usable TR).
    pub tr: Segment,
    /// CR0 as the guest sees it: PE and ET.
    pub cr0: u64,
    /// CR4 as the guest sees it.
    pub cr4: u64,
    /// EFER as the guest sees it.
    pub efer: u64,
    /// IA32_PAT: the power-on value (Intel SDM Vol. 3A §13.12.4).
    pub pat: u64,
    /// RFLAGS: only the always-one bit 1.
    pub rflags: u64,
    /// DR7: no breakpoint enabled (its reset value).
    pub dr7: u64,
    /// Guest-physical entry point.
    pub rip: u64,
    /// `rbx` at entry: the start info's guest-physical address.
    pub rbx: u64,
}

impl GuestEntry {
    /// The PVH entry at `rip` with the start info at `rbx`.
    pub fn pvh(rip: u64, rbx: u64) -> GuestEntry {
        let flat = |selector, access| Segment {
            selector,
            access,
            limit: 0xffff_ffff,
        };
        GuestEntry {
            cs: flat(0x08, 0xc09b),
            data: flat(0x10, 0xc093),
            tr: Segment {
                selector: 0,
                access: 0x8b,
                limit: 0x67,
            },
            cr0: (Cr0::CR0_PROTECTED_MODE.bits() | Cr0::CR0_EXTENSION_TYPE.bits()) as u64,
            cr4: 0,
            efer: 0,
            pat: 0x0007_0406_0007_0406,
            rflags: 0x2,
            dr7: 0x400,
            rip,
            rbx,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svm::attributes;

    #[test]
    fn the_pvh_entry_is_the_state_both_backends_wrote() {
        let entry = GuestEntry::pvh(0x10_0000, 0x6000);
        // Flat 32-bit code and data (VMCB attributes 0xc9b/0xc93, VMX access
        // rights 0xc09b/0xc093), a busy 32-bit TSS, CR0 = PE | ET.
        assert_eq!(
            (entry.cs.selector, attributes(entry.cs.access)),
            (0x08, 0xc9b)
        );
        assert_eq!(
            (entry.data.selector, attributes(entry.data.access)),
            (0x10, 0xc93)
        );
        assert_eq!(
            (entry.cs.limit, entry.data.limit),
            (0xffff_ffff, 0xffff_ffff)
        );
        assert_eq!((entry.tr.access, entry.tr.limit), (0x8b, 0x67));
        assert_eq!((entry.cr0, entry.cr4, entry.efer), (0x11, 0, 0));
        assert_eq!((entry.rflags, entry.dr7), (0x2, 0x400));
        // The power-on PAT: WB, WT, UC-, UC in each half.
        assert_eq!(entry.pat, 0x0007_0406_0007_0406);
        assert_eq!((entry.rip, entry.rbx), (0x10_0000, 0x6000));
    }
}
