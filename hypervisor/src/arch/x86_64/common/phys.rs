//! [`PhysMemory`] over the identity map the hypervisor runs on.

use hypervisor::platform::{PhysError, PhysMemory};

/// Lowest physical address treated as readable (page 0 holds nothing the
/// hypervisor needs except the BIOS data area word at 0x40e).
const LOW_LIMIT: u64 = 0x400;
/// The boot page tables identity-map 0..4 GiB.
const IDENTITY_LIMIT: u64 = 1 << 32;

/// Reads physical memory through the boot identity map (0..4 GiB).
#[derive(Clone, Copy, Debug, Default)]
pub struct IdentityMemory;

impl PhysMemory for IdentityMemory {
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), PhysError> {
        let err = PhysError {
            addr,
            len: out.len(),
        };
        let end = addr.checked_add(out.len() as u64).ok_or(err)?;
        if addr < LOW_LIMIT || end > IDENTITY_LIMIT {
            return Err(err);
        }
        // SAFETY: addr..end lies inside the identity map (checked above), so
        // the pointer is mapped; the reads are volatile byte reads of firmware
        // or loader data nobody writes concurrently, into a distinct buffer.
        unsafe {
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = core::ptr::read_volatile((addr as *const u8).wrapping_add(i));
            }
        }
        Ok(())
    }
}
