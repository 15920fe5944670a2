//! The boot bundle, version 1 (`docs/bundle.md`): one boot module that
//! carries the manifest and every kernel image as flat load segments, so the
//! hypervisor never parses ELF.
//!
//! Layout (all integers little-endian, offsets from the bundle's start):
//! ```text
//! 0   magic "FLOTBNDL"        8   version u32      12  header size u32 (48)
//! 16  total length u64        24  manifest offset u32  28 manifest length u32
//! 32  image count u32         36  image table offset u32   40 reserved u64
//! image record (32 bytes): entry u64, segment count u32, segment table offset u32, reserved 16
//! segment record (32 bytes): guest-physical address u64, memory length u64,
//!                            data offset u64, data length u64
//! ```
//! Image `i` is the image of the manifest's kernel `i`. A segment's bytes
//! are copied to its address and the rest of its memory length is zeroed.

/// Magic at offset 0.
pub const MAGIC: [u8; 8] = *b"FLOTBNDL";
/// Format version.
pub const VERSION: u32 = 1;
/// Header size.
pub const HEADER_SIZE: usize = 48;
/// Image record size.
pub const IMAGE_RECORD_SIZE: usize = 32;
/// Segment record size.
pub const SEGMENT_RECORD_SIZE: usize = 32;
/// Most images in a bundle.
pub const MAX_IMAGES: u32 = 64;
/// Most segments per image.
pub const MAX_SEGMENTS: u32 = 16;

/// Why a bundle was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// Shorter than its header or its declared length.
    Truncated,
    /// Wrong magic.
    BadMagic,
    /// A version this hypervisor does not read.
    UnsupportedVersion(u32),
    /// A table or a data range lies outside the bundle.
    OutOfBounds(&'static str),
    /// Too many images or segments.
    TooMany(&'static str),
    /// A segment whose data is longer than its memory.
    SegmentDataTooLong,
}

impl core::fmt::Display for BundleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BundleError::Truncated => write!(f, "boot bundle truncated"),
            BundleError::BadMagic => write!(f, "boot module is not a Flotilla bundle (bad magic)"),
            BundleError::UnsupportedVersion(v) => write!(
                f,
                "boot bundle version {v} is not supported (expected {VERSION})"
            ),
            BundleError::OutOfBounds(what) => {
                write!(f, "boot bundle {what} lies outside the bundle")
            }
            BundleError::TooMany(what) => write!(f, "boot bundle has too many {what}"),
            BundleError::SegmentDataTooLong => {
                write!(f, "boot bundle segment has more data than memory")
            }
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, BundleError> {
    let bytes = b
        .get(at..at.checked_add(4).ok_or(BundleError::Truncated)?)
        .ok_or(BundleError::Truncated)?;
    Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, BundleError> {
    let lo = u32_at(b, at)?;
    let hi = u32_at(b, at.checked_add(4).ok_or(BundleError::Truncated)?)?;
    Ok(u64::from(lo) | (u64::from(hi) << 32))
}

fn range(
    b: &[u8],
    offset: u64,
    len: u64,
    what: &'static str,
) -> Result<core::ops::Range<usize>, BundleError> {
    let end = offset
        .checked_add(len)
        .ok_or(BundleError::OutOfBounds(what))?;
    if end > b.len() as u64 {
        return Err(BundleError::OutOfBounds(what));
    }
    Ok(offset as usize..end as usize)
}

/// A validated bundle.
#[derive(Clone, Copy, Debug)]
pub struct Bundle<'a> {
    bytes: &'a [u8],
    manifest: &'a [u8],
    image_count: u32,
    images_offset: usize,
}

/// One load segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Guest-physical address of its first byte.
    pub gpa: u64,
    /// Bytes of memory it occupies (data, then zeros).
    pub mem_len: u64,
    /// Its initialised bytes.
    pub data: &'a [u8],
}

/// One kernel image.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    /// Guest-physical entry point (32-bit protected mode, PVH-style).
    pub entry: u64,
    bytes: &'a [u8],
    segment_count: u32,
    segments_offset: usize,
}

