//! A Linux `bzImage` (what distributions ship as `/boot/vmlinuz-*`) turned
//! into the PVH ELF it carries, so a layout's `kernel` may name the file
//! users have.
//!
//! A bzImage is the real-mode setup code, then the protected-mode
//! decompressor with the compressed kernel in it. The x86 boot protocol
//! (Linux `Documentation/arch/x86/boot.rst`, "The real-mode kernel header")
//! gives, from version 2.08 on, where that payload is: `payload_offset` and
//! `payload_length`, counted from the start of the protected-mode code,
//! which begins after `setup_sects + 1` sectors of 512 bytes. The payload is
//! the kernel's own ELF (`vmlinux` stripped), compressed with the
//! compressor the kernel was configured with, recognised here by its magic
//! bytes. gzip, xz (with the x86 branch filter Linux uses) and zstd are
//! decompressed; the others are named in the error.
//!
//! Everything here reads bytes a user gave: no panics, every offset checked,
//! the decompressed size bounded ([`MAX_KERNEL_LEN`]).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// Offset of `setup_sects` (one byte; 0 means 4).
const SETUP_SECTS: usize = 0x1f1;
/// Offset of `boot_flag`, `0xAA55`.
const BOOT_FLAG: usize = 0x1fe;
/// Offset of the header signature `HdrS`.
const HEADER_MAGIC: usize = 0x202;
/// Offset of the boot protocol version (`u16`).
const PROTOCOL_VERSION: usize = 0x206;
/// Offset of `payload_offset` (`u32`, protocol 2.08+).
const PAYLOAD_OFFSET: usize = 0x248;
/// Offset of `payload_length` (`u32`, protocol 2.08+).
const PAYLOAD_LENGTH: usize = 0x24c;
/// The first protocol version with `payload_offset` and `payload_length`.
const FIRST_PAYLOAD_PROTOCOL: u16 = 0x0208;
/// Bytes of a sector.
const SECTOR: usize = 512;

/// Most bytes a decompressed kernel may have: far above any distribution
/// kernel (Debian's 6.1 is about 60 MiB), and below what would exhaust
/// the host on a hostile file.
pub const MAX_KERNEL_LEN: u64 = 512 << 20;

/// The compressors a kernel payload may use, by magic bytes (the
/// compressors' own formats, as Linux's `scripts/Makefile.lib` writes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    /// gzip (RFC 1952), `1f 8b`.
    Gzip,
    /// xz, `fd 37 7a 58 5a 00`.
    Xz,
    /// zstd, `28 b5 2f fd`.
    Zstd,
    /// bzip2, `BZh`: not decompressed here.
    Bzip2,
    /// lzma (the legacy `.lzma` format), `5d 00 00`: not decompressed here.
    Lzma,
    /// lzo (lzop), `89 4c 5a 4f`: not decompressed here.
    Lzo,
    /// lz4 (legacy frame), `02 21 4c 18`: not decompressed here.
    Lz4,
}

impl Compressor {
    /// The compressor of `payload`, by its first bytes.
    #[must_use]
    pub fn of(payload: &[u8]) -> Option<Self> {
        const MAGICS: [(&[u8], Compressor); 7] = [
            (&[0x1f, 0x8b], Compressor::Gzip),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Compressor::Xz),
            (&[0x28, 0xb5, 0x2f, 0xfd], Compressor::Zstd),
            (b"BZh", Compressor::Bzip2),
            (&[0x5d, 0x00, 0x00], Compressor::Lzma),
            (&[0x89, b'L', b'Z', b'O'], Compressor::Lzo),
            (&[0x02, 0x21, 0x4c, 0x18], Compressor::Lz4),
        ];
        MAGICS
            .iter()
            .find(|(magic, _)| payload.starts_with(magic))
            .map(|(_, c)| *c)
    }

    /// Its usual name (`CONFIG_KERNEL_<NAME>`, lower case).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Xz => "xz",
            Self::Zstd => "zstd",
            Self::Bzip2 => "bzip2",
            Self::Lzma => "lzma",
            Self::Lzo => "lzo",
            Self::Lz4 => "lz4",
        }
    }
}

