//! The VMX world switch. `vmx_run` writes the host stack pointer into the
//! VMCS, loads every guest general-purpose register except RSP (which the
//! VMCS holds) and enters the guest with VMLAUNCH or VMRESUME; a VM exit
//! lands on `vmx_exit`, which stores the guest registers back and returns
//! to `vmx_run`'s caller as if from a call.

use core::arch::global_asm;

/// The guest registers VM entry and exit do not switch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestGprs {
    /// rax
    pub rax: u64,
    /// rbx
    pub rbx: u64,
    /// rcx
    pub rcx: u64,
    /// rdx
    pub rdx: u64,
    /// rsi
    pub rsi: u64,
    /// rdi
    pub rdi: u64,
    /// rbp
    pub rbp: u64,
    /// r8–r15
    pub r: [u64; 8],
}

global_asm!(
    r#"
    .section .text.vmx_run, "ax"
    .global vmx_run, vmx_exit
    /* vmx_run(rdi = *mut GuestGprs, rsi = launched?) -> rax = 0 after an exit, 1 if entry failed */
vmx_run:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    push %rdi
    mov ${host_rsp}, %rax
    vmwrite %rsp, %rax
    cmp $0, %rsi
    mov 0x00(%rdi), %rax
    mov 0x08(%rdi), %rbx
    mov 0x10(%rdi), %rcx
    mov 0x18(%rdi), %rdx
    mov 0x20(%rdi), %rsi
    mov 0x30(%rdi), %rbp
    mov 0x38(%rdi), %r8
    mov 0x40(%rdi), %r9
    mov 0x48(%rdi), %r10
    mov 0x50(%rdi), %r11
    mov 0x58(%rdi), %r12
    mov 0x60(%rdi), %r13
    mov 0x68(%rdi), %r14
    mov 0x70(%rdi), %r15
    mov 0x28(%rdi), %rdi        /* movs keep the flags of the cmp above */
    jne 1f
    vmlaunch
    jmp 2f
1:  vmresume
2:  /* VM entry failed: the guest registers are loaded; drop them */
    pop %rdi
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    mov $1, %rax
    ret

vmx_exit:
    /* rsp = the value written to HOST_RSP: [rsp] = GuestGprs pointer */
    push %rdi
    mov 8(%rsp), %rdi
    mov %rax, 0x00(%rdi)
    mov %rbx, 0x08(%rdi)
    mov %rcx, 0x10(%rdi)
    mov %rdx, 0x18(%rdi)
    mov %rsi, 0x20(%rdi)
    mov %rbp, 0x30(%rdi)
    mov %r8,  0x38(%rdi)
    mov %r9,  0x40(%rdi)
    mov %r10, 0x48(%rdi)
    mov %r11, 0x50(%rdi)
    mov %r12, 0x58(%rdi)
    mov %r13, 0x60(%rdi)
    mov %r14, 0x68(%rdi)
    mov %r15, 0x70(%rdi)
    pop %rax
    mov %rax, 0x28(%rdi)
    pop %rdi
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    xor %eax, %eax
    ret
    "#,
    host_rsp = const x86::vmx::vmcs::host::RSP,
    options(att_syntax)
);

unsafe extern "C" {
    /// Enters the guest of the current VMCS until its next VM exit.
    /// Returns 0 after an exit, 1 if VM entry failed (see
    /// `VM_INSTRUCTION_ERROR`).
    ///
    /// # Safety
    /// VMX operation is on for this core, the current VMCS is fully set up
    /// with `HOST_RIP = vmx_exit` and this core's host state, `launched`
    /// says whether it was launched before, and interrupts are disabled.
    pub fn vmx_run(regs: *mut GuestGprs, launched: u64) -> u64;

    /// The host RIP of every VM exit (not callable).
    pub static vmx_exit: u8;
}
