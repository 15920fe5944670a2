//! Reading the PVH start info (`hvm_start_info`, version 1) the loader
//! leaves at `ebx`: command line, modules and memory map.
//!
//! Guest-physical memory is reached through the [`PhysMem`] trait, so the
//! parser is tested on the host with a fake memory; the kernel implements
//! it over its identity map. Nothing here trusts the structure: every
//! address and length is checked before use.

use abi::boot::{
    HvmMemmapEntry, HvmModlistEntry, HvmStartInfo, BLOCK_MODULE_CMDLINE, E820_RAM, PVH_START_MAGIC,
};
use core::mem::size_of;
use zerocopy::FromBytes;

/// Read access to guest-physical memory.
pub trait PhysMem<'m> {
    /// `len` bytes at `gpa`, or `None` if the range is not readable.
    fn bytes(&self, gpa: u64, len: u64) -> Option<&'m [u8]>;
}

/// Size of one `hvm_modlist_entry`.
const MODLIST_ENTRY_SIZE: u64 = size_of::<HvmModlistEntry>() as u64;
/// Size of one `hvm_memmap_table_entry`.
const MEMMAP_ENTRY_SIZE: u64 = size_of::<HvmMemmapEntry>() as u64;
/// Longest command line read.
const MAX_CMDLINE: u64 = 4096;
/// Most memory map entries read.
const MAX_MEMMAP: u32 = 128;
/// Most modules looked at for the Flotilla block.
const MAX_MODULES: u32 = 8;

/// Why the start info could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// The start info itself is not readable.
    Unreadable(u64),
    /// Wrong magic number.
    BadMagic(u32),
    /// A pointer in it leads to unreadable memory.
    BadPointer(&'static str),
}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootInfoError::Unreadable(a) => write!(f, "start info at {a:#x} is not readable"),
            BootInfoError::BadMagic(m) => write!(
                f,
                "start info magic {m:#x}, expected {PVH_START_MAGIC:#x} (not a PVH boot?)"
            ),
            BootInfoError::BadPointer(what) => write!(f, "start info: bad {what} pointer"),
        }
    }
}

/// One memory map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRange {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// E820 type (1 = RAM).
    pub kind: u32,
}

impl MemoryRange {
    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }
}

/// One boot module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module<'m> {
    /// Guest-physical address.
    pub gpa: u64,
    /// Contents.
    pub bytes: &'m [u8],
    /// Its command line ("" if none).
    pub cmdline: &'m str,
}

/// What the kernel uses from the start info.
#[derive(Clone, Copy, Debug)]
pub struct StartInfo<'m> {
    /// Where the start info itself lies.
    pub gpa: u64,
    /// The kernel command line ("" if none).
    pub cmdline: &'m str,
    /// Address of the command line (0 if none).
    pub cmdline_gpa: u64,
    /// The Flotilla block's module under the hypervisor (the one whose
    /// command line is `flotilla-block`, else module 0), if any.
    pub module0: Option<Module<'m>>,
    /// Address and size of the module list (0 if none).
    pub modlist: (u64, u64),
    /// The raw memory map entries.
    memmap: &'m [u8],
    /// Address of the memory map (0 if none).
    pub memmap_gpa: u64,
}

/// The record of type `T` at `gpa`, or `err` if it is not readable.
fn record<'m, T: FromBytes>(
    mem: &impl PhysMem<'m>,
    gpa: u64,
    err: BootInfoError,
) -> Result<T, BootInfoError> {
    mem.bytes(gpa, size_of::<T>() as u64)
        .and_then(|b| T::read_from_bytes(b).ok())
        .ok_or(err)
}

/// A NUL-terminated string at `gpa` (at most [`MAX_CMDLINE`] bytes),
/// "" when `gpa` is 0; non-UTF-8 is an error.
fn c_string<'m>(
    mem: &impl PhysMem<'m>,
    gpa: u64,
    what: &'static str,
) -> Result<&'m str, BootInfoError> {
    if gpa == 0 {
        return Ok("");
    }
    let mut len = 0;
    while len < MAX_CMDLINE {
        let b = mem
            .bytes(gpa + len, 1)
            .ok_or(BootInfoError::BadPointer(what))?;
        if b[0] == 0 {
            break;
        }
        len += 1;
    }
    let bytes = mem.bytes(gpa, len).ok_or(BootInfoError::BadPointer(what))?;
    core::str::from_utf8(bytes).map_err(|_| BootInfoError::BadPointer(what))
}

