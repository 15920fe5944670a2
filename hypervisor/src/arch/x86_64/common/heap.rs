//! The hypervisor's heap: a fixed region inside the image's `.bss`, so every
//! boot loader keeps modules and boot information out of it.

use core::cell::UnsafeCell;
use linked_list_allocator::LockedHeap;

/// Heap size. Per-core tables and stacks, nested page tables and the
/// manifest's decoded form come from here.
pub const HEAP_SIZE: usize = 16 * 1024 * 1024;

#[repr(C, align(4096))]
struct HeapSpace(UnsafeCell<[u8; HEAP_SIZE]>);

// SAFETY: the bytes are only ever reached through the allocator, which is
// handed the region once (`init`) and serialises access with its lock.
unsafe impl Sync for HeapSpace {}

static HEAP_SPACE: HeapSpace = HeapSpace(UnsafeCell::new([0; HEAP_SIZE]));

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

static INIT: spin::Once<()> = spin::Once::new();

/// Hands the heap region to the allocator (idempotent).
pub fn init() {
    INIT.call_once(|| {
        // SAFETY: the region is a 'static, otherwise unused array; `Once`
        // makes sure it is given to the allocator exactly once.
        unsafe {
            ALLOCATOR
                .lock()
                .init(HEAP_SPACE.0.get().cast::<u8>(), HEAP_SIZE)
        };
    });
}
