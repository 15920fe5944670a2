//! Nested page tables (AMD NPT, Intel EPT) built from a partition's list of
//! mappings — and nothing else, so anything the list does not name is a
//! nested page fault.
//!
//! One builder serves both vendors: the entry encoding is an [`EntryFormat`]
//! ([`NptFormat`], [`EptFormat`]) and the table memory is a [`TableMemory`],
//! so the whole thing runs on the host against fake memory in tests.
//! Both formats are 4-level with 512 entries per table; 2 MiB pages are used
//! wherever a mapping's guest and host addresses and length allow.
//!
//! Entry bits: AMD APM Vol. 2 §15.25.5 (nested tables use the long-mode
//! format; nested walks are user accesses, so every level sets U), Intel SDM
//! Vol. 3 §29.3.2 (EPT: R/W/X in bits 0–2, memory type in bits 3–5 of a
//! leaf, bit 7 = large page).

use abi::regs::PTE_ADDR_MASK as ADDR_MASK;
use x86::bits64::paging::PDFlags;

/// Bytes in a 4 KiB page.
pub const PAGE_4K: u64 = 1 << 12;
/// Bytes in a 2 MiB page.
pub const PAGE_2M: u64 = 1 << 21;
/// Guest-physical addresses are limited to 48 bits (4-level tables).
pub const MAX_GPA: u64 = 1 << 48;

/// Access rights of a mapping (read is always granted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Writes allowed.
    pub write: bool,
    /// Instruction fetches allowed.
    pub execute: bool,
}

impl Access {
    /// Read, write and execute.
    pub const RWX: Access = Access {
        write: true,
        execute: true,
    };
    /// Read and write, no execute.
    pub const RW: Access = Access {
        write: true,
        execute: false,
    };
    /// Read only.
    pub const RO: Access = Access {
        write: false,
        execute: false,
    };
}

/// One contiguous guest-physical range backed by host-physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Guest-physical start (4 KiB aligned).
    pub gpa: u64,
    /// Host-physical start (4 KiB aligned).
    pub hpa: u64,
    /// Length in bytes (a multiple of 4 KiB, non-zero).
    pub len: u64,
    /// What the guest may do there.
    pub access: Access,
}

/// Why a mapping could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// An address or length is not 4 KiB aligned, or the length is zero.
    Misaligned(Mapping),
    /// The mapping runs past the 48-bit guest-physical space.
    OutOfRange(Mapping),
    /// Part of the range is already mapped.
    Overlap {
        /// The guest-physical page already mapped.
        gpa: u64,
    },
    /// The table allocator ran out of frames.
    OutOfFrames,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MapError::Misaligned(m) => {
                write!(f, "mapping {:#x}+{:#x} is not page-aligned", m.gpa, m.len)
            }
            MapError::OutOfRange(m) => write!(
                f,
                "mapping {:#x}+{:#x} exceeds 48-bit guest-physical space",
                m.gpa, m.len
            ),
            MapError::Overlap { gpa } => write!(f, "guest-physical page {gpa:#x} mapped twice"),
            MapError::OutOfFrames => write!(f, "out of memory for nested page tables"),
        }
    }
}

/// Memory holding page tables, addressed by host-physical frame address.
pub trait TableMemory {
    /// A new zeroed 4 KiB table, or `None` when out of memory.
    fn alloc_table(&mut self) -> Option<u64>;
    /// Reads entry `index` (0..512) of the table at `table`.
    fn read(&self, table: u64, index: usize) -> u64;
    /// Writes entry `index` of the table at `table`.
    fn write(&mut self, table: u64, index: usize, entry: u64);
}

/// How one vendor encodes nested page-table entries.
pub trait EntryFormat {
    /// An entry pointing at a next-level table.
    fn table(hpa: u64) -> u64;
    /// A leaf mapping `hpa`; `large` for a 2 MiB page (level 2).
    fn leaf(hpa: u64, access: Access, large: bool) -> u64;
    /// Whether the entry maps anything.
    fn present(entry: u64) -> bool;
    /// Whether a present level-2 entry is a 2 MiB leaf.
    fn is_large(entry: u64) -> bool;
    /// The access a leaf grants.
    fn access(entry: u64) -> Access;
    /// The address in an entry.
    fn address(entry: u64) -> u64 {
        entry & ADDR_MASK
    }
}

