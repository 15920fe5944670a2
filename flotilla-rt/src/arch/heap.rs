//! The kernel heap: a linked-list allocator over the RAM between the end of
//! the image and the end of the partition's memory, stopped short of any
//! boot structure still in use (see [`crate::bootinfo::heap_range`]).

use crate::bootinfo::heap_range;
use core::sync::atomic::{AtomicBool, Ordering};
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();
static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Smallest heap the kernel runs with.
pub const MIN_HEAP: u64 = 256 * 1024;

/// Gives the allocator the RAM from the end of the image to `ram_end`,
/// ending before the lowest address in `occupied` that lies in between.
/// Returns the range, or `None` if it is smaller than [`MIN_HEAP`] or the
/// heap was already set up. Interrupt handlers never allocate, so the
/// allocator's spin lock cannot deadlock against them.
pub fn init(ram_end: u64, occupied: &[u64]) -> Option<(u64, u64)> {
    let (_, image_end) = super::image_range();
    let ram_end = ram_end.min(abi::boot::CHANNEL_WINDOW_GPA);
    let (start, end) = heap_range(image_end, ram_end, occupied, MIN_HEAP)?;
    let len = usize::try_from(end - start).ok()?;
    if INITIALISED.swap(true, Ordering::AcqRel) {
        return None;
    }
    // SAFETY: runs once (flag above). [start, end) starts after the image
    // (whose .bss holds the page tables and stacks) and ends at or below
    // the end of RAM the loader reported (block or memory map; below the
    // channel window, so identity-mapped) and before every boot structure
    // the kernel keeps reading; nothing else uses that memory.
    unsafe {
        HEAP.lock().init(start as *mut u8, len);
    }
    Some((start, end))
}
