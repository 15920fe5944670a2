//! Exception fixup: the second line of defence for instructions the
//! hypervisor executes with operands a guest chose (XSETBV with the guest's
//! XCR0, WRMSR of a guest's LVT value). The exit policy validates every
//! such value first (`hypervisor::xcr0_policy`, `hypervisor::lvt_policy`);
//! if a CPU still refuses one, the instruction's #GP (or #UD) must not end
//! the run.
//!
//! Mechanism: each checked instruction is a tiny assembly function with a
//! labelled faulting instruction and a recovery stub right after it. The
//! table [`FIXUPS`] pairs the two addresses. The IDT's exception entry
//! (`idt.rs`) asks [`resume_address`] whether the faulting RIP is in the
//! table; if so it rewrites the saved RIP to the recovery stub and returns
//! from the exception, and the stub returns "refused" to the Rust caller.
//! No other instruction is ever resumed: a fault anywhere else is still
//! fatal and reported.
//!
//! Invariants: the functions follow the System V calling convention (they
//! clobber only rax, rcx, rdx); the table is read-only data emitted by the
//! same assembly block, so its addresses are the functions' own.

use super::apic::LocalApic;
use abi::regs::lvt;
use core::arch::global_asm;
use hypervisor::exception::{fixup_target, Fixup};
use hypervisor::exit_handler::CpuRefused;
use x86::msr::IA32_X2APIC_LVT_ERROR as LVT_ERROR;

global_asm!(
    r#"
    .section .text.flotilla_fixup, "ax"

    .balign 16
    .global flotilla_checked_xsetbv
    // u32 flotilla_checked_xsetbv(u32 xcr /* edi */, u64 value /* rsi */)
    // Returns 0 when loaded, 1 when the CPU refused the value.
flotilla_checked_xsetbv:
    mov ecx, edi
    mov eax, esi
    mov rdx, rsi
    shr rdx, 32
flotilla_fixup_xsetbv_insn:
    xsetbv
    xor eax, eax
    ret
flotilla_fixup_xsetbv_resume:
    mov eax, 1
    ret

    .balign 16
    .global flotilla_checked_wrmsr
    // u32 flotilla_checked_wrmsr(u32 msr /* edi */, u64 value /* rsi */)
    // Returns 0 when written, 1 when the CPU refused the write.
flotilla_checked_wrmsr:
    mov ecx, edi
    mov eax, esi
    mov rdx, rsi
    shr rdx, 32
flotilla_fixup_wrmsr_insn:
    wrmsr
    xor eax, eax
    ret
flotilla_fixup_wrmsr_resume:
    mov eax, 1
    ret

    .section .rodata.flotilla_fixup, "a"
    .balign 8
    .global flotilla_fixup_table
flotilla_fixup_table:
    .quad flotilla_fixup_xsetbv_insn, flotilla_fixup_xsetbv_resume
    .quad flotilla_fixup_wrmsr_insn, flotilla_fixup_wrmsr_resume
"#
);

/// Entries in `flotilla_fixup_table` above.
const FIXUP_COUNT: usize = 2;

unsafe extern "C" {
    static flotilla_fixup_table: [Fixup; FIXUP_COUNT];
    fn flotilla_checked_xsetbv(xcr: u32, value: u64) -> u32;
    fn flotilla_checked_wrmsr(msr: u32, value: u64) -> u32;
}

/// The fixup table: (instruction that may fault, where to resume).
fn fixups() -> &'static [Fixup] {
    // SAFETY: `flotilla_fixup_table` is read-only data of FIXUP_COUNT
    // 16-byte entries emitted by the assembly above (two `.quad`s each,
    // 8-aligned), matching `Fixup`'s `repr(C)` layout; it is never written.
    unsafe { &*core::ptr::addr_of!(flotilla_fixup_table) }
}

/// Where the exception entry resumes after exception `vector` at `rip`,
/// when `rip` is a checked instruction.
pub fn resume_address(vector: u8, rip: u64) -> Option<u64> {
    fixup_target(fixups(), vector, rip)
}

/// XSETBV under the fixup: loads XCR `xcr` with `value`, or returns
/// [`CpuRefused`] if the CPU raised #GP (a value it does not accept) or
/// #UD (CR4.OSXSAVE clear) instead.
///
/// # Safety
/// Loading `value` into XCR0 changes which state XSAVE-family instructions
/// and the SIMD units use on this core: the caller must own that state (the
/// hypervisor itself uses no SIMD; a partition's XCR0 is its own).
pub unsafe fn checked_xsetbv(xcr: u32, value: u64) -> Result<(), CpuRefused> {
    // SAFETY: the function clobbers only caller-saved registers (System V);
    // its only effect is the XSETBV the caller vouched for; a fault on it is
    // recovered through the table above (the IDT consults it).
    match unsafe { flotilla_checked_xsetbv(xcr, value) } {
        0 => Ok(()),
        _ => Err(CpuRefused),
    }
}

/// WRMSR under the fixup: writes `value` to `msr`, or returns
/// [`CpuRefused`] if the CPU raised #GP (a reserved bit, a missing MSR).
///
/// # Safety
/// The write, if the CPU takes it, must be harmless to the machine: the
/// caller validated `value` for `msr` (e.g. an LVT entry of this core).
pub unsafe fn checked_wrmsr(msr: u32, value: u64) -> Result<(), CpuRefused> {
    // SAFETY: as in `checked_xsetbv`; the write's effect is the caller's.
    match unsafe { flotilla_checked_wrmsr(msr, value) } {
        0 => Ok(()),
        _ => Err(CpuRefused),
    }
}

/// The `flotilla.selftest=wrmsr-fixup` write: the error LVT (masked)
/// through [`checked_wrmsr`] while `apic` is in xAPIC mode, where every
/// x2APIC MSR raises #GP. `None` (nothing done) in x2APIC mode.
pub fn selftest_wrmsr(apic: LocalApic) -> Option<Result<(), CpuRefused>> {
    match apic {
        // SAFETY: in xAPIC mode the write raises #GP and the fixup recovers;
        // were it taken, a masked error LVT only silences APIC error
        // interrupts, which the hypervisor does not use.
        LocalApic::XApic(_) => Some(unsafe { checked_wrmsr(LVT_ERROR, lvt::MASK.into()) }),
        LocalApic::X2Apic => None,
    }
}
