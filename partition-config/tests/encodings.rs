//! Layout files that are not UTF-8 text, or not files: one located
//! diagnostic each, naming what the file is (insta snapshots).

use std::path::Path;

use partition_config::{decode_source, read_file};

const LAYOUT: &str = "[machine]\ncpus = 1\nmemory = \"512 MiB\"\n\n[[partition]]\nname = \"a\"\ncpu = 0\nmemory = \"16 MiB\"\nworkload = \"hello\"\n";

fn shown(bytes: &[u8]) -> String {
    match decode_source(bytes, "layout.toml") {
        Ok(_) => "ok".to_owned(),
        Err(d) => {
            assert_eq!(d.len(), 1, "one diagnostic");
            let diag = d.iter().next().expect("one");
            assert!(d.location(diag).is_some(), "located: {diag:?}");
            d.render_plain()
        }
    }
}

fn utf16(text: &str, little: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let units = bom.then_some(0xfeff).into_iter().chain(text.encode_utf16());
    for u in units {
        out.extend_from_slice(&if little {
            u.to_le_bytes()
        } else {
            u.to_be_bytes()
        });
    }
    out
}

#[test]
fn utf8_with_and_without_bom_is_read() {
    assert_eq!(shown(LAYOUT.as_bytes()), "ok");
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(LAYOUT.as_bytes());
    assert_eq!(shown(&bom), "ok");
    assert!(partition_config::parse_str(&decode_source(&bom, "x").unwrap(), "x").is_ok());
}

#[test]
fn utf16_le_with_bom() {
    insta::assert_snapshot!(shown(&utf16(LAYOUT, true, true)));
}

#[test]
fn utf16_le_without_bom() {
    insta::assert_snapshot!(shown(&utf16(LAYOUT, true, false)));
}

#[test]
fn utf16_be_with_bom() {
    insta::assert_snapshot!(shown(&utf16(LAYOUT, false, true)));
}

#[test]
fn a_stray_latin1_byte() {
    let text = LAYOUT.replace("name = \"a\"", "name = \"a\" # caf\u{e9}");
    let latin1: Vec<u8> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("Latin-1"))
        .collect();
    insta::assert_snapshot!(shown(&latin1));
}

#[test]
fn a_truncated_utf8_sequence_at_the_end() {
    let mut bytes = LAYOUT.as_bytes().to_vec();
    bytes.extend_from_slice(b"# \xe2\x82");
    insta::assert_snapshot!(shown(&bytes));
}

#[test]
fn cr_only_line_endings() {
    insta::assert_snapshot!(shown(LAYOUT.replace('\n', "\r").as_bytes()));
}

#[test]
fn crlf_line_endings_are_fine() {
    assert_eq!(shown(LAYOUT.replace('\n', "\r\n").as_bytes()), "ok");
}

#[test]
fn non_regular_files_are_refused_without_reading() {
    let err = read_file("/dev/zero").unwrap_err().render_plain();
    assert!(
        err.contains("`/dev/zero` is a character device, not a regular file"),
        "{err}"
    );
    let dir = tempfile_dir();
    let err = read_file(&dir).unwrap_err().render_plain();
    assert!(err.contains("is a directory, not a regular file"), "{err}");
    let fifo = dir.join("fifo.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    if made {
        // Opening a FIFO with no writer would block for ever: it is refused first.
        let err = read_file(&fifo).unwrap_err().render_plain();
        assert!(
            err.contains("is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the target directory (no tempfile dependency).
fn tempfile_dir() -> std::path::PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("encodings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("directory");
    dir
}