/// AMD nested page tables (long-mode format, U set at every level).
#[derive(Clone, Copy, Debug)]
pub struct NptFormat;

const X86_P: u64 = PDFlags::P.bits();
const X86_RW: u64 = PDFlags::RW.bits();
const X86_US: u64 = PDFlags::US.bits();
const X86_PS: u64 = PDFlags::PS.bits();
const X86_NX: u64 = PDFlags::XD.bits();

impl EntryFormat for NptFormat {
    fn table(hpa: u64) -> u64 {
        (hpa & ADDR_MASK) | X86_P | X86_RW | X86_US
    }
    fn leaf(hpa: u64, access: Access, large: bool) -> u64 {
        let mut e = (hpa & ADDR_MASK) | X86_P | X86_US;
        if access.write {
            e |= X86_RW;
        }
        if !access.execute {
            e |= X86_NX;
        }
        if large {
            e |= X86_PS;
        }
        e
    }
    fn present(entry: u64) -> bool {
        entry & X86_P != 0
    }
    fn is_large(entry: u64) -> bool {
        entry & X86_PS != 0
    }
    fn access(entry: u64) -> Access {
        Access {
            write: entry & X86_RW != 0,
            execute: entry & X86_NX == 0,
        }
    }
}

/// Intel extended page tables (write-back memory type on leaves).
#[derive(Clone, Copy, Debug)]
pub struct EptFormat;

const EPT_R: u64 = 1 << 0;
const EPT_W: u64 = 1 << 1;
const EPT_X: u64 = 1 << 2;
const EPT_MT_WB: u64 = 6 << 3;
const EPT_LARGE: u64 = 1 << 7;

impl EntryFormat for EptFormat {
    fn table(hpa: u64) -> u64 {
        (hpa & ADDR_MASK) | EPT_R | EPT_W | EPT_X
    }
    fn leaf(hpa: u64, access: Access, large: bool) -> u64 {
        let mut e = (hpa & ADDR_MASK) | EPT_R | EPT_MT_WB;
        if access.write {
            e |= EPT_W;
        }
        if access.execute {
            e |= EPT_X;
        }
        if large {
            e |= EPT_LARGE;
        }
        e
    }
    fn present(entry: u64) -> bool {
        entry & (EPT_R | EPT_W | EPT_X) != 0
    }
    fn is_large(entry: u64) -> bool {
        entry & EPT_LARGE != 0
    }
    fn access(entry: u64) -> Access {
        Access {
            write: entry & EPT_W != 0,
            execute: entry & EPT_X != 0,
        }
    }
}

