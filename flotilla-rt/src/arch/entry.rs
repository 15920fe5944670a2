//! The first instructions: the PVH entry note, the 32-bit entry, the
//! kernel's page tables and the switch to long mode.
//!
//! The loader (the hypervisor, or QEMU's `-kernel`) enters `_start32` in
//! 32-bit protected mode with paging off and `ebx` = guest-physical address
//! of the `hvm_start_info`. The code builds the kernel's only page tables,
//! an identity map of guest-physical 0..8 GiB with 2 MiB pages:
//! - 0..4 GiB covers the partition's RAM, the channel window at
//!   `0xC000_0000` and the local APIC page (the top 32 MiB are mapped
//!   uncached, PCD|PWT, since they hold MMIO);
//! - 4..8 GiB exists only so the `rogue` workload can reach beyond the
//!   machine's RAM (any access there is the hypervisor's to stop).
//!
//! PDPT entry 8 (virtual 8..9 GiB) stays empty for the `rogue` workload's
//! 1 GiB page ([`map_spare_1g_page`]).
//!
//! Then it enables long mode and calls [`super::start`] with the start info
//! address on the boot stack. Tables, the boot stack (the kernel's only
//! stack, with a guard page below it that [`protect_stack`] unmaps) and the
//! two exception stacks live in the image's `.bss`.

use crate::paging;
use core::cell::UnsafeCell;

/// Size of the kernel stack (the only stack besides the exception stacks),
/// with an unmapped guard page below it ([`protect_stack`]).
pub const STACK_SIZE: usize = 128 * 1024;
/// Size of each exception stack: the double fault's (IST1) and the page
/// fault's (IST2).
pub const FAULT_STACK_SIZE: usize = 16 * 1024;
/// Pages of the page directory (each 512 entries of 2 MiB: 0..8 GiB).
const PD_PAGES: usize = 8;
const PD_ENTRIES: usize = PD_PAGES * 512;

