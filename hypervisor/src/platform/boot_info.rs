//! The boot information of the two supported boot protocols, turned into one
//! owned [`BootInfo`]: PVH (`hvm_start_info`, QEMU `-kernel`) and multiboot2
//! (GRUB).
//!
//! Everything is copied out of the loader's structures, so the memory they
//! occupied (possibly below 1 MiB, where the AP trampoline goes) can be
//! reused afterwards.
//!
//! References: Xen's `arch-x86/hvm/start_info.h` (PVH start info, version 1
//! carries the memory map) and the Multiboot2 specification §3.6 (tags).

use super::memory::{PhysError, PhysMemory};
use abi::boot::{HvmMemmapEntry, HvmModlistEntry, HvmStartInfo, PVH_START_MAGIC};
use alloc::string::String;
use alloc::vec::Vec;
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, FromZeros, IntoBytes};
/// `eax` at a multiboot2 entry.
pub const MULTIBOOT2_BOOT_MAGIC: u32 = 0x36d7_6289;

/// Longest command line accepted; a longer one is an error, not truncated.
pub const MAX_CMDLINE: usize = 4096;
/// Most memory-map entries accepted.
pub const MAX_MEMORY_REGIONS: usize = 256;
/// Most boot modules accepted.
pub const MAX_MODULES: usize = 16;

/// Which protocol started the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Xen PVH direct boot (QEMU `-kernel`).
    Pvh,
    /// Multiboot2 (GRUB).
    Multiboot2,
}

/// Kind of a memory-map entry (E820 numbering, shared by both protocols).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// Usable RAM.
    Usable,
    /// Reserved by firmware or hardware.
    Reserved,
    /// ACPI tables (reclaimable once read).
    AcpiReclaimable,
    /// ACPI non-volatile storage.
    AcpiNvs,
    /// Defective RAM.
    Bad,
    /// Any other type number.
    Other(u32),
}

impl RegionKind {
    fn from_e820(kind: u32) -> RegionKind {
        match kind {
            1 => RegionKind::Usable,
            2 => RegionKind::Reserved,
            3 => RegionKind::AcpiReclaimable,
            4 => RegionKind::AcpiNvs,
            5 => RegionKind::Bad,
            other => RegionKind::Other(other),
        }
    }
}

/// One memory-map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// What it is.
    pub kind: RegionKind,
}

impl MemoryRegion {
    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }
}

/// A boot module (the boot bundle, later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// Physical address of its first byte.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// Its command line (may be empty).
    pub cmdline: String,
}

/// Where the ACPI tables start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiRoot {
    /// The physical address of the RSDP.
    RsdpAddress(u64),
    /// A copy of the RSDP handed over by the loader (multiboot2 tags 14/15):
    /// the RSDT and, for ACPI 2.0+, XSDT addresses it contains.
    Copied {
        /// RSDT address.
        rsdt: u32,
        /// XSDT address, if the RSDP is version 2 or later.
        xsdt: Option<u64>,
    },
}

/// Everything the hypervisor takes from its boot loader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// The protocol used.
    pub protocol: Protocol,
    /// The firmware's memory map, in the loader's order.
    pub memory: Vec<MemoryRegion>,
    /// The hypervisor's command line.
    pub cmdline: String,
    /// Boot modules.
    pub modules: Vec<Module>,
    /// The ACPI root, when the loader gave one.
    pub acpi: Option<AcpiRoot>,
}

impl BootInfo {
    /// Whether `base..base+len` lies entirely in usable RAM (touching
    /// usable regions may be adjacent entries).
    pub fn is_usable(&self, base: u64, len: u64) -> bool {
        let Some(end) = base.checked_add(len) else {
            return false;
        };
        let mut cursor = base;
        while cursor < end {
            let next = self
                .memory
                .iter()
                .filter(|r| r.kind == RegionKind::Usable && r.base <= cursor && cursor < r.end())
                .map(MemoryRegion::end)
                .max();
            match next {
                Some(region_end) => cursor = region_end,
                None => return false,
            }
        }
        true
    }

