//! The kernel's GDT and TSS: flat 64-bit code and data segments and a TSS
//! whose IST1 is the double-fault stack and IST2 the page-fault stack, so a
//! #DF caused by a broken stack, and a #PF on the stack's guard page, are
//! still reported. Ring-3 code and data segments exist only for the
//! `rogue` workload's hypercall from CPL 3 (the kernel itself runs in ring
//! 0 only).
//!
//! Both tables are statics made of atomics: they are filled once by
//! [`init`] and the CPU itself writes the TSS descriptor's busy bit.

use abi::regs::half;
use core::arch::asm;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use x86::dtables::DescriptorTablePointer;

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data selector.
pub const KERNEL_DS: u16 = 0x10;
/// TSS selector.
const TSS_SEL: u16 = 0x18;
/// User (ring 3) code selector, RPL 3.
pub const USER_CS: u16 = 0x28 | 3;
/// User (ring 3) data selector, RPL 3.
pub const USER_DS: u16 = 0x30 | 3;
/// IST index (1-based) of the double-fault stack.
pub const IST_FAULT: u8 = 1;
/// IST index (1-based) of the page-fault stack (a fault on the stack guard
/// must not be delivered on the overflowed stack).
pub const IST_PAGE_FAULT: u8 = 2;

/// GDT: null, code, data, TSS (two slots), user code, user data.
static GDT: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];
/// The 104-byte 64-bit TSS as 26 little-endian words.
#[repr(align(16))]
struct Tss([AtomicU32; 26]);
static TSS: Tss = Tss([const { AtomicU32::new(0) }; 26]);

/// Builds the GDT and TSS and loads them (`lgdt`, segment reloads, `ltr`).
/// Called once, on the boot stack, before interrupts are enabled.
pub fn init(fault_stack_top: u64, page_fault_stack_top: u64) {
    // TSS: IST1 at byte 0x24 (words 9, 10), IST2 at 0x2c (words 11, 12);
    // I/O map base = 104 (none).
    for (word, top) in [(9, fault_stack_top), (11, page_fault_stack_top)] {
        let (high, low) = half::split_u64(top);
        TSS.0[word].store(low, Ordering::Relaxed);
        TSS.0[word + 1].store(high, Ordering::Relaxed);
    }
    TSS.0[25].store(104 << 16, Ordering::Relaxed);

    let base = core::ptr::addr_of!(TSS) as u64;
    let limit = 103u64;
    let low = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x89 << 40) // present, 64-bit available TSS
        | (((base >> 24) & 0xff) << 56);
    GDT[1].store(0x00af_9a00_0000_ffff, Ordering::Relaxed);
    GDT[2].store(0x00cf_9200_0000_ffff, Ordering::Relaxed);
    GDT[3].store(low, Ordering::Relaxed);
    GDT[4].store(base >> 32, Ordering::Relaxed);
    GDT[5].store(0x00af_fa00_0000_ffff, Ordering::Relaxed); // 64-bit code, DPL 3
    GDT[6].store(0x00cf_f200_0000_ffff, Ordering::Relaxed); // data, DPL 3

    let ptr = DescriptorTablePointer::new(&GDT);
    // SAFETY: the GDT is a static (lives forever) holding valid flat code
    // and data descriptors at the selectors the kernel already uses, so
    // reloading CS (far return) and the data segments keeps every address
    // the same; the TSS descriptor points at a static TSS, which `ltr`
    // marks busy by writing the (atomic) descriptor.
    unsafe {
        asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            "mov ss, {ds:x}",
            "ltr {tss:x}",
            ptr = in(reg) &ptr,
            cs = in(reg) u64::from(KERNEL_CS),
            ds = in(reg) u64::from(KERNEL_DS),
            tss = in(reg) u64::from(TSS_SEL),
            tmp = out(reg) _,
        );
    }
}

/// Sets the TSS's RSP0: the stack the CPU switches to when an interrupt or
/// exception arrives in ring 3.
pub fn set_rsp0(top: u64) {
    let (high, low) = half::split_u64(top);
    TSS.0[1].store(low, Ordering::Relaxed);
    TSS.0[2].store(high, Ordering::Relaxed);
}
