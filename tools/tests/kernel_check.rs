//! `flotilla check` reads every kernel given by path as the bundle builder
//! will: each kind of unbootable kernel is refused at its `kernel =` with
//! the reason (insta snapshots of the rendered diagnostics). The kernels
//! are small ELF files written here, byte by byte.

use std::path::Path;

use tools::layout_run::LayoutSource;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const MIB: u64 = 1 << 20;

/// One program header to write: type, physical address, memory length,
/// file bytes.
struct Seg {
    kind: u32,
    paddr: u64,
    mem_len: u64,
    data: Vec<u8>,
}

fn load(paddr: u64, mem_len: u64, data_len: usize) -> Seg {
    Seg {
        kind: PT_LOAD,
        paddr,
        mem_len,
        data: vec![0x90; data_len],
    }
}

/// The PVH entry note (`XEN_ELFNOTE_PHYS32_ENTRY`, 18) with `entry`.
fn pvh_note(entry: u32) -> Seg {
    let mut data = Vec::new();
    for word in [4u32, 4, 18] {
        data.extend_from_slice(&word.to_le_bytes());
    }
    data.extend_from_slice(b"Xen\0");
    data.extend_from_slice(&entry.to_le_bytes());
    Seg {
        kind: PT_NOTE,
        paddr: 0,
        mem_len: 0,
        data,
    }
}

/// An x86-64 ELF64 executable with these program headers.
fn elf64(segs: &[Seg]) -> Vec<u8> {
    let phnum = u16::try_from(segs.len()).expect("few segments");
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0x10_0000u64.to_le_bytes()); // e_entry
    out.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, phnum, 64, 0, 0] {
        out.extend_from_slice(&half.to_le_bytes());
    }
    let mut offset = 64 + 56 * segs.len() as u64;
    let mut data = Vec::new();
    for s in segs {
        out.extend_from_slice(&s.kind.to_le_bytes());
        out.extend_from_slice(&5u32.to_le_bytes());
        let len = s.data.len() as u64;
        for field in [offset, s.paddr, s.paddr, len, s.mem_len.max(len), 8] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        offset += len;
        data.extend_from_slice(&s.data);
    }
    out.extend_from_slice(&data);
    out
}

/// A well-formed i386 ELF32 header without program headers.
fn elf32() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&3u16.to_le_bytes()); // EM_386
    out.extend_from_slice(&1u32.to_le_bytes());
    for word in [0x10_0000u32, 52, 0, 0] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for half in [52u16, 32, 0, 40, 0, 0] {
        out.extend_from_slice(&half.to_le_bytes());
    }
    out
}

fn good() -> Vec<u8> {
    elf64(&[pvh_note(0x10_0000), load(0x10_0000, 0x2000, 0x100)])
}

/// A layout of partitions `a` (16 MiB) and `b` (32 MiB) with `kernel`
/// written to `k.elf` next to it; the rendered diagnostics (the temporary
/// directory written as `<dir>`), or `ok`.
fn check(kernel: &[u8], partitions: &str) -> String {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("k.elf"), kernel).expect("kernel written");
    let text = format!("[machine]\ncpus = 2\nmemory = \"512 MiB\"\n\n{partitions}");
    let name = dir.path().join("layout.toml").display().to_string();
    let source = LayoutSource::Text { text, name };
    let shown = match source.load_with_warnings() {
        Ok(_) => "ok".to_owned(),
        Err(d) => d.render_plain(),
    };
    shown.replace(&dir.path().display().to_string(), "<dir>")
}

const ONE: &str = "[[partition]]\nname = \"a\"\ncpu = 0\nmemory = \"16 MiB\"\nkernel = \"k.elf\"\nworkload = \"main\"\n";

const TWO_INHERITED: &str = "[defaults]\nkernel = \"k.elf\"\nworkload = \"main\"\n\n[[partition]]\nname = \"a\"\ncpu = 0\nmemory = \"16 MiB\"\n\n[[partition]]\nname = \"b\"\ncpu = 1\nmemory = \"32 MiB\"\n";