    /// Total usable RAM in bytes.
    pub fn usable_bytes(&self) -> u64 {
        self.memory
            .iter()
            .filter(|r| r.kind == RegionKind::Usable)
            .map(|r| r.len)
            .sum()
    }
}

/// Why the boot information could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// The loader's structures point at memory that cannot be read.
    Unreadable(PhysError),
    /// Neither the multiboot2 magic nor the PVH start-info magic was found.
    UnknownProtocol {
        /// `eax` at entry.
        eax: u32,
    },
    /// The PVH start info is version 0 (no memory map).
    PvhWithoutMemoryMap,
    /// A structure is malformed.
    Malformed(&'static str),
    /// Something exceeds a documented limit.
    TooLarge(&'static str),
    /// The command line is not UTF-8.
    CmdlineNotUtf8,
}

impl From<PhysError> for BootInfoError {
    fn from(e: PhysError) -> Self {
        BootInfoError::Unreadable(e)
    }
}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootInfoError::Unreadable(e) => write!(f, "boot information unreadable: {e}"),
            BootInfoError::UnknownProtocol { eax } => write!(
                f,
                "unknown boot protocol (eax={eax:#x}): boot through PVH (QEMU -kernel) or multiboot2 (GRUB)"
            ),
            BootInfoError::PvhWithoutMemoryMap => {
                write!(f, "PVH start info version 0 has no memory map; use QEMU 4.0 or newer")
            }
            BootInfoError::Malformed(what) => write!(f, "malformed boot information: {what}"),
            BootInfoError::TooLarge(what) => write!(f, "boot information too large: {what}"),
            BootInfoError::CmdlineNotUtf8 => write!(f, "the command line is not valid UTF-8"),
        }
    }
}

/// Reads the boot information given the entry registers `eax` and `ebx`.
pub fn parse(mem: &impl PhysMemory, eax: u32, ebx: u32) -> Result<BootInfo, BootInfoError> {
    if eax == MULTIBOOT2_BOOT_MAGIC {
        parse_multiboot2(mem, u64::from(ebx))
    } else if mem.read_u32(u64::from(ebx)) == Ok(PVH_START_MAGIC) {
        parse_pvh(mem, u64::from(ebx))
    } else {
        Err(BootInfoError::UnknownProtocol { eax })
    }
}

fn read_c_string(mem: &impl PhysMemory, addr: u64, limit: usize) -> Result<String, BootInfoError> {
    let mut bytes = Vec::new();
    if addr == 0 {
        return Ok(String::new());
    }
    loop {
        let offset = bytes.len() as u64;
        let b = mem.read_u8(addr + offset)?;
        if b == 0 {
            break;
        }
        if bytes.len() >= limit {
            return Err(BootInfoError::TooLarge(
                "command line longer than 4096 bytes",
            ));
        }
        bytes.push(b);
    }
    String::from_utf8(bytes).map_err(|_| BootInfoError::CmdlineNotUtf8)
}

fn string_from_bytes(bytes: &[u8]) -> Result<String, BootInfoError> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    if end > MAX_CMDLINE {
        return Err(BootInfoError::TooLarge(
            "command line longer than 4096 bytes",
        ));
    }
    String::from_utf8(bytes[..end].to_vec()).map_err(|_| BootInfoError::CmdlineNotUtf8)
}

/// The record of type `T` at `addr`.
fn read_record<T: FromBytes + IntoBytes>(mem: &impl PhysMemory, addr: u64) -> Result<T, PhysError> {
    let mut record = T::new_zeroed();
    mem.read(addr, record.as_mut_bytes())?;
    Ok(record)
}

