//! Per-core descriptor tables: a GDT with a 64-bit code and data segment and
//! a TSS whose interrupt stack table gives the double-fault, NMI and
//! machine-check handlers stacks of their own.

use alloc::boxed::Box;
use core::arch::asm;
use core::mem::size_of;
use x86::dtables::DescriptorTablePointer;

/// Kernel code segment selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data segment selector.
pub const KERNEL_DS: u16 = 0x10;
/// TSS selector.
pub const TSS_SELECTOR: u16 = 0x18;

/// IST slot (1-based, as in the IDT) for #DF and #MC.
pub const IST_FATAL: u8 = 1;
/// IST slot for NMIs.
pub const IST_NMI: u8 = 2;

const IST_STACK_SIZE: usize = 16 * 1024;

/// The 64-bit task-state segment (Intel SDM Vol. 3 §8.7, AMD APM Vol. 2 §12.2.5).
#[repr(C, packed(4))]
#[derive(Debug)]
pub struct Tss {
    reserved0: u32,
    rsp: [u64; 3],
    reserved1: u64,
    ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    iomap_base: u16,
}

#[repr(C, align(16))]
struct Stack([u8; IST_STACK_SIZE]);

/// One core's GDT, TSS and IST stacks. Never freed: a core's tables live as
/// long as the machine runs.
#[repr(C, align(16))]
pub struct CpuTables {
    gdt: [u64; 5],
    tss: Tss,
    fatal_stack: Stack,
    nmi_stack: Stack,
}

impl core::fmt::Debug for CpuTables {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CpuTables").finish_non_exhaustive()
    }
}

impl CpuTables {
    /// Allocates the tables for one core (on the heap; they are leaked).
    pub fn new() -> &'static mut CpuTables {
        let tables = Box::leak(Box::new(CpuTables {
            gdt: [0; 5],
            tss: Tss {
                reserved0: 0,
                rsp: [0; 3],
                reserved1: 0,
                ist: [0; 7],
                reserved2: 0,
                reserved3: 0,
                iomap_base: u16::try_from(size_of::<Tss>()).unwrap_or(u16::MAX), // no I/O map
            },
            fatal_stack: Stack([0; IST_STACK_SIZE]),
            nmi_stack: Stack([0; IST_STACK_SIZE]),
        }));
        let fatal_top = tables.fatal_stack.0.as_ptr() as u64 + IST_STACK_SIZE as u64;
        let nmi_top = tables.nmi_stack.0.as_ptr() as u64 + IST_STACK_SIZE as u64;
        tables.tss.ist[usize::from(IST_FATAL - 1)] = fatal_top;
        tables.tss.ist[usize::from(IST_NMI - 1)] = nmi_top;

        let tss_base = core::ptr::addr_of!(tables.tss) as u64;
        let tss_limit = (size_of::<Tss>() - 1) as u64;
        tables.gdt[1] = 0x00af_9a00_0000_ffff; // 64-bit code, DPL 0
        tables.gdt[2] = 0x00cf_9200_0000_ffff; // data, DPL 0
                                               // Available 64-bit TSS descriptor (type 9), present.
        tables.gdt[3] = (tss_limit & 0xffff)
            | ((tss_base & 0xff_ffff) << 16)
            | (0x89 << 40)
            | (((tss_limit >> 16) & 0xf) << 48)
            | (((tss_base >> 24) & 0xff) << 56);
        tables.gdt[4] = tss_base >> 32;
        tables
    }

    /// Loads the GDT, reloads the segment registers and loads the TSS.
    ///
    /// # Safety
    /// The tables must not be loaded on any other core (`ltr` needs a TSS
    /// that is not busy, and a TSS serves one core); they stay alive forever
    /// (the `'static` borrow guarantees that).
    pub unsafe fn load(&'static self) {
        let pointer = DescriptorTablePointer::new(&self.gdt);
        // SAFETY: the GDT is valid (null, code, data, TSS) and 'static; the
        // far return reloads CS with the code segment at the same RIP, data
        // segments get the flat data segment, and `ltr` marks this core's own
        // TSS busy (the caller guarantees no other core loaded it).
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
                ptr = in(reg) &pointer,
                cs = const KERNEL_CS as u64,
                tmp = out(reg) _,
                ds = in(reg) u64::from(KERNEL_DS),
                tss = in(reg) u64::from(TSS_SELECTOR),
            );
        }
    }
}
