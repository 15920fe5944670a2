//! The boot bundle, version 2 (`docs/bundle.md`): one boot module that
//! carries the manifest, every kernel image as flat load segments (so the
//! hypervisor never parses ELF) and the per-partition modules (initrds,
//! ACPI tables). The hypervisor reads it where the loader put it.
//!
//! Layout (all integers little-endian, offsets from the bundle's start):
//! ```text
//! 0   magic "FLOTBNDL"        8   version u32      12  header size u32 (48)
//! 16  total length u64        24  manifest offset u32  28 manifest length u32
//! 32  image count u32         36  image table offset u32
//! 40  module count u32        44  module table offset u32
//! image record (32 bytes): entry u64, segment count u32, segment table offset u32, reserved 16
//! segment record (32 bytes): guest-physical address u64, memory length u64,
//!                            data offset u64, data length u64
//! module record (32 bytes): kind u8, reserved u8, partition u16, reserved u32,
//!                           data offset u64, data length u64, reserved u64
//! ```
//! Image `i` is the image of the manifest's kernel `i`. A segment's bytes
//! are copied to its address and the rest of its memory length is zeroed.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Magic at offset 0.
pub const MAGIC: [u8; 8] = *b"FLOTBNDL";
/// Format version.
pub const VERSION: u32 = 2;
/// Header size.
pub const HEADER_SIZE: usize = core::mem::size_of::<Header>();
/// Image record size.
pub const IMAGE_RECORD_SIZE: usize = core::mem::size_of::<ImageRecord>();
/// Segment record size.
pub const SEGMENT_RECORD_SIZE: usize = core::mem::size_of::<SegmentRecord>();
/// Module record size.
pub const MODULE_RECORD_SIZE: usize = core::mem::size_of::<ModuleRecord>();
/// [`ModuleRecord::kind`]: a partition's initrd (PVH module 0 of its kernel).
pub const MODULE_INITRD: u8 = 1;
/// [`ModuleRecord::kind`]: a compat partition's ACPI tables (RSDP first),
/// copied to `abi::compat::ACPI_TABLES_GPA`.
pub const MODULE_ACPI: u8 = 2;
/// Most modules in a bundle: one of each kind per partition.
pub const MAX_MODULES: u32 = 2 * 64;
/// Most images in a bundle.
pub const MAX_IMAGES: u32 = 64;
/// Most segments per image.
pub const MAX_SEGMENTS: u32 = 16;

/// The header at offset 0 (48 bytes).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: U32,
    /// [`HEADER_SIZE`].
    pub header_size: U32,
    /// Bytes of the whole bundle.
    pub total_len: U64,
    /// Offset of the manifest.
    pub manifest_offset: U32,
    /// Its length.
    pub manifest_len: U32,
    /// Entries in the image table.
    pub image_count: U32,
    /// Offset of the image table.
    pub images_offset: U32,
    /// Entries in the module table.
    pub module_count: U32,
    /// Offset of the module table.
    pub modules_offset: U32,
}

/// One entry of the image table (32 bytes).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ImageRecord {
    /// Guest-physical entry point.
    pub entry: U64,
    /// Entries in the image's segment table.
    pub segment_count: U32,
    /// Offset of the segment table.
    pub segments_offset: U32,
    /// Zero.
    pub reserved: [u8; 16],
}

/// One entry of a segment table (32 bytes).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct SegmentRecord {
    /// Guest-physical address of the first byte.
    pub gpa: U64,
    /// Bytes of memory (data, then zeros).
    pub mem_len: U64,
    /// Offset of the data.
    pub data_offset: U64,
    /// Length of the data.
    pub data_len: U64,
}

/// One entry of the module table (32 bytes): bytes for one partition that
/// are not a kernel image.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ModuleRecord {
    /// [`MODULE_INITRD`] or [`MODULE_ACPI`].
    pub kind: u8,
    /// Zero.
    pub reserved0: u8,
    /// The partition (manifest index) the module is for.
    pub partition: U16,
    /// Zero.
    pub reserved1: U32,
    /// Offset of the data (several records may share it).
    pub data_offset: U64,
    /// Length of the data.
    pub data_len: U64,
    /// Zero.
    pub reserved: U64,
}

const _: () = assert!(MODULE_RECORD_SIZE == 32);
const _: () = assert!(HEADER_SIZE == 48 && IMAGE_RECORD_SIZE == 32 && SEGMENT_RECORD_SIZE == 32);
const _: () = assert!(core::mem::offset_of!(Header, total_len) == 16);
const _: () = assert!(core::mem::offset_of!(Header, images_offset) == 36);
const _: () = assert!(core::mem::offset_of!(Header, modules_offset) == 44);
const _: () = assert!(core::mem::offset_of!(SegmentRecord, data_len) == 24);

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
    /// A module record of an unknown kind, with reserved bytes set, or a
    /// second module of one kind for one partition.
    BadModule(&'static str),
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
            BundleError::BadModule(what) => write!(f, "boot bundle module record: {what}"),
        }
    }
}

