//! Thin wrappers over privileged instructions: MSRs, port I/O, control
//! registers, halting. Each is one instruction; callers decide when it is
//! sound to use them.

use core::arch::asm;

/// Reads a model-specific register.
///
/// # Safety
/// `msr` must exist on this CPU (reading an unknown MSR raises #GP).
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists; rdmsr has no other effect.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Writes a model-specific register.
///
/// # Safety
/// `msr` must exist and `value` must be valid for it; the write's effect on
/// the machine (paging, APIC, virtualization state) is the caller's to judge.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: delegated to the caller as documented above.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack, preserves_flags))
    };
}

/// Writes a byte to an I/O port.
///
/// # Safety
/// The port must belong to a device whose reaction to the write is intended.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: delegated to the caller as documented above.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// Writes a double word to an I/O port.
///
/// # Safety
/// The port must belong to a device whose reaction to the write is intended.
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: delegated to the caller as documented above.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    };
}

/// Reads a byte from an I/O port.
///
/// # Safety
/// The port must belong to a device for which a read has no unintended effect.
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: delegated to the caller as documented above.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Reads CR2 (the faulting linear address of the last page fault).
pub fn read_cr2() -> u64 {
    let value: u64;
    // SAFETY: reading CR2 has no side effects; we run at CPL 0.
    unsafe { asm!("mov {}, cr2", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only reads the counter (CR4.TSD is clear: we run at CPL 0).
    unsafe {
        asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Stops this core for good: interrupts off, then `hlt` forever.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: disabling interrupts and halting only stop this core.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Executes `ud2`: an invalid-opcode exception, for self-tests.
pub fn undefined_instruction() {
    // SAFETY: `ud2` only raises #UD, which the IDT handles.
    unsafe { asm!("ud2", options(nomem, nostack)) };
}

/// Reads an address the boot page tables do not map (512 GiB): a page
/// fault, for self-tests.
pub fn touch_unmapped() {
    // SAFETY: the address is not mapped, so the read faults before touching
    // any memory; the page-fault handler reports it and ends the run.
    unsafe { core::ptr::read_volatile(0x80_0000_0000 as *const u64) };
}
