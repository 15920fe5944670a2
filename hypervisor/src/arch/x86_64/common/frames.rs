//! 4 KiB-aligned, zeroed frames from the heap, for hardware structures
//! (VMCBs, VMCSs, permission bitmaps, nested page tables). The hypervisor
//! runs identity-mapped, so a frame's address is its physical address.

use alloc::alloc::{alloc_zeroed, Layout};
use core::sync::atomic::AtomicU64;
use hypervisor::nested_paging::TableMemory;

/// Allocates `pages` contiguous zeroed 4 KiB frames and returns their
/// physical address; `None` when the heap is exhausted. Never freed: they
/// live as long as the partition, which is as long as the run.
pub fn alloc_pages(pages: usize) -> Option<u64> {
    let layout = Layout::from_size_align(pages.checked_mul(4096)?, 4096).ok()?;
    if layout.size() == 0 {
        return None;
    }
    // SAFETY: non-zero size, valid alignment.
    let ptr = unsafe { alloc_zeroed(layout) };
    (!ptr.is_null()).then_some(ptr as u64)
}

/// A zeroed frame for a group status page (`abi::group`), as its physical
/// address and its 512 words; never freed.
pub fn alloc_status_page() -> Option<(u64, &'static [AtomicU64])> {
    let frame = alloc_pages(1)?;
    // SAFETY: `frame` is a live, zeroed, 4 KiB-aligned heap allocation of
    // 4096 bytes that is never freed or handed out again, so 512 aligned
    // `AtomicU64`s (same size and layout as `u64`) over it are valid for
    // `'static`. The hypervisor accesses it only through these atomics
    // (`abi::group::StatusPage`), and guests only read it (their nested
    // mapping of it is read-only), so no access is a data race.
    let words = unsafe { core::slice::from_raw_parts(frame as *const AtomicU64, 512) };
    Some((frame, words))
}

/// A frame viewed as 512 little-endian u64 entries.
fn entries(frame: u64) -> *mut u64 {
    frame as *mut u64
}

/// Nested page-table memory backed by heap frames.
#[derive(Debug, Default)]
pub struct HeapTables;

impl TableMemory for HeapTables {
    fn alloc_table(&mut self) -> Option<u64> {
        alloc_pages(1)
    }
    fn read(&self, table: u64, index: usize) -> u64 {
        assert!(index < 512);
        // SAFETY: `table` came from `alloc_table` (a live, 4 KiB-aligned
        // frame of 512 entries) and index < 512.
        unsafe { entries(table).add(index).read_volatile() }
    }
    fn write(&mut self, table: u64, index: usize, entry: u64) {
        assert!(index < 512);
        // SAFETY: as in `read`; the tables are not yet in use by hardware
        // while they are built.
        unsafe { entries(table).add(index).write_volatile(entry) }
    }
}
