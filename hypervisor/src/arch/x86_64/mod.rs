//! Everything that touches the x86-64 machine. `common` serves both vendors;
//! the SVM and VMX backends come with issues #4 and #6.

pub mod common;
pub mod svm;
pub mod vmx;
