//! Single instructions: CPUID, MSRs, port I/O, control registers, the TSC,
//! interrupts on/off and halting (the `x86` crate's where it has them).

use core::arch::asm;

/// `cpuid` with `leaf` and `subleaf`: `[eax, ebx, ecx, edx]`.
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let (eax, ebx, ecx, edx): (u32, u32, u32, u32);
    // SAFETY: CPUID is available on every x86-64 CPU and only writes the
    // four registers; rbx (reserved by LLVM) is saved in a scratch register
    // and restored.
    unsafe {
        asm!(
            "mov {tmp:r}, rbx",
            "cpuid",
            "xchg {tmp:r}, rbx",
            tmp = out(reg) ebx,
            inout("eax") leaf => eax,
            inout("ecx") subleaf => ecx,
            out("edx") edx,
            options(nostack, preserves_flags),
        );
    }
    [eax, ebx, ecx, edx]
}

/// `rdmsr`/`wrmsr` (the MSR must exist and accept the access, and its
/// effect must not break an invariant of the kernel) and port I/O (the
/// access must not disturb anything the kernel relies on): the `x86`
/// crate's.
pub use x86::io::{inb, outb, outl};
pub use x86::msr::{rdmsr, wrmsr};

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC reads a counter; CR4.TSD is clear (ring 0 anyway).
    unsafe { x86::time::rdtsc() }
}

/// CR2 (the last page-fault address).
pub fn read_cr2() -> u64 {
    // SAFETY: reading CR2 has no side effects.
    unsafe { x86::controlregs::cr2() as u64 }
}

/// Disables interrupts and halts forever.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: with interrupts off, HLT only waits for an NMI or reset;
        // nothing is touched.
        unsafe {
            asm!("cli", "hlt", options(nomem, nostack));
        }
    }
}

/// Enables interrupts and waits for one (`sti; hlt`: the interrupt shadow
/// of `sti` means a pending interrupt cannot slip in between and be missed).
/// Returns with interrupts enabled, after the handler ran.
pub fn wait_for_interrupt() {
    // SAFETY: the IDT is loaded before the kernel's code runs (see
    // `arch::start`), so enabling interrupts is safe; HLT just waits.
    unsafe {
        asm!("sti", "hlt", options(nomem, nostack));
    }
}

/// Enables interrupts.
pub fn enable_interrupts() {
    // SAFETY: the IDT is loaded before the kernel's code runs (see
    // `arch::start`), and every vector has a handler.
    unsafe {
        asm!("sti", options(nomem, nostack));
    }
}

/// Disables interrupts.
pub fn disable_interrupts() {
    // SAFETY: CLI only masks maskable interrupts.
    unsafe {
        asm!("cli", options(nomem, nostack));
    }
}
