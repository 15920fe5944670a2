//! The binary manifest: the compact, checksummed form of a validated layout
//! that the hypervisor reads at boot (contract: `docs/manifest.md`).
//!
//! [`format`](mod@format) defines the little-endian records, [`Manifest::decode`]
//! validates a byte slice completely and hands out borrowed views; it never
//! allocates, never panics and never reads out of bounds. The encoder (std
//! only) lives in `encode` and is reached through `Layout::encode_manifest`.

mod decode;
#[cfg(feature = "std")]
pub(crate) mod encode;
pub mod format;

pub use decode::{
    Arg, ArgValue, Args, Channel, Compat, DecodeError, Group, GroupLink, Kernel, KernelKind,
    Machine, Manifest, Notify, OnFault, Partition, RegionKind,
};
pub use format::{fnv1a64, FORMAT_VERSION, MAGIC};
