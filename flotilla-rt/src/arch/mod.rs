//! The machine layer: the only place with `unsafe`. Boot code and page
//! tables (`entry`), GDT/TSS, IDT and interrupt stubs, the x2APIC, the
//! hypervisor interface (detection, hypercalls, bare-mode console and
//! exit), the heap, reading boot memory, and (feature `hostile`) the rogue
//! workload's forbidden actions. Everything above it is safe Rust.

// What only the `hostile` feature's attacks use is unused without it.
#![cfg_attr(not(feature = "hostile"), allow(dead_code))]

pub mod apic;
#[cfg(feature = "hostile")]
pub mod attack;
pub mod channel;
pub mod cpu;
mod entry;
mod gdt;
pub mod group;
pub mod heap;
pub mod hv;
pub mod idt;
pub mod mem;
mod pic;

pub use entry::{image_range, stack_guarded, FAULT_STACK_SIZE, STACK_SIZE};

pub use hv::{exit, Mode};

// SAFETY: `__flotilla_rt_entry` is the function `crate::entry!` defines in
// the workload's crate, with exactly this signature (Rust ABI, no
// arguments, returns the `Entry`); it has no preconditions, so it is
// declared safe to call.
unsafe extern "Rust" {
    safe fn __flotilla_rt_entry() -> crate::Entry;
}

/// Called by the 32-bit entry once in long mode, on the kernel stack,
/// interrupts off: loads the kernel's own GDT/TSS and IDT, detects the
/// hypervisor, then runs the kernel with the workload's entry.
extern "C" fn start(start_info_gpa: u64) -> ! {
    entry::protect_stack();
    gdt::init(
        entry::fault_stack_top_addr(),
        entry::page_fault_stack_top_addr(),
    );
    idt::init();
    if hv::detect() == Mode::Bare {
        pic::disable();
    }
    crate::kernel::main(__flotilla_rt_entry(), start_info_gpa)
}
