//! Reading guest-physical memory through the identity map, for the boot
//! structures ([`crate::bootinfo::PhysMem`]).

use crate::bootinfo::PhysMem;

/// Highest address the reader hands out (the RAM of any partition and the
/// loader's structures lie below the channel window).
const READ_LIMIT: u64 = abi::boot::CHANNEL_WINDOW_GPA;

/// The identity map as read-only guest-physical memory. The boot
/// structures it exposes are never written by the kernel (the heap is kept
/// clear of them), so the slices may live for the whole run.
#[derive(Clone, Copy, Debug)]
pub struct IdentityMap;

impl PhysMem<'static> for IdentityMap {
    fn bytes(&self, gpa: u64, len: u64) -> Option<&'static [u8]> {
        let end = gpa.checked_add(len)?;
        if gpa == 0 || end > READ_LIMIT {
            return None;
        }
        let len = usize::try_from(len).ok()?;
        // SAFETY: 0..4 GiB is identity-mapped (see `entry.rs`), so
        // [gpa, end) is mapped; it lies below the channel window, in RAM
        // the loader gave us or in unbacked space (reads of which return a
        // fixed pattern bare, or stop the partition under the hypervisor:
        // either way no Rust object is affected). The kernel never writes
        // the loader's structures: the heap is placed clear of them
        // (`bootinfo::heap_range`), and the image does not overlap them.
        Some(unsafe { core::slice::from_raw_parts(gpa as *const u8, len) })
    }
}
