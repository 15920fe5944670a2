//! The local APIC in x2APIC mode, through MSRs only: enabling it (bare
//! mode), the periodic timer, EOI, the APIC ID and sending IPIs.
//!
//! Under the hypervisor x2APIC is already on and `IA32_APIC_BASE` must not
//! be written (it is intercepted and fatal); the timer, SVR, EOI and ID
//! MSRs are the partition's own. Sending an IPI by writing the ICR is only
//! done by the `rogue` workload: legitimate IPIs go through `SEND_IPI`.

use super::cpu::{self, rdmsr, wrmsr};
use crate::block::{SPURIOUS_VECTOR, TIMER_VECTOR};
use abi::regs::{apic_base, cpuid::leaf1_ecx, half, lvt, timer_divide, SVR_APIC_ENABLE};

use x86::msr::{
    IA32_APIC_BASE, IA32_X2APIC_APICID, IA32_X2APIC_DIV_CONF, IA32_X2APIC_EOI,
    IA32_X2APIC_INIT_COUNT, IA32_X2APIC_SIVR,
};
/// x2APIC registers the `rogue` workload writes directly.
#[cfg_attr(not(feature = "hostile"), allow(unused_imports))]
pub use x86::msr::{
    IA32_X2APIC_ICR as X2APIC_ICR, IA32_X2APIC_LVT_ERROR as X2APIC_LVT_ERROR,
    IA32_X2APIC_LVT_LINT0 as X2APIC_LVT_LINT0, IA32_X2APIC_LVT_THERMAL as X2APIC_LVT_THERMAL,
    IA32_X2APIC_LVT_TIMER as X2APIC_LVT_TIMER, IA32_X2APIC_SELF_IPI as X2APIC_SELF_IPI,
};

/// EN and EXTD: the local APIC enabled in x2APIC mode.
const X2APIC_MODE: u64 = apic_base::ENABLE | apic_base::EXTD;

/// Why x2APIC could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApicError {
    /// CPUID.1:ECX\[21\] is clear.
    NoX2apic,
    /// Under the hypervisor and not in x2APIC mode (the hypervisor should
    /// have enabled it; the kernel may not write `IA32_APIC_BASE`).
    NotEnabledByHypervisor,
}

/// Makes sure the local APIC is in x2APIC mode. Writes `IA32_APIC_BASE`
/// only when `bare` and needed.
pub fn ensure_x2apic(bare: bool) -> Result<(), ApicError> {
    if cpu::cpuid(1, 0)[2] & leaf1_ecx::X2APIC == 0 {
        return Err(ApicError::NoX2apic);
    }
    // SAFETY: IA32_APIC_BASE exists on every CPU with a local APIC (x2APIC
    // support implies one); reading it has no side effects and is not
    // intercepted as fatal.
    let base = unsafe { rdmsr(IA32_APIC_BASE) };
    if base & X2APIC_MODE == X2APIC_MODE {
        return Ok(());
    }
    if !bare {
        return Err(ApicError::NotEnabledByHypervisor);
    }
    // Enabling xAPIC and x2APIC in one write is a valid transition from
    // either disabled or xAPIC mode.
    // SAFETY: bare mode (no hypervisor to object); x2APIC is supported
    // (checked above); the base address bits are kept; nothing in the
    // kernel uses the xAPIC MMIO page.
    unsafe { wrmsr(IA32_APIC_BASE, base | X2APIC_MODE) };
    Ok(())
}

/// The current value of `IA32_APIC_BASE`.
pub fn apic_base() -> u64 {
    // SAFETY: see `ensure_x2apic`: reading it is harmless.
    unsafe { rdmsr(IA32_APIC_BASE) }
}

/// This core's x2APIC ID. x2APIC mode must be on.
pub fn apic_id() -> u32 {
    // SAFETY: in x2APIC mode (ensured at boot) the ID MSR is readable.
    let id = unsafe { rdmsr(IA32_X2APIC_APICID) };
    // The x2APIC ID is the register's low 32 bits.
    half::low32(id)
}

/// The timer LVT: periodic, on [`TIMER_VECTOR`].
const PERIODIC_TIMER: u64 = (lvt::TIMER_PERIODIC | TIMER_VECTOR as u32) as u64;

/// Starts the periodic timer on [`TIMER_VECTOR`]: one tick every
/// `initial_count` × 16 APIC timer clocks. x2APIC mode must be on.
pub fn start_timer(initial_count: u32) {
    // SAFETY: x2APIC mode is on (ensured at boot), so these MSRs exist;
    // they are the partition's own (passed through by the hypervisor, or
    // checked against its minimum period while the timer is periodic); the
    // IDT has handlers for the timer and spurious vectors.
    unsafe {
        wrmsr(
            IA32_X2APIC_SIVR,
            u64::from(SVR_APIC_ENABLE | u32::from(SPURIOUS_VECTOR)),
        );
        wrmsr(IA32_X2APIC_DIV_CONF, u64::from(timer_divide::BY_16));
        wrmsr(X2APIC_LVT_TIMER, PERIODIC_TIMER);
        wrmsr(IA32_X2APIC_INIT_COUNT, u64::from(initial_count));
    }
}

/// Makes the timer fire as fast as it can (periodic, divide by 1, initial
/// count 1): the `rogue` workload's interrupt storm on its own core.
pub fn start_timer_storm() {
    // SAFETY: as in `start_timer`; the handler of the timer vector only
    // counts and EOIs, so a storm starves this core and nothing else.
    unsafe {
        wrmsr(IA32_X2APIC_DIV_CONF, u64::from(timer_divide::BY_1));
        wrmsr(X2APIC_LVT_TIMER, PERIODIC_TIMER);
        wrmsr(IA32_X2APIC_INIT_COUNT, 1);
    }
}

/// Stops the timer.
pub fn stop_timer() {
    // SAFETY: as in `start_timer`; a zero initial count stops the timer.
    unsafe { wrmsr(IA32_X2APIC_INIT_COUNT, 0) };
}

/// Signals the end of an interrupt.
pub fn eoi() {
    // SAFETY: x2APIC mode is on whenever an interrupt can arrive (the timer
    // and IPIs are only enabled after `ensure_x2apic`); writing 0 to EOI is
    // the architected end-of-interrupt.
    unsafe { wrmsr(IA32_X2APIC_EOI, 0) };
}

/// Writes the ICR with a raw value (destination in bits 32..64). Only the
/// `rogue` workload uses this: legitimate IPIs go through `SEND_IPI`, and
/// the hypervisor must refuse anything but a fixed IPI to a channel peer on
/// its vector, or to the sender itself.
pub fn write_icr(value: u64) {
    // SAFETY: x2APIC mode is on so the ICR MSR exists; the write is
    // intercepted and either refused (the partition ends) or sent as a
    // fixed IPI, which does not affect this kernel's memory.
    unsafe { wrmsr(X2APIC_ICR, value) };
}
