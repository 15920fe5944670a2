//! Turning a channel record of the Flotilla block into a
//! [`channels::Region`] over the identity-mapped channel pages.

use abi::boot::ChannelInfo;
use channels::{region_size, LayoutError, Region};
use core::sync::atomic::{AtomicU64, Ordering};

/// Records already opened (bit = index in the block).
static OPENED: AtomicU64 = AtomicU64::new(0);

/// Why a channel region could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The record index was opened before (each region is wrapped once).
    AlreadyOpen,
    /// The record's size is smaller than its slot count needs, or the index
    /// is out of range.
    BadRecord,
    /// The region is not where the record says (or misaligned).
    Layout(LayoutError),
}

/// Wraps the region of the block's channel record number `index` (a
/// record the block parser validated: page-aligned, inside the channel
/// window). Each index is opened at most once.
pub fn open(index: usize, info: &ChannelInfo) -> Result<Region<'static>, OpenError> {
    if index >= 64 || info.gpa < abi::boot::CHANNEL_WINDOW_GPA {
        return Err(OpenError::BadRecord);
    }
    let len = region_size(info.slots);
    if len as u64 > info.size || info.gpa.checked_add(len as u64).is_none_or(|e| e > 1 << 32) {
        return Err(OpenError::BadRecord);
    }
    let bit = 1u64 << index;
    if OPENED.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
        return Err(OpenError::AlreadyOpen);
    }
    // SAFETY: [gpa, gpa + len) lies in the channel window below 4 GiB,
    // which `entry.rs` identity-maps, and the hypervisor maps the record's
    // region there for the whole run (it is never unmapped). The kernel
    // touches it only through this `Region` (atomic word accesses; the peer
    // partition uses plain word stores), and it wraps each record once (the
    // `OPENED` bit above), so no other reference into it exists. Channel
    // regions never overlap the kernel's RAM (they are above `memory`).
    unsafe { Region::from_raw(info.gpa as *mut u8, len) }.map_err(OpenError::Layout)
}
