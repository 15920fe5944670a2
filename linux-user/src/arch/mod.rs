//! The crate's only `unsafe` code: guest-physical memory through Linux's
//! `/dev/mem` (`pread` for the block, a shared `mmap` for each channel
//! region).
//!
//! Invariant owned here: a mapping made by [`DevMem::map_region`] is never
//! unmapped (the process ends with it), so the [`Region`] it returns is
//! valid for `'static`; it is only ever accessed through that `Region`,
//! that is, with aligned 8-byte atomic loads and stores.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use channels::Region;

use crate::session::PhysMem;

/// Where Linux exposes physical memory.
pub const DEV_MEM: &str = "/dev/mem";

/// Guest-physical memory through `/dev/mem`.
#[derive(Debug)]
pub struct DevMem {
    file: File,
}

impl DevMem {
    /// Opens `/dev/mem` read-write.
    pub fn open() -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(DEV_MEM)?;
        Ok(DevMem { file })
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

impl PhysMem for DevMem {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, gpa)
    }

    fn map_region(&mut self, gpa: u64, size: u64) -> io::Result<Region<'static>> {
        let len = usize::try_from(size).map_err(|_| invalid(format!("size {size:#x}")))?;
        let offset =
            libc::off_t::try_from(gpa).map_err(|_| invalid(format!("address {gpa:#x}")))?;
        if len == 0 || !gpa.is_multiple_of(4096) {
            return Err(invalid(format!("region {gpa:#x} (+{size:#x})")));
        }
        // SAFETY: a fresh shared mapping chosen by the kernel (no fixed
        // address, so no existing mapping is replaced) of `len` bytes of
        // the open `/dev/mem` at the page-aligned `offset`; nothing in this
        // process aliases it.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.file.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `ptr..ptr + len` is the mapping just made, readable and
        // writable, and never unmapped (module invariant), so valid for
        // `'static`; no Rust reference other than the returned `Region`
        // points into it, and the peer partition accesses it only with
        // aligned machine words (the channel contract). `from_raw` checks
        // alignment and length before use.
        unsafe { Region::from_raw(ptr.cast::<u8>(), len) }
            .map_err(|e| invalid(format!("region {gpa:#x}: {e}")))
    }
}
