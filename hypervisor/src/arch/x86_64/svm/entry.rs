//! The world switch: `svm_run` saves the host's hidden state, loads the
//! guest's general-purpose registers, runs VMRUN, and on #VMEXIT stores them
//! back and restores the host — with GIF clear throughout so that nothing
//! interrupts the switch.
//!
//! VMRUN itself switches RAX, RSP, RIP, RFLAGS, the control registers, EFER
//! and CS/SS/DS/ES; VMLOAD/VMSAVE handle FS, GS, TR, LDTR, KernelGsBase and
//! the SYSCALL/SYSENTER MSRs (AMD APM Vol. 2 §15.5.2); everything else —
//! the other general-purpose registers — is ours to save.

use core::arch::global_asm;

/// The guest registers VMRUN does not switch (RAX and RSP live in the VMCB).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestGprs {
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
    .section .text.svm_run, "ax"
    .global svm_run
    /* svm_run(rdi = *mut GuestGprs, rsi = guest VMCB pa, rdx = host save VMCB pa) */
svm_run:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    push %rdi
    push %rsi
    push %rdx
    clgi
    mov %rdx, %rax
    vmsave
    mov %rsi, %rax
    vmload
    mov 0x00(%rdi), %rbx
    mov 0x08(%rdi), %rcx
    mov 0x10(%rdi), %rdx
    mov 0x18(%rdi), %rsi
    mov 0x28(%rdi), %rbp
    mov 0x30(%rdi), %r8
    mov 0x38(%rdi), %r9
    mov 0x40(%rdi), %r10
    mov 0x48(%rdi), %r11
    mov 0x50(%rdi), %r12
    mov 0x58(%rdi), %r13
    mov 0x60(%rdi), %r14
    mov 0x68(%rdi), %r15
    mov 0x20(%rdi), %rdi
    vmrun
    /* #VMEXIT: rax = guest VMCB pa again (host rax restored), rsp = ours */
    vmsave
    push %rdi
    mov 24(%rsp), %rdi          /* GuestGprs pointer */
    mov %rbx, 0x00(%rdi)
    mov %rcx, 0x08(%rdi)
    mov %rdx, 0x10(%rdi)
    mov %rsi, 0x18(%rdi)
    mov %rbp, 0x28(%rdi)
    mov %r8,  0x30(%rdi)
    mov %r9,  0x38(%rdi)
    mov %r10, 0x40(%rdi)
    mov %r11, 0x48(%rdi)
    mov %r12, 0x50(%rdi)
    mov %r13, 0x58(%rdi)
    mov %r14, 0x60(%rdi)
    mov %r15, 0x68(%rdi)
    pop %rax
    mov %rax, 0x20(%rdi)
    pop %rax                    /* host save VMCB */
    vmload
    add $16, %rsp
    stgi
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    /// Runs the guest until its next #VMEXIT.
    ///
    /// # Safety
    /// SVM is enabled on this core (EFER.SVME, VM_HSAVE_PA); `guest_vmcb`
    /// is a valid VMCB of a guest pinned to this core; `host_vmcb` is a
    /// frame owned by this core for the host's VMSAVE state; interrupts are
    /// disabled (IF = 0).
    pub fn svm_run(regs: *mut GuestGprs, guest_vmcb: u64, host_vmcb: u64);
}
