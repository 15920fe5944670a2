//! Where an MSR or a port lives in a permission map: the index math the SVM
//! and VMX bitmaps share. Both start all ones (every access exits) and the
//! backend clears the bits of what a partition may touch directly; only
//! their layouts differ ([`crate::svm::MSRPM`], [`crate::vmx::MSR_BITMAP`]).
//! I/O maps are one bit per port from bit 0 for both vendors (AMD APM Vol. 2
//! §15.10.1; Intel SDM Vol. 3C §25.6.4, bitmaps A and B back to back).

/// An MSR permission map's layout: ranges of MSRs, each with its read bits
/// at a bit offset, every MSR `stride` bits after the previous, its write
/// bit `write` bits after its read bit. MSRs outside the ranges always exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsrMapLayout {
    /// `(first MSR, bit of its read permission)`; each range spans 0x2000 MSRs.
    pub ranges: &'static [(u32, usize)],
    /// Bits from one MSR's read bit to the next one's.
    pub stride: usize,
    /// Bits from an MSR's read bit to its write bit.
    pub write: usize,
}

impl MsrMapLayout {
    /// The bit that makes a read (or, with `write`, a write) of `msr` exit;
    /// `None` for an MSR outside every range (always intercepted).
    pub fn bit(&self, msr: u32, write: bool) -> Option<usize> {
        let &(first, read) = self
            .ranges
            .iter()
            .find(|&&(first, _)| msr.wrapping_sub(first) < 0x2000)?;
        let index = usize::try_from(msr - first).ok()?;
        Some(read + index * self.stride + if write { self.write } else { 0 })
    }
}

/// The bit of `port` in an I/O permission map.
pub fn port_bit(port: u16) -> usize {
    usize::from(port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svm::MSRPM;
    use crate::vmx::MSR_BITMAP;

    /// Whether a map with `bits` (one byte per eight bits, bit 0 first)
    /// makes the access exit, as the processor decides.
    fn traps(layout: &MsrMapLayout, bits: &[u8], msr: u32, write: bool) -> bool {
        layout
            .bit(msr, write)
            .is_none_or(|bit| bits.get(bit / 8).is_none_or(|b| b & (1 << (bit % 8)) != 0))
    }

    #[test]
    fn svm_msrpm_bits_follow_apm_table_15_11() {
        // APM Vol. 2 §15.11: two bits per MSR, read then write; the three
        // ranges at bytes 0, 0x800 and 0x1000.
        assert_eq!(MSRPM.bit(0, false), Some(0));
        assert_eq!(MSRPM.bit(0, true), Some(1));
        assert_eq!(MSRPM.bit(0x1fff, true), Some(0x1fff * 2 + 1));
        assert_eq!(MSRPM.bit(0xc000_0000, false), Some(0x800 * 8));
        assert_eq!(MSRPM.bit(0xc000_0080, true), Some(0x800 * 8 + 0x80 * 2 + 1));
        assert_eq!(MSRPM.bit(0xc001_0000, false), Some(0x1000 * 8));
        assert_eq!(
            MSRPM.bit(0xc001_1fff, true),
            Some(0x1000 * 8 + 0x1fff * 2 + 1)
        );
        for out in [0x2000, 0xbfff_ffff, 0xc000_2000, 0xc001_2000, u32::MAX] {
            assert_eq!(MSRPM.bit(out, false), None, "{out:#x}");
            assert_eq!(MSRPM.bit(out, true), None, "{out:#x}");
        }
        // The last bit is inside the 8 KiB map (the fourth 2 KiB is reserved).
        assert!(MSRPM.bit(0xc001_1fff, true).unwrap() < 0x1800 * 8);
    }

    #[test]
    fn vmx_msr_bitmap_bits_follow_sdm_25_6_9() {
        // SDM Vol. 3C §25.6.9: read low at byte 0, read high at 1024, write
        // low at 2048, write high at 3072; one bit per MSR.
        assert_eq!(MSR_BITMAP.bit(0, false), Some(0));
        assert_eq!(MSR_BITMAP.bit(0x1fff, false), Some(0x1fff));
        assert_eq!(MSR_BITMAP.bit(0, true), Some(2048 * 8));
        assert_eq!(MSR_BITMAP.bit(0xc000_0000, false), Some(1024 * 8));
        assert_eq!(MSR_BITMAP.bit(0xc000_0080, true), Some(3072 * 8 + 0x80));
        assert_eq!(MSR_BITMAP.bit(0xc000_1fff, true), Some(4096 * 8 - 1));
        // VMX has no third range: the AMD C001_xxxx MSRs always exit.
        for out in [0x2000, 0xc000_2000, 0xc001_0000, u32::MAX] {
            assert_eq!(MSR_BITMAP.bit(out, false), None, "{out:#x}");
        }
    }

    #[test]
    fn which_accesses_trap() {
        for layout in [MSRPM, MSR_BITMAP] {
            let mut bits = [0xffu8; 8192];
            let mut clear = |msr, write| {
                let bit = layout.bit(msr, write).unwrap();
                bits[bit / 8] &= !(1 << (bit % 8));
            };
            clear(0x277, false); // PAT readable
            clear(0xc000_0100, false); // FS base read/write
            clear(0xc000_0100, true);
            assert!(!traps(&layout, &bits, 0x277, false));
            assert!(traps(&layout, &bits, 0x277, true));
            assert!(!traps(&layout, &bits, 0xc000_0100, true));
            assert!(traps(&layout, &bits, 0xc000_0101, false));
            assert!(traps(&layout, &bits, 0x4000_0000, false), "out of range");
            assert!(
                traps(&layout, &[0; 8192], 0x8000_0000, true),
                "out of range"
            );
            assert!(!traps(&layout, &[0; 8192], 0x10, true));
        }
    }

    #[test]
    fn ports_are_one_bit_each() {
        assert_eq!(port_bit(0), 0);
        assert_eq!(port_bit(0x3f8), 0x3f8);
        // VMX: port 0x8000 is bit 0 of bitmap B, the second page.
        assert_eq!(port_bit(0x8000), 4096 * 8);
        assert_eq!(port_bit(0xffff), 0xffff);
    }
}
