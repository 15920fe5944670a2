//! What the hypervisor learns about the machine before it starts anything:
//! the boot information (memory map, command line, modules) and the cores
//! (ACPI MADT). All parsing is pure code over a [`PhysMemory`] reader, so it
//! is unit-tested on the host with fake memory; the bare-metal reader is in
//! `arch::x86_64::common::phys`.

pub mod acpi;
pub mod boot_info;
pub mod memory;

pub use memory::{PhysError, PhysMemory};
