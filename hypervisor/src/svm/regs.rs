//! The AMD SVM constants the `x86` crate (0.52) does not have, each once:
//! the VMCB layout (AMD APM Vol. 2 Appendix B, tables B-1 control area and
//! B-2 state save area, which starts at 0x400), the intercept bits, the exit
//! codes (Appendix C); EFER.SVME and VM_HSAVE_PA are in `abi::regs`. One line each,
//! as in the manual's tables.
#![allow(missing_docs, reason = "named as in the manual's tables")]

/// VMCB control-area offsets (APM Vol. 2 Table B-1).
pub mod control {
    pub const INTERCEPT_MISC1: usize = 0x00c; // Intercept vector 3 ([`super::intercept3`])
    pub const INTERCEPT_MISC2: usize = 0x010; // Intercept vector 4 ([`super::intercept4`])
    pub const IOPM_BASE_PA: usize = 0x040; // Physical address of the I/O permission map
    pub const MSRPM_BASE_PA: usize = 0x048; // Physical address of the MSR permission map
    pub const GUEST_ASID: usize = 0x058;
    pub const TLB_CONTROL: usize = 0x05c; // TLB control (1 = flush everything on VMRUN)
    pub const V_INTR: usize = 0x060; // Virtual interrupt control
    pub const EXIT_CODE: usize = 0x070;
    pub const EXIT_INFO1: usize = 0x078; // Exit information 1
    pub const EXIT_INFO2: usize = 0x080; // Exit information 2
    pub const EXIT_INT_INFO: usize = 0x088; // The event being delivered at the exit
    pub const NP_ENABLE: usize = 0x090; // Nested paging enable (bit 0)
    pub const N_CR3: usize = 0x0b0; // Nested page-table root
    pub const EVENT_INJ: usize = 0x0a8; // Event injection on the next VMRUN
    pub const CLEAN_BITS: usize = 0x0c0; // VMCB clean bits
    pub const NEXT_RIP: usize = 0x0c8; // Next sequential instruction pointer (with nRIP save)
}

/// VMCB state-save-area offsets, absolute from the VMCB's start (APM Vol. 2
/// Table B-2).
pub mod state {
    // Segments: selector u16, attributes u16, limit u32, base u64.
    pub const ES: usize = 0x400;
    pub const CS: usize = 0x410;
    pub const SS: usize = 0x420;
    pub const DS: usize = 0x430;
    pub const FS: usize = 0x440;
    pub const GS: usize = 0x450;
    pub const GDTR: usize = 0x460; // GDTR (limit, base)
    pub const LDTR: usize = 0x470;
    pub const IDTR: usize = 0x480;
    pub const TR: usize = 0x490;
    pub const CPL: usize = 0x4cb;
    pub const EFER: usize = 0x4d0;
    pub const CR4: usize = 0x548;
    pub const CR3: usize = 0x550;
    pub const CR0: usize = 0x558;
    pub const DR7: usize = 0x560;
    pub const DR6: usize = 0x568;
    pub const RFLAGS: usize = 0x570;
    pub const RIP: usize = 0x578;
    pub const RSP: usize = 0x5d8;
    pub const RAX: usize = 0x5f8;
    pub const G_PAT: usize = 0x668; // Guest PAT (with nested paging)
    pub const DBGCTL: usize = 0x670; // Guest IA32_DEBUGCTL (loaded only with LBR virtualization)
}

/// Intercept vector 3 (VMCB 0x00C) bits (APM Vol. 2 Table B-1).
pub mod intercept3 {
    pub const NMI: u32 = 1 << 1;
    pub const INIT: u32 = 1 << 3;
    pub const CPUID: u32 = 1 << 18;
    pub const INVD: u32 = 1 << 22;
    pub const INVLPGA: u32 = 1 << 26;
    pub const IOIO: u32 = 1 << 27; // IOIO_PROT: I/O through the permission map
    pub const MSR: u32 = 1 << 28; // MSR_PROT: MSR accesses through the permission map
    pub const SHUTDOWN: u32 = 1 << 31;
}

/// Intercept vector 4 (VMCB 0x010) bits (APM Vol. 2 Table B-1).
pub mod intercept4 {
    pub const SVM_INSTRUCTIONS: u32 = 0x7f; // VMRUN, VMMCALL, VMLOAD, VMSAVE, STGI, CLGI, SKINIT
    pub const XSETBV: u32 = 1 << 13; // XSETBV (validated like on VMX, where it always exits)
}

/// Exit codes (APM Vol. 2 Appendix C, Table C-1).
pub mod exit {
    pub const NMI: u64 = 0x61; // Physical NMI
    pub const INIT: u64 = 0x63; // INIT signal
    pub const CPUID: u64 = 0x72;
    pub const INVD: u64 = 0x76;
    pub const INVLPGA: u64 = 0x7a;
    pub const IOIO: u64 = 0x7b; // IN/OUT/INS/OUTS (EXITINFO1 per §15.10.2)
    pub const MSR: u64 = 0x7c; // RDMSR (EXITINFO1 = 0) or WRMSR (1)
    pub const SHUTDOWN: u64 = 0x7f; // Shutdown (a triple fault)
    pub const VMRUN: u64 = 0x80;
    pub const VMMCALL: u64 = 0x81;
    pub const VMLOAD: u64 = 0x82;
    pub const VMSAVE: u64 = 0x83;
    pub const STGI: u64 = 0x84;
    pub const CLGI: u64 = 0x85;
    pub const SKINIT: u64 = 0x86;
    pub const XSETBV: u64 = 0x8d;
    pub const NPF: u64 = 0x400; // Nested page fault (EXITINFO1 #PF error code, EXITINFO2 GPA)
    pub const INVALID: u64 = u64::MAX; // VMRUN refused the guest state (VMEXIT_INVALID, -1)
}
