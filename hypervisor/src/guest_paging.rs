//! Translating a guest's linear address to a guest-physical one by walking
//! the guest's own page tables in its RAM, for reading the instruction
//! behind an exit (SVM without next-RIP saving, `instruction_length`).
//!
//! Modes (Intel SDM Vol. 3A §4.1.1, AMD APM Vol. 2 §5.1): paging off
//! (linear = physical), 32-bit paging with 4 MiB pages (CR4.PSE, PSE-36
//! high bits; §4.3), PAE paging with 2 MiB pages (§4.4), 4-level paging with
//! 2 MiB and 1 GiB pages (§4.5). 5-level paging (CR4.LA57) is refused. Only
//! presence is checked, not permissions: the processor has just fetched the
//! instruction through the same tables. Every table read goes through
//! [`read_checked`], so a hostile table can make the walk fail or read the
//! partition's own bytes, never anything else.

use crate::guest_memory::{read_checked, GuestMemory};
use abi::regs::PTE_ADDR_MASK as ADDR_MASK;
use x86::bits64::paging::PDFlags;
use x86::controlregs::{Cr0, Cr4};

/// The registers that decide how a guest translates addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagingState {
    /// CR0.
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// EFER.
    pub efer: u64,
}

/// Why a linear address has no guest-physical one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// A table entry on the way is not present.
    NotPresent,
    /// A table lies outside the partition's RAM.
    OutsideRam,
    /// A paging mode the walker does not implement (5-level paging).
    Unsupported,
}

// usize to u64: lossless on x86-64.
const CR0_PG: u64 = Cr0::CR0_ENABLE_PAGING.bits() as u64;
const CR4_PSE: u64 = Cr4::CR4_ENABLE_PSE.bits() as u64;
const CR4_PAE: u64 = Cr4::CR4_ENABLE_PAE.bits() as u64;
const CR4_LA57: u64 = Cr4::CR4_ENABLE_LA57.bits() as u64;
const PRESENT: u64 = PDFlags::P.bits();
const PAGE_SIZE: u64 = PDFlags::PS.bits();

impl PagingState {
    /// Whether the guest is in IA-32e mode (long or compatibility mode).
    pub fn long_mode(&self) -> bool {
        self.efer & abi::regs::efer::LMA != 0
    }
}

fn read_u64(mem: &impl GuestMemory, gpa: u64) -> Result<u64, WalkError> {
    let mut b = [0u8; 8];
    read_checked(mem, gpa, &mut b).map_err(|_| WalkError::OutsideRam)?;
    Ok(u64::from_le_bytes(b))
}

fn read_u32(mem: &impl GuestMemory, gpa: u64) -> Result<u64, WalkError> {
    let mut b = [0u8; 4];
    read_checked(mem, gpa, &mut b).map_err(|_| WalkError::OutsideRam)?;
    Ok(u64::from(u32::from_le_bytes(b)))
}

fn present(entry: u64) -> Result<u64, WalkError> {
    if entry & PRESENT == 0 {
        Err(WalkError::NotPresent)
    } else {
        Ok(entry)
    }
}

/// Walks 64-bit-entry tables from `table` for the index bits `levels`
/// (highest first); a PS entry at a level with a large-page size ends it.
fn walk64(
    mem: &impl GuestMemory,
    mut table: u64,
    linear: u64,
    levels: &[(u32, Option<u64>)],
) -> Result<u64, WalkError> {
    for &(shift, large) in levels {
        let index = (linear >> shift) & 0x1ff;
        let entry = present(read_u64(mem, table + index * 8)?)?;
        if let Some(size) = large {
            if entry & PAGE_SIZE != 0 {
                let base = entry & ADDR_MASK & !(size - 1);
                return Ok(base | (linear & (size - 1)));
            }
        }
        table = entry & ADDR_MASK;
    }
    Ok(table | (linear & 0xfff))
}