/// `len` bytes at `offset` of `b`, or [`BundleError::OutOfBounds`].
fn slice<'a>(
    b: &'a [u8],
    offset: u64,
    len: u64,
    what: &'static str,
) -> Result<&'a [u8], BundleError> {
    let at = |v: Option<u64>| v.and_then(|v| usize::try_from(v).ok());
    let range = at(Some(offset)).zip(at(offset.checked_add(len)));
    let range = range.and_then(|(start, end)| b.get(start..end));
    range.ok_or(BundleError::OutOfBounds(what))
}

/// A table of `count` records of `T` at `offset` of `b`.
fn table<'a, T: FromBytes + KnownLayout + Immutable + Unaligned>(
    b: &'a [u8],
    offset: u32,
    count: u32,
    what: &'static str,
) -> Result<&'a [T], BundleError> {
    let len = u64::from(count) * core::mem::size_of::<T>() as u64;
    let bytes = slice(b, u64::from(offset), len, what)?;
    <[T]>::ref_from_bytes(bytes).map_err(|_| BundleError::OutOfBounds(what))
}

/// A validated bundle.
#[derive(Clone, Copy, Debug)]
pub struct Bundle<'a> {
    bytes: &'a [u8],
    manifest: &'a [u8],
    images: &'a [ImageRecord],
    modules: &'a [ModuleRecord],
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
    segments: &'a [SegmentRecord],
}

impl<'a> Image<'a> {
    /// Its segments.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + 'a {
        let bytes = self.bytes;
        self.segments.iter().filter_map(move |s| {
            let data = slice(bytes, s.data_offset.get(), s.data_len.get(), "segment").ok()?;
            Some(Segment {
                gpa: s.gpa.get(),
                mem_len: s.mem_len.get(),
                data,
            })
        })
    }
}

