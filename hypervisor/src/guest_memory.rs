//! Access to a partition's RAM from exit handlers, bounds-checked against
//! the partition's size: every guest pointer goes through here.

/// A guest-physical range outside the partition's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds;

/// Read access to one partition's RAM (guest-physical `0..size`).
pub trait GuestMemory {
    /// RAM size in bytes.
    fn size(&self) -> u64;
    /// Copies `out.len()` bytes from guest-physical `gpa`; the caller has
    /// checked the range (use [`read_checked`]).
    fn read_unchecked(&self, gpa: u64, out: &mut [u8]);
}

/// Copies guest bytes after checking that `gpa..gpa+out.len()` lies inside
/// the partition's RAM, without overflow.
pub fn read_checked(mem: &impl GuestMemory, gpa: u64, out: &mut [u8]) -> Result<(), OutOfBounds> {
    let end = gpa.checked_add(out.len() as u64).ok_or(OutOfBounds)?;
    if end > mem.size() {
        return Err(OutOfBounds);
    }
    mem.read_unchecked(gpa, out);
    Ok(())
}

/// A fake guest RAM for host tests.
#[cfg(test)]
#[derive(Debug)]
pub struct FakeGuestMemory(pub std::vec::Vec<u8>);

#[cfg(test)]
impl GuestMemory for FakeGuestMemory {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_unchecked(&self, gpa: u64, out: &mut [u8]) {
        let start = usize::try_from(gpa).expect("checked by read_checked");
        out.copy_from_slice(&self.0[start..start + out.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked_without_overflow() {
        let mem = FakeGuestMemory(std::vec![7u8; 4096]);
        let mut buf = [0u8; 16];
        assert_eq!(read_checked(&mem, 4080, &mut buf), Ok(()));
        assert_eq!(buf, [7u8; 16]);
        assert_eq!(read_checked(&mem, 4081, &mut buf), Err(OutOfBounds));
        assert_eq!(read_checked(&mem, u64::MAX - 4, &mut buf), Err(OutOfBounds));
    }
}
