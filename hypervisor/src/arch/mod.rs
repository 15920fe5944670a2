//! The trust boundary: all machine access (privileged instructions, MSRs,
//! ports, the APIC, page tables, boot assembly) lives under this module.
//! Policy code outside it is free of `unsafe`.

pub mod x86_64;