impl<'m> StartInfo<'m> {
    /// Parses the start info at `gpa`.
    pub fn parse(mem: &impl PhysMem<'m>, gpa: u64) -> Result<Self, BootInfoError> {
        let si: HvmStartInfo = record(mem, gpa, BootInfoError::Unreadable(gpa))?;
        if si.magic != PVH_START_MAGIC {
            return Err(BootInfoError::BadMagic(si.magic));
        }
        let (nr_modules, modlist_gpa, cmdline_gpa) =
            (si.nr_modules, si.modlist_paddr, si.cmdline_paddr);
        let (memmap_gpa, memmap_entries) = if si.version >= 1 {
            (si.memmap_paddr, si.memmap_entries.min(MAX_MEMMAP))
        } else {
            (0, 0)
        };

        let cmdline = c_string(mem, cmdline_gpa, "command line")?;

        // The Flotilla block is the module whose command line is
        // `flotilla-block` (module 1 when the layout gives an initrd, which
        // is module 0); without such a module, module 0.
        let mut module0 = None;
        let mut modlist = (0, 0);
        if nr_modules > 0 && modlist_gpa != 0 {
            modlist = (modlist_gpa, MODLIST_ENTRY_SIZE * u64::from(nr_modules));
            for index in 0..u64::from(nr_modules.min(MAX_MODULES)) {
                let at = modlist_gpa.saturating_add(index * MODLIST_ENTRY_SIZE);
                let entry: HvmModlistEntry =
                    record(mem, at, BootInfoError::BadPointer("module list"))?;
                // An empty module 0 (a compat partition without an initrd).
                if entry.size == 0 && entry.paddr == 0 {
                    continue;
                }
                let bytes = mem
                    .bytes(entry.paddr, entry.size)
                    .ok_or(BootInfoError::BadPointer("module 0"))?;
                let cmdline = c_string(mem, entry.cmdline_paddr, "module 0 command line")?;
                let module = Module {
                    gpa: entry.paddr,
                    bytes,
                    cmdline,
                };
                if index == 0 || cmdline == BLOCK_MODULE_CMDLINE {
                    module0 = Some(module);
                }
                if cmdline == BLOCK_MODULE_CMDLINE {
                    break;
                }
            }
        }

        let memmap = if memmap_entries > 0 {
            mem.bytes(memmap_gpa, MEMMAP_ENTRY_SIZE * u64::from(memmap_entries))
                .ok_or(BootInfoError::BadPointer("memory map"))?
        } else {
            &[]
        };

        Ok(StartInfo {
            gpa,
            cmdline,
            cmdline_gpa,
            module0,
            modlist,
            memmap,
            memmap_gpa,
        })
    }

    /// The memory map entries.
    pub fn memory_map(&self) -> impl Iterator<Item = MemoryRange> + 'm {
        self.memmap
            .chunks_exact(size_of::<HvmMemmapEntry>())
            .filter_map(|e| HvmMemmapEntry::read_from_bytes(e).ok())
            .map(|e| MemoryRange {
                addr: e.addr,
                size: e.size,
                kind: e.kind,
            })
    }

    /// End of the RAM range that contains `gpa`, if any.
    pub fn ram_end_containing(&self, gpa: u64) -> Option<u64> {
        self.memory_map()
            .find(|r| r.kind == E820_RAM && r.addr <= gpa && gpa < r.end())
            .map(|r| r.end())
    }

    /// Start addresses of the boot structures, which the heap must not
    /// overwrite.
    pub fn occupied(&self) -> [u64; 5] {
        [
            self.gpa,
            self.cmdline_gpa,
            self.modlist.0,
            self.module0.map_or(0, |m| m.gpa),
            self.memmap_gpa,
        ]
    }
}