#[test]
fn a_good_kernel_is_accepted() {
    assert_eq!(check(&good(), ONE), "ok");
    assert_eq!(check(&good(), TWO_INHERITED), "ok");
}

#[test]
fn a_text_file_is_not_a_kernel() {
    insta::assert_snapshot!(check(b"#!/bin/sh\necho not a kernel\n", ONE));
}

#[test]
fn an_empty_file_is_not_a_kernel() {
    insta::assert_snapshot!(check(b"", ONE));
}

#[test]
fn a_truncated_elf_is_refused() {
    let mut bytes = good();
    bytes.truncate(100);
    insta::assert_snapshot!(check(&bytes, ONE));
}

#[test]
fn an_elf_without_the_pvh_note_is_refused() {
    insta::assert_snapshot!(check(&elf64(&[load(0x10_0000, 0x1000, 16)]), ONE));
}

#[test]
fn an_elf32_is_refused() {
    insta::assert_snapshot!(check(&elf32(), ONE));
}

#[test]
fn a_segment_below_one_mib_is_refused() {
    let bytes = elf64(&[pvh_note(0x10_0000), load(0x8000, 0x1000, 16)]);
    insta::assert_snapshot!(check(&bytes, ONE));
}

#[test]
fn a_segment_past_the_partition_is_refused_in_that_partition_only() {
    // 20 MiB from 1 MiB: fits `b` (32 MiB), not `a` (16 MiB).
    let bytes = elf64(&[pvh_note(0x10_0000), load(MIB, 20 * MIB, 16)]);
    insta::assert_snapshot!(check(&bytes, TWO_INHERITED));
}

#[test]
fn more_segments_than_a_bundle_image_holds_are_refused() {
    let count = abi::bundle::MAX_SEGMENTS as u64 + 1;
    let mut segs = vec![pvh_note(0x10_0000)];
    segs.extend((0..count).map(|i| load(MIB + i * 0x1000, 0x1000, 8)));
    insta::assert_snapshot!(check(&elf64(&segs), TWO_INHERITED));
}

#[test]
fn a_bundle_over_the_hypervisors_limit_is_refused() {
    let over = usize::try_from(partition_config::limits::MAX_BUNDLE_LEN).expect("fits") + 1;
    let bytes = elf64(&[pvh_note(0x10_0000), load(MIB, 14 * MIB, over)]);
    let big = ONE.replace("memory = \"16 MiB\"", "memory = \"256 MiB\"");
    insta::assert_snapshot!(check(&bytes, &big));
}

#[test]
fn a_bundle_at_the_limit_is_checked_by_the_builder_too() {
    let max = usize::try_from(partition_config::limits::MAX_BUNDLE_LEN).expect("fits");
    assert!(tools::layout_run::check_bundle_len(max).is_ok());
    let err = tools::layout_run::check_bundle_len(max + 1).unwrap_err();
    assert!(err.to_string().contains("at most 134217728"), "{err}");
}

#[test]
fn the_bundle_builder_accepts_what_check_accepts() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("k.elf"), good()).expect("kernel written");
    let image = tools::kernel_check::read_kernel(&dir.path().join("k.elf")).expect("bootable");
    let flat = tools::bundle::flatten_elf(&good(), Path::new("k.elf")).expect("flattens");
    assert_eq!(image.segments.len(), flat.segments.len());
    assert_eq!(image.segments[0].gpa, flat.segments[0].gpa);
}

#[test]
fn a_kernel_that_is_not_a_regular_file_is_refused_without_reading() {
    let text =
        "[machine]\ncpus = 1\nmemory = \"512 MiB\"\n\n[[partition]]\nname = \"a\"\ncpu = 0\n\
                memory = \"16 MiB\"\nkernel = \"/dev/zero\"\nworkload = \"main\"\n";
    let source = LayoutSource::Text {
        text: text.to_owned(),
        name: "layout.toml".to_owned(),
    };
    let shown = source.load_with_warnings().unwrap_err().render_plain();
    assert!(
        shown.contains("error[bad-kernel-image]: kernel `/dev/zero` is not a regular file"),
        "{shown}"
    );
}