/// Parses a PVH `hvm_start_info` at `addr`.
pub fn parse_pvh(mem: &impl PhysMemory, addr: u64) -> Result<BootInfo, BootInfoError> {
    // Version 0 ends where the memory-map fields start: read those only
    // once the version says they exist.
    let v1_fields = offset_of!(HvmStartInfo, memmap_paddr);
    let mut si = HvmStartInfo::new_zeroed();
    mem.read(addr, &mut si.as_mut_bytes()[..v1_fields])?;
    if si.magic != PVH_START_MAGIC {
        return Err(BootInfoError::Malformed("PVH start info magic"));
    }
    if si.version < 1 {
        return Err(BootInfoError::PvhWithoutMemoryMap);
    }
    mem.read(addr + v1_fields as u64, &mut si.as_mut_bytes()[v1_fields..])?;
    let (memmap_entries, nr_modules) = (si.memmap_entries as usize, si.nr_modules as usize);
    if memmap_entries > MAX_MEMORY_REGIONS {
        return Err(BootInfoError::TooLarge("more than 256 memory-map entries"));
    }
    if nr_modules > MAX_MODULES {
        return Err(BootInfoError::TooLarge("more than 16 boot modules"));
    }

    let mut memory = Vec::with_capacity(memmap_entries);
    for i in 0..memmap_entries as u64 {
        let at = si.memmap_paddr + i * size_of::<HvmMemmapEntry>() as u64;
        let e: HvmMemmapEntry = read_record(mem, at)?;
        memory.push(MemoryRegion {
            base: e.addr,
            len: e.size,
            kind: RegionKind::from_e820(e.kind),
        });
    }
    let mut modules = Vec::with_capacity(nr_modules);
    for i in 0..nr_modules as u64 {
        let at = si.modlist_paddr + i * size_of::<HvmModlistEntry>() as u64;
        let m: HvmModlistEntry = read_record(mem, at)?;
        modules.push(Module {
            base: m.paddr,
            len: m.size,
            cmdline: read_c_string(mem, m.cmdline_paddr, MAX_CMDLINE)?,
        });
    }
    Ok(BootInfo {
        protocol: Protocol::Pvh,
        memory,
        cmdline: read_c_string(mem, si.cmdline_paddr, MAX_CMDLINE)?,
        modules,
        acpi: (si.rsdp_paddr != 0).then_some(AcpiRoot::RsdpAddress(si.rsdp_paddr)),
    })
}

const MB2_TAG_END: u32 = 0;
const MB2_TAG_CMDLINE: u32 = 1;
const MB2_TAG_MODULE: u32 = 3;
const MB2_TAG_MMAP: u32 = 6;
const MB2_TAG_ACPI_OLD: u32 = 14;
const MB2_TAG_ACPI_NEW: u32 = 15;
/// Largest multiboot2 information structure accepted.
const MB2_MAX_SIZE: u32 = 1 << 20;

