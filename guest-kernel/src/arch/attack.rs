//! The forbidden actions of the `rogue` workload, as safe functions: each
//! does exactly one thing the hypervisor must stop. None of them touches
//! memory or state the kernel relies on, so each returns normally when
//! nothing stops it (bare mode, or a hypervisor that failed to contain it).

use super::cpu;
use core::arch::asm;

/// Writes a word at `gpa`, which lies beyond the partition's RAM.
/// `ram_end` is the end of the partition's RAM; addresses below it are
/// refused (`false`) so the kernel cannot corrupt itself.
pub fn write_beyond(gpa: u64, ram_end: u64, value: u64) -> bool {
    if gpa < ram_end || gpa.checked_add(8).is_none_or(|e| e > 8 << 30) {
        return false;
    }
    // SAFETY: [gpa, gpa + 8) is identity-mapped (0..8 GiB) and lies at or
    // above the end of the partition's RAM, so it is no Rust object: the
    // write either reaches nothing (bare) or is stopped by the hypervisor.
    unsafe { core::ptr::write_volatile(gpa as *mut u64, value) };
    true
}

/// Reads a word at `gpa`, which lies beyond the partition's RAM (refused
/// below `ram_end` or above 8 GiB, the end of the map).
pub fn read_beyond(gpa: u64, ram_end: u64) -> Option<u64> {
    if gpa < ram_end || gpa.checked_add(8).is_none_or(|e| e > 8 << 30) {
        return None;
    }
    // SAFETY: as in `write_beyond`; a volatile read of unowned memory
    // creates no reference to a Rust object.
    Some(unsafe { core::ptr::read_volatile(gpa as *const u64) })
}

/// Writes a byte to an I/O port no partition owns (e.g. the hypervisor's
/// UART).
pub fn port_write(port: u16, value: u8) {
    // SAFETY: the kernel itself uses no port under the hypervisor; bare,
    // the target ports (COM1) only print the byte.
    unsafe { cpu::outb(port, value) };
}

/// Writes `IA32_APIC_BASE` with its current value (a no-op for the CPU,
/// forbidden by the hypervisor).
pub fn rewrite_apic_base() {
    let value = super::apic::apic_base();
    // SAFETY: writing back the value just read changes nothing.
    unsafe { cpu::wrmsr(0x1b, value) };
}

/// Executes the vendor's VM-entry instruction: `vmrun` (SVM, rax = a page
/// address) or `vmxon` (VMX, operand = a page address). Without the
/// hypervisor's consent both raise #UD (EFER.SVME / CR4.VMXE are clear),
/// which the kernel reports like any exception.
pub fn virtualization_instruction(amd: bool, page: u64) {
    if amd {
        // SAFETY: with EFER.SVME clear, VMRUN raises #UD before touching
        // memory; under the hypervisor it is intercepted. Either way no
        // guest state changes.
        unsafe { asm!("vmrun", in("rax") page, options(nostack)) };
    } else {
        let operand = page;
        // SAFETY: with CR4.VMXE clear, VMXON raises #UD; under the
        // hypervisor it is intercepted. It only reads its 8-byte operand.
        unsafe { asm!("vmxon [{}]", in(reg) &operand, options(nostack)) };
    }
}

/// Loads an empty IDT and raises an exception (see `idt::triple_fault`).
pub fn triple_fault() -> ! {
    super::idt::triple_fault()
}

/// Loads XCR0 with `value` (an invalid combination the hypervisor must
/// refuse: under it XSETBV always exits). CR4.OSXSAVE is set first when the
/// CPU has XSAVE, so the instruction reaches the hypervisor instead of
/// raising #UD; without XSAVE it raises #UD, which the kernel reports.
pub fn xsetbv(value: u64) {
    if cpu::cpuid(1, 0)[2] & (1 << 26) != 0 {
        // SAFETY: CR4.OSXSAVE only enables XGETBV/XSETBV and the XSAVE
        // family; the kernel is soft-float and keeps no state they manage.
        unsafe {
            let cr4: u64;
            asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack, preserves_flags));
            asm!("mov cr4, {}", in(reg) cr4 | (1 << 18), options(nostack));
        }
    }
    // SAFETY: the value is one the CPU refuses (#GP, reported by the
    // kernel when bare); under the hypervisor it exits and stops the
    // partition. The kernel uses no XSAVE-managed state either way.
    unsafe {
        asm!(
            "xsetbv",
            in("ecx") 0u32,
            in("eax") value as u32,
            in("edx") (value >> 32) as u32,
            options(nomem, nostack),
        )
    };
}

/// Writes `value` to the x2APIC local vector table entry `msr` (a value
/// the hypervisor must refuse: reserved bits or a delivery mode beneath the
/// guest).
pub fn write_lvt(msr: u32, value: u64) {
    // SAFETY: x2APIC mode is on (ensured at boot), so the LVT MSRs exist;
    // the entry only affects this core's own interrupts; a value with
    // reserved bits raises #GP (reported by the kernel when bare).
    unsafe { cpu::wrmsr(msr, value) };
}