#[test]
fn every_truncation_and_byte_flip_of_a_kernel_is_an_answer_not_a_panic() {
    use tools::kernel_check::kernel_image;
    let bytes = good();
    let path = Path::new("k.elf");
    assert!(kernel_image(&bytes, path).is_ok());
    for len in 0..bytes.len() {
        let _ = kernel_image(&bytes[..len], path);
    }
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut c = bytes.clone();
            c[i] ^= flip;
            let _ = kernel_image(&c, path);
        }
    }
}

/// A bzImage around `payload` (boot protocol 2.15, one setup sector): the
/// header fields `tools::bzimage` reads, written here from the boot
/// protocol's offsets.
fn bzimage(payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    b[0x1f1] = 1; // setup_sects
    b[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    b[0x248..0x24c].copy_from_slice(&0x10u32.to_le_bytes()); // payload_offset
    let len = u32::try_from(payload.len()).expect("small");
    b[0x24c..0x250].copy_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&[0xcc; 0x10]);
    b.extend_from_slice(payload);
    b
}

/// `data` as Linux compresses its kernel with xz: the x86 branch filter,
/// LZMA2, a CRC32 check.
fn xz(data: &[u8]) -> Vec<u8> {
    use lzma_rust2::{CheckType, FilterType, XzOptions, XzWriter};
    use std::io::Write;
    let mut options = XzOptions::with_preset(1);
    options.set_check_sum_type(CheckType::Crc32);
    options.prepend_pre_filter(FilterType::BcjX86, 0);
    let mut w = XzWriter::new(Vec::new(), options).expect("writer");
    w.write_all(data).expect("compress");
    w.finish().expect("finish")
}

#[test]
fn a_bzimage_is_read_as_the_elf_inside_it() {
    assert_eq!(check(&bzimage(&xz(&good())), ONE), "ok");
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("vmlinuz");
    std::fs::write(&path, bzimage(&xz(&good()))).expect("kernel written");
    let image = tools::kernel_check::read_kernel(&path).expect("bootable");
    let flat = tools::bundle::flatten_elf(&good(), Path::new("k.elf")).expect("flattens");
    assert_eq!(image.segments.len(), flat.segments.len());
    assert_eq!(image.segments[0].gpa, flat.segments[0].gpa);
}

#[test]
fn a_bzimage_that_cannot_be_unpacked_is_refused_with_the_reason() {
    let bzip2 = check(&bzimage(b"BZh91AY&SY"), ONE);
    assert!(bzip2.contains("error[bad-kernel-image]"), "{bzip2}");
    assert!(
        bzip2.contains("a bzImage, but") && bzip2.contains("bzip2"),
        "{bzip2}"
    );
    let no_pvh = elf64(&[load(0x10_0000, 0x2000, 0x100)]);
    let shown = check(&bzimage(&xz(&no_pvh)), ONE);
    assert!(shown.contains("CONFIG_PVH"), "{shown}");
}

#[test]
fn an_initrd_that_does_not_fit_above_the_kernel_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("k.elf"), good()).expect("kernel written");
    let initrd = std::fs::File::create(dir.path().join("initrd")).expect("initrd");
    // The kernel ends at 0x102000; 7 MiB at the top of 8 MiB start at 1 MiB.
    initrd.set_len(7 * MIB).expect("sized");
    let text = "[machine]\ncpus = 2\nmemory = \"512 MiB\"\n\n[[partition]]\nname = \"a\"\ncpu = 0\nmemory = \"8 MiB\"\nkernel = \"k.elf\"\ninitrd = \"initrd\"\nworkload = \"main\"\n".to_owned();
    let name = dir.path().join("layout.toml").display().to_string();
    let source = LayoutSource::Text {
        text: text.clone(),
        name: name.clone(),
    };
    let shown = source
        .load_with_warnings()
        .map(drop)
        .unwrap_err()
        .render_plain();
    assert!(shown.contains("error[initrd-too-large]"), "{shown}");
    assert!(shown.contains("memory = \"10 MiB\""), "{shown}");
    initrd.set_len(6 * MIB).expect("sized");
    let source = LayoutSource::Text { text, name };
    if let Err(d) = source.load_with_warnings() {
        panic!("{}", d.render_plain());
    }
}

