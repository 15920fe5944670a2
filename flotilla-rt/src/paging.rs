//! The one change the runtime makes to its boot page tables: the kernel
//! stack's **guard page**. The boot code maps guest-physical memory with
//! 2 MiB pages (`arch::entry`); the 4 KiB page right below the kernel stack
//! is taken out of that map by splitting the 2 MiB page that holds it into
//! 512 small ones with that one absent. A stack overflow then touches the
//! guard page and faults (reported as a stack overflow, exit
//! [`crate::exit_code::EXCEPTION`]) instead of silently overwriting what
//! lies below the stack. Rust on `x86_64-unknown-none` probes every page of
//! a stack frame larger than a page, so no frame can step over the guard.
//!
//! Pure: the entries are computed here and host-tested; `arch::entry`
//! writes them.

use x86::bits64::paging::{PDFlags, PTFlags, BASE_PAGE_SIZE, LARGE_PAGE_SIZE};

/// Entries in one page table.
pub const ENTRIES: usize = 512;

const BASE: u64 = BASE_PAGE_SIZE as u64;
const LARGE: u64 = LARGE_PAGE_SIZE as u64;

/// The 512 page-table entries that map the 2 MiB page `pde` maps, page by
/// page with the same access and cache attributes (present, writable,
/// PWT/PCD; the large page's PAT bit moves to the small entries' bit 7),
/// except the 4 KiB page holding `hole`, which is left absent. `None` if
/// `pde` is not a present 2 MiB page or `hole` lies outside it.
pub fn split_with_hole(pde: u64, hole: u64) -> Option<[u64; ENTRIES]> {
    let flags = PDFlags::from_bits_truncate(pde);
    if !flags.contains(PDFlags::P | PDFlags::PS) {
        return None;
    }
    let base = pde & address_mask() & !(LARGE - 1);
    if hole < base || hole - base >= LARGE {
        return None;
    }
    let mut small = PTFlags::empty();
    for (large, small_flag) in [
        (PDFlags::P, PTFlags::P),
        (PDFlags::RW, PTFlags::RW),
        (PDFlags::US, PTFlags::US),
        (PDFlags::PWT, PTFlags::PWT),
        (PDFlags::PCD, PTFlags::PCD),
        (PDFlags::G, PTFlags::G),
        (PDFlags::XD, PTFlags::XD),
    ] {
        if flags.contains(large) {
            small |= small_flag;
        }
    }
    // Bit 7 of a 4 KiB entry is its PAT bit (SDM Vol. 3A, Table 4-20); the
    // 2 MiB entry keeps PAT in bit 12, where bit 7 is PS.
    let pat = if flags.contains(PDFlags::PAT) {
        PDFlags::PS.bits()
    } else {
        0
    };
    let hole_index = (hole - base) / BASE;
    let mut table = [0u64; ENTRIES];
    for (i, entry) in (0u64..).zip(table.iter_mut()) {
        if i != hole_index {
            *entry = (base + i * BASE) | small.bits() | pat;
        }
    }
    Some(table)
}

/// The page-directory entry that points at a page table at `table_pa`
/// (present, writable: the small entries restrict access themselves).
pub fn table_entry(table_pa: u64) -> u64 {
    (table_pa & address_mask()) | (PDFlags::P | PDFlags::RW).bits()
}

/// Whether a page fault at `fault_address` (CR2) hit the guard page that
/// starts at `guard`.
pub fn hits_guard(fault_address: u64, guard: u64) -> bool {
    fault_address.wrapping_sub(guard) < BASE
}

/// Physical-address bits of a paging entry (bits 51:12).
fn address_mask() -> u64 {
    abi::regs::PTE_ADDR_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    const P_RW_PS: u64 = 0x83;

    #[test]
    fn a_split_maps_every_page_but_the_hole_one_to_one() {
        let base = 0x20_0000u64 * 3;
        let hole = base + 0x7_3000 + 0x123;
        let table = split_with_hole(base | P_RW_PS, hole).expect("a 2 MiB page");
        for (i, &e) in (0u64..).zip(table.iter()) {
            if i == 0x73 {
                assert_eq!(e, 0, "the guard page is absent");
            } else {
                assert_eq!(e, (base + i * 4096) | 0x3, "entry {i}");
            }
        }
    }

    #[test]
    fn cache_and_pat_attributes_carry_over() {
        // PWT|PCD (bits 3, 4) and PAT (bit 12 of a 2 MiB entry).
        let pde = 0x4000_0000u64 | P_RW_PS | 0x18 | 0x1000;
        let table = split_with_hole(pde, 0x4000_0000).expect("a 2 MiB page");
        assert_eq!(table[0], 0);
        assert_eq!(table[1], 0x4000_1000 | 0x3 | 0x18 | 0x80);
        assert_eq!(table[511], 0x401f_f000 | 0x3 | 0x18 | 0x80);
    }

    #[test]
    fn the_pat_bit_of_a_large_entry_is_not_part_of_its_address() {
        // Bit 12 set: the base is still 0x4000_0000, not 0x4000_1000.
        let table = split_with_hole(0x4000_1000 | P_RW_PS, 0x4010_0000).expect("a 2 MiB page");
        assert_eq!(table[0] & !0xfff, 0x4000_0000);
    }

    #[test]
    fn only_a_present_large_page_that_holds_the_hole_is_split() {
        assert!(
            split_with_hole(0x20_0000 | 0x3, 0x20_0000).is_none(),
            "not a 2 MiB page"
        );
        assert!(
            split_with_hole(0x20_0000 | 0x82, 0x20_0000).is_none(),
            "not present"
        );
        assert!(
            split_with_hole(0x20_0000 | P_RW_PS, 0x1f_ffff).is_none(),
            "below"
        );
        assert!(
            split_with_hole(0x20_0000 | P_RW_PS, 0x40_0000).is_none(),
            "above"
        );
        assert!(
            split_with_hole(0x20_0000 | P_RW_PS, 0x3f_ffff).is_some(),
            "last byte"
        );
    }

    #[test]
    fn a_table_entry_is_present_writable_and_not_large() {
        assert_eq!(table_entry(0x12_3000), 0x12_3003);
        assert_eq!(table_entry(0x12_3fff), 0x12_3003, "offset bits dropped");
    }

    #[test]
    fn only_the_guard_page_itself_counts_as_an_overflow() {
        let guard = 0x10_0000;
        assert!(hits_guard(guard, guard));
        assert!(hits_guard(guard + 4095, guard));
        assert!(
            !hits_guard(guard + 4096, guard),
            "the stack's own first page"
        );
        assert!(!hits_guard(guard - 1, guard));
        assert!(!hits_guard(0, guard));
    }
}
