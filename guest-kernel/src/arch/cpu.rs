//! Single instructions: CPUID, MSRs, port I/O, control registers, the TSC,
//! interrupts on/off and halting.

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

/// Reads a model-specific register.
///
/// # Safety
/// `msr` must exist and be readable here (else #GP), and reading it must
/// have no side effect the caller has not accounted for.
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller guarantees the MSR is readable.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Writes a model-specific register.
///
/// # Safety
/// `msr` must exist and accept `value`, and the write must not break any
/// invariant of the kernel (paging, segmentation, interrupt delivery).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the write is valid and harmless.
    unsafe {
        asm!(
            "wrmsr",
            in("ecx") msr,
            in("eax") value as u32,
            in("edx") (value >> 32) as u32,
            options(nostack, preserves_flags),
        );
    }
}

/// Writes a byte to an I/O port.
///
/// # Safety
/// The port write must not disturb anything the kernel relies on.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller guarantees the port write is harmless.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags));
    }
}

/// Reads a byte from an I/O port.
///
/// # Safety
/// The port read must have no side effect the caller has not accounted for.
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the caller guarantees the port read is harmless.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags));
    }
    value
}

/// Writes a 32-bit value to an I/O port.
///
/// # Safety
/// The port write must not disturb anything the kernel relies on.
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller guarantees the port write is harmless.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags));
    }
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC reads a counter; CR4.TSD is clear (ring 0 anyway).
    unsafe {
        asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// CR2 (the last page-fault address).
pub fn read_cr2() -> u64 {
    let value: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe {
        asm!("mov {}, cr2", out(reg) value, options(nomem, nostack, preserves_flags));
    }
    value
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
