//! Thin wrappers over privileged instructions: MSRs, port I/O, control
//! registers, halting. Each is one instruction (the `x86` crate's where it
//! has one); callers decide when it is sound to use them.

use core::arch::asm;

/// `rdmsr`/`wrmsr` (the MSR must exist on this CPU, and a write's effect on
/// the machine is the caller's to judge) and port I/O (the port must belong
/// to a device whose reaction is intended): the `x86` crate's.
pub use x86::io::{inb, outb, outl};
pub use x86::msr::{rdmsr, wrmsr};

/// Reads CR2 (the faulting linear address of the last page fault).
pub fn read_cr2() -> u64 {
    // SAFETY: reading CR2 has no side effects; we run at CPL 0.
    unsafe { x86::controlregs::cr2() as u64 }
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the counter (CR4.TSD is clear: we run at CPL 0).
    unsafe { x86::time::rdtsc() }
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
