//! The application processors' real-mode trampoline.
//!
//! An AP woken by INIT-SIPI-SIPI starts in 16-bit real mode at
//! `vector << 12`. The bootstrap core copies the code between
//! `trampoline_start` and `trampoline_end` to [`TRAMPOLINE_BASE`] (below
//! 1 MiB), fills the parameter block at its end for one AP, and sends the
//! SIPI. The AP then switches to protected mode, then to long mode with the
//! boot page tables, loads its stack and calls its entry with one argument.
//!
//! The code is assembled for its run address: absolute addresses are written
//! as `TRAMPOLINE_BASE + (label - trampoline_start)`.

use super::apic::LocalApic;
use super::time;
use core::ptr::addr_of;
use core::sync::atomic::{AtomicBool, Ordering};
use x86::controlregs::{Cr0, Cr4};

/// Physical address the trampoline runs at (page-aligned, below 1 MiB).
pub const TRAMPOLINE_BASE: u64 = 0x8000;

/// The SIPI vector that starts an AP at [`TRAMPOLINE_BASE`].
pub const TRAMPOLINE_SIPI_VECTOR: u8 = abi::regs::half::low8(TRAMPOLINE_BASE >> 12);

core::arch::global_asm!(
    r#"
    .set TB, {base}
    .section .rodata.trampoline, "a"
    .balign 4096
    .global trampoline_start, trampoline_end, trampoline_params
    .code16
trampoline_start:
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    lgdtl (tramp_gdt_ptr - trampoline_start)
    mov %cr0, %eax
    or ${cr0_pe}, %eax
    mov %eax, %cr0
    ljmpl $0x08, $(TB + (tramp_pm32 - trampoline_start))

    .code32
tramp_pm32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or ${cr4_pae}, %eax
    mov %eax, %cr4
    mov (TB + (tramp_cr3 - trampoline_start)), %eax
    mov %eax, %cr3
    mov ${efer}, %ecx           /* OR in LME */
    rdmsr
    or ${efer_lme}, %eax
    wrmsr
    mov %cr0, %eax
    or ${cr0_pg_wp}, %eax
    mov %eax, %cr0
    ljmp $0x18, $(TB + (tramp_lm64 - trampoline_start))

    .code64
tramp_lm64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    mov (TB + (tramp_stack - trampoline_start)), %rsp
    mov (TB + (tramp_arg - trampoline_start)), %rdi
    mov (TB + (tramp_entry - trampoline_start)), %rax
    xor %ebp, %ebp
    call *%rax
1:  cli
    hlt
    jmp 1b

    .balign 16
tramp_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff    /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
    .quad 0x00af9a000000ffff    /* 0x18: 64-bit code */
tramp_gdt_end:
    .short 0
tramp_gdt_ptr:
    .short tramp_gdt_end - tramp_gdt - 1
    .long TB + (tramp_gdt - trampoline_start)

    .balign 8
trampoline_params:
tramp_cr3:   .quad 0
tramp_stack: .quad 0
tramp_entry: .quad 0
tramp_arg:   .quad 0
trampoline_end:
    "#,
    base = const TRAMPOLINE_BASE,
    cr0_pe = const Cr0::CR0_PROTECTED_MODE.bits(),
    cr4_pae = const Cr4::CR4_ENABLE_PAE.bits(),
    efer = const x86::msr::IA32_EFER,
    efer_lme = const abi::regs::efer::LME,
    cr0_pg_wp = const Cr0::CR0_ENABLE_PAGING.bits() | Cr0::CR0_WRITE_PROTECT.bits(),
    options(att_syntax)
);

unsafe extern "C" {
    static trampoline_start: u8;
    static trampoline_end: u8;
    static trampoline_params: u8;
}

/// The parameter block at the end of the trampoline (layout fixed by the
/// assembly above).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TrampolineParams {
    /// Physical address of the PML4 to load (below 4 GiB).
    pub cr3: u64,
    /// Initial stack pointer (top of the AP's stack).
    pub stack_top: u64,
    /// Address of `extern "C" fn(u64) -> !` to call in long mode.
    pub entry: u64,
    /// The argument passed to `entry`.
    pub arg: u64,
}

/// Exclusive use of the trampoline page; at most one exists.
#[derive(Debug)]
pub struct Trampoline(());

static RESERVED: AtomicBool = AtomicBool::new(false);

impl Trampoline {
    /// Claims the trampoline page. `page_is_free_ram` must say whether
    /// `TRAMPOLINE_BASE..+4 KiB` is usable RAM in the memory map and holds
    /// nothing still needed (boot information is copied out before this).
    /// Returns `None` if it is not, or if the page was already claimed.
    pub fn claim(page_is_free_ram: bool) -> Option<Trampoline> {
        if !page_is_free_ram || RESERVED.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(Trampoline(()))
    }

    /// Starts the AP with APIC ID `apic_id` through the trampoline:
    /// INIT, 10 ms, SIPI, 200 µs, a second SIPI if `started` is still
    /// false, then waits up to `timeout_us` for the AP to set `started`
    /// (which it must do before anything else). Returns whether it did.
    ///
    /// The page is rewritten only while no AP can be executing it: the
    /// previous AP set its `started` flag (it left the trampoline) or the
    /// caller gives up on bring-up when this returns `false`.
    pub fn start_ap(
        &mut self,
        apic: LocalApic,
        apic_id: u32,
        params: &TrampolineParams,
        started: &AtomicBool,
        timeout_us: u64,
    ) -> bool {
        // SAFETY: `self` proves the page was claimed as free RAM (see
        // `claim`); the &mut borrow serialises starts, and each start waits
        // for its AP to leave the trampoline before returning `true`.
        unsafe { install(params) };
        apic.send_init(apic_id);
        time::delay_us(10_000);
        apic.send_startup(apic_id, TRAMPOLINE_SIPI_VECTOR);
        time::delay_us(200);
        if !started.load(Ordering::Acquire) {
            apic.send_startup(apic_id, TRAMPOLINE_SIPI_VECTOR);
        }
        let deadline = time::now_us() + timeout_us;
        while !started.load(Ordering::Acquire) {
            if time::now_us() > deadline {
                return false;
            }
            core::hint::spin_loop();
        }
        true
    }
}

/// Copies the trampoline to [`TRAMPOLINE_BASE`] and writes `params` into it.
///
/// # Safety
/// The page at `TRAMPOLINE_BASE` must be usable RAM that nothing else uses,
/// identity-mapped and writable, and no AP may be executing the trampoline
/// while it is rewritten.
unsafe fn install(params: &TrampolineParams) {
    let start = addr_of!(trampoline_start) as usize;
    let end = addr_of!(trampoline_end) as usize;
    let params_offset = addr_of!(trampoline_params) as usize - start;
    let len = end - start;
    debug_assert!(len <= 4096);
    // SAFETY: the source is the trampoline's bytes in the image (read-only
    // data, `len` bytes); the destination page is reserved for it by the
    // caller's contract; the two do not overlap (the image is above 1 MiB).
    unsafe {
        core::ptr::copy_nonoverlapping(start as *const u8, TRAMPOLINE_BASE as *mut u8, len);
        core::ptr::write_volatile(
            (TRAMPOLINE_BASE + params_offset as u64) as *mut TrampolineParams,
            *params,
        );
    }
}
