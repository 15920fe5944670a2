//! The hardware-independent core of Flotilla's hypervisor: parsing what the
//! boot loader and firmware hand over, decoding virtualization support, and
//! the reports the hypervisor prints. Everything here is plain code,
//! unit-tested on the host; the bare-metal binary (`main.rs`) adds the
//! machine layer (`arch`) and the boot flow.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
// Cast discipline (CONTRIBUTING.md): `From` widens; `try_from` or a commented `as` narrows.
#![warn(missing_docs, clippy::cast_lossless, clippy::cast_possible_truncation)]
#![warn(clippy::cast_possible_wrap, clippy::cast_sign_loss)]

extern crate alloc;

pub mod boot_image;
pub mod compat;
pub mod console_queue;
pub mod cpuid_policy;
pub mod event;
pub mod exception;
pub mod exit_handler;
pub mod guest_memory;
pub mod guest_paging;
pub mod hypercall;
pub mod instruction_length;
pub mod lvt_policy;
pub mod membership;
pub mod msr_policy;
pub mod nested_paging;
pub mod partition;
pub mod permission_map;
pub mod plan;
pub mod platform;
pub mod report;
pub mod svm;
pub mod timer_policy;
pub mod vcpu;
pub mod virt_caps;
pub mod vmx;
pub mod xcr0_policy;
