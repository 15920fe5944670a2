//! Hardware register facts the `x86` crate (0.52) does not name: the one
//! place in the tree where they are written. MSR numbers, control-register
//! and XCR0 flags, x2APIC MSRs and xAPIC offsets, descriptor-table pointers
//! come from `x86` itself (`x86::msr`, `x86::controlregs`,
//! `x86::apic::xapic`, `x86::dtables`); only what it lacks is here, each
//! with the manual section it comes from.
//!
//! Why in `abi`: both the hypervisor and the guest kernel program the same
//! registers (the guest's APIC timer and LVT writes are what the
//! hypervisor's policies validate), and `abi` is the one dependency-free
//! `no_std` crate both already share (as for the platform's ports,
//! [`crate::ports`]). These are facts of the architecture, not a Flotilla
//! contract: they carry no version.

/// `IA32_APIC_BASE` bits (Intel SDM Vol. 3A §11.4.4, Figure 11-5; x2APIC
/// enable: §11.12.1, Table 11-5).
pub mod apic_base {
    /// EXTD: x2APIC mode (with [`ENABLE`]).
    pub const EXTD: u64 = 1 << 10;
    /// EN: the local APIC is globally enabled.
    pub const ENABLE: u64 = 1 << 11;
    /// The xAPIC page's physical base (bits 51:12).
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
}

/// Register halves, where the architecture drops the upper bits by design:
/// a 32-bit operand in a 64-bit register (ECX of RCX for RDMSR, the leaf in
/// EAX for CPUID), and the EDX:EAX pairs of RDMSR, WRMSR and XSETBV (Intel
/// SDM Vol. 2B, Vol. 2C). The one place these truncating casts are written.
#[allow(
    clippy::cast_possible_truncation,
    reason = "each function keeps the low bits on purpose"
)]
pub mod half {
    /// The low 32 bits (EAX of RAX).
    pub const fn low32(v: u64) -> u32 {
        v as u32
    }

    /// The low 16 bits.
    pub const fn low16(v: u64) -> u16 {
        v as u16
    }

    /// The low 8 bits.
    pub const fn low8(v: u64) -> u8 {
        v as u8
    }

    /// `(high, low)` 32-bit halves of `v`: EDX and EAX of an EDX:EAX value.
    pub const fn split_u64(v: u64) -> (u32, u32) {
        ((v >> 32) as u32, v as u32)
    }

    /// The 64-bit value `high:low` (EDX:EAX).
    pub const fn join_u32(high: u32, low: u32) -> u64 {
        ((high as u64) << 32) | low as u64
    }

    /// EDX:EAX from the two registers, their upper halves ignored (WRMSR,
    /// XSETBV).
    pub const fn edx_eax(rdx: u64, rax: u64) -> u64 {
        join_u32(low32(rdx), low32(rax))
    }
}