impl<'a> Bundle<'a> {
    /// Validates `bytes` as a bundle: header, bounds of every table and
    /// segment, limits. Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Bundle<'a>, BundleError> {
        let (header, _) = Header::ref_from_prefix(bytes).map_err(|_| BundleError::Truncated)?;
        if header.magic != MAGIC {
            return Err(BundleError::BadMagic);
        }
        if header.version.get() != VERSION {
            return Err(BundleError::UnsupportedVersion(header.version.get()));
        }
        let total = header.total_len.get();
        let total = usize::try_from(total).map_err(|_| BundleError::Truncated)?;
        if total > bytes.len() || total < HEADER_SIZE {
            return Err(BundleError::Truncated);
        }
        let bytes = &bytes[..total];
        let manifest = slice(
            bytes,
            u64::from(header.manifest_offset.get()),
            u64::from(header.manifest_len.get()),
            "manifest",
        )?;
        if header.image_count.get() > MAX_IMAGES {
            return Err(BundleError::TooMany("images"));
        }
        let images: &[ImageRecord] = table(
            bytes,
            header.images_offset.get(),
            header.image_count.get(),
            "image table",
        )?;
        for image in images {
            let segments = Self::segment_table(bytes, image)?;
            for s in segments {
                slice(bytes, s.data_offset.get(), s.data_len.get(), "segment data")?;
                if s.data_len.get() > s.mem_len.get() {
                    return Err(BundleError::SegmentDataTooLong);
                }
                s.gpa
                    .get()
                    .checked_add(s.mem_len.get())
                    .ok_or(BundleError::OutOfBounds("segment address"))?;
            }
        }
        if header.module_count.get() > MAX_MODULES {
            return Err(BundleError::TooMany("modules"));
        }
        let modules: &[ModuleRecord] = table(
            bytes,
            header.modules_offset.get(),
            header.module_count.get(),
            "module table",
        )?;
        for (i, m) in modules.iter().enumerate() {
            if !matches!(m.kind, MODULE_INITRD | MODULE_ACPI) {
                return Err(BundleError::BadModule("unknown kind"));
            }
            if m.reserved0 != 0 || m.reserved1.get() != 0 || m.reserved.get() != 0 {
                return Err(BundleError::BadModule("reserved field not zero"));
            }
            slice(bytes, m.data_offset.get(), m.data_len.get(), "module data")?;
            let twice = modules[..i]
                .iter()
                .any(|e| e.kind == m.kind && e.partition == m.partition);
            if twice {
                return Err(BundleError::BadModule("two of one kind for one partition"));
            }
        }
        Ok(Bundle {
            bytes,
            manifest,
            images,
            modules,
        })
    }

    /// The bytes of partition `partition`'s module of `kind`
    /// ([`MODULE_INITRD`], [`MODULE_ACPI`]), if the bundle has one.
    pub fn module(&self, partition: u16, kind: u8) -> Option<&'a [u8]> {
        let m = self
            .modules
            .iter()
            .find(|m| m.kind == kind && m.partition.get() == partition)?;
        slice(self.bytes, m.data_offset.get(), m.data_len.get(), "module").ok()
    }

    /// Number of module records.
    pub fn module_count(&self) -> usize {
        self.modules.len()
    }

    fn segment_table(
        bytes: &'a [u8],
        image: &ImageRecord,
    ) -> Result<&'a [SegmentRecord], BundleError> {
        if image.segment_count.get() > MAX_SEGMENTS {
            return Err(BundleError::TooMany("segments"));
        }
        table(
            bytes,
            image.segments_offset.get(),
            image.segment_count.get(),
            "segment table",
        )
    }

    /// The manifest bytes.
    pub fn manifest(&self) -> &'a [u8] {
        self.manifest
    }

    /// Number of images.
    pub fn image_count(&self) -> usize {
        self.images.len()
    }

    /// Image `index`.
    pub fn image(&self, index: usize) -> Option<Image<'a>> {
        let record = self.images.get(index)?;
        Some(Image {
            entry: record.entry.get(),
            bytes: self.bytes,
            segments: Self::segment_table(self.bytes, record).ok()?,
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

    /// A length or offset as a 32-bit field.
    ///
    /// # Panics
    /// If the bundle is 4 GiB or more (the format's 32-bit offsets cannot say it).
    fn u32_field(n: usize) -> U32 {
        U32::new(u32::try_from(n).expect("a bundle is under 4 GiB"))
    }

    /// Writes `record` at `at` of `out`.
    fn put(out: &mut [u8], at: usize, record: &(impl IntoBytes + Immutable)) {
        let bytes = record.as_bytes();
        out[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// A module to put in a bundle: `kind` bytes for one partition. The
    /// bytes are `blobs[blob]` of [`encode_with_modules`], so modules with
    /// the same bytes (one initrd for several partitions) share them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ModuleSpec {
        /// [`MODULE_INITRD`] or [`MODULE_ACPI`].
        pub kind: u8,
        /// The partition (manifest index).
        pub partition: u16,
        /// Index of its bytes in the blob list.
        pub blob: usize,
    }

    /// Encodes a bundle without modules: see [`encode_with_modules`].
    pub fn encode(manifest: &[u8], images: &[ImageSpec]) -> Vec<u8> {
        encode_with_modules(manifest, images, &[], &[])
    }

    /// Encodes a bundle (manifest first, 8-byte aligned, so it can be
    /// decoded in place), then the images, then each blob once and the
    /// module records pointing at them. Panics if it would be 4 GiB or
    /// more, or if a module names a blob that is not there: the host
    /// tool's inputs, never a guest's.
    pub fn encode_with_modules(
        manifest: &[u8],
        images: &[ImageSpec],
        modules: &[ModuleSpec],
        blobs: &[&[u8]],
    ) -> Vec<u8> {
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
            for (s, seg) in image.segments.iter().enumerate() {
                align8(&mut out);
                let data_offset = out.len();
                out.extend_from_slice(&seg.data);
                let record = SegmentRecord {
                    gpa: seg.gpa.into(),
                    mem_len: seg.mem_len.into(),
                    data_offset: (data_offset as u64).into(),
                    data_len: (seg.data.len() as u64).into(),
                };
                put(&mut out, table + s * SEGMENT_RECORD_SIZE, &record);
            }
            let record = ImageRecord {
                entry: image.entry.into(),
                segment_count: u32_field(image.segments.len()),
                segments_offset: u32_field(table),
                reserved: [0; 16],
            };
            put(&mut out, images_offset + i * IMAGE_RECORD_SIZE, &record);
        }
        align8(&mut out);
        let modules_offset = out.len();
        out.resize(modules_offset + modules.len() * MODULE_RECORD_SIZE, 0);
        let mut blob_at = Vec::with_capacity(blobs.len());
        for blob in blobs {
            align8(&mut out);
            blob_at.push(out.len());
            out.extend_from_slice(blob);
        }
        for (i, m) in modules.iter().enumerate() {
            let record = ModuleRecord {
                kind: m.kind,
                reserved0: 0,
                partition: m.partition.into(),
                reserved1: 0.into(),
                data_offset: (blob_at[m.blob] as u64).into(),
                data_len: (blobs[m.blob].len() as u64).into(),
                reserved: 0.into(),
            };
            put(&mut out, modules_offset + i * MODULE_RECORD_SIZE, &record);
        }
        align8(&mut out);
        let header = Header {
            magic: MAGIC,
            version: VERSION.into(),
            header_size: u32_field(HEADER_SIZE),
            total_len: (out.len() as u64).into(),
            manifest_offset: u32_field(manifest_offset),
            manifest_len: u32_field(manifest.len()),
            image_count: u32_field(images.len()),
            images_offset: u32_field(images_offset),
            module_count: u32_field(modules.len()),
            modules_offset: u32_field(modules_offset),
        };
        put(&mut out, 0, &header);
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
    fn records_sit_at_the_documented_offsets() {
        let bytes = sample();
        let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let le64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        assert_eq!(&bytes[..8], b"FLOTBNDL");
        assert_eq!((le32(8), le32(12)), (2, 48));
        assert_eq!(le32(40), 0);
        assert_eq!(le64(16), bytes.len() as u64);
        assert_eq!((le32(24), le32(28)), (48, 8));
        assert_eq!(&bytes[48..56], b"MANIFEST");
        let images = le32(36) as usize;
        assert_eq!(le32(32), 1);
        assert_eq!(le64(images), 0x10_0040);
        assert_eq!(le32(images + 8), 2);
        assert!(bytes[images + 16..images + 32].iter().all(|&b| b == 0));
        let seg = le32(images + 12) as usize + 32;
        assert_eq!((le64(seg), le64(seg + 8)), (0x20_0000, 0x1000));
        let at = |at| usize::try_from(le64(at)).expect("in the sample");
        let (data, len) = (at(seg + 16), at(seg + 24));
        assert_eq!(&bytes[data..data + len], &[0xbb; 3]);
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
        let mut v1 = bytes.clone();
        v1[8] = 1;
        assert_eq!(
            Bundle::parse(&v1).unwrap_err(),
            BundleError::UnsupportedVersion(1)
        );
    }

    fn with_modules() -> alloc::vec::Vec<u8> {
        let initrd = [0x11u8; 13];
        let acpi = [0x22u8; 5];
        encode_with_modules(
            b"MANIFEST",
            &[],
            &[
                ModuleSpec {
                    kind: MODULE_INITRD,
                    partition: 0,
                    blob: 0,
                },
                ModuleSpec {
                    kind: MODULE_ACPI,
                    partition: 0,
                    blob: 1,
                },
                ModuleSpec {
                    kind: MODULE_INITRD,
                    partition: 3,
                    blob: 0,
                },
            ],
            &[&initrd, &acpi],
        )
    }

    #[test]
    fn modules_round_trip_and_share_their_bytes() {
        let bytes = with_modules();
        let b = Bundle::parse(&bytes).expect("valid");
        assert_eq!(b.module_count(), 3);
        assert_eq!(b.module(0, MODULE_INITRD), Some(&[0x11u8; 13][..]));
        assert_eq!(b.module(0, MODULE_ACPI), Some(&[0x22u8; 5][..]));
        assert_eq!(b.module(3, MODULE_INITRD), Some(&[0x11u8; 13][..]));
        assert_eq!(b.module(3, MODULE_ACPI), None);
        assert_eq!(b.module(1, MODULE_INITRD), None);
        // One copy of the shared initrd.
        assert_eq!(bytes.windows(13).filter(|w| *w == [0x11u8; 13]).count(), 1);
    }

    #[test]
    fn bad_module_records_are_refused() {
        let bytes = with_modules();
        let at = u32::from_le_bytes(bytes[44..48].try_into().expect("4")) as usize;
        let refused = |offset: usize, value: u8| {
            let mut c = bytes.clone();
            c[at + offset] = value;
            Bundle::parse(&c).unwrap_err()
        };
        assert_eq!(refused(0, 7), BundleError::BadModule("unknown kind"));
        assert_eq!(
            refused(1, 1),
            BundleError::BadModule("reserved field not zero")
        );
        assert_eq!(
            refused(31, 1),
            BundleError::BadModule("reserved field not zero")
        );
        // The third record for partition 0 instead of 3: two initrds.
        assert_eq!(
            refused(64 + 2, 0),
            BundleError::BadModule("two of one kind for one partition")
        );
        // Data past the end.
        assert_eq!(refused(23, 0x40), BundleError::OutOfBounds("module data"));
        for i in 0..bytes.len() {
            let mut c = bytes.clone();
            c[i] ^= 0xff;
            if let Ok(b) = Bundle::parse(&c) {
                for p in 0..4 {
                    let _ = b.module(p, MODULE_INITRD);
                }
            }
        }
    }
}
