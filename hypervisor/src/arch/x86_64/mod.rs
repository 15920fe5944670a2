//! Everything that touches the x86-64 machine. `common` serves both vendors;
//! `svm` and `vmx` are the two implementations of the backend traits of
//! [`hypervisor::vcpu`], sharing the permission maps of `bitmaps`.

pub mod bitmaps;
pub mod common;
pub mod svm;
pub mod vmx;
