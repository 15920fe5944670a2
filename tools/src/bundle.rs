//! The boot bundle (`docs/bundle.md`): a validated layout's manifest, the
//! partitions' initrds and compat ACPI tables, plus every kernel it names, flattened from ELF into load segments here on the
//! host so the hypervisor never parses ELF. A kernel given as a bzImage
//! goes in as the ELF inside it ([`crate::bzimage`]).

use crate::bzimage::{read_kernel_file, KernelFileError};
use abi::boot::KERNEL_MIN_GPA;
use abi::bundle::build::{encode_with_modules, ImageSpec, ModuleSpec, SegmentSpec};
use abi::bundle::{MODULE_ACPI, MODULE_INITRD};
use goblin::elf::program_header::{PT_LOAD, PT_NOTE};
use goblin::elf::Elf;
use partition_config::{Kernel, Layout};
use std::path::{Path, PathBuf};

/// `XEN_ELFNOTE_PHYS32_ENTRY`: the PVH entry point note.
const PVH_ENTRY_NOTE: u32 = 18;

/// Why a bundle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A kernel file could not be read.
    #[error("cannot read kernel {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A kernel is not a usable PVH ELF.
    #[error("kernel {path} is not a PVH-bootable ELF: {reason}")]
    NotPvh {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn not_pvh(path: &Path, reason: impl Into<String>) -> BundleError {
    BundleError::NotPvh {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The bytes `offset..offset + len` of an ELF file as an index range, or
/// `None` when they cannot be addressed on this host (the caller then finds
/// them outside the file).
fn file_range(offset: u64, len: u64) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    Some(start..start.saturating_add(usize::try_from(len).ok()?))
}

/// Turns a PVH ELF into its entry point and load segments (by physical
/// address). The entry comes from the PVH note; an ELF without one is
/// refused, since partitions start the PVH way.
pub fn flatten_elf(bytes: &[u8], path: &Path) -> Result<ImageSpec, BundleError> {
    let elf = Elf::parse(bytes).map_err(|e| not_pvh(path, e.to_string()))?;
    let mut entry = None;
    for ph in elf.program_headers.iter().filter(|ph| ph.p_type == PT_NOTE) {
        let Some(mut notes) = file_range(ph.p_offset, ph.p_filesz).and_then(|r| bytes.get(r))
        else {
            return Err(not_pvh(path, "a note segment lies outside the file"));
        };
        while notes.len() >= 12 {
            let word =
                |i: usize| u32::from_le_bytes([notes[i], notes[i + 1], notes[i + 2], notes[i + 3]]);
            let (namesz, descsz, kind) = (word(0) as usize, word(4) as usize, word(8));
            let name_end = 12 + namesz.div_ceil(4) * 4;
            let desc_end = name_end + descsz.div_ceil(4) * 4;
            if desc_end > notes.len() {
                break;
            }
            let name = &notes[12..12 + namesz];
            if kind == PVH_ENTRY_NOTE && name.starts_with(b"Xen") {
                let desc = &notes[name_end..name_end + descsz];
                entry = match descsz {
                    4 => Some(u64::from(u32::from_le_bytes(
                        desc.try_into().expect("4 bytes"),
                    ))),
                    8 => Some(u64::from_le_bytes(desc.try_into().expect("8 bytes"))),
                    _ => return Err(not_pvh(path, "the PVH entry note has a bad size")),
                };
            }
            notes = &notes[desc_end..];
        }
    }
    let entry = entry.ok_or_else(|| not_pvh(path, "no XEN_ELFNOTE_PHYS32_ENTRY note"))?;
    if entry >= 1 << 32 {
        return Err(not_pvh(path, format!("entry {entry:#x} is above 4 GiB")));
    }
    let mut segments = Vec::new();
    for ph in elf
        .program_headers
        .iter()
        .filter(|ph| ph.p_type == PT_LOAD && ph.p_memsz > 0)
    {
        if ph.p_paddr < KERNEL_MIN_GPA {
            return Err(not_pvh(
                path,
                format!(
                    "a segment loads at {:#x}, below {KERNEL_MIN_GPA:#x} (the boot area)",
                    ph.p_paddr
                ),
            ));
        }
        let data = file_range(ph.p_offset, ph.p_filesz)
            .and_then(|r| bytes.get(r))
            .ok_or_else(|| not_pvh(path, "a load segment lies outside the file"))?;
        // Trailing zeros need not travel: the hypervisor zeroes the
        // partition's RAM before loading (a stripped Linux carries its .bss
        // and .brk as file bytes, 23 MiB of zeros in Debian's 6.1).
        let data = &data[..data
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1)];
        segments.push(SegmentSpec {
            gpa: ph.p_paddr,
            mem_len: ph.p_memsz,
            data: data.to_vec(),
        });
    }
    if segments.is_empty() {
        return Err(not_pvh(path, "no loadable segment"));
    }
    Ok(ImageSpec { entry, segments })
}

/// Builds the bundle of `layout`; `builtin_kernel` is the path of the
/// built guest kernel (for `kernel = "guest-kernel"`).
pub fn build(layout: &Layout, builtin_kernel: &Path) -> Result<Vec<u8>, BundleError> {
    let mut images = Vec::new();
    for kernel in &layout.kernels {
        let path = match kernel {
            Kernel::BuiltIn => builtin_kernel.to_path_buf(),
            Kernel::Elf { path, .. } => path.clone(),
            // Built when the layout was loaded; this finds the ELF.
            Kernel::Crate { dir, .. } => {
                crate::build::build_workload(&crate::build::Workspace::locate(), dir).map_err(
                    |e| BundleError::Read {
                        path: dir.clone(),
                        source: std::io::Error::other(e.to_string()),
                    },
                )?
            }
        };
        let file = read_kernel_file(&path).map_err(|e| match e {
            KernelFileError::Read(source) => BundleError::Read {
                path: path.clone(),
                source,
            },
            KernelFileError::BzImage(reason) => not_pvh(&path, format!("a bzImage, but {reason}")),
        })?;
        images.push(flatten_elf(&file.elf, &path)?);
    }
    let (modules, blobs) = modules(layout)?;
    let blobs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
    Ok(encode_with_modules(
        &layout.encode_manifest(),
        &images,
        &modules,
        &blobs,
    ))
}

/// The per-partition modules of `layout` and their bytes: each distinct
/// initrd once, and one set of ACPI tables ([`crate::acpi::build`]) shared
/// by every compat partition.
fn modules(layout: &Layout) -> Result<(Vec<ModuleSpec>, Vec<Vec<u8>>), BundleError> {
    let mut modules = Vec::new();
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut initrds: Vec<(&Path, usize)> = Vec::new();
    let mut acpi = None;
    for (index, p) in layout.partitions.iter().enumerate() {
        let partition = u16::try_from(index).unwrap_or(u16::MAX);
        if let Some(initrd) = &p.initrd {
            let blob = match initrds.iter().find(|(path, _)| *path == initrd.path) {
                Some((_, blob)) => *blob,
                None => {
                    let bytes =
                        std::fs::read(&initrd.path).map_err(|source| BundleError::Read {
                            path: initrd.path.clone(),
                            source,
                        })?;
                    blobs.push(bytes);
                    initrds.push((&initrd.path, blobs.len() - 1));
                    blobs.len() - 1
                }
            };
            modules.push(ModuleSpec {
                kind: MODULE_INITRD,
                partition,
                blob,
            });
        }
        if p.compat.is_compat() {
            let blob = *acpi.get_or_insert_with(|| {
                blobs.push(crate::acpi::build());
                blobs.len() - 1
            });
            modules.push(ModuleSpec {
                kind: MODULE_ACPI,
                partition,
                blob,
            });
        }
    }
    Ok((modules, blobs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_elf_and_elf_without_pvh_note_are_refused() {
        let path = Path::new("k.elf");
        let err = flatten_elf(b"not an elf at all", path).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("kernel k.elf is not a PVH-bootable ELF"),
            "{err}"
        );
        // The test binary itself is an ELF without a PVH note.
        let me =
            std::fs::read(std::env::current_exe().expect("test binary path")).expect("readable");
        let err = flatten_elf(&me, path).unwrap_err();
        assert!(
            err.to_string().contains("no XEN_ELFNOTE_PHYS32_ENTRY note"),
            "{err}"
        );
    }
}
