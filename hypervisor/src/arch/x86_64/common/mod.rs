//! Code common to both vendors: boot, descriptor tables, per-core state, the
//! local APIC, the console UART, time, and the heap.

pub mod apic;
pub mod boot;
pub mod cpu;
pub mod fixup;
pub mod frames;
pub mod gdt;
pub mod heap;
pub mod idt;
pub mod instr;
pub mod machine;
pub mod percpu;
pub mod phys;
pub mod pic;
pub mod region;
pub mod serial;
pub mod time;
pub mod trampoline;