/// Whether `bytes` look like a bzImage: the boot flag and the `HdrS`
/// header signature where the boot protocol puts them.
#[must_use]
pub fn is_bzimage(bytes: &[u8]) -> bool {
    bytes.get(BOOT_FLAG..BOOT_FLAG + 2) == Some(&[0x55, 0xaa][..])
        && bytes.get(HEADER_MAGIC..HEADER_MAGIC + 4) == Some(&b"HdrS"[..])
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The compressed payload of a bzImage.
///
/// # Errors
/// Why it cannot be found (one sentence, for the layout's `kernel =`).
pub fn payload(bytes: &[u8]) -> Result<&[u8], String> {
    if !is_bzimage(bytes) {
        return Err("not a bzImage (no boot flag and HdrS header)".to_owned());
    }
    let version = u16_at(bytes, PROTOCOL_VERSION).unwrap_or(0);
    if version < FIRST_PAYLOAD_PROTOCOL {
        return Err(format!(
            "a bzImage of boot protocol {}.{:02}: only 2.08 and later say where the kernel is",
            version >> 8,
            version & 0xff
        ));
    }
    let sects = match bytes.get(SETUP_SECTS).copied().unwrap_or(0) {
        0 => 4,
        n => usize::from(n),
    };
    let start = (sects + 1) * SECTOR;
    let offset = u32_at(bytes, PAYLOAD_OFFSET).and_then(|v| usize::try_from(v).ok());
    let len = u32_at(bytes, PAYLOAD_LENGTH).and_then(|v| usize::try_from(v).ok());
    let range = offset
        .zip(len)
        .and_then(|(o, l)| Some(start.checked_add(o)?..start.checked_add(o)?.checked_add(l)?));
    range
        .and_then(|r| bytes.get(r))
        .filter(|p| !p.is_empty())
        .ok_or_else(|| "a truncated bzImage: its payload lies outside the file".to_owned())
}

/// Reads at most [`MAX_KERNEL_LEN`] bytes of a decompressor's output.
fn read_bounded(reader: impl Read, what: Compressor) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    reader
        .take(MAX_KERNEL_LEN + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("its {} payload does not decompress: {e}", what.name()))?;
    if u64::try_from(out.len()).unwrap_or(u64::MAX) > MAX_KERNEL_LEN {
        return Err(format!(
            "its kernel decompresses to more than {} MiB",
            MAX_KERNEL_LEN >> 20
        ));
    }
    Ok(out)
}

/// The deflate data of a gzip member (RFC 1952 §2.3): past the fixed
/// header and the optional extra field, name, comment and header CRC.
fn gzip_body(member: &[u8]) -> Option<&[u8]> {
    const FHCRC: u8 = 1 << 1;
    const FEXTRA: u8 = 1 << 2;
    const FNAME: u8 = 1 << 3;
    const FCOMMENT: u8 = 1 << 4;
    let flags = *member.get(3)?;
    if *member.get(2)? != 8 {
        return None; // not deflate
    }
    let mut at = 10usize;
    if flags & FEXTRA != 0 {
        let xlen = usize::from(u16_at(member, at)?);
        at = at.checked_add(2 + xlen)?;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let nul = member.get(at..)?.iter().position(|&b| b == 0)?;
            at = at.checked_add(nul + 1)?;
        }
    }
    if flags & FHCRC != 0 {
        at = at.checked_add(2)?;
    }
    member.get(at..)
}

/// Decompresses a kernel payload.
///
/// # Errors
/// An unknown or unsupported compressor, corrupt data, or an output over
/// [`MAX_KERNEL_LEN`].
pub fn decompress(payload: &[u8]) -> Result<Vec<u8>, String> {
    let compressor = Compressor::of(payload).ok_or_else(|| {
        "a bzImage whose payload has no known compressor's magic bytes".to_owned()
    })?;
    match compressor {
        Compressor::Gzip => {
            let body = gzip_body(payload)
                .ok_or_else(|| "its gzip payload has a malformed header".to_owned())?;
            let limit = usize::try_from(MAX_KERNEL_LEN).unwrap_or(usize::MAX);
            miniz_oxide::inflate::decompress_to_vec_with_limit(body, limit)
                .map_err(|e| format!("its gzip payload does not decompress: {e}"))
        }
        Compressor::Xz => read_bounded(
            lzma_rust2::XzReader::new(payload, false),
            Compressor::Xz,
        ),
        Compressor::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(payload)
                .map_err(|e| format!("its zstd payload does not decompress: {e}"))?;
            read_bounded(decoder, Compressor::Zstd)
        }
        other => Err(format!(
            "a bzImage compressed with {}, which flotilla does not decompress (gzip, xz and zstd are supported); give the kernel's vmlinux ELF instead",
            other.name()
        )),
    }
}

