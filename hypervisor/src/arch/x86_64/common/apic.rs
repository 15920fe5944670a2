//! The local APIC, as far as the hypervisor itself needs it: its ID and the
//! INIT/SIPI sequence that starts application processors. Works in xAPIC
//! (MMIO) and x2APIC (MSR) mode, whichever the firmware left enabled.

use super::{fixup, instr, time};
use hypervisor::exit_handler::CpuRefused;
use hypervisor::timer_policy::{MSR_TIMER_DIVIDE, MSR_TIMER_INITIAL, MSR_TIMER_LVT};

use abi::regs::{apic_base, cpuid, delivery, icr, lvt, timer_divide, SVR_APIC_ENABLE};
use x86::apic::xapic::{
    XAPIC_EOI, XAPIC_ICR0, XAPIC_ICR1, XAPIC_ID, XAPIC_ISR0, XAPIC_LVT_TIMER, XAPIC_SVR,
    XAPIC_TIMER_CURRENT_COUNT, XAPIC_TIMER_DIV_CONF, XAPIC_TIMER_INIT_COUNT, XAPIC_VERSION,
};
use x86::msr::{IA32_APIC_BASE, IA32_X2APIC_APICID, IA32_X2APIC_CUR_COUNT, IA32_X2APIC_ICR};
use x86::msr::{IA32_X2APIC_EOI, IA32_X2APIC_ISR0};
use x86::msr::{IA32_X2APIC_LVT_CMCI as LVT_CMCI, IA32_X2APIC_LVT_ERROR as LVT_ERROR};
use x86::msr::{IA32_X2APIC_LVT_TIMER as LVT_TIMER, IA32_X2APIC_SIVR, IA32_X2APIC_VERSION};

