//! The small, versioned ABI shared by the hypervisor, the guest kernel and
//! the host tools.
//!
//! Everything here is plain data (constants and `repr(C)` layouts, viewed as
//! bytes with zerocopy); it is `no_std` with zerocopy as its only
//! dependency, so both bare-metal crates and host crates can use it. Each
//! module documents which contract in `docs/` it implements.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Cast discipline (see CONTRIBUTING.md): widening goes through `From`,
// narrowing through `try_from` or an `as` with a `// truncation:` comment.
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

pub mod acpi;
pub mod boot;
pub mod bundle;
pub mod cmdline;
pub mod compat;
pub mod console;
pub mod cpuid;
pub mod fault;
pub mod group;
pub mod hypercall;
pub mod ports;
pub mod regs;
pub mod run_end;