/// The ELF inside a bzImage.
///
/// # Errors
/// Why there is none (one sentence): not a bzImage, an old or truncated
/// one, an unsupported compressor, corrupt data, or a payload that is not
/// an ELF.
pub fn extract(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let elf = decompress(payload(bytes)?)?;
    if !elf.starts_with(b"\x7fELF") {
        return Err("a bzImage whose decompressed payload is not an ELF".to_owned());
    }
    Ok(elf)
}

/// A kernel file as ELF bytes.
#[derive(Debug, Clone)]
pub struct KernelFile {
    /// The file itself, or the ELF its bzImage carries.
    pub elf: Arc<Vec<u8>>,
    /// The file was a bzImage.
    pub from_bzimage: bool,
}

/// An ELF taken out of a bzImage: the file's length and modification time
/// when it was read, and the ELF.
type Extracted = (u64, Option<SystemTime>, Arc<Vec<u8>>);

/// The ELFs already taken out of bzImages in this process, by path, with
/// the file's length and modification time when it was read (`flotilla
/// run` reads each kernel twice: to check the layout and to build the
/// bundle; decompressing 60 MiB of xz once is enough).
fn cache() -> &'static Mutex<HashMap<PathBuf, Extracted>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Extracted>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Reads the kernel at `path`: an ELF as it is, a bzImage as the ELF it
/// carries (decompressed once per process and file version).
///
/// # Errors
/// The file cannot be read (the I/O error), or it is a bzImage whose ELF
/// cannot be taken out (the reason).
pub fn read_kernel_file(path: &Path) -> Result<KernelFile, KernelFileError> {
    let meta = std::fs::metadata(path).map_err(KernelFileError::Read)?;
    let stamp = (meta.len(), meta.modified().ok());
    if let Ok(cache) = cache().lock() {
        if let Some((len, modified, elf)) = cache.get(path) {
            if (*len, *modified) == stamp {
                return Ok(KernelFile {
                    elf: Arc::clone(elf),
                    from_bzimage: true,
                });
            }
        }
    }
    let bytes = std::fs::read(path).map_err(KernelFileError::Read)?;
    if !is_bzimage(&bytes) {
        return Ok(KernelFile {
            elf: Arc::new(bytes),
            from_bzimage: false,
        });
    }
    let elf = Arc::new(extract(&bytes).map_err(KernelFileError::BzImage)?);
    if let Ok(mut cache) = cache().lock() {
        cache.insert(path.to_path_buf(), (stamp.0, stamp.1, Arc::clone(&elf)));
    }
    Ok(KernelFile {
        elf,
        from_bzimage: true,
    })
}

/// Why [`read_kernel_file`] failed.
#[derive(Debug)]
pub enum KernelFileError {
    /// The file cannot be read.
    Read(std::io::Error),
    /// A bzImage whose ELF cannot be taken out.
    BzImage(String),
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal bzImage around `payload`: boot sector with `setup_sects`
    /// = 1, the header fields the extractor reads, then `pm_pad` bytes of
    /// "decompressor" before the payload.
    pub(crate) fn bzimage(payload: &[u8], version: u16) -> Vec<u8> {
        let setup_sects = 1u8;
        let pm_pad = 0x40usize;
        let mut b = vec![0u8; (usize::from(setup_sects) + 1) * SECTOR];
        b[SETUP_SECTS] = setup_sects;
        b[BOOT_FLAG..BOOT_FLAG + 2].copy_from_slice(&[0x55, 0xaa]);
        b[HEADER_MAGIC..HEADER_MAGIC + 4].copy_from_slice(b"HdrS");
        b[PROTOCOL_VERSION..PROTOCOL_VERSION + 2].copy_from_slice(&version.to_le_bytes());
        let offset = u32::try_from(pm_pad).expect("small");
        b[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&offset.to_le_bytes());
        let len = u32::try_from(payload.len()).expect("small");
        b[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&len.to_le_bytes());
        b.extend(std::iter::repeat_n(0xccu8, pm_pad));
        b.extend_from_slice(payload);
        // Linux appends the decompressed size; the extractor ignores it.
        b.extend_from_slice(&0u32.to_le_bytes());
        b
    }

