//! Partition layouts for Flotilla: the user's TOML contract, its whole-system
//! validation, host-physical placement, and the compact binary manifest the
//! hypervisor reads.
//!
//! The crate has two halves:
//!
//! * Always compiled (`no_std`, no allocation): the memory-map policy and
//!   limits ([`limits`]), the built-in kernel's workload catalog
//!   ([`catalog`]), and the manifest records and decoder ([`manifest`]). The
//!   hypervisor depends on this half with `default-features = false`.
//! * With the `std` feature (default): the TOML front end with precise
//!   diagnostics, validation, placement, the manifest encoder, `explain` and
//!   the JSON Schema of the format.
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use partition_config::{parse_str, Manifest};
//!
//! let layout = parse_str(partition_config::DEFAULT_LAYOUT, "default.toml")
//!     .expect("the default layout is valid");
//! assert_eq!(layout.partitions.len(), 4);
//!
//! // Lower to the binary manifest and read it back as the hypervisor does.
//! let bytes = layout.encode_manifest();
//! let manifest = Manifest::decode(&bytes).expect("encoder output decodes");
//! assert_eq!(manifest.partition_count(), 4);
//!
//! // Errors come back all at once, rendered with file:line:column.
//! let errors = parse_str("[machine]\ncpus = 4\nmemroy = \"1 GiB\"\n", "bad.toml").unwrap_err();
//! assert!(errors.render_plain().contains("did you mean `memory`"));
//! # }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
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

pub mod catalog;
pub mod limits;
pub mod manifest;

/// Version of the layout format, the TOML contract of `docs/layout.md`
/// (its "Versions" list and `docs/README.md` name the same number; the
/// `tidy_docs` test checks). It also names the JSON Schema (`layout-v3`).
pub const LAYOUT_FORMAT_VERSION: u32 = 3;

#[cfg(feature = "std")]
mod boot_options;
#[cfg(feature = "std")]
mod crate_args;
#[cfg(feature = "std")]
mod diagnostics;
#[cfg(feature = "std")]
mod explain;
#[cfg(feature = "std")]
mod front;
#[cfg(feature = "std")]
mod groups;
#[cfg(feature = "std")]
mod kernels;
#[cfg(feature = "std")]
mod layout;
#[cfg(feature = "std")]
mod placement;
#[cfg(feature = "std")]
mod schema;
#[cfg(feature = "std")]
mod source;
#[cfg(feature = "std")]
mod validate;

pub use manifest::{DecodeError, Manifest};

#[cfg(feature = "std")]
pub use diagnostics::{Diagnostic, Diagnostics, Label, Severity, SourceFile};
#[cfg(feature = "std")]
pub use kernels::{bundle_bytes, module_bytes, KernelImage, KernelSegment, ReadKernel};
#[cfg(feature = "std")]
pub use layout::{
    ArgValue, Channel, Compat, Group, GroupLink, Initrd, Kernel, Layout, Machine, Notify, OnFault,
    Partition, PortRange, Region,
};
#[cfg(feature = "std")]
pub use schema::schema;

/// The default layout: four partitions on cpus 0..=3 (a ping-pong pair over a
/// polled channel, a `hello`, a `compute`). The text of `examples/default.toml`.
#[cfg(feature = "std")]
pub const DEFAULT_LAYOUT: &str = include_str!("../../examples/default.toml");

/// Parses and validates a layout given as text. `file_name` is used in
/// diagnostics, and kernel paths are resolved relative to its directory.
/// Warnings are dropped: use [`parse_str_with_warnings`] to see them.
///
/// # Errors
/// Every problem found (syntax, unknown keys, meaning, placement), rendered
/// with source locations by [`Diagnostics`] (warnings included).
#[cfg(feature = "std")]
pub fn parse_str(source: &str, file_name: &str) -> Result<Layout, Diagnostics> {
    front::parse(source, file_name, None).map(|(layout, _)| layout)
}

/// As [`parse_str`], and a valid layout comes with its warnings (possibly
/// none).
///
/// # Errors
/// As [`parse_str`].
#[cfg(feature = "std")]
pub fn parse_str_with_warnings(
    source: &str,
    file_name: &str,
) -> Result<(Layout, Diagnostics), Diagnostics> {
    front::parse(source, file_name, None)
}

/// Parses a size as layouts write it: an integer number of bytes, or
/// `"<n> <unit>"` with unit `B`, `KiB`, `MiB` or `GiB` (`"512 MiB"`,
/// `"512MiB"`). Decimal units (`MB`, `M`) are refused with the binary
/// spelling as the hint, since the format means binary units only.
///
/// # Errors
/// Why `text` is not a size, as a help sentence.
#[cfg(feature = "std")]
pub fn parse_size(text: &str) -> Result<u64, String> {
    front::parse_size(text)
}

/// As [`parse_str_with_warnings`], and every kernel given by path is read
/// with `read_kernel` and checked as the boot bundle will need it: bootable
/// (the reader's verdict), at most `abi::bundle::MAX_SEGMENTS` segments, each
/// at or above 1 MiB and inside its partition's memory, the whole bundle
/// within [`limits::MAX_BUNDLE_LEN`]. Each failure is located at `kernel =`.
///
/// # Errors
/// As [`parse_str`], plus the kernels' problems.
#[cfg(feature = "std")]
pub fn parse_str_with_kernels(
    source: &str,
    file_name: &str,
    read_kernel: ReadKernel<'_>,
) -> Result<(Layout, Diagnostics), Diagnostics> {
    front::parse(source, file_name, Some(read_kernel))
}

/// As [`load`], and a valid layout comes with its warnings (possibly none).
///
/// # Errors
/// As [`load`].
#[cfg(feature = "std")]
pub fn load_with_warnings(
    path: impl AsRef<std::path::Path>,
) -> Result<(Layout, Diagnostics), Diagnostics> {
    let path = path.as_ref();
    let source = read_file(path)?;
    parse_str_with_warnings(&source, &path.display().to_string())
}

/// Reads a layout file's text: a regular file (a directory, a device or a
/// FIFO is refused without being opened), UTF-8 (a UTF-8 byte order mark is
/// dropped).
///
/// # Errors
/// One diagnostic (`unreadable-file`, `not-utf8` at the first bad byte or
/// naming UTF-16, `cr-line-endings` once for lone CRs).
#[cfg(feature = "std")]
pub fn read_file(path: impl AsRef<std::path::Path>) -> Result<String, Diagnostics> {
    source::read(path.as_ref())
}

/// The text of a layout given as bytes (e.g. standard input), checked as
/// [`read_file`] checks a file's; `file_name` names it in diagnostics.
///
/// # Errors
/// As [`read_file`].
#[cfg(feature = "std")]
pub fn decode_source(bytes: &[u8], file_name: &str) -> Result<String, Diagnostics> {
    source::decode(bytes, file_name)
}

/// Reads, parses and validates the layout file at `path`.
///
/// # Errors
/// As [`parse_str`]; an unreadable file is a single diagnostic without source.
#[cfg(feature = "std")]
pub fn load(path: impl AsRef<std::path::Path>) -> Result<Layout, Diagnostics> {
    load_with_warnings(path).map(|(layout, _)| layout)
}