impl<'a> Image<'a> {
    /// Its segments.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + 'a {
        let bytes = self.bytes;
        let base = self.segments_offset;
        (0..self.segment_count as usize).filter_map(move |i| {
            let at = base + i * SEGMENT_RECORD_SIZE;
            let gpa = u64_at(bytes, at).ok()?;
            let mem_len = u64_at(bytes, at + 8).ok()?;
            let off = u64_at(bytes, at + 16).ok()?;
            let len = u64_at(bytes, at + 24).ok()?;
            let data = bytes.get(range(bytes, off, len, "segment").ok()?)?;
            Some(Segment { gpa, mem_len, data })
        })
    }
}

impl<'a> Bundle<'a> {
    /// Validates `bytes` as a bundle: header, bounds of every table and
    /// segment, limits. Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Bundle<'a>, BundleError> {
        if bytes.len() < HEADER_SIZE {
            return Err(BundleError::Truncated);
        }
        if bytes[..8] != MAGIC {
            return Err(BundleError::BadMagic);
        }
        let version = u32_at(bytes, 8)?;
        if version != VERSION {
            return Err(BundleError::UnsupportedVersion(version));
        }
        let total = u64_at(bytes, 16)?;
        if total > bytes.len() as u64 || total < HEADER_SIZE as u64 {
            return Err(BundleError::Truncated);
        }
        let bytes = &bytes[..total as usize];
        let manifest = &bytes[range(
            bytes,
            u64::from(u32_at(bytes, 24)?),
            u64::from(u32_at(bytes, 28)?),
            "manifest",
        )?];
        let image_count = u32_at(bytes, 32)?;
        if image_count > MAX_IMAGES {
            return Err(BundleError::TooMany("images"));
        }
        let images_offset = u32_at(bytes, 36)? as usize;
        range(
            bytes,
            images_offset as u64,
            u64::from(image_count) * IMAGE_RECORD_SIZE as u64,
            "image table",
        )?;
        let bundle = Bundle {
            bytes,
            manifest,
            image_count,
            images_offset,
        };
        for i in 0..image_count as usize {
            let at = images_offset + i * IMAGE_RECORD_SIZE;
            let count = u32_at(bytes, at + 8)?;
            if count > MAX_SEGMENTS {
                return Err(BundleError::TooMany("segments"));
            }
            let table = u32_at(bytes, at + 12)? as usize;
            range(
                bytes,
                table as u64,
                u64::from(count) * SEGMENT_RECORD_SIZE as u64,
                "segment table",
            )?;
            for s in 0..count as usize {
                let rec = table + s * SEGMENT_RECORD_SIZE;
                let mem_len = u64_at(bytes, rec + 8)?;
                let len = u64_at(bytes, rec + 24)?;
                range(bytes, u64_at(bytes, rec + 16)?, len, "segment data")?;
                if len > mem_len {
                    return Err(BundleError::SegmentDataTooLong);
                }
                u64_at(bytes, rec)?
                    .checked_add(mem_len)
                    .ok_or(BundleError::OutOfBounds("segment address"))?;
            }
        }
        Ok(bundle)
    }

    /// The manifest bytes.
    pub fn manifest(&self) -> &'a [u8] {
        self.manifest
    }

    /// Number of images.
    pub fn image_count(&self) -> usize {
        self.image_count as usize
    }

    /// Image `index`.
    pub fn image(&self, index: usize) -> Option<Image<'a>> {
        if index >= self.image_count as usize {
            return None;
        }
        let at = self.images_offset + index * IMAGE_RECORD_SIZE;
        Some(Image {
            entry: u64_at(self.bytes, at).ok()?,
            bytes: self.bytes,
            segment_count: u32_at(self.bytes, at + 8).ok()?,
            segments_offset: u32_at(self.bytes, at + 12).ok()? as usize,
        })
    }
}

/// Builds bundles (host side).
#[cfg(any(test, feature = "alloc"))]
pub mod build {
    use super::*;
    use alloc::vec::Vec;

