//! Everything that touches the x86-64 machine. `common` serves both vendors
//! (boot, descriptor tables, per-core state, the APIC, the console UART,
//! time, exception fixups); `svm` (AMD SVM with nested paging) and `vmx`
//! (Intel VMX with EPT) are the two virtualization backends, one of which
//! each partition's core enables (`partitions.rs` picks by the detected
//! backend).

pub mod common;
pub mod svm;
pub mod vmx;
