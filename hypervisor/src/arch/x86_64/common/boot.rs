//! The first instructions: the multiboot2 header, the PVH entry note, the
//! 32-bit entry shared by both boot protocols, and the switch to long mode.
//!
//! Both loaders enter `_start32` in 32-bit protected mode with paging off and
//! `ebx` pointing at their boot information (PVH: `hvm_start_info`; multiboot2:
//! the boot information structure, with `eax == 0x36d76289`). The code builds
//! an identity map of the low 4 GiB with 2 MiB pages (the hypervisor runs
//! identity-mapped; every partition's memory lies below 4 GiB, see
//! `docs/layout.md`), enables long mode and calls [`crate::bsp_entry`] with
//! `(eax, ebx)`. The same page tables are used by the application processors
//! (see `trampoline.rs`), so their physical address is exported.

use x86::controlregs::{Cr0, Cr4};

/// Size of the bootstrap core's stack.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

core::arch::global_asm!(
    r#"
    .set MB2_MAGIC,        0xe85250d6
    .set MB2_ARCH_I386,    0
    .set PVH_NOTE_ENTRY,   18
    .set CR4_PAE,          {cr4_pae}
    .set EFER_MSR,         {efer}
    .set EFER_LME,         {efer_lme}
    .set CR0_PE,           {cr0_pe}
    .set CR0_WP,           {cr0_wp}
    .set CR0_PG,           {cr0_pg}
    .set PTE_PRESENT_RW,   0x3
    .set PTE_HUGE,         0x80

    /* ---- multiboot2 header (first 32 KiB of the file, 8-byte aligned) ---- */
    .section .multiboot2_header, "a"
    .balign 8
mb2_header_start:
    .long MB2_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header_start
    .long -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header_start))
    /* end tag */
    .balign 8
    .short 0
    .short 0
    .long 8
mb2_header_end:

    /* ---- PVH entry note: XEN_ELFNOTE_PHYS32_ENTRY with an 8-byte value ---- */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4                 /* name size ("Xen\0") */
    .long 8                 /* descriptor size: QEMU reads a size_t */
    .long PVH_NOTE_ENTRY
    .asciz "Xen"
    .balign 4
    .quad _start32
    .balign 4

    /* ---- 32-bit entry ---- */
    .section .boot.text, "ax"
    .code32
    .global _start32
_start32:
    cli
    cld
    mov %eax, %edi          /* boot magic (multiboot2) or garbage (PVH) */
    mov %ebx, %esi          /* boot information pointer */
    mov $boot_stack_top, %esp

    /* Zero the PML4 and the PDPT (the PDs are fully written below). */
    mov $boot_pml4, %edx
    mov $0, %ecx
1:  movl $0, (%edx, %ecx, 4)
    inc %ecx
    cmp $2048, %ecx         /* PML4 and PDPT are adjacent: 2 pages */
    jne 1b

    /* PML4[0] -> PDPT */
    mov $boot_pdpt, %eax
    or $PTE_PRESENT_RW, %eax
    mov %eax, boot_pml4

    /* PDPT[0..4] -> PD0..PD3 */
    mov $0, %ecx
2:  mov %ecx, %eax
    shl $12, %eax
    add $boot_pd, %eax
    or $PTE_PRESENT_RW, %eax
    mov %eax, boot_pdpt(, %ecx, 8)
    movl $0, boot_pdpt + 4(, %ecx, 8)
    inc %ecx
    cmp $4, %ecx
    jne 2b

    /* PD entries: 2048 x 2 MiB identity pages covering 0..4 GiB */
    mov $0, %ecx
3:  mov %ecx, %eax
    shl $21, %eax
    or $(PTE_PRESENT_RW | PTE_HUGE), %eax
    mov %eax, boot_pd(, %ecx, 8)
    movl $0, boot_pd + 4(, %ecx, 8)
    inc %ecx
    cmp $2048, %ecx
    jne 3b

    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    /* OR into EFER: firmware may have set NXE, keep it */
    mov $EFER_MSR, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $(CR0_PG | CR0_WP | CR0_PE), %eax
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $long_mode_entry

    .code64
long_mode_entry:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    xor %ebp, %ebp
    /* edi = magic, esi = info pointer: already the first two C arguments */
    mov %edi, %edi
    mov %esi, %esi
    call {bsp_entry}
4:  cli
    hlt
    jmp 4b

    /* ---- boot GDT: null, 64-bit code (0x08), data (0x10) ---- */
    .section .boot.data, "a"
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdt_end:
    .balign 4
    .short 0
boot_gdt_ptr:
    .short boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

    /* ---- page tables and the boot stack ---- */
    .section .bss.boot, "aw", @nobits
    .balign 4096
    .global boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4096 * 4
    .balign 16
boot_stack_bottom:
    .skip {stack_size}
boot_stack_top:
    "#,
    bsp_entry = sym crate::bsp_entry,
    stack_size = const BOOT_STACK_SIZE,
    cr4_pae = const Cr4::CR4_ENABLE_PAE.bits(),
    efer = const x86::msr::IA32_EFER,
    efer_lme = const abi::regs::efer::LME,
    cr0_pe = const Cr0::CR0_PROTECTED_MODE.bits(),
    cr0_wp = const Cr0::CR0_WRITE_PROTECT.bits(),
    cr0_pg = const Cr0::CR0_ENABLE_PAGING.bits(),
    options(att_syntax)
);

unsafe extern "C" {
    /// The boot PML4 built by `_start32` (identity map of 0..4 GiB).
    static boot_pml4: u8;
}

/// Physical address of the boot page tables' root, for the application
/// processors' trampoline. The hypervisor runs identity-mapped, so the
/// symbol's address is its physical address.
pub fn boot_page_table_root() -> u64 {
    // Taking the address of an extern static reads no memory.
    core::ptr::addr_of!(boot_pml4) as u64
}