/// The heap range `[start, end)` between the kernel image end and the end
/// of RAM, cut short before any boot structure that lies in it (it is read
/// after the heap exists). `None` if less than `min` bytes remain.
pub fn heap_range(image_end: u64, ram_end: u64, occupied: &[u64], min: u64) -> Option<(u64, u64)> {
    let start = image_end.checked_add(0xfff)? & !0xfff;
    let end = occupied
        .iter()
        .copied()
        .filter(|&a| a >= start && a < ram_end)
        .fold(ram_end, u64::min)
        & !0xfff;
    (end > start && end - start >= min).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    /// A fake guest memory of `len` bytes at address 0.
    struct Fake(Vec<u8>);

    impl Fake {
        fn put(&mut self, at: usize, bytes: &[u8]) {
            self.0[at..at + bytes.len()].copy_from_slice(bytes);
        }
    }

    impl<'m> PhysMem<'m> for &'m Fake {
        fn bytes(&self, gpa: u64, len: u64) -> Option<&'m [u8]> {
            let start = usize::try_from(gpa).ok()?;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            self.0.get(start..end)
        }
    }

    fn start_info(
        nr_modules: u32,
        modlist: u64,
        cmdline: u64,
        memmap: u64,
        entries: u32,
    ) -> Vec<u8> {
        let si = HvmStartInfo {
            magic: PVH_START_MAGIC,
            version: 1,
            flags: 0,
            nr_modules,
            modlist_paddr: modlist,
            cmdline_paddr: cmdline,
            rsdp_paddr: 0,
            memmap_paddr: memmap,
            memmap_entries: entries,
            reserved: 0,
        };
        si.as_bytes().to_vec()
    }

    fn memmap_entry(addr: u64, size: u64, kind: u32) -> Vec<u8> {
        let e = HvmMemmapEntry {
            addr,
            size,
            kind,
            reserved: 0,
        };
        e.as_bytes().to_vec()
    }

    fn sample() -> Fake {
        let mut m = Fake(vec![0; 0x4000]);
        m.put(0x100, &start_info(1, 0x200, 0x300, 0x400, 2));
        let module = HvmModlistEntry {
            paddr: 0x1000,
            size: 16,
            cmdline_paddr: 0x340,
            reserved: 0,
        };
        m.put(0x200, module.as_bytes());
        m.put(0x300, b"workload=compute n=10\0");
        m.put(0x340, b"flotilla-block\0");
        m.put(0x400, &memmap_entry(0, 0x1_0000, 2));
        m.put(0x418, &memmap_entry(0x1_0000, 0x100_0000, 1));
        m.put(0x1000, b"FLOTBLK1");
        m
    }

    #[test]
    fn the_block_is_found_behind_an_initrd() {
        let mut m = sample();
        m.put(0x100, &start_info(2, 0x200, 0x300, 0x400, 2));
        let initrd = HvmModlistEntry {
            paddr: 0x2000,
            size: 32,
            cmdline_paddr: 0x360,
            reserved: 0,
        };
        let block = HvmModlistEntry {
            paddr: 0x1000,
            size: 16,
            cmdline_paddr: 0x340,
            reserved: 0,
        };
        m.put(0x200, initrd.as_bytes());
        m.put(0x220, block.as_bytes());
        m.put(0x360, b"initrd\0");
        let si = StartInfo::parse(&&m, 0x100).expect("valid");
        let found = si.module0.expect("module");
        assert_eq!((found.gpa, found.cmdline), (0x1000, "flotilla-block"));
        assert_eq!(si.modlist, (0x200, 64));
        // An empty module 0 (address and size 0) is skipped.
        let empty = HvmModlistEntry {
            paddr: 0,
            size: 0,
            cmdline_paddr: 0x360,
            reserved: 0,
        };
        m.put(0x200, empty.as_bytes());
        let si = StartInfo::parse(&&m, 0x100).expect("valid");
        assert_eq!(si.module0.expect("module").gpa, 0x1000);
    }

    #[test]
    fn parses_cmdline_module_and_memory_map() {
        let m = sample();
        let si = StartInfo::parse(&&m, 0x100).expect("valid");
        assert_eq!(si.cmdline, "workload=compute n=10");
        let m0 = si.module0.expect("module");
        assert_eq!(
            (m0.gpa, m0.bytes.len(), m0.cmdline),
            (0x1000, 16, "flotilla-block")
        );
        assert_eq!(&m0.bytes[..8], b"FLOTBLK1");
        assert_eq!(si.memory_map().count(), 2);
        assert_eq!(si.ram_end_containing(0x10_0000), Some(0x101_0000));
        assert_eq!(si.ram_end_containing(0x100), None);
        assert_eq!(si.occupied(), [0x100, 0x300, 0x200, 0x1000, 0x400]);
    }

    #[test]
    fn bad_structures_are_errors_not_panics() {
        let mut m = sample();
        assert_eq!(
            StartInfo::parse(&&m, 0x3ff0).unwrap_err(),
            BootInfoError::Unreadable(0x3ff0)
        );
        m.put(
            0x100,
            &start_info(1, 0x200, 0x300, 0x400, 2)[..4]
                .iter()
                .map(|b| !b)
                .collect::<Vec<_>>(),
        );
        assert!(matches!(
            StartInfo::parse(&&m, 0x100),
            Err(BootInfoError::BadMagic(_))
        ));
        let mut m = sample();
        m.put(0x200, &0x3ff8u64.to_le_bytes()); // module runs off the end
        assert_eq!(
            StartInfo::parse(&&m, 0x100).unwrap_err(),
            BootInfoError::BadPointer("module 0")
        );
        let mut m = sample();
        m.put(0x100, &start_info(0, 0, 0x9999, 0, 0));
        assert_eq!(
            StartInfo::parse(&&m, 0x100).unwrap_err(),
            BootInfoError::BadPointer("command line")
        );
    }

    #[test]
    fn heap_avoids_boot_structures() {
        assert_eq!(
            heap_range(0x12_3456, 0x400_0000, &[0x1000], 0),
            Some((0x12_4000, 0x400_0000))
        );
        assert_eq!(
            heap_range(0x12_3456, 0x400_0000, &[0x1000, 0x3f0_0800, 0], 0),
            Some((0x12_4000, 0x3f0_0000))
        );
        assert_eq!(heap_range(0x12_3456, 0x12_5000, &[], 0x10_0000), None);
        assert_eq!(heap_range(u64::MAX, 0x12_5000, &[], 0), None);
    }
}
