//! The status pages of the partition's replication groups (boot protocol
//! v3): a validated group record's page as atomic words the safe
//! `abi::group` reader loads from.

use abi::boot::{GroupInfo, GROUP_STATUS_GPA, MAX_GROUPS};
use abi::group::{STATUS_PAGE_SIZE, STATUS_WORDS};
use core::sync::atomic::AtomicU64;

/// A status page, readable only: the hypervisor maps it read-only, so the
/// runtime hands out no way to store into it.
#[derive(Clone, Copy, Debug)]
pub struct StatusView {
    words: &'static [AtomicU64],
}

impl StatusView {
    /// The page of group record `index` (a record the block parser
    /// validated); `None` if its address is not the one the protocol
    /// gives that record.
    pub fn of(index: usize, info: &GroupInfo) -> Option<Self> {
        // The bound first: then `index * STATUS_PAGE_SIZE` cannot overflow.
        if index >= MAX_GROUPS {
            return None;
        }
        let at = GROUP_STATUS_GPA + u64::try_from(index * STATUS_PAGE_SIZE).ok()?;
        if info.status_gpa != at {
            return None;
        }
        // SAFETY: `at` is a page-aligned address in the status window below
        // 4 GiB, which `entry.rs` identity-maps (write-back: the window lies
        // below the uncached top 32 MiB). The hypervisor maps the group's
        // status page there, read-only, for the whole run; the kernel only
        // loads from it (relaxed atomic loads of aligned words in
        // `abi::group::read` and `abi::group::epoch`, which Rust allows on
        // read-only memory: `StatusView` exposes no store), and the
        // hypervisor only accesses it atomically, so no non-atomic access
        // races. `STATUS_WORDS` words are exactly the page.
        let words = unsafe { core::slice::from_raw_parts(at as *const AtomicU64, STATUS_WORDS) };
        Some(StatusView { words })
    }

    /// A consistent snapshot (the seqlock reader).
    pub fn read(&self) -> Result<abi::group::Membership, abi::group::StatusError> {
        abi::group::read(self.words)
    }

    /// The epoch word alone.
    pub fn epoch(&self) -> u64 {
        abi::group::epoch(self.words)
    }
}