const IPI_NMI: u32 = delivery::NMI << delivery::SHIFT;
const IPI_INIT: u32 = delivery::INIT << delivery::SHIFT;
const IPI_STARTUP: u32 = delivery::STARTUP << delivery::SHIFT;

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
        if base & apic_base::ENABLE == 0 {
            base |= apic_base::ENABLE;
            // SAFETY: globally enabling the local APIC in its current mode
            // (xAPIC, since EXTD cannot be set while disabled) changes
            // nothing else.
            unsafe { instr::wrmsr(IA32_APIC_BASE, base) };
        }
        let apic = if base & apic_base::EXTD != 0 {
            LocalApic::X2Apic
        } else {
            LocalApic::XApic(base & apic_base::ADDR_MASK)
        };
        let svr = apic.read(XAPIC_SVR, IA32_X2APIC_SIVR);
        if svr & SVR_APIC_ENABLE == 0 {
            apic.write(XAPIC_SVR, IA32_X2APIC_SIVR, svr | SVR_APIC_ENABLE | 0xff);
        }
        apic
    }

    fn read(self, mmio_offset: u32, msr: u32) -> u32 {
        match self {
            // SAFETY: the xAPIC page is identity-mapped (boot page tables map
            // 0..4 GiB) and the offset is a readable APIC register.
            LocalApic::XApic(base) => unsafe {
                core::ptr::read_volatile((base + u64::from(mmio_offset)) as *const u32)
            },
            // SAFETY: x2APIC mode is on, so the x2APIC MSR range exists.
            // Deliberate truncation: these registers are 32 bits wide (the
            // ICR, the only 64-bit one, is never read here).
            LocalApic::X2Apic => unsafe { abi::regs::half::low32(instr::rdmsr(msr)) },
        }
    }

    fn write(self, mmio_offset: u32, msr: u32, value: u32) {
        match self {
            // SAFETY: as in `read`; the register is writable.
            LocalApic::XApic(base) => unsafe {
                core::ptr::write_volatile((base + u64::from(mmio_offset)) as *mut u32, value)
            },
            // SAFETY: x2APIC mode is on, so the x2APIC MSR range exists.
            LocalApic::X2Apic => unsafe { instr::wrmsr(msr, u64::from(value)) },
        }
    }

    /// This core's APIC ID.
    pub fn id(self) -> u32 {
        match self {
            LocalApic::XApic(_) => self.read(XAPIC_ID, IA32_X2APIC_APICID) >> 24,
            LocalApic::X2Apic => self.read(XAPIC_ID, IA32_X2APIC_APICID),
        }
    }

    fn send_ipi(self, destination: u32, command: u32) {
        match self {
            LocalApic::XApic(_) => {
                self.write(XAPIC_ICR1, 0, destination << 24);
                self.write(XAPIC_ICR0, 0, command);
                for _ in 0..1_000_000 {
                    if self.read(XAPIC_ICR0, 0) & icr::SEND_PENDING == 0 {
                        break;
                    }
                    core::hint::spin_loop();
                }
            }
            LocalApic::X2Apic => {
                let value =
                    (u64::from(destination) << icr::X2APIC_DESTINATION_SHIFT) | u64::from(command);
                // SAFETY: x2APIC mode is on; the ICR write sends the IPI the
                // caller asked for.
                unsafe { instr::wrmsr(IA32_X2APIC_ICR, value) };
            }
        }
    }

    /// Switches this core's local APIC to x2APIC mode (what partitions
    /// get); `None` if the CPU has no x2APIC.
    pub fn enable_x2apic(self) -> Option<LocalApic> {
        if raw_cpuid::native_cpuid::cpuid_count(1, 0).ecx & cpuid::leaf1_ecx::X2APIC == 0 {
            return None;
        }
        // SAFETY: IA32_APIC_BASE exists; going from enabled xAPIC (or x2APIC)
        // to x2APIC mode is an architecturally allowed transition. Any
        // `LocalApic::XApic` handle of this core is stale afterwards: its
        // users re-derive the mode with `this_core` (the partition code
        // does, after the partition ends).
        unsafe {
            let base = instr::rdmsr(IA32_APIC_BASE);
            instr::wrmsr(IA32_APIC_BASE, base | apic_base::ENABLE | apic_base::EXTD);
        }
        Some(LocalApic::X2Apic)
    }

    /// Sends a fixed interrupt with `vector` to `destination`.
    pub fn send_fixed(self, destination: u32, vector: u8) {
        self.send_ipi(destination, icr::LEVEL_ASSERT | u32::from(vector));
    }

    /// Sends an NMI to `destination` (to make it leave its guest).
    pub fn send_nmi(self, destination: u32) {
        self.send_ipi(destination, IPI_NMI | icr::LEVEL_ASSERT);
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
            (LocalApic::X2Apic, LVT_CMCI | LVT_TIMER..=LVT_ERROR) => unsafe {
                fixup::checked_wrmsr(msr, u64::from(value))
            },
            _ => Err(CpuRefused),
        }
    }

    /// "Max LVT Entry" of this APIC: version register bits 23:16, the
    /// number of LVT entries minus one (Intel SDM Vol. 3A §11.4.8).
    pub fn max_lvt_entry(self) -> u8 {
        // The field is bits 23:16: byte 2.
        self.read(XAPIC_VERSION, IA32_X2APIC_VERSION).to_le_bytes()[2]
    }

    /// Stops the local timer (after a partition ended on this core): masks
    /// its LVT entry and zeroes the initial count, which stops the count
    /// (Intel SDM Vol. 3A §11.5.4). Masking alone leaves a periodic timer
    /// running: harmless on hardware, but an emulator (QEMU TCG) keeps
    /// servicing a storming timer's expiries for everyone.
    pub fn stop_timer(self) {
        self.write(XAPIC_LVT_TIMER, MSR_TIMER_LVT, lvt::MASK);
        self.write(XAPIC_TIMER_INIT_COUNT, MSR_TIMER_INITIAL, 0);
    }

    /// Acknowledges every interrupt a partition left in service, so the
    /// next incarnation on this core starts with an empty ISR: each EOI
    /// clears the highest-priority bit set (Intel SDM Vol. 3A §11.8.5).
    pub fn clear_in_service(self) {
        for i in 0..8 {
            let isr = self.read(XAPIC_ISR0 + 0x10 * i, IA32_X2APIC_ISR0 + i);
            for _ in 0..isr.count_ones() {
                self.write(XAPIC_EOI, IA32_X2APIC_EOI, 0);
            }
        }
    }

    /// Reads a timer register for a partition's timer rule: the LVT
    /// (0x832), initial count (0x838) or divide configuration (0x83E), by
    /// its x2APIC MSR number in either mode; 0 for any other number.
    pub fn read_timer(self, msr: u32) -> u32 {
        match msr {
            MSR_TIMER_LVT => self.read(XAPIC_LVT_TIMER, msr),
            MSR_TIMER_INITIAL => self.read(XAPIC_TIMER_INIT_COUNT, msr),
            MSR_TIMER_DIVIDE => self.read(XAPIC_TIMER_DIV_CONF, msr),
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
        self.write(XAPIC_LVT_TIMER, MSR_TIMER_LVT, lvt::MASK);
        self.write(XAPIC_TIMER_DIV_CONF, MSR_TIMER_DIVIDE, timer_divide::BY_1);
        let start = time::now_us();
        self.write(XAPIC_TIMER_INIT_COUNT, MSR_TIMER_INITIAL, u32::MAX);
        time::delay_us(window_us);
        let current = self.read(XAPIC_TIMER_CURRENT_COUNT, IA32_X2APIC_CUR_COUNT);
        let elapsed = time::now_us().saturating_sub(start);
        self.stop_timer();
        (u64::from(u32::MAX - current), elapsed)
    }

    /// Sends INIT to the core with APIC ID `destination`.
    pub fn send_init(self, destination: u32) {
        self.send_ipi(destination, IPI_INIT | icr::LEVEL_ASSERT);
    }

    /// Sends a start-up IPI that starts `destination` at `vector << 12`.
    pub fn send_startup(self, destination: u32, vector: u8) {
        self.send_ipi(
            destination,
            IPI_STARTUP | icr::LEVEL_ASSERT | u32::from(vector),
        );
    }
}
