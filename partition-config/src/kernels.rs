//! Kernels given by path, as validation sees them: the load segments the
//! bundle builder would put in the boot bundle. Reading the ELF is the
//! caller's job (the `tools` crate reads it exactly as its bundle builder
//! does); validation checks the segments against the partition's memory,
//! the bundle's limits (`abi::bundle`) and the hypervisor's bundle size
//! limit ([`crate::limits::MAX_BUNDLE_LEN`]).

use std::path::Path;

/// One load segment of a kernel image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSegment {
    /// Guest-physical address of its first byte.
    pub gpa: u64,
    /// Bytes of memory it occupies.
    pub mem_len: u64,
    /// Bytes of it stored in the file (and so in the bundle).
    pub data_len: u64,
}

/// A kernel image, flattened into its load segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImage {
    /// Its load segments, in file order.
    pub segments: Vec<KernelSegment>,
}

/// Reads the kernel at a (resolved) path: its image, or why it cannot be
/// booted (a sentence, shown as the label at the layout's `kernel =`).
pub type ReadKernel<'a> = &'a dyn Fn(&Path) -> Result<KernelImage, String>;

/// Bytes the images take in a boot bundle (`abi::bundle`'s layout: records
/// and 8-byte aligned data), not counting the header and the manifest.
#[must_use]
pub fn bundle_bytes<'i>(images: impl IntoIterator<Item = &'i KernelImage>) -> u64 {
    use abi::bundle::{IMAGE_RECORD_SIZE, SEGMENT_RECORD_SIZE};
    let align8 = |v: u64| v.div_ceil(8).saturating_mul(8);
    let widen = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    images.into_iter().fold(0u64, |total, image| {
        let records = widen(IMAGE_RECORD_SIZE)
            .saturating_add(widen(image.segments.len()).saturating_mul(widen(SEGMENT_RECORD_SIZE)));
        let data = image
            .segments
            .iter()
            .fold(0u64, |d, s| d.saturating_add(align8(s.data_len)));
        total.saturating_add(records).saturating_add(data)
    })
}

/// Bytes one boot module of `len` bytes (an initrd, a partition's ACPI
/// tables) takes in a boot bundle: its record and its 8-byte aligned data.
#[must_use]
pub fn module_bytes(len: u64) -> u64 {
    let record = u64::try_from(abi::bundle::MODULE_RECORD_SIZE).unwrap_or(u64::MAX);
    record.saturating_add(len.div_ceil(8).saturating_mul(8))
}
