//! The local APIC, as far as the hypervisor itself needs it: its ID and the
//! INIT/SIPI sequence that starts application processors. Works in xAPIC
//! (MMIO) and x2APIC (MSR) mode, whichever the firmware left enabled.

use super::instr;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_EXTD: u64 = 1 << 10;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

const XAPIC_ID: u64 = 0x20;
const XAPIC_SVR: u64 = 0xf0;
const XAPIC_ICR_LOW: u64 = 0x300;
const XAPIC_ICR_HIGH: u64 = 0x310;
const X2APIC_ID_MSR: u32 = 0x802;
const X2APIC_SVR_MSR: u32 = 0x80f;
const X2APIC_ICR_MSR: u32 = 0x830;

const ICR_DELIVERY_INIT: u32 = 0b101 << 8;
const ICR_DELIVERY_STARTUP: u32 = 0b110 << 8;
const ICR_LEVEL_ASSERT: u32 = 1 << 14;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
const SVR_APIC_ENABLE: u32 = 1 << 8;

/// How this core's local APIC is addressed.
#[derive(Clone, Copy, Debug)]
pub enum LocalApic {
    /// Memory-mapped at this (identity-mapped) physical address.
    XApic(u64),
    /// Through the x2APIC MSRs.
    X2Apic,
}

impl LocalApic {
    /// Finds this core's APIC mode from `IA32_APIC_BASE`, enabling the APIC
    /// (software-enable bit in the spurious vector register) if needed.
    pub fn this_core() -> LocalApic {
        // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU.
        let mut base = unsafe { instr::rdmsr(IA32_APIC_BASE) };
        if base & APIC_BASE_ENABLE == 0 {
            base |= APIC_BASE_ENABLE;
            // SAFETY: globally enabling the local APIC in its current mode
            // (xAPIC, since EXTD cannot be set while disabled) changes
            // nothing else.
            unsafe { instr::wrmsr(IA32_APIC_BASE, base) };
        }
        let apic = if base & APIC_BASE_EXTD != 0 {
            LocalApic::X2Apic
        } else {
            LocalApic::XApic(base & APIC_BASE_ADDR_MASK)
        };
        let svr = apic.read(XAPIC_SVR, X2APIC_SVR_MSR);
        if svr & SVR_APIC_ENABLE == 0 {
            apic.write(XAPIC_SVR, X2APIC_SVR_MSR, svr | SVR_APIC_ENABLE | 0xff);
        }
        apic
    }

    fn read(self, mmio_offset: u64, msr: u32) -> u32 {
        match self {
            // SAFETY: the xAPIC page is identity-mapped (boot page tables map
            // 0..4 GiB) and the offset is a readable APIC register.
            LocalApic::XApic(base) => unsafe {
                core::ptr::read_volatile((base + mmio_offset) as *const u32)
            },
            // SAFETY: x2APIC mode is on, so the x2APIC MSR range exists.
            LocalApic::X2Apic => unsafe { instr::rdmsr(msr) as u32 },
        }
    }

    fn write(self, mmio_offset: u64, msr: u32, value: u32) {
        match self {
            // SAFETY: as in `read`; the register is writable.
            LocalApic::XApic(base) => unsafe {
                core::ptr::write_volatile((base + mmio_offset) as *mut u32, value)
            },
            // SAFETY: x2APIC mode is on, so the x2APIC MSR range exists.
            LocalApic::X2Apic => unsafe { instr::wrmsr(msr, u64::from(value)) },
        }
    }

    /// This core's APIC ID.
    pub fn id(self) -> u32 {
        match self {
            LocalApic::XApic(_) => self.read(XAPIC_ID, X2APIC_ID_MSR) >> 24,
            LocalApic::X2Apic => self.read(XAPIC_ID, X2APIC_ID_MSR),
        }
    }

    fn send_ipi(self, destination: u32, command: u32) {
        match self {
            LocalApic::XApic(_) => {
                self.write(XAPIC_ICR_HIGH, 0, destination << 24);
                self.write(XAPIC_ICR_LOW, 0, command);
                for _ in 0..1_000_000 {
                    if self.read(XAPIC_ICR_LOW, 0) & ICR_DELIVERY_PENDING == 0 {
                        break;
                    }
                    core::hint::spin_loop();
                }
            }
            LocalApic::X2Apic => {
                let value = (u64::from(destination) << 32) | u64::from(command);
                // SAFETY: x2APIC mode is on; the ICR write sends the IPI the
                // caller asked for.
                unsafe { instr::wrmsr(X2APIC_ICR_MSR, value) };
            }
        }
    }

    /// Sends INIT to the core with APIC ID `destination`.
    pub fn send_init(self, destination: u32) {
        self.send_ipi(destination, ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT);
    }

    /// Sends a start-up IPI that starts `destination` at `vector << 12`.
    pub fn send_startup(self, destination: u32, vector: u8) {
        self.send_ipi(
            destination,
            ICR_DELIVERY_STARTUP | ICR_LEVEL_ASSERT | u32::from(vector),
        );
    }
}