/// The physical-address bits 51:12 of a 64-bit paging-structure entry
/// (Intel SDM Vol. 3A §4.5, Tables 4-14 to 4-20; AMD APM Vol. 2 §5.3.3;
/// the same format in nested tables, §15.25.5).
pub const PTE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Spurious-interrupt vector register: APIC software enable (Intel SDM
/// Vol. 3A §11.9, Figure 11-23).
pub const SVR_APIC_ENABLE: u32 = 1 << 8;

/// Delivery modes, as encoded in bits 10:8 of an LVT entry and of the ICR
/// (Intel SDM Vol. 3A §11.5.1 Figure 11-8, §11.6.1 Figure 11-12). In an LVT
/// entry 001, 011 and 110 are reserved.
pub mod delivery {
    /// Where the delivery-mode field starts.
    pub const SHIFT: u32 = 8;
    /// The field itself (bits 10:8).
    pub const MASK: u32 = 0b111 << SHIFT;
    /// Fixed.
    pub const FIXED: u32 = 0b000;
    /// Lowest priority (ICR only).
    pub const LOWEST_PRIORITY: u32 = 0b001;
    /// SMI.
    pub const SMI: u32 = 0b010;
    /// NMI.
    pub const NMI: u32 = 0b100;
    /// INIT.
    pub const INIT: u32 = 0b101;
    /// Start-up (ICR only).
    pub const STARTUP: u32 = 0b110;
    /// ExtINT (LVT only).
    pub const EXTINT: u32 = 0b111;
}

/// Local vector table entry fields (Intel SDM Vol. 3A §11.5.1, Figure 11-8).
pub mod lvt {
    /// Vector (bits 7:0).
    pub const VECTOR: u32 = 0xff;
    /// Delivery status (read-only).
    pub const DELIVERY_STATUS: u32 = 1 << 12;
    /// Interrupt input pin polarity (LINT0/1).
    pub const POLARITY: u32 = 1 << 13;
    /// Remote IRR (read-only, LINT0/1).
    pub const REMOTE_IRR: u32 = 1 << 14;
    /// Trigger mode (LINT0/1).
    pub const TRIGGER_MODE: u32 = 1 << 15;
    /// Masked.
    pub const MASK: u32 = 1 << 16;
    /// Timer mode field (bits 18:17).
    pub const TIMER_MODE: u32 = 0b11 << 17;
    /// Timer mode one-shot.
    pub const TIMER_ONE_SHOT: u32 = 0b00 << 17;
    /// Timer mode periodic.
    pub const TIMER_PERIODIC: u32 = 0b01 << 17;
    /// Timer mode TSC-deadline.
    pub const TIMER_TSC_DEADLINE: u32 = 0b10 << 17;
}

/// APIC timer divide configuration register (Intel SDM Vol. 3A §11.5.4,
/// Figure 11-10): the divide value is bits 3, 1 and 0; bit 2 and bits 31:4
/// are reserved.
pub mod timer_divide {
    /// The bits that select the divisor.
    pub const BITS: u32 = 0b1011;
    /// Divide by 1.
    pub const BY_1: u32 = 0b1011;
    /// Divide by 16.
    pub const BY_16: u32 = 0b0011;
}

/// Interrupt command register fields beyond the delivery mode (Intel SDM
/// Vol. 3A §11.6.1, Figure 11-12; x2APIC layout: §11.12.9).
pub mod icr {
    /// Destination mode logical (clear: physical).
    pub const LOGICAL: u64 = 1 << 11;
    /// Delivery status: send pending (xAPIC).
    pub const SEND_PENDING: u32 = 1 << 12;
    /// Level assert (clear: de-assert, INIT level de-assert only).
    pub const LEVEL_ASSERT: u32 = 1 << 14;
    /// Where the destination shorthand field (bits 19:18) starts.
    pub const SHORTHAND_SHIFT: u32 = 18;
    /// Shorthand "self".
    pub const SHORTHAND_SELF: u64 = 0b01 << SHORTHAND_SHIFT;
    /// Shorthand "all excluding self".
    pub const SHORTHAND_ALL_BUT_SELF: u64 = 0b11 << SHORTHAND_SHIFT;
    /// Where the destination starts in the x2APIC ICR (bits 63:32).
    pub const X2APIC_DESTINATION_SHIFT: u32 = 32;
}

/// `IA32_EFER` bits (Intel SDM Vol. 3A §2.2.1, Table 2-1; AMD APM Vol. 2
/// §3.1.7, Figure 3-8 for SVME).
pub mod efer {
    /// SCE: SYSCALL/SYSRET enable.
    pub const SCE: u64 = 1 << 0;
    /// LME: long mode enable.
    pub const LME: u64 = 1 << 8;
    /// LMA: long mode active (the processor's).
    pub const LMA: u64 = 1 << 10;
    /// NXE: no-execute enable.
    pub const NXE: u64 = 1 << 11;
    /// SVME: secure virtual machine enable (AMD).
    pub const SVME: u64 = 1 << 12;
}

/// AMD's SVM MSRs (AMD APM Vol. 2 §15.30.1 and §15.30.4).
pub mod amd_msr {
    /// VM_CR: SVM lock and disable bits.
    pub const VM_CR: u32 = 0xc001_0114;
    /// VM_HSAVE_PA: the host state-save area of VMRUN.
    pub const VM_HSAVE_PA: u32 = 0xc001_0117;
}

/// IA32_VMX_BASIC bit 55: the TRUE capability MSRs exist (Intel SDM Vol. 3D
/// Appendix A.1).
pub const VMX_BASIC_TRUE_CONTROLS: u64 = 1 << 55;

/// IA32_SPEC_CTRL, the speculation-control MSR (Intel SDM Vol. 4, Table 2-2).
pub const IA32_SPEC_CTRL: u32 = 0x48;

/// XCR0 state components the `x86` crate does not name: AMX TILECFG (17)
/// and TILEDATA (18) (Intel SDM Vol. 1 §13.1, Table 13-1).
pub const XCR0_AMX: u64 = (1 << 17) | (1 << 18);

/// CPUID feature bits (Intel SDM Vol. 2A, CPUID, Tables 3-8 to 3-10 and the
/// leaf 07h/0Dh descriptions; AMD APM Vol. 3, Appendix E, Fn8000_0001 and
/// Fn8000_0008).
pub mod cpuid {
    /// CPUID.1:ECX.
    pub mod leaf1_ecx {
        /// 64-bit debug store.
        pub const DTES64: u32 = 1 << 2;
        /// VMX.
        pub const VMX: u32 = 1 << 5;
        /// Perfmon and debug capability (IA32_PERF_CAPABILITIES).
        pub const PDCM: u32 = 1 << 15;
        /// x2APIC.
        pub const X2APIC: u32 = 1 << 21;
        /// TSC-deadline timer.
        pub const TSC_DEADLINE: u32 = 1 << 24;
        /// XSAVE family.
        pub const XSAVE: u32 = 1 << 26;
        /// CR4.OSXSAVE is set.
        pub const OSXSAVE: u32 = 1 << 27;
        /// Running under a hypervisor.
        pub const HYPERVISOR: u32 = 1 << 31;
    }
    /// CPUID.1:EDX.
    pub mod leaf1_edx {
        /// Machine-check exception.
        pub const MCE: u32 = 1 << 7;
        /// Thermal monitor and clock control MSRs (IA32_THERM_*).
        pub const ACPI: u32 = 1 << 22;
        /// Thermal monitor (automatic).
        pub const TM: u32 = 1 << 29;
        /// MTRRs.
        pub const MTRR: u32 = 1 << 12;
        /// Machine-check architecture.
        pub const MCA: u32 = 1 << 14;
        /// Debug store.
        pub const DS: u32 = 1 << 21;
    }
    /// CPUID.6 (thermal and power management).
    pub mod leaf6 {
        /// EAX: the APIC timer always runs (ARAT).
        pub const EAX_ARAT: u32 = 1 << 2;
    }
    /// CPUID.(7,0).
    pub mod leaf7 {
        /// IA32_TSC_ADJUST.
        pub const EBX_TSC_ADJUST: u32 = 1 << 1;
        /// INVPCID.
        pub const EBX_INVPCID: u32 = 1 << 10;
        /// Protection keys for user pages.
        pub const ECX_PKU: u32 = 1 << 3;
        /// CR4.PKE is set.
        pub const ECX_OSPKE: u32 = 1 << 4;
        /// RDPID.
        pub const ECX_RDPID: u32 = 1 << 22;
        /// SRBDS mitigation MSR.
        pub const EDX_SRBDS_CTRL: u32 = 1 << 9;
        /// IBRS and IBPB.
        pub const EDX_IBRS_IBPB: u32 = 1 << 26;
        /// STIBP.
        pub const EDX_STIBP: u32 = 1 << 27;
        /// IA32_FLUSH_CMD.
        pub const EDX_L1D_FLUSH: u32 = 1 << 28;
        /// IA32_ARCH_CAPABILITIES.
        pub const EDX_ARCH_CAPABILITIES: u32 = 1 << 29;
        /// IA32_CORE_CAPABILITIES.
        pub const EDX_CORE_CAPABILITIES: u32 = 1 << 30;
        /// Speculative store bypass disable.
        pub const EDX_SSBD: u32 = 1 << 31;
    }
    /// CPUID.(0Dh,1):EAX.
    pub mod leafd1_eax {
        /// XSAVES/XRSTORS and IA32_XSS.
        pub const XSAVES: u32 = 1 << 3;
        /// Extended feature disable (IA32_XFD).
        pub const XFD: u32 = 1 << 4;
    }
    /// CPUID.8000_0001h.
    pub mod ext1 {
        /// SVM.
        pub const ECX_SVM: u32 = 1 << 2;
        /// Core performance counter extensions.
        pub const ECX_PERFCTR_CORE: u32 = 1 << 23;
        /// Northbridge performance counters.
        pub const ECX_PERFCTR_NB: u32 = 1 << 24;
        /// Last-level-cache performance counters.
        pub const ECX_PERFCTR_LLC: u32 = 1 << 28;
        /// Machine-check exception.
        pub const EDX_MCE: u32 = 1 << 7;
        /// MTRRs.
        pub const EDX_MTRR: u32 = 1 << 12;
        /// Machine-check architecture.
        pub const EDX_MCA: u32 = 1 << 14;
        /// 1 GiB pages.
        pub const EDX_PAGE1GB: u32 = 1 << 26;
        /// RDTSCP.
        pub const EDX_RDTSCP: u32 = 1 << 27;
    }
    /// CPUID.8000_0008h:EBX (AMD speculation controls).
    pub mod ext8_ebx {
        /// IBPB.
        pub const IBPB: u32 = 1 << 12;
        /// IBRS.
        pub const IBRS: u32 = 1 << 14;
        /// STIBP.
        pub const STIBP: u32 = 1 << 15;
        /// SSBD.
        pub const SSBD: u32 = 1 << 24;
        /// VIRT_SPEC_CTRL SSBD.
        pub const VIRT_SSBD: u32 = 1 << 25;
    }
}

/// The 8254 PIT's counter ports (channels 0 and 2; 1 between them).
pub mod pit {
    /// Channel 0's counter.
    pub const COUNTER0: u16 = 0x40;
    /// Channel 2's counter (the speaker's, which kernels calibrate with).
    pub const COUNTER2: u16 = 0x42;
}

/// IA32_MISC_ENABLE bits (Intel SDM Vol. 4, Table 2-2).
pub mod misc_enable {
    /// Fast-strings enable.
    pub const FAST_STRINGS: u64 = 1 << 0;
    /// Branch trace storage unavailable.
    pub const BTS_UNAVAILABLE: u64 = 1 << 11;
    /// Processor event-based sampling unavailable.
    pub const PEBS_UNAVAILABLE: u64 = 1 << 12;
}

/// The MC146818 CMOS clock's registers (index written to port 0x70, data
/// at 0x71) and the status values a read-only clock reports.
pub mod cmos {
    /// Index port (bit 7 masks NMIs).
    pub const INDEX_PORT: u16 = 0x70;
    /// Data port.
    pub const DATA_PORT: u16 = 0x71;
    /// Seconds.
    pub const SECONDS: u8 = 0x00;
    /// Minutes.
    pub const MINUTES: u8 = 0x02;
    /// Hours.
    pub const HOURS: u8 = 0x04;
    /// Day of the week (1 = Sunday).
    pub const WEEKDAY: u8 = 0x06;
    /// Day of the month.
    pub const DAY: u8 = 0x07;
    /// Month.
    pub const MONTH: u8 = 0x08;
    /// Year in the century.
    pub const YEAR: u8 = 0x09;
    /// Status register A.
    pub const STATUS_A: u8 = 0x0a;
    /// Register A: UIP clear, 32.768 kHz time base, 1024 Hz rate.
    pub const STATUS_A_VALUE: u8 = 0x26;
    /// Status register B.
    pub const STATUS_B: u8 = 0x0b;
    /// Register B: 24-hour mode, BCD, no interrupts.
    pub const STATUS_B_VALUE: u8 = 0x02;
    /// Status register D.
    pub const STATUS_D: u8 = 0x0d;
    /// Register D: valid RAM and time.
    pub const STATUS_D_VALUE: u8 = 0x80;
    /// Century (the index the FADT's `CENTURY` field names).
    pub const CENTURY: u8 = 0x32;
}

/// The registers of a 16450/16550 UART, as offsets from its base port, and
/// the bits a driver probes (PC16550D data sheet, Table II).
pub mod uart {
    /// Receive buffer (read) / transmit holding (write); divisor latch low with DLAB.
    pub const DATA: u16 = 0;
    /// Interrupt enable; divisor latch high with DLAB.
    pub const IER: u16 = 1;
    /// Interrupt identification (read) / FIFO control (write).
    pub const IIR: u16 = 2;
    /// Line control.
    pub const LCR: u16 = 3;
    /// Modem control.
    pub const MCR: u16 = 4;
    /// Line status.
    pub const LSR: u16 = 5;
    /// Modem status.
    pub const MSR: u16 = 6;
    /// Scratch.
    pub const SCR: u16 = 7;
    /// LCR: divisor latch access.
    pub const LCR_DLAB: u8 = 1 << 7;
    /// IER: transmitter holding register empty interrupt.
    pub const IER_THRI: u8 = 1 << 1;
    /// IIR: no interrupt pending.
    pub const IIR_NONE: u8 = 0x01;
    /// IIR: transmitter holding register empty.
    pub const IIR_THRI: u8 = 0x02;
    /// LSR: transmit holding register and transmitter empty.
    pub const LSR_TEMT_THRE: u8 = 0x60;
    /// MCR: loopback.
    pub const MCR_LOOP: u8 = 1 << 4;
    /// MSR: carrier detect, data set ready, clear to send.
    pub const MSR_DCD_DSR_CTS: u8 = 0xb0;
}

#[cfg(test)]
mod tests {
    use super::half::*;

    #[test]
    fn halves_split_and_join_edx_eax() {
        let v = 0x1122_3344_5566_7788;
        assert_eq!(split_u64(v), (0x1122_3344, 0x5566_7788));
        assert_eq!(join_u32(0x1122_3344, 0x5566_7788), v);
        assert_eq!((low32(v), low16(v), low8(v)), (0x5566_7788, 0x7788, 0x88));
        // WRMSR/XSETBV ignore the upper halves of RDX and RAX.
        assert_eq!(
            edx_eax(0xffff_ffff_0000_0001, 0xffff_ffff_0000_0002),
            0x1_0000_0002
        );
    }
}
