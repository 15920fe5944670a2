//! The local APIC, as far as the hypervisor itself needs it: its ID and the
//! INIT/SIPI sequence that starts application processors. Works in xAPIC
//! (MMIO) and x2APIC (MSR) mode, whichever the firmware left enabled.

use super::{fixup, instr, time};
use hypervisor::exit_handler::CpuRefused;
use hypervisor::timer_policy::{MSR_TIMER_DIVIDE, MSR_TIMER_INITIAL, MSR_TIMER_LVT};

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_EXTD: u64 = 1 << 10;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

const XAPIC_ID: u64 = 0x20;
const XAPIC_SVR: u64 = 0xf0;
const XAPIC_VERSION: u64 = 0x30;
const XAPIC_ICR_LOW: u64 = 0x300;
const XAPIC_ICR_HIGH: u64 = 0x310;
const X2APIC_ID_MSR: u32 = 0x802;
const X2APIC_SVR_MSR: u32 = 0x80f;
const X2APIC_VERSION_MSR: u32 = 0x803;
const X2APIC_ICR_MSR: u32 = 0x830;

const XAPIC_LVT_TIMER: u64 = 0x320;
const XAPIC_TIMER_INITIAL: u64 = 0x380;
const XAPIC_TIMER_CURRENT: u64 = 0x390;
const X2APIC_TIMER_CURRENT_MSR: u32 = 0x839;
const XAPIC_TIMER_DIVIDE: u64 = 0x3e0;
/// Divide configuration "divide by 1" (Intel SDM Vol. 3A Figure 11-10).
const TIMER_DIVIDE_BY_1: u32 = 0b1011;
const ICR_DELIVERY_NMI: u32 = 0b100 << 8;
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

    /// Switches this core's local APIC to x2APIC mode (what partitions
    /// get); `None` if the CPU has no x2APIC.
    pub fn enable_x2apic(self) -> Option<LocalApic> {
        if raw_cpuid::native_cpuid::cpuid_count(1, 0).ecx & (1 << 21) == 0 {
            return None;
        }
        // SAFETY: IA32_APIC_BASE exists; going from enabled xAPIC (or x2APIC)
        // to x2APIC mode is an architecturally allowed transition. Any
        // `LocalApic::XApic` handle of this core is stale afterwards: its
        // users re-derive the mode with `this_core` (the partition code
        // does, after the partition ends).
        unsafe {
            let base = instr::rdmsr(IA32_APIC_BASE);
            instr::wrmsr(IA32_APIC_BASE, base | APIC_BASE_ENABLE | APIC_BASE_EXTD);
        }
        Some(LocalApic::X2Apic)
    }

    /// Sends a fixed interrupt with `vector` to `destination`.
    pub fn send_fixed(self, destination: u32, vector: u8) {
        self.send_ipi(destination, ICR_LEVEL_ASSERT | u32::from(vector));
    }

    /// Sends an NMI to `destination` (to make it leave its guest).
    pub fn send_nmi(self, destination: u32) {
        self.send_ipi(destination, ICR_DELIVERY_NMI | ICR_LEVEL_ASSERT);
    }

    /// Writes a local vector table entry (x2APIC MSRs 0x82F, 0x832–0x837)
    /// in x2APIC mode, for a partition's validated LVT writes, under the
    /// exception fixup: a value the CPU refuses (#GP) is [`CpuRefused`],
    /// not a fault of the hypervisor. Refused outside x2APIC mode.
    pub fn write_lvt(self, msr: u32, value: u32) -> Result<(), CpuRefused> {
        match (self, msr) {
            // SAFETY: x2APIC mode is on and `msr` is an LVT register; the
            // value was validated by the exit policy (no reserved bit,
            // masked or fixed delivery), so it can only affect this core's
            // own interrupts; a #GP is recovered by the fixup.
            (LocalApic::X2Apic, 0x82f | 0x832..=0x837) => unsafe {
                fixup::checked_wrmsr(msr, u64::from(value))
            },
            _ => Err(CpuRefused),
        }
    }

    /// "Max LVT Entry" of this APIC: version register bits 23:16, the
    /// number of LVT entries minus one (Intel SDM Vol. 3A §11.4.8).
    pub fn max_lvt_entry(self) -> u8 {
        (self.read(XAPIC_VERSION, X2APIC_VERSION_MSR) >> 16) as u8
    }

    /// Stops the local timer (after a partition ended on this core): masks
    /// its LVT entry and zeroes the initial count, which stops the count
    /// (Intel SDM Vol. 3A §11.5.4). Masking alone leaves a periodic timer
    /// running: harmless on hardware, but an emulator (QEMU TCG) keeps
    /// servicing a storming timer's expiries for everyone.
    pub fn stop_timer(self) {
        self.write(XAPIC_LVT_TIMER, MSR_TIMER_LVT, 1 << 16);
        self.write(XAPIC_TIMER_INITIAL, MSR_TIMER_INITIAL, 0);
    }

    /// Reads a timer register for a partition's timer rule: the LVT
    /// (0x832), initial count (0x838) or divide configuration (0x83E), by
    /// its x2APIC MSR number in either mode; 0 for any other number.
    pub fn read_timer(self, msr: u32) -> u32 {
        match msr {
            MSR_TIMER_LVT => self.read(XAPIC_LVT_TIMER, msr),
            MSR_TIMER_INITIAL => self.read(XAPIC_TIMER_INITIAL, msr),
            MSR_TIMER_DIVIDE => self.read(XAPIC_TIMER_DIVIDE, msr),
            _ => 0,
        }
    }

    /// Writes the timer's initial count (0x838) or divide configuration
    /// (0x83E) in x2APIC mode for a partition's periodic timer, under the
    /// exception fixup (a refused value is [`CpuRefused`]). Refused for
    /// any other register and outside x2APIC mode.
    pub fn write_timer(self, msr: u32, value: u32) -> Result<(), CpuRefused> {
        match (self, msr) {
            // SAFETY: x2APIC mode is on and `msr` is the timer's initial
            // count or divide register, which affect only this core's own
            // timer interrupt; the exit policy checked the value (32 bits,
            // no reserved divide bit) and a #GP is recovered by the fixup.
            (LocalApic::X2Apic, MSR_TIMER_INITIAL | MSR_TIMER_DIVIDE) => unsafe {
                fixup::checked_wrmsr(msr, u64::from(value))
            },
            _ => Err(CpuRefused),
        }
    }

    /// Measures the timer against the TSC (`time::calibrate` must have
    /// run): counts down from `u32::MAX` at divide by 1, masked one-shot,
    /// for about `window_us`, then stops it. Returns the ticks counted and
    /// the microseconds that took (`timer_policy::floor_ticks` turns them
    /// into the periodic floor; a dead timer counts 0).
    pub fn measure_timer(self, window_us: u64) -> (u64, u64) {
        self.write(XAPIC_LVT_TIMER, MSR_TIMER_LVT, 1 << 16);
        self.write(XAPIC_TIMER_DIVIDE, MSR_TIMER_DIVIDE, TIMER_DIVIDE_BY_1);
        let start = time::now_us();
        self.write(XAPIC_TIMER_INITIAL, MSR_TIMER_INITIAL, u32::MAX);
        time::delay_us(window_us);
        let current = self.read(XAPIC_TIMER_CURRENT, X2APIC_TIMER_CURRENT_MSR);
        let elapsed = time::now_us().saturating_sub(start);
        self.stop_timer();
        (u64::from(u32::MAX - current), elapsed)
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