    /// Stand-in kernel bytes: an ELF magic and some text that compresses.
    fn fake_elf() -> Vec<u8> {
        let mut elf = b"\x7fELF".to_vec();
        for i in 0..5000u32 {
            elf.extend_from_slice(&(i % 251).to_le_bytes());
            elf.extend_from_slice(b"\xe8\x00\x00\x00\x00"); // x86 calls, for the BCJ filter
        }
        elf
    }

    pub(crate) fn xz(data: &[u8]) -> Vec<u8> {
        use lzma_rust2::{CheckType, FilterType, XzOptions, XzWriter};
        use std::io::Write;
        // As Linux's scripts/xz_wrap.sh: the x86 branch filter, then LZMA2,
        // CRC32 check.
        let mut options = XzOptions::with_preset(1);
        options.set_check_sum_type(CheckType::Crc32);
        options.prepend_pre_filter(FilterType::BcjX86, 0);
        let mut w = XzWriter::new(Vec::new(), options).expect("writer");
        w.write_all(data).expect("compress");
        w.finish().expect("finish")
    }

    fn gzip(data: &[u8], flags: u8, header_extra: &[u8]) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3];
        out.extend_from_slice(header_extra);
        out.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
        out.extend_from_slice(&[0; 8]); // CRC32 and ISIZE, not checked
        out
    }

    #[test]
    fn xz_with_the_x86_filter_is_extracted() {
        let elf = fake_elf();
        let image = bzimage(&xz(&elf), 0x020f);
        assert!(is_bzimage(&image));
        assert_eq!(
            Compressor::of(payload(&image).expect("payload")),
            Some(Compressor::Xz)
        );
        assert_eq!(extract(&image).expect("extracts"), elf);
    }

    #[test]
    fn gzip_with_a_name_and_zstd_are_extracted() {
        let elf = fake_elf();
        // FNAME: a NUL-terminated name after the fixed header.
        let image = bzimage(&gzip(&elf, 1 << 3, b"vmlinux.bin\0"), 0x020f);
        assert_eq!(extract(&image).expect("gzip"), elf);
        let zstd = ruzstd::encoding::compress_to_vec(
            elf.as_slice(),
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let image = bzimage(&zstd, 0x020f);
        assert_eq!(extract(&image).expect("zstd"), elf);
    }

    #[test]
    fn what_cannot_be_extracted_is_named() {
        let elf = fake_elf();
        assert!(payload(b"\x7fELF....")
            .unwrap_err()
            .contains("not a bzImage"));
        let old = bzimage(&xz(&elf), 0x0206);
        assert!(extract(&old).unwrap_err().contains("boot protocol 2.06"));
        let bz2 = bzimage(b"BZh91AY&SY....", 0x020f);
        let err = extract(&bz2).unwrap_err();
        assert!(err.contains("bzip2") && err.contains("vmlinux"), "{err}");
        let unknown = bzimage(b"\x00\x01\x02\x03", 0x020f);
        assert!(extract(&unknown)
            .unwrap_err()
            .contains("no known compressor"));
        let mut truncated = bzimage(&xz(&elf), 0x020f);
        truncated.truncate(truncated.len() - 100);
        assert!(extract(&truncated)
            .unwrap_err()
            .contains("outside the file"));
        let mut corrupt = bzimage(&xz(&elf), 0x020f);
        let at = corrupt.len() / 2;
        corrupt[at] ^= 0xff;
        assert!(extract(&corrupt)
            .unwrap_err()
            .contains("does not decompress"));
        let not_elf = bzimage(&xz(b"just some text, not an ELF"), 0x020f);
        assert!(extract(&not_elf).unwrap_err().contains("not an ELF"));
        let bad_gzip = bzimage(&[0x1f, 0x8b, 9, 0, 0, 0], 0x020f);
        assert!(extract(&bad_gzip).unwrap_err().contains("malformed header"));
    }

    #[test]
    fn any_truncation_or_byte_flip_is_an_error_or_an_elf_never_a_panic() {
        let image = bzimage(&xz(&fake_elf()), 0x020f);
        for cut in (0..image.len()).step_by(97) {
            let _ = extract(&image[..cut]);
        }
        for at in (0..image.len()).step_by(53) {
            let mut b = image.clone();
            b[at] ^= 0x5a;
            if let Ok(elf) = extract(&b) {
                assert!(elf.starts_with(b"\x7fELF"));
            }
        }
    }
}
