//! The host side of Flotilla: building the bare-metal images, assembling
//! bootable ISOs, booting emulators and reading their consoles.
//!
//! The `flotilla` binary is a thin layer over this library; the end-to-end
//! tests in `tests/` use the same API (chiefly [`runner::run`]) so that what
//! CI checks is exactly what a developer runs.
//!
//! Module map:
//! - [`system`]: finding host programs and files, with install hints.
//! - [`acpi`]: the ACPI tables of a stock-kernel (`compat`) partition.
//! - [`bundle`]: the boot bundle (manifest + kernels flattened from ELF).
//! - [`bzimage`]: the PVH ELF inside a Linux bzImage (`vmlinuz`).
//! - [`kernel_check`]: kernels given by path, read as the bundle builder
//!   reads them, for the layout checks.
//! - [`build`]: the workspace and the nested `cargo build` of bare-metal
//!   crates, workload crates included.
//! - [`scaffold`]: `flotilla new`, a new workload crate and its layout.
//! - [`accel`]: KVM / nested virtualization detection and accelerator choice.
//! - [`doctor`]: what this host can do, and what to install or enable.
//! - [`units`]: memory sizes as the user writes them.
//! - [`options`]: command-line values checked as they are parsed.
//! - [`image`]: GRUB multiboot2 ISOs.
//! - [`initramfs`]: a Linux partition's initramfs (cpio newc), and the
//!   stock kernel and busybox `ci/setup.sh` fetched.
//! - [`qemu`], [`bochs`]: emulator command lines and configuration files.
//! - [`console`]: console bytes to lines, marker parsing, the run verdict.
//! - [`runner`]: one emulator run under a hard timeout.
//! - [`report`]: the run report of a layout run, read from the console.
//! - [`layout_run`]: a layout booted end to end and judged by its report.
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

pub mod accel;
pub mod acpi;
pub mod bochs;
pub mod build;
pub mod bundle;
pub mod bzimage;
pub mod console;
pub mod doctor;
pub mod error;
pub mod image;
pub mod initramfs;
pub mod kernel_check;
pub mod layout_run;
pub mod options;
pub mod qemu;
pub mod report;
pub mod runner;
pub mod scaffold;
pub mod system;
pub mod units;

pub use error::{Error, Result};