#[test]
fn a_bundle_with_no_room_above_the_partitions_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let kernel = elf64(&[pvh_note(0x10_0000), load(MIB, 20 * MIB, 20 << 20)]);
    std::fs::write(dir.path().join("k.elf"), kernel).expect("kernel written");
    let layout = |machine: &str| {
        let text = format!("[machine]\ncpus = 1\nmemory = \"{machine}\"\n\n[[partition]]\nname = \"a\"\ncpu = 0\nmemory = \"32 MiB\"\nkernel = \"k.elf\"\nworkload = \"main\"\n");
        let name = dir.path().join("layout.toml").display().to_string();
        LayoutSource::Text { text, name }
            .load_with_warnings()
            .map(drop)
    };
    // Partition at 64..96 MiB, a 20 MiB bundle: 117 MiB needed.
    let shown = layout("112 MiB").unwrap_err().render_plain();
    assert!(shown.contains("error[bundle-no-room]"), "{shown}");
    assert!(
        shown.contains("raise machine.memory to at least 118 MiB"),
        "{shown}"
    );
    assert!(layout("118 MiB").is_ok());
}

#[test]
fn the_bundle_carries_initrds_once_and_acpi_tables_for_compat_partitions() {
    use abi::bundle::{Bundle, MODULE_ACPI, MODULE_INITRD};
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("k.elf"), bzimage(&xz(&good()))).expect("kernel written");
    let initrd = b"070701 an initramfs".repeat(100);
    std::fs::write(dir.path().join("initrd"), &initrd).expect("initrd written");
    let text = "[machine]\ncpus = 3\nmemory = \"512 MiB\"\n\n[defaults]\nkernel = \"k.elf\"\nworkload = \"main\"\nmemory = \"16 MiB\"\n\n[[partition]]\nname = \"a\"\ncpu = 0\ncompat = \"linux\"\ninitrd = \"initrd\"\ncmdline = \"console=ttyS0\"\n\n[[partition]]\nname = \"b\"\ncpu = 1\ninitrd = \"initrd\"\n\n[[partition]]\nname = \"c\"\ncpu = 2\n".to_owned();
    let name = dir.path().join("layout.toml").display().to_string();
    let (layout, _) = LayoutSource::Text { text, name }
        .load_with_warnings()
        .map_err(|d| d.render_plain())
        .expect("valid");
    let bytes = tools::bundle::build(&layout, Path::new("/nonexistent")).expect("built");
    let bundle = Bundle::parse(&bytes).expect("parses");
    assert_eq!(bundle.module_count(), 3);
    assert_eq!(bundle.module(0, MODULE_INITRD), Some(initrd.as_slice()));
    assert_eq!(bundle.module(1, MODULE_INITRD), Some(initrd.as_slice()));
    assert_eq!(bundle.module(2, MODULE_INITRD), None);
    assert_eq!(
        bundle.module(0, MODULE_ACPI),
        Some(tools::acpi::build().as_slice())
    );
    assert_eq!(bundle.module(1, MODULE_ACPI), None);
    // One copy of the shared initrd; the kernel went in as the bzImage's ELF.
    let copies = bytes
        .windows(initrd.len())
        .filter(|w| *w == initrd.as_slice())
        .count();
    assert_eq!(copies, 1);
    assert_eq!(bundle.image(0).expect("image").entry, 0x10_0000);
    let manifest = partition_config::Manifest::decode(bundle.manifest()).expect("manifest");
    let a = manifest.partition_by_name("a").expect("a");
    assert_eq!((a.cmdline, a.initrd), ("console=ttyS0", Some("initrd")));
}
