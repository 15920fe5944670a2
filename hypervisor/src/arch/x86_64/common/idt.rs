//! The interrupt descriptor table and the exception entry stubs.
//!
//! Every exception vector (0–31) has a stub that pushes the vector (and a
//! zero error code where the CPU pushes none), saves the general-purpose
//! registers and calls [`exception_entry`], which turns the saved state into
//! an arch-neutral [`hypervisor::exception::ExceptionReport`], unless the
//! faulting instruction is one of the exception fixups (`fixup.rs`), which
//! resume at their recovery code. One IDT is shared by all cores
//! (read-only after it is built).

use super::gdt::{IST_FATAL, IST_NMI, KERNEL_CS};
use super::instr;
use core::arch::global_asm;
use x86::dtables::{lidt, DescriptorTablePointer};
use x86::irq::{DOUBLE_FAULT_VECTOR, MACHINE_CHECK_VECTOR, NONMASKABLE_INTERRUPT_VECTOR};

global_asm!(
    r#"
    .macro ISR_NOERR n
    .balign 16
isr_stub_\n:
    push $0
    push $\n
    jmp isr_common
    .endm
    .macro ISR_ERR n
    .balign 16
isr_stub_\n:
    push $\n
    jmp isr_common
    .endm

    .section .text.isr, "ax"
    ISR_NOERR 0
    ISR_NOERR 1
    ISR_NOERR 2
    ISR_NOERR 3
    ISR_NOERR 4
    ISR_NOERR 5
    ISR_NOERR 6
    ISR_NOERR 7
    ISR_ERR   8
    ISR_NOERR 9
    ISR_ERR   10
    ISR_ERR   11
    ISR_ERR   12
    ISR_ERR   13
    ISR_ERR   14
    ISR_NOERR 15
    ISR_NOERR 16
    ISR_ERR   17
    ISR_NOERR 18
    ISR_NOERR 19
    ISR_NOERR 20
    ISR_ERR   21
    ISR_NOERR 22
    ISR_NOERR 23
    ISR_NOERR 24
    ISR_NOERR 25
    ISR_NOERR 26
    ISR_NOERR 27
    ISR_NOERR 28
    ISR_ERR   29
    ISR_ERR   30
    ISR_NOERR 31

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
    cld
    call {entry}
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
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad isr_stub_\n
    .endr
    "#,
    entry = sym exception_entry,
    options(att_syntax)
);

unsafe extern "C" {
    static isr_stub_table: [u64; 32];
}

/// The state the stubs save, lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct ExceptionFrame {
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

extern "C" fn exception_entry(frame: &mut ExceptionFrame) {
    // The hypervisor uses NMIs only to make a core leave its guest: on the
    // host they are a no-op.
    if frame.vector == u64::from(NONMASKABLE_INTERRUPT_VECTOR) {
        return;
    }
    // A checked instruction (XSETBV/WRMSR with a guest-chosen value) that
    // the CPU refused: resume at its recovery code, which reports the
    // refusal to its caller (`fixup.rs`). The vectors are all below 32.
    let vector = u8::try_from(frame.vector).unwrap_or(u8::MAX);
    if let Some(resume) = super::fixup::resume_address(vector, frame.rip) {
        frame.rip = resume;
        return;
    }
    let report = hypervisor::exception::ExceptionReport {
        vector,
        error_code: frame.error_code,
        rip: frame.rip,
        rsp: frame.rsp,
        rflags: frame.rflags,
        cr2: instr::read_cr2(),
        cpu: super::percpu::try_current_index(),
    };
    crate::fatal::exception(&report);
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

/// The shared IDT.
#[repr(C, align(16))]
#[derive(Debug)]
pub struct Idt([Gate; 256]);

static IDT: spin::Once<Idt> = spin::Once::new();

fn build() -> Idt {
    let mut idt = Idt([Gate::default(); 256]);
    // SAFETY: `isr_stub_table` is a read-only table of 32 addresses emitted
    // by the assembly above.
    let stubs = unsafe { &*core::ptr::addr_of!(isr_stub_table) };
    for (vector, &handler) in (0u8..).zip(stubs) {
        let ist = match vector {
            NONMASKABLE_INTERRUPT_VECTOR => IST_NMI,
            DOUBLE_FAULT_VECTOR | MACHINE_CHECK_VECTOR => IST_FATAL,
            _ => 0,
        };
        idt.0[usize::from(vector)] = Gate {
            offset_low: abi::regs::half::low16(handler),
            selector: KERNEL_CS,
            ist,
            type_attr: 0x8e, // present, DPL 0, 64-bit interrupt gate
            offset_mid: abi::regs::half::low16(handler >> 16),
            offset_high: abi::regs::half::split_u64(handler).0,
            reserved: 0,
        };
    }
    idt
}

/// Loads the shared IDT on this core (building it on first use).
pub fn load() {
    let pointer = DescriptorTablePointer::new(IDT.call_once(build));
    // SAFETY: the IDT is 'static (inside a `Once`), fully initialised, and
    // every present gate points at a stub above with the kernel code segment.
    unsafe { lidt(&pointer) };
}
