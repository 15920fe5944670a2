//! Everything that touches the x86-64 machine. `common` serves both vendors
//! (boot, descriptor tables, per-core state, the APIC, the console UART,
//! time, exception fixups); `svm` (AMD SVM with nested paging) and `vmx`
//! (Intel VMX with EPT) implement the backend traits of
//! [`hypervisor::vcpu`], sharing the permission maps of `bitmaps`.

pub mod bitmaps;
pub mod common;
pub mod svm;
pub mod vmx;