/// Parses a multiboot2 boot information structure at `addr`.
pub fn parse_multiboot2(mem: &impl PhysMemory, addr: u64) -> Result<BootInfo, BootInfoError> {
    let total = mem.read_u32(addr)?;
    if !(16..=MB2_MAX_SIZE).contains(&total) {
        return Err(BootInfoError::Malformed("multiboot2 total size"));
    }
    let end = addr + u64::from(total);
    let mut info = BootInfo {
        protocol: Protocol::Multiboot2,
        memory: Vec::new(),
        cmdline: String::new(),
        modules: Vec::new(),
        acpi: None,
    };
    let mut tag = addr + 8;
    let mut saw_end = false;
    while tag + 8 <= end {
        let kind = mem.read_u32(tag)?;
        let size = mem.read_u32(tag + 4)?;
        if size < 8 || tag + u64::from(size) > end {
            return Err(BootInfoError::Malformed("multiboot2 tag size"));
        }
        let body = tag + 8;
        let body_len = (size - 8) as usize;
        match kind {
            MB2_TAG_END => {
                saw_end = true;
                break;
            }
            MB2_TAG_CMDLINE => {
                let mut bytes = alloc::vec![0u8; body_len];
                mem.read(body, &mut bytes)?;
                info.cmdline = string_from_bytes(&bytes)?;
            }
            MB2_TAG_MODULE => {
                if body_len < 8 {
                    return Err(BootInfoError::Malformed("multiboot2 module tag"));
                }
                if info.modules.len() >= MAX_MODULES {
                    return Err(BootInfoError::TooLarge("more than 16 boot modules"));
                }
                let start = mem.read_u32(body)?;
                let stop = mem.read_u32(body + 4)?;
                if stop < start {
                    return Err(BootInfoError::Malformed(
                        "multiboot2 module ends before it starts",
                    ));
                }
                let mut bytes = alloc::vec![0u8; body_len - 8];
                mem.read(body + 8, &mut bytes)?;
                info.modules.push(Module {
                    base: u64::from(start),
                    len: u64::from(stop - start),
                    cmdline: string_from_bytes(&bytes)?,
                });
            }
            MB2_TAG_MMAP => {
                if body_len < 8 {
                    return Err(BootInfoError::Malformed("multiboot2 memory-map tag"));
                }
                let entry_size = mem.read_u32(body)?;
                if entry_size < 24 {
                    return Err(BootInfoError::Malformed("multiboot2 memory-map entry size"));
                }
                let count = (body_len - 8) / entry_size as usize;
                if count > MAX_MEMORY_REGIONS {
                    return Err(BootInfoError::TooLarge("more than 256 memory-map entries"));
                }
                for i in 0..count as u64 {
                    let entry = body + 8 + i * u64::from(entry_size);
                    info.memory.push(MemoryRegion {
                        base: mem.read_u64(entry)?,
                        len: mem.read_u64(entry + 8)?,
                        kind: RegionKind::from_e820(mem.read_u32(entry + 16)?),
                    });
                }
            }
            MB2_TAG_ACPI_OLD | MB2_TAG_ACPI_NEW => {
                // The tag body is a copy of the RSDP: signature (8),
                // checksum, OEM ID (6), revision (1), RSDT address (4) at 16,
                // then (revision >= 2) length, XSDT address (8) at 24.
                if body_len < 20 {
                    return Err(BootInfoError::Malformed("multiboot2 ACPI tag"));
                }
                let rsdt = mem.read_u32(body + 16)?;
                let revision = mem.read_u8(body + 15)?;
                let xsdt = if kind == MB2_TAG_ACPI_NEW && revision >= 2 && body_len >= 32 {
                    Some(mem.read_u64(body + 24)?).filter(|&a| a != 0)
                } else {
                    None
                };
                // Prefer the ACPI 2.0 copy when both are given.
                if kind == MB2_TAG_ACPI_NEW || info.acpi.is_none() {
                    info.acpi = Some(AcpiRoot::Copied { rsdt, xsdt });
                }
            }
            _ => {}
        }
        tag += u64::from((size + 7) & !7);
    }
    if !saw_end {
        return Err(BootInfoError::Malformed(
            "multiboot2 information has no end tag",
        ));
    }
    if info.memory.is_empty() {
        return Err(BootInfoError::Malformed(
            "multiboot2 information has no memory map",
        ));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::memory::FakeMemory;

    fn pvh_fixture() -> FakeMemory {
        let mut mem = FakeMemory::new(0x1000, 0x4000);
        let start = 0x1000u64;
        let mut si = std::vec::Vec::new();
        si.extend_from_slice(&PVH_START_MAGIC.to_le_bytes());
        si.extend_from_slice(&1u32.to_le_bytes()); // version
        si.extend_from_slice(&0u32.to_le_bytes()); // flags
        si.extend_from_slice(&1u32.to_le_bytes()); // nr_modules
        si.extend_from_slice(&0x2000u64.to_le_bytes()); // modlist
        si.extend_from_slice(&0x2100u64.to_le_bytes()); // cmdline
        si.extend_from_slice(&0xf5000u64.to_le_bytes()); // rsdp
        si.extend_from_slice(&0x3000u64.to_le_bytes()); // memmap
        si.extend_from_slice(&2u32.to_le_bytes()); // entries
        si.extend_from_slice(&0u32.to_le_bytes());
        mem.write(start, &si);
        let mut module = std::vec::Vec::new();
        module.extend_from_slice(&0x10_0000u64.to_le_bytes());
        module.extend_from_slice(&0x2345u64.to_le_bytes());
        module.extend_from_slice(&0x2200u64.to_le_bytes());
        module.extend_from_slice(&0u64.to_le_bytes());
        mem.write(0x2000, &module);
        mem.write(0x2100, b"flotilla.exit=qemu\0");
        mem.write(0x2200, b"bundle\0");
        let mut map = std::vec::Vec::new();
        for (base, len, kind) in [(0u64, 0x9fc00u64, 1u32), (0x10_0000, 0x1ff0_0000, 1)] {
            map.extend_from_slice(&base.to_le_bytes());
            map.extend_from_slice(&len.to_le_bytes());
            map.extend_from_slice(&kind.to_le_bytes());
            map.extend_from_slice(&0u32.to_le_bytes());
        }
        mem.write(0x3000, &map);
        mem
    }

    #[test]
    fn parses_pvh_start_info() {
        let mem = pvh_fixture();
        let info = parse(&mem, 0, 0x1000).expect("valid PVH info");
        assert_eq!(info.protocol, Protocol::Pvh);
        assert_eq!(info.cmdline, "flotilla.exit=qemu");
        assert_eq!(info.memory.len(), 2);
        assert_eq!(info.memory[1].base, 0x10_0000);
        assert_eq!(info.memory[1].kind, RegionKind::Usable);
        assert_eq!(info.modules.len(), 1);
        assert_eq!(info.modules[0].len, 0x2345);
        assert_eq!(info.modules[0].cmdline, "bundle");
        assert_eq!(info.acpi, Some(AcpiRoot::RsdpAddress(0xf5000)));
        assert!(info.is_usable(0x10_0000, 0x100_0000));
        assert!(!info.is_usable(0x9f000, 0x2000));
        assert_eq!(info.usable_bytes(), 0x9fc00 + 0x1ff0_0000);
    }

    #[test]
    fn rejects_pvh_version_0_and_wild_pointers() {
        let mut mem = pvh_fixture();
        mem.write(0x1004, &0u32.to_le_bytes());
        assert_eq!(
            parse(&mem, 0, 0x1000),
            Err(BootInfoError::PvhWithoutMemoryMap)
        );
        let mut mem = pvh_fixture();
        mem.write(0x1028, &0xdead_0000u64.to_le_bytes()); // memmap out of range
        assert!(matches!(
            parse(&mem, 0, 0x1000),
            Err(BootInfoError::Unreadable(_))
        ));
        let mut mem = pvh_fixture();
        mem.write(0x1030, &100_000u32.to_le_bytes());
        assert!(matches!(
            parse(&mem, 0, 0x1000),
            Err(BootInfoError::TooLarge(_))
        ));
    }

    #[test]
    fn unknown_protocol_is_an_error() {
        let mem = FakeMemory::new(0x1000, 0x100);
        assert_eq!(
            parse(&mem, 0x1234, 0x1000),
            Err(BootInfoError::UnknownProtocol { eax: 0x1234 })
        );
    }

    fn mb2_tag(buf: &mut std::vec::Vec<u8>, kind: u32, body: &[u8]) {
        buf.extend_from_slice(&kind.to_le_bytes());
        buf.extend_from_slice(&(8 + u32::try_from(body.len()).expect("small")).to_le_bytes());
        buf.extend_from_slice(body);
        while !buf.len().is_multiple_of(8) {
            buf.push(0);
        }
    }

    fn mb2_fixture(with_end: bool) -> FakeMemory {
        let mut tags = std::vec::Vec::new();
        mb2_tag(&mut tags, MB2_TAG_CMDLINE, b"flotilla.exit=bochs\0");
        let mut module = std::vec::Vec::new();
        module.extend_from_slice(&0x20_0000u32.to_le_bytes());
        module.extend_from_slice(&0x20_1000u32.to_le_bytes());
        module.extend_from_slice(b"bundle\0");
        mb2_tag(&mut tags, MB2_TAG_MODULE, &module);
        let mut mmap = std::vec::Vec::new();
        mmap.extend_from_slice(&24u32.to_le_bytes());
        mmap.extend_from_slice(&0u32.to_le_bytes());
        for (base, len, kind) in [
            (0u64, 0x9f000u64, 1u32),
            (0xf0000, 0x10000, 2),
            (0x10_0000, 0x700_0000, 1),
        ] {
            mmap.extend_from_slice(&base.to_le_bytes());
            mmap.extend_from_slice(&len.to_le_bytes());
            mmap.extend_from_slice(&kind.to_le_bytes());
            mmap.extend_from_slice(&0u32.to_le_bytes());
        }
        mb2_tag(&mut tags, MB2_TAG_MMAP, &mmap);
        let mut rsdp = std::vec::Vec::new();
        rsdp.extend_from_slice(b"RSD PTR ");
        rsdp.push(0); // checksum
        rsdp.extend_from_slice(b"BOCHS ");
        rsdp.push(2); // revision
        rsdp.extend_from_slice(&0x7fe_0000u32.to_le_bytes());
        rsdp.extend_from_slice(&36u32.to_le_bytes());
        rsdp.extend_from_slice(&0x7fe_1000u64.to_le_bytes());
        rsdp.extend_from_slice(&[0; 4]);
        mb2_tag(&mut tags, MB2_TAG_ACPI_NEW, &rsdp);
        if with_end {
            mb2_tag(&mut tags, MB2_TAG_END, &[]);
        }
        let mut all = std::vec::Vec::new();
        all.extend_from_slice(&(8 + u32::try_from(tags.len()).expect("small")).to_le_bytes());
        all.extend_from_slice(&0u32.to_le_bytes());
        all.extend_from_slice(&tags);
        let mut mem = FakeMemory::new(0x5000, 0x1000);
        mem.write(0x5000, &all);
        mem
    }

    #[test]
    fn parses_multiboot2_tags() {
        let mem = mb2_fixture(true);
        let info = parse(&mem, MULTIBOOT2_BOOT_MAGIC, 0x5000).expect("valid mb2 info");
        assert_eq!(info.protocol, Protocol::Multiboot2);
        assert_eq!(info.cmdline, "flotilla.exit=bochs");
        assert_eq!(
            info.modules,
            std::vec![Module {
                base: 0x20_0000,
                len: 0x1000,
                cmdline: "bundle".into()
            }]
        );
        assert_eq!(info.memory.len(), 3);
        assert_eq!(info.memory[1].kind, RegionKind::Reserved);
        assert_eq!(
            info.acpi,
            Some(AcpiRoot::Copied {
                rsdt: 0x7fe_0000,
                xsdt: Some(0x7fe_1000)
            })
        );
    }

    #[test]
    fn multiboot2_without_end_tag_or_with_bad_sizes_is_rejected() {
        let mem = mb2_fixture(false);
        assert!(matches!(
            parse(&mem, MULTIBOOT2_BOOT_MAGIC, 0x5000),
            Err(BootInfoError::Malformed(_))
        ));
        let mut mem = mb2_fixture(true);
        mem.write(0x500c, &3u32.to_le_bytes()); // first tag size < 8
        assert!(matches!(
            parse(&mem, MULTIBOOT2_BOOT_MAGIC, 0x5000),
            Err(BootInfoError::Malformed(_))
        ));
        let mut mem = mb2_fixture(true);
        mem.write(0x5000, &0xffff_fff0u32.to_le_bytes()); // absurd total size
        assert!(parse(&mem, MULTIBOOT2_BOOT_MAGIC, 0x5000).is_err());
    }
}