core::arch::global_asm!(
    r#"
    .set PVH_NOTE_ENTRY,   18
    .set CR4_PAE,          {cr4_pae}
    .set EFER_MSR,         {efer}
    .set EFER_LME,         {efer_lme}
    .set CR0_PE,           {cr0_pe}
    .set CR0_WP,           {cr0_wp}
    .set CR0_NE,           {cr0_ne}
    .set CR0_PG,           {cr0_pg}
    .set PTE_P_RW,         0x3
    .set PTE_PS,           0x80
    .set PTE_PWT_PCD,      0x18
    .set PD_PAGES,         {pd_pages} /* 8 GiB of 2 MiB pages */
    .set MMIO_FIRST_PDE,   2032       /* 0xFE00_0000 / 2 MiB */
    .set MMIO_END_PDE,     2048       /* 4 GiB / 2 MiB */

    /* ---- PVH entry note: XEN_ELFNOTE_PHYS32_ENTRY, 8-byte value ---- */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 8
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
    mov %ebx, %esi              /* start info; kept across the setup */
    mov $kernel_stack_top, %esp

    /* Zero the PML4 and the PDPT (adjacent pages). */
    xor %eax, %eax
    mov $kernel_pml4, %edi
    mov $2048, %ecx
    rep stosl

    /* PML4[0] -> PDPT */
    mov $kernel_pdpt, %eax
    or $PTE_P_RW, %eax
    mov %eax, kernel_pml4

    /* PDPT[0..8] -> PD0..PD7 */
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $kernel_pd, %eax
    or $PTE_P_RW, %eax
    mov %eax, kernel_pdpt(, %ecx, 8)
    movl $0, kernel_pdpt + 4(, %ecx, 8)
    inc %ecx
    cmp $PD_PAGES, %ecx
    jne 1b

    /* PD entries: PD_PAGES * 512 identity 2 MiB pages */
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $(PTE_P_RW | PTE_PS), %eax
    cmp $MMIO_FIRST_PDE, %ecx
    jb 3f
    cmp $MMIO_END_PDE, %ecx
    jae 3f
    or $PTE_PWT_PCD, %eax
3:  mov %eax, kernel_pd(, %ecx, 8)
    mov %ecx, %eax
    shr $11, %eax               /* bits 32.. of (index << 21) */
    mov %eax, kernel_pd + 4(, %ecx, 8)
    inc %ecx
    cmp $(PD_PAGES * 512), %ecx
    jne 2b

    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $kernel_pml4, %eax
    mov %eax, %cr3
    mov $EFER_MSR, %ecx         /* OR into EFER: keep what is set */
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    /* NE too: native x87 error reporting, as every modern kernel sets it
       (under VMX this bit is the hypervisor's, so the write is emulated) */
    or $(CR0_PG | CR0_WP | CR0_NE | CR0_PE), %eax
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
    mov $kernel_stack_top, %rsp
    xor %ebp, %ebp
    mov %esi, %edi              /* zero-extends: first argument */
    call {start}
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

    /* ---- page tables and stacks ---- */
    .section .bss.kernel_boot, "aw", @nobits
    .balign 4096
    .global kernel_pml4
kernel_pml4:
    .skip 4096
    .global kernel_pdpt
kernel_pdpt:
    .skip 4096
    .global kernel_pd
kernel_pd:
    .skip 4096 * PD_PAGES
    .balign 4096
    .global kernel_guard_pt
kernel_guard_pt:                /* splits the 2 MiB page holding the guard */
    .skip 4096
    .global kernel_stack_guard
kernel_stack_guard:             /* unmapped by protect_stack (a 4 KiB page) */
    .skip 4096
kernel_stack_bottom:
    .skip {stack_size}
kernel_stack_top:
    .balign 16
    .skip {fault_stack_size}
    .global fault_stack_top
fault_stack_top:
    .skip {fault_stack_size}
    .global page_fault_stack_top
page_fault_stack_top:
    "#,
    start = sym super::start,
    pd_pages = const PD_PAGES,
    stack_size = const STACK_SIZE,
    fault_stack_size = const FAULT_STACK_SIZE,
    cr4_pae = const x86::controlregs::Cr4::CR4_ENABLE_PAE.bits(),
    efer = const x86::msr::IA32_EFER,
    efer_lme = const abi::regs::efer::LME,
    cr0_pe = const x86::controlregs::Cr0::CR0_PROTECTED_MODE.bits(),
    cr0_wp = const x86::controlregs::Cr0::CR0_WRITE_PROTECT.bits(),
    cr0_ne = const x86::controlregs::Cr0::CR0_NUMERIC_ERROR.bits(),
    cr0_pg = const x86::controlregs::Cr0::CR0_ENABLE_PAGING.bits(),
    options(att_syntax)
);

unsafe extern "C" {
    static kernel_pml4: [UnsafeCell<u64>; 512];
    static kernel_pdpt: [UnsafeCell<u64>; 512];
    static kernel_pd: [UnsafeCell<u64>; PD_ENTRIES];
    static kernel_guard_pt: [UnsafeCell<u64>; paging::ENTRIES];
    static kernel_stack_guard: u8;
    static fault_stack_top: u8;
    static page_fault_stack_top: u8;
    static __image_start: u8;
    static __image_end: u8;
}

/// Virtual address of the page-directory-pointer slot nothing maps
/// (entry 8 of the kernel's PDPT: the identity map uses entries 0..8),
/// which [`map_spare_1g_page`] fills with a 1 GiB page.
pub const SPARE_1G_VA: u64 = 8 << 30;
const SPARE_1G_SLOT: usize = 8;

/// Maps the 1 GiB guest page holding `gpa` (rounded down to 1 GiB) at
/// [`SPARE_1G_VA`] and returns that address; `user`: accessible from ring
/// 3 too (the PML4 entry above it then allows user access, which changes
/// nothing for the identity map: its PDPT entries stay supervisor-only).
/// Only the `rogue` workload uses it (a 1 GiB page reaching past the
/// partition's RAM, a ring-3 alias of the kernel's code); the slot is not
/// part of the identity map, so no translation the kernel relies on
/// changes.
pub fn map_spare_1g_page(gpa: u64, user: bool) -> u64 {
    const P_RW_PS: u64 = 0x83;
    const US: u64 = 0x4;
    let entry = (gpa & !((1 << 30) - 1)) | P_RW_PS | if user { US } else { 0 };
    // SAFETY: `kernel_pml4` and `kernel_pdpt` are the kernel's page tables
    // (4096 bytes each, page-aligned in `.bss`), written by nothing else
    // after boot. PDPT slot 8 is outside the identity map (slots 0..8);
    // setting U on PML4 entry 0 grants ring 3 nothing by itself (every
    // other PDPT entry below it is supervisor-only). `flush_tlb` then drops
    // any stale translation.
    unsafe {
        if user {
            let top = &kernel_pml4[0];
            core::ptr::write_volatile(top.get(), core::ptr::read_volatile(top.get()) | US);
        }
        core::ptr::write_volatile(kernel_pdpt[SPARE_1G_SLOT].get(), entry);
    }
    flush_tlb();
    SPARE_1G_VA
}

