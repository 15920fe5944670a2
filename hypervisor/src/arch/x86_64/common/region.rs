//! Host-physical regions the hypervisor hands to partitions: claimed once
//! each, only when they are usable RAM that overlaps neither the hypervisor
//! image, the AP trampoline, nor another claim. Writing partition memory is
//! possible only through a claimed [`PhysRegion`], which is what makes the
//! bounds of every copy a checked fact rather than a convention.

use super::trampoline::TRAMPOLINE_BASE;
use alloc::vec::Vec;
use core::ptr::addr_of;
use hypervisor::guest_memory::GuestMemory;
use hypervisor::platform::boot_info::BootInfo;
use spin::Mutex;

unsafe extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

/// The boot page tables identity-map 0..4 GiB; regions must lie below.
const IDENTITY_LIMIT: u64 = 1 << 32;

static CLAIMS: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

/// The hypervisor image's physical range (code, data, heap, stacks).
pub fn image_range() -> (u64, u64) {
    let start = addr_of!(__image_start) as u64;
    let end = addr_of!(__image_end) as u64;
    (start, end - start)
}

/// Whether `base..base+len` could be claimed: usable RAM below 4 GiB, clear
/// of the hypervisor image and the trampoline page.
pub fn is_free_ram(boot: &BootInfo, base: u64, len: u64) -> bool {
    len > 0
        && base
            .checked_add(len)
            .is_some_and(|end| end <= IDENTITY_LIMIT)
        && boot.is_usable(base, len)
        && !overlaps((base, len), image_range())
        && !overlaps((base, len), (TRAMPOLINE_BASE, 4096))
}

/// The boot module at `base..base+len` (the bundle the loader placed), read
/// where it lies: claimed like a partition's region, so no partition or
/// channel region can overlap it, and never written. `None` if it is not
/// below 4 GiB, overlaps the hypervisor image or the trampoline page, or
/// was claimed already.
pub fn claim_module(base: u64, len: u64) -> Option<&'static [u8]> {
    let end = base.checked_add(len)?;
    let size = usize::try_from(len).ok()?;
    if len == 0
        || end > IDENTITY_LIMIT
        || overlaps((base, len), image_range())
        || overlaps((base, len), (TRAMPOLINE_BASE, 4096))
    {
        return None;
    }
    let mut claims = CLAIMS.lock();
    if claims.iter().any(|&c| overlaps(c, (base, len))) {
        return None;
    }
    claims.push((base, len));
    // SAFETY: base..end lies in the identity map (below 4 GiB, checked), so
    // the pointer is valid for `size` bytes for the hypervisor's lifetime;
    // the range is claimed (claims are never released), so no PhysRegion
    // handed to a partition or channel overlaps it and nothing in the
    // hypervisor writes it; it is not the image or the trampoline (checked);
    // the boot loader that wrote it has finished. So the bytes do not change
    // while the shared slice lives.
    Some(unsafe { core::slice::from_raw_parts(base as *const u8, size) })
}

/// An exclusively claimed host-physical range.
#[derive(Debug)]
pub struct PhysRegion {
    base: u64,
    len: u64,
}

impl PhysRegion {
    /// Claims `base..base+len`; `None` if it is not free RAM or overlaps an
    /// earlier claim.
    pub fn claim(boot: &BootInfo, base: u64, len: u64) -> Option<PhysRegion> {
        if !is_free_ram(boot, base, len) {
            return None;
        }
        let mut claims = CLAIMS.lock();
        if claims.iter().any(|&c| overlaps(c, (base, len))) {
            return None;
        }
        claims.push((base, len));
        Some(PhysRegion { base, len })
    }

    /// Host-physical base.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    fn check(&self, offset: u64, len: u64) -> Option<u64> {
        let end = offset.checked_add(len)?;
        (end <= self.len).then_some(self.base + offset)
    }

    /// Copies `bytes` to `offset`; `false` (nothing written) if out of bounds.
    pub fn write(&self, offset: u64, bytes: &[u8]) -> bool {
        let Some(at) = self.check(offset, bytes.len() as u64) else {
            return false;
        };
        // SAFETY: the range lies inside this claimed region (checked), which
        // is identity-mapped RAM that no other Rust object aliases; the
        // hypervisor writes a partition's RAM only while its guest does not
        // run (loading, and reloading on a restart with its vCPU stopped on
        // this core), so no concurrent access exists.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, bytes.len()) };
        true
    }

    /// Zeroes `len` bytes at `offset`; `false` (nothing written) if out of bounds.
    pub fn zero(&self, offset: u64, len: u64) -> bool {
        let (Some(at), Ok(len)) = (self.check(offset, len), usize::try_from(len)) else {
            return false;
        };
        // SAFETY: as in `write`.
        unsafe { core::ptr::write_bytes(at as *mut u8, 0, len) };
        true
    }

    /// A read-only view of this region for a partition's exit handling on
    /// its own core (e.g. reading the instruction behind an exit).
    pub fn reader(&self) -> RamReader {
        RamReader {
            base: self.base,
            len: self.len,
        }
    }

    /// The region as a channel region, for `channels::Channel::format`
    /// (the channel contract's one writer).
    #[allow(clippy::cast_possible_truncation, reason = "64-bit usize")]
    pub fn channel_region(&mut self) -> Result<channels::Region<'_>, channels::LayoutError> {
        // SAFETY: the range is claimed (identity-mapped RAM below 4 GiB that
        // no other claim or Rust object overlaps) and claims are never
        // released, so it stays mapped and writable for the borrow; `&mut
        // self` keeps this region's other accessors out while the returned
        // `Region` lives. The hypervisor formats channels before any guest
        // runs, and re-formats a restarted partition's channels while its
        // peer may run: a guest touches the region only with aligned
        // machine-word loads and stores, which `Region::from_raw` allows
        // from another partition besides the `Region`'s atomic accesses.
        unsafe { channels::Region::from_raw(self.base as *mut u8, self.len as usize) }
    }
}

impl GuestMemory for PhysRegion {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_unchecked(&self, gpa: u64, out: &mut [u8]) {
        let Some(at) = self.check(gpa, out.len() as u64) else {
            out.fill(0);
            return;
        };
        // SAFETY: in bounds of the claimed region (checked again here); the
        // guest may be changing the bytes concurrently only on other cores of
        // its own partition — there are none (one core per partition) — so
        // the copy sees a stable snapshot while this core handles the exit.
        unsafe { core::ptr::copy_nonoverlapping(at as *const u8, out.as_mut_ptr(), out.len()) };
    }
}

/// Read access to a claimed region (see [`PhysRegion::reader`]). Claims
/// are never released, so the range stays the partition's RAM for the run.
#[derive(Clone, Copy, Debug)]
pub struct RamReader {
    base: u64,
    len: u64,
}

impl GuestMemory for RamReader {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_unchecked(&self, gpa: u64, out: &mut [u8]) {
        let in_bounds = gpa
            .checked_add(out.len() as u64)
            .is_some_and(|end| end <= self.len);
        if !in_bounds {
            out.fill(0);
            return;
        }
        let at = self.base + gpa;
        // SAFETY: in bounds of a claimed region (checked here), which is
        // identity-mapped RAM that stays claimed for the run; as for
        // `PhysRegion`'s reads, the guest is stopped on this core while its
        // exit is handled and has no other core, so the bytes are stable.
        unsafe { core::ptr::copy_nonoverlapping(at as *const u8, out.as_mut_ptr(), out.len()) };
    }
}
