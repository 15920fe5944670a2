//! Flotilla's hypervisor, the bare-metal binary: the machine layer (`arch`,
//! the only place with `unsafe`) and the boot flow on top of the
//! hardware-independent library (`hypervisor`, in `lib.rs`).
//!
//! On a host target the binary is empty; it exists there only so that
//! `cargo test` covers the library.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]
// Cast discipline as in lib.rs (CONTRIBUTING.md).
#![warn(clippy::cast_lossless, clippy::cast_possible_truncation)]
#![warn(clippy::cast_possible_wrap, clippy::cast_sign_loss)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod arch;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod fatal;
#[cfg(target_os = "none")]
mod partitions;
#[cfg(target_os = "none")]
mod run_end;
#[cfg(target_os = "none")]
mod smp;
#[cfg(target_os = "none")]
mod start;

#[cfg(target_os = "none")]
pub use start::{ap_entry, bsp_entry};

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "flotilla-hypervisor is a bare-metal image: build it with --target x86_64-unknown-none"
    );
}
