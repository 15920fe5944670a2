//! Per-core state, reached through the core's own GS base.
//!
//! Each core allocates its [`PerCpu`] once, during bring-up, and points
//! `IA32_GS_BASE` at it; the first word is a pointer to itself so that
//! `gs:[0]` yields the struct without an MSR read. Nothing here is shared
//! between cores.

use super::gdt::CpuTables;
use super::instr;
use alloc::boxed::Box;
use x86::msr::IA32_GS_BASE;

/// One core's own state.
#[repr(C)]
#[derive(Debug)]
pub struct PerCpu {
    self_ptr: *const PerCpu,
    /// Dense index of this core (0 = bootstrap core), in MADT order.
    pub index: u32,
    /// Local APIC ID.
    pub apic_id: u32,
    tables: &'static CpuTables,
}

/// Forgets whatever GS base the firmware left, so that an exception before
/// [`init`] is reported as "early bring-up" instead of following garbage.
pub fn clear() {
    // SAFETY: IA32_GS_BASE exists on every x86-64 CPU; nothing of ours
    // uses GS before `init`.
    unsafe { instr::wrmsr(IA32_GS_BASE, 0) };
}

/// Sets up the calling core: fresh descriptor tables, the IDT, and its
/// [`PerCpu`], reachable from then on through the GS base.
pub fn init(index: u32, apic_id: u32) -> &'static PerCpu {
    let tables: &'static CpuTables = CpuTables::new();
    // SAFETY: the tables were just allocated and are 'static, so no other
    // core has loaded them (their TSS is not busy).
    unsafe { tables.load() };
    super::idt::load();
    super::cpu::enable_xsave();
    let per_cpu = Box::leak(Box::new(PerCpu {
        self_ptr: core::ptr::null(),
        index,
        apic_id,
        tables,
    }));
    per_cpu.self_ptr = per_cpu as *const PerCpu;
    // SAFETY: IA32_GS_BASE exists on every x86-64 CPU; the pointer is to a
    // leaked (hence 'static) PerCpu owned by this core.
    unsafe { instr::wrmsr(IA32_GS_BASE, per_cpu.self_ptr as u64) };
    per_cpu
}

/// This core's index, or `None` before its per-core state exists (for
/// reports from very early exceptions).
pub fn try_current_index() -> Option<u32> {
    // SAFETY: IA32_GS_BASE exists on every x86-64 CPU.
    let base = unsafe { instr::rdmsr(IA32_GS_BASE) };
    if base == 0 {
        return None;
    }
    // SAFETY: a non-zero GS base was set by `init` to this core's PerCpu.
    Some(unsafe { (*(base as *const PerCpu)).index })
}