/// Drops every cached translation (a CR3 reload: the kernel's entries are
/// not global and PCIDs are off), after a page-table change.
fn flush_tlb() {
    // SAFETY: writing CR3 back with its own value keeps the same tables
    // (the kernel's, which map this code and the stack); only the TLB is
    // emptied. Not `nomem`: the table writes before it must not be moved
    // past it.
    unsafe {
        core::arch::asm!(
            "mov {tmp}, cr3",
            "mov cr3, {tmp}",
            tmp = out(reg) _,
            options(nostack, preserves_flags),
        );
    }
}

/// Top of the double-fault stack (for the TSS's IST1).
pub fn fault_stack_top_addr() -> u64 {
    // Taking the address of an extern static reads no memory.
    core::ptr::addr_of!(fault_stack_top) as u64
}

/// Top of the page-fault stack (for the TSS's IST2): a fault on the stack
/// guard cannot be delivered on the overflowed stack itself.
pub fn page_fault_stack_top_addr() -> u64 {
    // Taking the address of an extern static reads no memory.
    core::ptr::addr_of!(page_fault_stack_top) as u64
}

/// The kernel stack's guard page: the 4 KiB below its lowest byte.
pub fn stack_guard_addr() -> u64 {
    // Taking the address of an extern static reads no memory.
    core::ptr::addr_of!(kernel_stack_guard) as u64
}

/// Unmaps the kernel stack's guard page (see [`crate::paging`]): splits
/// the 2 MiB page of the identity map that holds it into the 4 KiB page
/// table `kernel_guard_pt`, the guard page absent. Called once, early in
/// `start` (the stack is shallow and far above the guard). If the boot
/// tables do not map the guard with a 2 MiB page (they always do), nothing
/// changes and [`stack_guarded`] says so.
pub fn protect_stack() {
    let guard = stack_guard_addr();
    let index = usize::try_from(guard >> 21).unwrap_or(usize::MAX);
    // SAFETY: `kernel_pd` is the kernel's page directory (PD_PAGES pages of
    // 512 entries, identity map of 0..8 GiB, entry i maps i * 2 MiB) and
    // `kernel_guard_pt` a page-aligned 4 KiB table in `.bss`; nothing else
    // writes either after boot. The image (and so the guard) lies below
    // 8 GiB, so `index` is in range (checked by `get`). The new table maps
    // every page of the 2 MiB region as before except the guard page, which
    // nothing uses, so no live translation changes; the table is complete
    // before the directory entry points at it, and `flush_tlb` then drops
    // the old 2 MiB translation.
    unsafe {
        let Some(slot) = kernel_pd.get(index) else {
            return;
        };
        let Some(table) = paging::split_with_hole(core::ptr::read_volatile(slot.get()), guard)
        else {
            return;
        };
        for (entry, value) in kernel_guard_pt.iter().zip(table) {
            core::ptr::write_volatile(entry.get(), value);
        }
        let table_pa = core::ptr::addr_of!(kernel_guard_pt) as u64;
        core::ptr::write_volatile(slot.get(), paging::table_entry(table_pa));
    }
    flush_tlb();
    GUARDED.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// Set once [`protect_stack`] unmapped the guard page.
static GUARDED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether the kernel stack's guard page is unmapped (the boot banner says
/// so, and only then is a fault on it named a stack overflow).
pub fn stack_guarded() -> bool {
    GUARDED.load(core::sync::atomic::Ordering::Relaxed)
}

/// The guest-physical range `[start, end)` of the loaded image, `.bss`
/// (page tables and stacks) included.
pub fn image_range() -> (u64, u64) {
    (
        core::ptr::addr_of!(__image_start) as u64,
        core::ptr::addr_of!(__image_end) as u64,
    )
}
