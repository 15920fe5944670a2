//! Kernels given by path, read for `flotilla check` (and every command that
//! loads a layout) exactly as the bundle builder reads them: the file is
//! flattened by [`crate::bundle::flatten_elf`], so a kernel `check` accepts
//! is one the builder can put in the bundle, and a kernel it refuses is
//! refused with the builder's reason, located at the layout's `kernel =`.
//! A bzImage (`vmlinuz`) is read as the ELF inside it ([`crate::bzimage`]).

use std::path::Path;

use goblin::elf::Elf;
use partition_config::{KernelImage, KernelSegment};

use crate::bundle::{flatten_elf, BundleError};
use crate::bzimage::{read_kernel_file, KernelFileError};

/// Reads the kernel at `path` as the bundle builder would: its load
/// segments, or why it cannot be booted (one sentence).
///
/// # Errors
/// The reason, for the diagnostic's label: unreadable, not ELF, not ELF64,
/// no PVH entry note, a segment below 1 MiB or outside the file, ….
pub fn read_kernel(path: &Path) -> Result<KernelImage, String> {
    let file = read_kernel_file(path).map_err(|e| match e {
        KernelFileError::Read(e) => format!("cannot read it: {e}"),
        KernelFileError::BzImage(reason) => format!("a bzImage, but {reason}"),
    })?;
    kernel_image(&file.elf, path).map_err(|reason| {
        if file.from_bzimage {
            format!("a bzImage whose kernel is unusable: {reason} (a kernel built without CONFIG_PVH has no PVH entry)")
        } else {
            reason
        }
    })
}

/// As [`read_kernel`], for the kernel's bytes (`path` names it).
///
/// # Errors
/// As [`read_kernel`].
pub fn kernel_image(bytes: &[u8], path: &Path) -> Result<KernelImage, String> {
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(if bytes.is_empty() {
            "the file is empty, not an ELF".to_owned()
        } else {
            "not an ELF file (no \\x7fELF magic)".to_owned()
        });
    }
    let elf = Elf::parse(bytes).map_err(|e| format!("a malformed or truncated ELF: {e}"))?;
    if !elf.is_64 {
        return Err("an ELF32 file: kernels given by path are ELF64".to_owned());
    }
    let image = flatten_elf(bytes, path).map_err(|e| match e {
        BundleError::NotPvh { reason, .. } => reason,
        other => other.to_string(),
    })?;
    Ok(KernelImage {
        segments: image
            .segments
            .iter()
            .map(|s| KernelSegment {
                gpa: s.gpa,
                mem_len: s.mem_len,
                data_len: u64::try_from(s.data.len()).unwrap_or(u64::MAX),
            })
            .collect(),
    })
}
