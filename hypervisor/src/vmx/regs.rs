//! The Intel VMX constants the `x86` crate (0.52) does not have, each once
//! (the MSR numbers, VMCS field encodings and control bits come from
//! `x86::msr` and `x86::vmx::vmcs`): basic exit reasons, the bits of exit
//! qualifications and information fields the backend reads, the EPT
//! pointer, the LDTR's unusable bit and IA32_FEATURE_CONTROL's bits. One
//! line each, as in the manual's tables.
#![allow(missing_docs, reason = "named as in the manual's tables")]

/// Basic exit reasons (Intel SDM Vol. 3D Appendix C, Table C-1).
pub mod exit {
    pub const EXCEPTION_NMI: u16 = 0; // Exception or NMI (the interruption information says which)
    pub const TRIPLE_FAULT: u16 = 2;
    pub const INIT: u16 = 3; // INIT signal
    pub const CPUID: u16 = 10;
    pub const GETSEC: u16 = 11;
    pub const INVD: u16 = 13;
    pub const VMCALL: u16 = 18;
    pub const VMCLEAR: u16 = 19; // VMCLEAR, then the VMX instructions in SDM order up to:
    pub const VMXON: u16 = 27;
    pub const CR_ACCESS: u16 = 28; // Control-register access (qualification: Table 28-3)
    pub const IO: u16 = 30; // I/O instruction (qualification: Table 28-5)
    pub const RDMSR: u16 = 31;
    pub const WRMSR: u16 = 32;
    pub const INVALID_GUEST_STATE: u16 = 33; // VM-entry failure due to invalid guest state
    pub const MSR_LOADING: u16 = 34; // VM-entry failure due to MSR loading
    pub const EPT_VIOLATION: u16 = 48; // EPT violation (qualification: Table 28-7)
    pub const EPT_MISCONFIG: u16 = 49; // EPT misconfiguration
    pub const INVEPT: u16 = 50;
    pub const INVVPID: u16 = 53;
    pub const XSETBV: u16 = 55;
}

/// Exit-reason bit 31: the VM entry failed (SDM Vol. 3C §25.9.1).
pub const EXIT_REASON_ENTRY_FAILURE: u64 = 1 << 31;
/// Interruption type NMI in exit interruption information bits 10:8 (Table 25-18).
pub const INTERRUPTION_TYPE_NMI: u64 = 2;
/// EPT pointer (SDM Vol. 3C §25.6.11): write-back (2:0 = 6), 4-level walk (5:3 = 3).
pub const EPTP_WB_4_LEVEL: u64 = 6 | (3 << 3);
/// Access rights bit 16: the segment is unusable (SDM Vol. 3C §25.4.1).
pub const AR_UNUSABLE: u64 = 1 << 16;
/// The revision identifier in IA32_VMX_BASIC and a VMCS or VMXON region's
/// first word (SDM Vol. 3D Appendix A.1; bit 31 is the shadow indicator).
pub const REVISION_MASK: u64 = 0x7fff_ffff;
/// IA32_FEATURE_CONTROL bit 0: locked (SDM Vol. 3C §24.7).
pub const FEATURE_CONTROL_LOCK: u64 = 1 << 0;
/// IA32_FEATURE_CONTROL bit 2: VMXON allowed outside SMX operation.
pub const FEATURE_CONTROL_VMX_OUTSIDE_SMX: u64 = 1 << 2;
