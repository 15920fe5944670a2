//! The machine layer: the only place with `unsafe`. Boot code and page
//! tables (`entry`), GDT/TSS, IDT and interrupt stubs, the x2APIC, the
//! hypervisor interface (detection, hypercalls, bare-mode console and
//! exit), the heap, reading boot memory, and the rogue workload's
//! forbidden actions. Everything above it is safe Rust.

pub mod apic;
pub mod attack;
pub mod channel;
pub mod cpu;
mod entry;
mod gdt;
pub mod heap;
pub mod hv;
pub mod idt;
pub mod mem;
mod pic;

pub use entry::{image_range, FAULT_STACK_SIZE, STACK_SIZE};

pub use hv::{exit, Mode};

/// Called by the 32-bit entry once in long mode, on the kernel stack,
/// interrupts off: loads the kernel's own GDT/TSS and IDT, detects the
/// hypervisor, then runs the kernel.
extern "C" fn start(start_info_gpa: u64) -> ! {
    gdt::init(entry::fault_stack_top_addr());
    idt::init();
    if hv::detect() == Mode::Bare {
        pic::disable();
    }
    crate::kernel::main(start_info_gpa)
}
