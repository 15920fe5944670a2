//! The IDT and the interrupt entry stubs.
//!
//! All 256 vectors have a 16-byte-aligned stub that pushes a zero error
//! code (where the CPU pushes none) and the vector, saves the scratch and
//! callee-saved registers and calls `interrupt_entry`:
//! - vectors 0..32 (exceptions) are reported on the console (vector, name,
//!   error code, RIP, CR2, RSP) and the partition exits with
//!   [`EXCEPTION_EXIT_CODE`] (a page fault on the kernel stack's guard page
//!   is named a stack overflow); the double fault and the page fault run on
//!   IST stacks of their own;
//! - the timer vector counts a tick;
//! - the spurious vector and the masked legacy PIC's vectors are ignored
//!   (no EOI);
//! - the membership vector (`abi::boot::MEMBERSHIP_VECTOR`) counts a
//!   notification of a group status change;
//! - every other vector is a channel IPI: it is counted and the waiting
//!   loop woken (see [`super::apic`]).

use super::gdt::{IST_FAULT, IST_PAGE_FAULT, KERNEL_CS};
use super::pic::LEGACY_VECTOR_BASE;
use super::{apic, cpu};
use crate::block::{SPURIOUS_VECTOR, TIMER_VECTOR};
use abi::regs::half;
use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use x86::dtables::{lidt, DescriptorTablePointer};
use x86::irq::{DOUBLE_FAULT_VECTOR, PAGE_FAULT_VECTOR};

/// Exit code of a partition that took an unexpected exception.
pub const EXCEPTION_EXIT_CODE: u64 = crate::exit_code::EXCEPTION;