    /// A segment to put in a bundle.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct SegmentSpec {
        /// Guest-physical address.
        pub gpa: u64,
        /// Memory length (≥ `data.len()`).
        pub mem_len: u64,
        /// Initialised bytes.
        pub data: Vec<u8>,
    }

    /// An image to put in a bundle.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ImageSpec {
        /// Entry point.
        pub entry: u64,
        /// Segments.
        pub segments: Vec<SegmentSpec>,
    }

    fn align8(v: &mut Vec<u8>) {
        while !v.len().is_multiple_of(8) {
            v.push(0);
        }
    }

    /// Encodes a bundle (manifest first, 8-byte aligned, so it can be
    /// decoded in place).
    pub fn encode(manifest: &[u8], images: &[ImageSpec]) -> Vec<u8> {
        let mut out = alloc::vec![0u8; HEADER_SIZE];
        let manifest_offset = out.len();
        out.extend_from_slice(manifest);
        align8(&mut out);
        let images_offset = out.len();
        out.resize(images_offset + images.len() * IMAGE_RECORD_SIZE, 0);
        for (i, image) in images.iter().enumerate() {
            align8(&mut out);
            let table = out.len();
            out.resize(table + image.segments.len() * SEGMENT_RECORD_SIZE, 0);
            let mut records = Vec::new();
            for seg in &image.segments {
                align8(&mut out);
                let data_offset = out.len();
                out.extend_from_slice(&seg.data);
                records.push((
                    seg.gpa,
                    seg.mem_len,
                    data_offset as u64,
                    seg.data.len() as u64,
                ));
            }
            for (s, (gpa, mem_len, off, len)) in records.into_iter().enumerate() {
                let at = table + s * SEGMENT_RECORD_SIZE;
                out[at..at + 8].copy_from_slice(&gpa.to_le_bytes());
                out[at + 8..at + 16].copy_from_slice(&mem_len.to_le_bytes());
                out[at + 16..at + 24].copy_from_slice(&off.to_le_bytes());
                out[at + 24..at + 32].copy_from_slice(&len.to_le_bytes());
            }
            let at = images_offset + i * IMAGE_RECORD_SIZE;
            out[at..at + 8].copy_from_slice(&image.entry.to_le_bytes());
            out[at + 8..at + 12].copy_from_slice(&(image.segments.len() as u32).to_le_bytes());
            out[at + 12..at + 16].copy_from_slice(&(table as u32).to_le_bytes());
        }
        align8(&mut out);
        let total = out.len() as u64;
        out[..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        out[16..24].copy_from_slice(&total.to_le_bytes());
        out[24..28].copy_from_slice(&(manifest_offset as u32).to_le_bytes());
        out[28..32].copy_from_slice(&(manifest.len() as u32).to_le_bytes());
        out[32..36].copy_from_slice(&(images.len() as u32).to_le_bytes());
        out[36..40].copy_from_slice(&(images_offset as u32).to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;
    use alloc::vec;

    fn sample() -> alloc::vec::Vec<u8> {
        encode(
            b"MANIFEST",
            &[ImageSpec {
                entry: 0x10_0040,
                segments: vec![
                    SegmentSpec {
                        gpa: 0x10_0000,
                        mem_len: 0x2000,
                        data: vec![0xaa; 100],
                    },
                    SegmentSpec {
                        gpa: 0x20_0000,
                        mem_len: 0x1000,
                        data: vec![0xbb; 3],
                    },
                ],
            }],
        )
    }

    #[test]
    fn round_trips() {
        let bytes = sample();
        let b = Bundle::parse(&bytes).expect("valid");
        assert_eq!(b.manifest(), b"MANIFEST");
        assert_eq!(b.image_count(), 1);
        let img = b.image(0).expect("image 0");
        assert_eq!(img.entry, 0x10_0040);
        let segs: alloc::vec::Vec<_> = img.segments().collect();
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].gpa, 0x10_0000);
        assert_eq!(segs[0].data, &[0xaa; 100][..]);
        assert_eq!(segs[1].mem_len, 0x1000);
        assert!(b.image(1).is_none());
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let bytes = sample();
        for len in 0..bytes.len() {
            // Shorter than declared: always refused.
            assert!(Bundle::parse(&bytes[..len]).is_err(), "truncated at {len}");
        }
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut c = bytes.clone();
                c[i] ^= flip;
                if let Ok(b) = Bundle::parse(&c) {
                    for img in 0..b.image_count() {
                        let _ = b.image(img).map(|im| im.segments().count());
                    }
                }
            }
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::BadMagic);
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert_eq!(
            Bundle::parse(&v2).unwrap_err(),
            BundleError::UnsupportedVersion(2)
        );
    }
}