fn index(gpa: u64, level: u32) -> usize {
    ((gpa >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

/// A 4-level nested page table under construction.
#[derive(Debug)]
pub struct NestedPageTable<F: EntryFormat> {
    root: u64,
    format: core::marker::PhantomData<F>,
}

impl<F: EntryFormat> NestedPageTable<F> {
    /// Allocates an empty root table.
    pub fn new(mem: &mut impl TableMemory) -> Result<Self, MapError> {
        let root = mem.alloc_table().ok_or(MapError::OutOfFrames)?;
        Ok(NestedPageTable {
            root,
            format: core::marker::PhantomData,
        })
    }

    /// Host-physical address of the root (nCR3 / EPTP address).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Walks to the table at `level` covering `gpa`, creating tables on the
    /// way. `level` is 1 (page table) or 2 (page directory).
    fn table_for(
        &mut self,
        mem: &mut impl TableMemory,
        gpa: u64,
        level: u32,
    ) -> Result<u64, MapError> {
        let mut table = self.root;
        for current in (level + 1..=4).rev() {
            let i = index(gpa, current);
            let entry = mem.read(table, i);
            table = if !F::present(entry) {
                let next = mem.alloc_table().ok_or(MapError::OutOfFrames)?;
                mem.write(table, i, F::table(next));
                next
            } else if current == 2 && F::is_large(entry) {
                return Err(MapError::Overlap {
                    gpa: gpa & !(PAGE_2M - 1),
                });
            } else {
                F::address(entry)
            };
        }
        Ok(table)
    }

    /// Adds a mapping, with 2 MiB pages where alignment allows.
    pub fn map(&mut self, mem: &mut impl TableMemory, m: Mapping) -> Result<(), MapError> {
        if m.len == 0 || (m.gpa | m.hpa | m.len) & (PAGE_4K - 1) != 0 {
            return Err(MapError::Misaligned(m));
        }
        let end = m
            .gpa
            .checked_add(m.len)
            .filter(|&e| e <= MAX_GPA)
            .ok_or(MapError::OutOfRange(m))?;
        if m.hpa.checked_add(m.len).is_none_or(|e| e > MAX_GPA) {
            return Err(MapError::OutOfRange(m));
        }
        let mut gpa = m.gpa;
        while gpa < end {
            let hpa = m.hpa + (gpa - m.gpa);
            let large = (gpa | hpa) & (PAGE_2M - 1) == 0 && end - gpa >= PAGE_2M;
            if large {
                let pd = self.table_for(mem, gpa, 2)?;
                let i = index(gpa, 2);
                if F::present(mem.read(pd, i)) {
                    return Err(MapError::Overlap { gpa });
                }
                mem.write(pd, i, F::leaf(hpa, m.access, true));
                gpa += PAGE_2M;
            } else {
                let pt = self.table_for(mem, gpa, 1)?;
                let i = index(gpa, 1);
                if F::present(mem.read(pt, i)) {
                    return Err(MapError::Overlap { gpa });
                }
                mem.write(pt, i, F::leaf(hpa, m.access, false));
                gpa += PAGE_4K;
            }
        }
        Ok(())
    }

    /// Translates a guest-physical address: the host-physical address and
    /// the access granted, or `None` if unmapped.
    pub fn translate(&self, mem: &impl TableMemory, gpa: u64) -> Option<(u64, Access)> {
        if gpa >= MAX_GPA {
            return None;
        }
        let mut table = self.root;
        for level in (1..=4).rev() {
            let entry = mem.read(table, index(gpa, level));
            if !F::present(entry) {
                return None;
            }
            if level == 2 && F::is_large(entry) {
                return Some((F::address(entry) + (gpa & (PAGE_2M - 1)), F::access(entry)));
            }
            if level == 1 {
                return Some((F::address(entry) + (gpa & (PAGE_4K - 1)), F::access(entry)));
            }
            table = F::address(entry);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct FakeTables {
        tables: HashMap<u64, [u64; 512]>,
        next: u64,
        limit: usize,
    }

    impl FakeTables {
        fn with_limit(limit: usize) -> Self {
            FakeTables {
                tables: HashMap::new(),
                next: 0x10_0000,
                limit,
            }
        }
    }

    impl TableMemory for FakeTables {
        fn alloc_table(&mut self) -> Option<u64> {
            if self.tables.len() >= self.limit {
                return None;
            }
            let at = self.next;
            self.next += PAGE_4K;
            self.tables.insert(at, [0; 512]);
            Some(at)
        }
        fn read(&self, table: u64, index: usize) -> u64 {
            self.tables[&table][index]
        }
        fn write(&mut self, table: u64, index: usize, entry: u64) {
            self.tables.get_mut(&table).expect("table exists")[index] = entry;
        }
    }

    fn partition_map<F: EntryFormat>(mem: &mut FakeTables) -> NestedPageTable<F> {
        let mut npt = NestedPageTable::<F>::new(mem).expect("root");
        // 16 MiB of RAM at host 64 MiB, and a 3-page channel at 3 GiB.
        npt.map(
            mem,
            Mapping {
                gpa: 0,
                hpa: 64 << 20,
                len: 16 << 20,
                access: Access::RWX,
            },
        )
        .expect("ram");
        npt.map(
            mem,
            Mapping {
                gpa: 0xc000_0000,
                hpa: 0x900_0000,
                len: 3 * PAGE_4K,
                access: Access::RW,
            },
        )
        .expect("channel");
        npt
    }

    #[test]
    fn maps_exactly_what_is_asked_on_npt() {
        let mut mem = FakeTables::with_limit(64);
        let npt = partition_map::<NptFormat>(&mut mem);
        assert_eq!(npt.translate(&mem, 0), Some(((64 << 20), Access::RWX)));
        assert_eq!(
            npt.translate(&mem, (16 << 20) - 8),
            Some(((80 << 20) - 8, Access::RWX))
        );
        assert_eq!(
            npt.translate(&mem, 16 << 20),
            None,
            "one byte past RAM is unmapped"
        );
        assert_eq!(
            npt.translate(&mem, 0xc000_2fff),
            Some((0x900_2fff, Access::RW))
        );
        assert_eq!(npt.translate(&mem, 0xc000_3000), None);
        assert_eq!(npt.translate(&mem, 0xfee0_0000), None, "no APIC page");
        assert_eq!(npt.translate(&mem, 1 << 40), None);
        // RAM used 2 MiB pages: root, PDPT, PD for RAM; PDPT/PD/PT for the channel.
        assert_eq!(mem.tables.len(), 1 + 1 + 1 + 1 + 1);
    }

    #[test]
    fn npt_entries_are_user_and_nx_follows_access() {
        let mut mem = FakeTables::with_limit(64);
        let npt = partition_map::<NptFormat>(&mut mem);
        let root_entry = mem.read(npt.root(), 0);
        assert_eq!(
            root_entry & X86_US,
            X86_US,
            "nested walks are user accesses"
        );
        let ch = NptFormat::leaf(0x900_0000, Access::RW, false);
        assert_eq!(
            ch & (X86_NX | X86_US | X86_RW | X86_P),
            X86_NX | X86_US | X86_RW | X86_P
        );
    }

    #[test]
    fn ept_uses_rwx_and_write_back() {
        let mut mem = FakeTables::with_limit(64);
        let ept = partition_map::<EptFormat>(&mut mem);
        assert_eq!(
            ept.translate(&mem, 0x1234),
            Some(((64 << 20) + 0x1234, Access::RWX))
        );
        assert_eq!(
            ept.translate(&mem, 0xc000_0000),
            Some((0x900_0000, Access::RW))
        );
        let leaf = EptFormat::leaf(0x20_0000, Access::RO, true);
        assert_eq!(leaf & 0x7, EPT_R);
        assert_eq!(leaf & (7 << 3), EPT_MT_WB);
        assert_ne!(leaf & EPT_LARGE, 0);
    }

    #[test]
    fn unaligned_overlapping_and_oversized_mappings_are_refused() {
        let mut mem = FakeTables::with_limit(64);
        let mut npt = partition_map::<NptFormat>(&mut mem);
        let bad = Mapping {
            gpa: 0x1001,
            hpa: 0,
            len: PAGE_4K,
            access: Access::RW,
        };
        assert_eq!(npt.map(&mut mem, bad), Err(MapError::Misaligned(bad)));
        let zero = Mapping {
            gpa: 0,
            hpa: 0,
            len: 0,
            access: Access::RW,
        };
        assert_eq!(npt.map(&mut mem, zero), Err(MapError::Misaligned(zero)));
        let over = Mapping {
            gpa: 0x40_0000,
            hpa: 0,
            len: PAGE_4K,
            access: Access::RW,
        };
        assert_eq!(
            npt.map(&mut mem, over),
            Err(MapError::Overlap { gpa: 0x40_0000 })
        );
        let dup = Mapping {
            gpa: 0xc000_1000,
            hpa: 0,
            len: PAGE_4K,
            access: Access::RW,
        };
        assert_eq!(
            npt.map(&mut mem, dup),
            Err(MapError::Overlap { gpa: 0xc000_1000 })
        );
        let huge = Mapping {
            gpa: MAX_GPA - PAGE_4K,
            hpa: 0,
            len: 2 * PAGE_4K,
            access: Access::RW,
        };
        assert_eq!(npt.map(&mut mem, huge), Err(MapError::OutOfRange(huge)));
    }

    #[test]
    fn running_out_of_frames_is_an_error() {
        let mut mem = FakeTables::with_limit(2);
        let mut npt = NestedPageTable::<NptFormat>::new(&mut mem).expect("root");
        let m = Mapping {
            gpa: 0,
            hpa: 0,
            len: PAGE_4K,
            access: Access::RW,
        };
        assert_eq!(npt.map(&mut mem, m), Err(MapError::OutOfFrames));
    }

    #[test]
    fn unaligned_host_address_falls_back_to_small_pages() {
        let mut mem = FakeTables::with_limit(64);
        let mut npt = NestedPageTable::<NptFormat>::new(&mut mem).expect("root");
        npt.map(
            &mut mem,
            Mapping {
                gpa: 0,
                hpa: 0x1000,
                len: PAGE_2M,
                access: Access::RW,
            },
        )
        .expect("map");
        assert_eq!(
            npt.translate(&mem, 0x1f_f000),
            Some((0x20_0000, Access::RW))
        );
        // root, PDPT, PD, PT: one page table of 512 small pages.
        assert_eq!(mem.tables.len(), 4);
    }
}