global_asm!(
    r#"
    .macro ISR n
    .balign 16
isr_stub_\n:
    .if (\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
    push $0
    .endif
    push $\n
    jmp isr_common
    .endm

    .section .text.isr, "ax"
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,100,101,102,103,104,105,106,107,108,109,110,111,112,113,114,115,116,117,118,119,120,121,122,123,124,125,126,127,128,129,130,131,132,133,134,135,136,137,138,139,140,141,142,143,144,145,146,147,148,149,150,151,152,153,154,155,156,157,158,159,160,161,162,163,164,165,166,167,168,169,170,171,172,173,174,175,176,177,178,179,180,181,182,183,184,185,186,187,188,189,190,191,192,193,194,195,196,197,198,199,200,201,202,203,204,205,206,207,208,209,210,211,212,213,214,215,216,217,218,219,220,221,222,223,224,225,226,227,228,229,230,231,232,233,234,235,236,237,238,239,240,241,242,243,244,245,246,247,248,249,250,251,252,253,254,255
    ISR \n
    .endr

isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    /* Align the stack for the call: the frame may sit at any 8 bytes. */
    mov %rsp, %rbx
    and $-16, %rsp
    cld
    call {entry}
    mov %rbx, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp
    iretq

    .section .rodata.isr, "a"
    .balign 8
    .global isr_stub_table
isr_stub_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,100,101,102,103,104,105,106,107,108,109,110,111,112,113,114,115,116,117,118,119,120,121,122,123,124,125,126,127,128,129,130,131,132,133,134,135,136,137,138,139,140,141,142,143,144,145,146,147,148,149,150,151,152,153,154,155,156,157,158,159,160,161,162,163,164,165,166,167,168,169,170,171,172,173,174,175,176,177,178,179,180,181,182,183,184,185,186,187,188,189,190,191,192,193,194,195,196,197,198,199,200,201,202,203,204,205,206,207,208,209,210,211,212,213,214,215,216,217,218,219,220,221,222,223,224,225,226,227,228,229,230,231,232,233,234,235,236,237,238,239,240,241,242,243,244,245,246,247,248,249,250,251,252,253,254,255
    .quad isr_stub_\n
    .endr
    "#,
    entry = sym interrupt_entry,
    options(att_syntax)
);

unsafe extern "C" {
    static isr_stub_table: [u64; 256];
}

/// What the stubs leave on the stack, lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct Frame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r11: u64,
    r10: u64,
    r9: u64,
    r8: u64,
    rbp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rcx: u64,
    rbx: u64,
    rax: u64,
    vector: u64,
    error_code: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

/// Timer ticks since the timer started.
pub static TICKS: AtomicU64 = AtomicU64::new(0);
/// Channel IPIs received.
pub static IPIS: AtomicU64 = AtomicU64::new(0);
/// Membership notifications received (`MEMBERSHIP_VECTOR`).
pub static MEMBERSHIP: AtomicU64 = AtomicU64::new(0);
/// Set while an exception is being reported (a second one exits at once).
static IN_EXCEPTION: AtomicBool = AtomicBool::new(false);

const EXCEPTION_NAMES: [&str; 32] = [
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved",
    "#MF x87 error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD error",
    "#VE virtualization",
    "#CP control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved",
];

extern "C" fn interrupt_entry(frame: &mut Frame) {
    let vector = frame.vector;
    let base = u64::from(LEGACY_VECTOR_BASE);
    let legacy = base..base + 16;
    if vector < 32 {
        exception(frame);
    } else if vector == u64::from(TIMER_VECTOR) {
        TICKS.fetch_add(1, Ordering::Relaxed);
        apic::eoi();
    } else if vector == u64::from(abi::boot::MEMBERSHIP_VECTOR) {
        MEMBERSHIP.fetch_add(1, Ordering::Release);
        apic::eoi();
    } else if vector == u64::from(SPURIOUS_VECTOR) || legacy.contains(&vector) {
        // Spurious interrupts (APIC or masked legacy PIC) take no EOI.
    } else {
        IPIS.fetch_add(1, Ordering::Release);
        apic::eoi();
    }
}

fn exception(frame: &Frame) -> ! {
    if IN_EXCEPTION.swap(true, Ordering::Relaxed) {
        super::exit(EXCEPTION_EXIT_CODE);
    }
    let v = frame.vector;
    let name = usize::try_from(v)
        .ok()
        .and_then(|i| EXCEPTION_NAMES.get(i))
        .copied()
        .unwrap_or("?");
    let cr2 = cpu::read_cr2();
    // A #PF on the guard page is an overflow of the kernel stack (CR2 also
    // names it when the overflow escalated to a #DF).
    let overflow = (v == u64::from(PAGE_FAULT_VECTOR) || v == u64::from(DOUBLE_FAULT_VECTOR))
        && super::entry::stack_guarded()
        && crate::paging::hits_guard(cr2, super::entry::stack_guard_addr());
    if overflow {
        crate::console::emergency(format_args!(
            "{}: stack overflow: the {} KiB kernel stack ran into its guard page",
            crate::program(),
            super::STACK_SIZE / 1024,
        ));
    }
    crate::console::emergency(format_args!(
        "{}: exception {} ({}) error {:#x} rip {:#x} cr2 {:#x} rsp {:#x} rflags {:#x}; exit {}",
        crate::program(),
        v,
        name,
        frame.error_code,
        frame.rip,
        cr2,
        frame.rsp,
        frame.rflags,
        EXCEPTION_EXIT_CODE,
    ));
    super::exit(EXCEPTION_EXIT_CODE)
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

const EMPTY_GATE: Gate = Gate {
    offset_low: 0,
    selector: 0,
    ist: 0,
    type_attr: 0,
    offset_mid: 0,
    offset_high: 0,
    reserved: 0,
};

/// The IDT, built once.
#[repr(C, align(16))]
#[derive(Debug)]
struct Idt([Gate; 256]);

static IDT: spin::Once<Idt> = spin::Once::new();

fn build() -> Idt {
    let mut idt = Idt([EMPTY_GATE; 256]);
    // SAFETY: `isr_stub_table` is a read-only table of 256 addresses
    // emitted by the assembly above.
    let stubs = unsafe { &*core::ptr::addr_of!(isr_stub_table) };
    for (vector, &handler) in stubs.iter().enumerate() {
        idt.0[vector] = Gate {
            offset_low: half::low16(handler),
            selector: KERNEL_CS,
            ist: if vector == usize::from(DOUBLE_FAULT_VECTOR) {
                IST_FAULT
            } else if vector == usize::from(PAGE_FAULT_VECTOR) {
                IST_PAGE_FAULT
            } else {
                0
            },
            type_attr: 0x8e, // present, DPL 0, 64-bit interrupt gate
            offset_mid: half::low16(handler >> 16),
            offset_high: half::split_u64(handler).0,
            reserved: 0,
        };
    }
    idt
}

/// Builds and loads the IDT. Called once, after the GDT (the gates use its
/// code selector and IST1).
pub fn init() {
    let ptr = DescriptorTablePointer::new(IDT.call_once(build));
    // SAFETY: the IDT lives in a static `Once` (never moved or freed) and
    // every gate points at a stub above using the kernel code selector.
    unsafe { lidt(&ptr) };
}

/// Loads an empty IDT and raises `int3`: the CPU cannot deliver the
/// exception, nor the resulting #GP / #DF, and shuts down (a triple fault).
pub fn triple_fault() -> ! {
    let ptr = [0u16; 5];
    // SAFETY: deliberately destroys the machine state: with a zero-limit
    // IDT every exception escalates to a shutdown, which the hypervisor (or
    // QEMU with -no-reboot) turns into the end of the partition. Nothing
    // after this runs.
    unsafe {
        asm!("cli", "lidt [{}]", "int3", in(reg) &ptr, options(nostack));
    }
    cpu::halt_forever()
}
