//! Reading physical memory, behind a trait so parsers run on the host.

/// A physical address range that could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysError {
    /// First address of the failed read.
    pub addr: u64,
    /// Its length in bytes.
    pub len: usize,
}

impl core::fmt::Display for PhysError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "cannot read {} bytes at physical {:#x}",
            self.len, self.addr
        )
    }
}

/// Read access to physical memory.
pub trait PhysMemory {
    /// Fills `out` with the bytes at `addr..addr + out.len()`.
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), PhysError>;

    /// Reads a little-endian `u8`.
    fn read_u8(&self, addr: u64) -> Result<u8, PhysError> {
        let mut b = [0u8; 1];
        self.read(addr, &mut b)?;
        Ok(b[0])
    }

    /// Reads a little-endian `u16`.
    fn read_u16(&self, addr: u64) -> Result<u16, PhysError> {
        let mut b = [0u8; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Reads a little-endian `u32`.
    fn read_u32(&self, addr: u64) -> Result<u32, PhysError> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a little-endian `u64`.
    fn read_u64(&self, addr: u64) -> Result<u64, PhysError> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// A fake physical memory for host tests: one buffer at a base address.
#[cfg(test)]
#[derive(Debug)]
pub struct FakeMemory {
    /// Physical address of `bytes[0]`.
    pub base: u64,
    /// The contents.
    pub bytes: std::vec::Vec<u8>,
}

#[cfg(test)]
impl FakeMemory {
    /// `len` zero bytes at `base`.
    pub fn new(base: u64, len: usize) -> FakeMemory {
        FakeMemory {
            base,
            bytes: std::vec![0; len],
        }
    }

    /// Copies `data` to physical `addr`.
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        let start = usize::try_from(addr - self.base).expect("in the fake");
        self.bytes[start..start + data.len()].copy_from_slice(data);
    }
}

#[cfg(test)]
impl PhysMemory for FakeMemory {
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), PhysError> {
        let err = PhysError {
            addr,
            len: out.len(),
        };
        let start = usize::try_from(addr.checked_sub(self.base).ok_or(err)?).map_err(|_| err)?;
        let end = start.checked_add(out.len()).ok_or(err)?;
        let src = self.bytes.get(start..end).ok_or(err)?;
        out.copy_from_slice(src);
        Ok(())
    }
}