/// The guest-physical address of `linear` under `state`.
pub fn translate(
    state: &PagingState,
    linear: u64,
    mem: &impl GuestMemory,
) -> Result<u64, WalkError> {
    if state.cr0 & CR0_PG == 0 {
        return Ok(if state.long_mode() {
            linear
        } else {
            linear & 0xffff_ffff
        });
    }
    const GIB: u64 = 1 << 30;
    const MIB2: u64 = 2 << 20;
    if state.long_mode() {
        if state.cr4 & CR4_LA57 != 0 {
            return Err(WalkError::Unsupported);
        }
        // SDM §4.5.4: PML4 (39), PDPT (30, 1 GiB), PD (21, 2 MiB), PT (12).
        let levels = [(39, None), (30, Some(GIB)), (21, Some(MIB2)), (12, None)];
        return walk64(mem, state.cr3 & ADDR_MASK, linear, &levels);
    }
    let linear = linear & 0xffff_ffff;
    if state.cr4 & CR4_PAE != 0 {
        // SDM §4.4: the PDPTE from CR3 bits 31:5, then PD (2 MiB) and PT.
        let pdpte_at = (state.cr3 & 0xffff_ffe0) + ((linear >> 30) & 3) * 8;
        let pdpte = present(read_u64(mem, pdpte_at)?)?;
        return walk64(
            mem,
            pdpte & ADDR_MASK,
            linear,
            &[(21, Some(MIB2)), (12, None)],
        );
    }
    // SDM §4.3: 32-bit paging, 4-byte entries.
    let pde = present(read_u32(
        mem,
        (state.cr3 & 0xffff_f000) + (linear >> 22) * 4,
    )?)?;
    if pde & PAGE_SIZE != 0 && state.cr4 & CR4_PSE != 0 {
        // A 4 MiB page: bits 31:22 of the address, PSE-36 bits 39:32 from
        // entry bits 20:13 (Table 4-4).
        let high = ((pde >> 13) & 0xff) << 32;
        return Ok(high | (pde & 0xffc0_0000) | (linear & 0x3f_ffff));
    }
    let pte = present(read_u32(
        mem,
        (pde & 0xffff_f000) + ((linear >> 12) & 0x3ff) * 4,
    )?)?;
    Ok((pte & 0xffff_f000) | (linear & 0xfff))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::guest_memory::FakeGuestMemory;

    pub(crate) fn put64(mem: &mut FakeGuestMemory, at: u64, v: u64) {
        let at = usize::try_from(at).expect("test address");
        mem.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn put32(mem: &mut FakeGuestMemory, at: u64, v: u32) {
        let at = usize::try_from(at).expect("test address");
        mem.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// 4-level tables at 0x1000 (PML4), 0x2000 (PDPT), 0x3000 (PD),
    /// 0x4000 (PT), for linear addresses in the first GiB... and a higher
    /// half mapping at PML4 slot 511.
    pub(crate) fn long_mode_tables() -> (FakeGuestMemory, PagingState) {
        let mut mem = FakeGuestMemory(vec![0; 0x40_0000]);
        put64(&mut mem, 0x1000, 0x2000 | 3);
        put64(&mut mem, 0x1000 + 511 * 8, 0x2000 | 3);
        put64(&mut mem, 0x2000, 0x3000 | 3);
        // PDPT slot 1: a 1 GiB page at 0 (outside this fake RAM beyond 4 MiB).
        put64(&mut mem, 0x2008, PAGE_SIZE | 3);
        // PD slot 0: a page table; slot 1: a 2 MiB page at 0x20_0000.
        put64(&mut mem, 0x3000, 0x4000 | 3);
        put64(&mut mem, 0x3008, 0x20_0000 | PAGE_SIZE | 3);
        // PT slot 5: linear 0x5000 -> 0x9000; slot 6 not present.
        put64(&mut mem, 0x4000 + 5 * 8, 0x9000 | 3);
        let state = PagingState {
            cr0: CR0_PG | 1,
            cr3: 0x1000,
            cr4: CR4_PAE,
            efer: abi::regs::efer::LMA | abi::regs::efer::LME,
        };
        (mem, state)
    }

    #[test]
    fn paging_off_is_identity() {
        let mem = FakeGuestMemory(vec![0; 16]);
        let state = PagingState::default();
        assert_eq!(translate(&state, 0x1_0010_0123, &mem), Ok(0x0010_0123));
    }

    #[test]
    fn four_level_walks_pages_of_every_size() {
        let (mem, state) = long_mode_tables();
        assert_eq!(translate(&state, 0x5123, &mem), Ok(0x9123));
        assert_eq!(translate(&state, 0x6000, &mem), Err(WalkError::NotPresent));
        assert_eq!(translate(&state, 0x2f_f0f0, &mem), Ok(0x2f_f0f0), "2 MiB");
        assert_eq!(
            translate(&state, 0x4000_1234, &mem),
            Ok(0x1234),
            "1 GiB page at 0"
        );
        assert_eq!(
            translate(&state, 0xffff_ff80_0000_5123, &mem),
            Ok(0x9123),
            "higher half"
        );
        let la57 = PagingState {
            cr4: CR4_PAE | CR4_LA57,
            ..state
        };
        assert_eq!(translate(&la57, 0x5000, &mem), Err(WalkError::Unsupported));
        let wild = PagingState {
            cr3: 0x7fff_f000,
            ..state
        };
        assert_eq!(translate(&wild, 0x5000, &mem), Err(WalkError::OutsideRam));
    }

    #[test]
    fn pae_walks_from_the_pdpte() {
        let mut mem = FakeGuestMemory(vec![0; 0x40_0000]);
        // CR3 at 0x1020 (32-byte aligned); PDPTE 0 -> PD at 0x3000.
        put64(&mut mem, 0x1020, 0x3000 | 1);
        put64(&mut mem, 0x3000, 0x4000 | 3);
        put64(&mut mem, 0x3008, 0x20_0000 | PAGE_SIZE | 3);
        put64(&mut mem, 0x4000 + 8, 0x7000 | 3);
        let state = PagingState {
            cr0: CR0_PG | 1,
            cr3: 0x1020,
            cr4: CR4_PAE,
            efer: 0,
        };
        assert_eq!(translate(&state, 0x1abc, &mem), Ok(0x7abc));
        assert_eq!(translate(&state, 0x20_0010, &mem), Ok(0x20_0010));
        assert_eq!(
            translate(&state, 0x4000_0000, &mem),
            Err(WalkError::NotPresent),
            "PDPTE 1"
        );
    }

    #[test]
    fn thirty_two_bit_paging_with_4_mib_pages() {
        let mut mem = FakeGuestMemory(vec![0; 0x40_0000]);
        put32(&mut mem, 0x1000, 0x2000 | 3); // PDE 0 -> PT
        put32(&mut mem, 0x2000 + 3 * 4, 0x8000 | 3); // linear 0x3000 -> 0x8000
                                                     // PDE 1: a 4 MiB page at 0 with PSE-36 bits 20:13 = 0.
        put32(&mut mem, 0x1004, u32::try_from(PAGE_SIZE | 3).unwrap());
        let state = PagingState {
            cr0: CR0_PG | 1,
            cr3: 0x1000,
            cr4: CR4_PSE,
            efer: 0,
        };
        assert_eq!(translate(&state, 0x3456, &mem), Ok(0x8456));
        assert_eq!(translate(&state, 0x40_1234, &mem), Ok(0x1234));
        let no_pse = PagingState { cr4: 0, ..state };
        // Without CR4.PSE the PS bit is ignored: PDE 1 is a table at 0.
        assert_eq!(
            translate(&no_pse, 0x40_1234, &mem),
            Err(WalkError::NotPresent)
        );
        // PSE-36: entry bits 20:13 give physical bits 39:32.
        put32(
            &mut mem,
            0x1008,
            u32::try_from(PAGE_SIZE | 3 | (1 << 13)).unwrap(),
        );
        assert_eq!(translate(&state, 0x80_0010, &mem), Ok(0x1_0000_0010));
    }
}
