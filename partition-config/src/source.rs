//! A layout's bytes to its text: UTF-8 only, with one located diagnostic
//! for what else a file may be (UTF-16 from an editor, a stray Latin-1
//! byte, classic Mac OS line endings), and files that are not regular files
//! refused before they are opened (`/dev/zero`, a FIFO would never end).

use std::path::Path;

use crate::diagnostics::{Diagnostic, Diagnostics};

/// Reads the layout file at `path` as text.
///
/// # Errors
/// One diagnostic: not a regular file, unreadable, or not UTF-8 text.
pub(crate) fn read(path: &Path) -> Result<String, Diagnostics> {
    let name = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            let what = file_kind(&meta);
            let d = Diagnostic::new(
                "unreadable-file",
                format!("`{name}` is {what}, not a regular file"),
            )
            .help("give the path of a layout file (TOML); to read the layout from standard input, give `-`");
            return Err(Diagnostics::new(&name, "", vec![d]));
        }
        Ok(_) => {}
        Err(err) => return Err(Diagnostics::io_error(&name, &err)),
    }
    match std::fs::read(path) {
        Ok(bytes) => decode(&bytes, &name),
        Err(err) => Err(Diagnostics::io_error(&name, &err)),
    }
}

#[cfg(unix)]
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    if meta.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Which UTF-16 a text is in, if it looks like UTF-16: by its byte order
/// mark, or (without one) by NUL bytes in every other position of its
/// first line, as ASCII text saved as UTF-16 has.
fn utf16(bytes: &[u8]) -> Option<(bool, bool)> {
    match bytes {
        [0xff, 0xfe, ..] => return Some((true, true)),
        [0xfe, 0xff, ..] => return Some((false, true)),
        _ => {}
    }
    let head = &bytes[..bytes.len().min(64) & !1];
    if head.len() < 4 {
        return None;
    }
    let pairs = head.chunks_exact(2);
    let n = pairs.len();
    let low_nul = pairs.clone().filter(|p| p[1] == 0 && p[0] != 0).count();
    let high_nul = pairs.filter(|p| p[0] == 0 && p[1] != 0).count();
    if low_nul * 4 >= n * 3 {
        Some((true, false))
    } else if high_nul * 4 >= n * 3 {
        Some((false, false))
    } else {
        None
    }
}

/// The text of a layout given as bytes (a file's, or standard input's).
/// A UTF-8 byte order mark is dropped.
///
/// # Errors
/// One diagnostic, located where the source allows: UTF-16 (with or without
/// a byte order mark, named), not UTF-8 (at the first bad byte), line
/// endings that are a lone CR (once, at the first).
pub(crate) fn decode(bytes: &[u8], name: &str) -> Result<String, Diagnostics> {
    if let Some((little, bom)) = utf16(bytes) {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|p| {
                if little {
                    u16::from_le_bytes([p[0], p[1]])
                } else {
                    u16::from_be_bytes([p[0], p[1]])
                }
            })
            .collect();
        let text: String = char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        let text = text.trim_start_matches('\u{feff}').to_owned();
        let first_line = text.find(['\n', '\r']).unwrap_or(text.len());
        let endian = if little { "little" } else { "big" };
        let how = if bom {
            "with a byte order mark"
        } else {
            "without a byte order mark"
        };
        let d = Diagnostic::new(
            "not-utf8",
            format!("the file is UTF-16 ({endian}-endian, {how}), not UTF-8"),
        )
        .at(0..first_line, "this text is UTF-16 in the file")
        .help(format!(
            "save the file as UTF-8 (in the editor's encoding menu, or `iconv -f UTF-16{} -t UTF-8 {name}`)",
            if bom { "" } else if little { "LE" } else { "BE" }
        ))
        .note("layouts are UTF-8 (TOML files are UTF-8 by definition)");
        return Err(Diagnostics::new(name, &text, vec![d]));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let at = err.valid_up_to();
            let bad = err.error_len().unwrap_or(bytes.len() - at);
            let shown: Vec<String> = bytes[at..at + bad]
                .iter()
                .map(|b| format!("{b:#04x}"))
                .collect();
            let lossy = String::from_utf8_lossy(bytes).into_owned();
            // Up to `at` the lossy text is the file's; the bad bytes are one
            // replacement character there.
            let span = at..at + char::REPLACEMENT_CHARACTER.len_utf8();
            let latin1 = bytes[at] >= 0xa0 && err.error_len().is_some();
            let d = Diagnostic::new(
                "not-utf8",
                format!(
                    "the file is not UTF-8: byte {} at offset {at}",
                    shown.join(" ")
                ),
            )
            .at(span, "not UTF-8")
            .help(if latin1 {
                format!(
                    "save the file as UTF-8; if it is Latin-1: `iconv -f LATIN1 -t UTF-8 {name}`"
                )
            } else {
                "save the file as UTF-8, or remove the bytes".to_owned()
            })
            .note("layouts are UTF-8 (TOML files are UTF-8 by definition)");
            return Err(Diagnostics::new(name, &lossy, vec![d]));
        }
    };
    let lone_cr = text
        .bytes()
        .enumerate()
        .find(|&(i, b)| b == b'\r' && text.as_bytes().get(i + 1) != Some(&b'\n'))
        .map(|(i, _)| i);
    if let Some(at) = lone_cr {
        let count = text
            .bytes()
            .enumerate()
            .filter(|&(i, b)| b == b'\r' && text.as_bytes().get(i + 1) != Some(&b'\n'))
            .count();
        // Shown with LF in their place (same byte offsets) so the lines
        // render as lines.
        let mut shown = text.as_bytes().to_vec();
        for i in 0..shown.len() {
            if shown[i] == b'\r' && shown.get(i + 1) != Some(&b'\n') {
                shown[i] = b'\n';
            }
        }
        // ASCII for ASCII: still UTF-8.
        let shown = String::from_utf8(shown).unwrap_or_default();
        let line_start = text[..at].rfind(['\n', '\r']).map_or(0, |i| i + 1);
        let what = if text.contains('\n') {
            format!("{count} line(s) end with a lone CR")
        } else {
            "the lines end with CR alone (classic Mac OS line endings)".to_owned()
        };
        let d = Diagnostic::new("cr-line-endings", what)
            .at(line_start..at, "this line ends with a carriage return alone")
            .help(format!(
                "convert the line endings to LF (`tr '\\r' '\\n' < {name}`, or the editor's line-ending setting)"
            ))
            .note("TOML lines end with LF or CRLF; a CR alone is not allowed");
        return Err(Diagnostics::new(name, &shown, vec![d]));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(text: &str, bom: bool) -> Vec<u8> {
        let mut out = if bom { vec![0xff, 0xfe] } else { Vec::new() };
        for u in text.encode_utf16() {
            out.extend_from_slice(&u.to_le_bytes());
        }
        out
    }

    #[test]
    fn utf8_passes_and_its_bom_is_dropped() {
        assert_eq!(decode(b"a = 1\n", "x").unwrap(), "a = 1\n");
        assert_eq!(decode(b"\xef\xbb\xbfa = 1\r\n", "x").unwrap(), "a = 1\r\n");
    }

    #[test]
    fn utf16_is_named() {
        for bom in [true, false] {
            let d = decode(&utf16le("[machine]\ncpus = 1\n", bom), "x").unwrap_err();
            let text = d.render_plain();
            assert!(text.contains("UTF-16 (little-endian"), "{text}");
            assert!(text.contains("[machine]"), "{text}");
            assert_eq!(d.len(), 1);
        }
        let mut be = vec![0xfe, 0xff];
        for u in "[machine]\n".encode_utf16() {
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert!(decode(&be, "x")
            .unwrap_err()
            .render_plain()
            .contains("big-endian"));
    }

    #[test]
    fn a_latin1_byte_is_located() {
        let d = decode(b"[machine]\n# caf\xe9\ncpus = 1\n", "x").unwrap_err();
        let diag = d.iter().next().unwrap();
        assert_eq!(d.location(diag), Some((2, 6)));
        assert!(diag.message.contains("0xe9"), "{}", diag.message);
        assert!(diag.help.as_deref().unwrap().contains("LATIN1"));
    }

    #[test]
    fn cr_only_line_endings_are_one_diagnostic() {
        let d = decode(b"[machine]\rcpus = 1\rmemory = 1\r", "x").unwrap_err();
        assert_eq!(d.len(), 1);
        assert_eq!(d.iter().next().unwrap().code, "cr-line-endings");
        assert_eq!(d.location(d.iter().next().unwrap()), Some((1, 1)));
    }
}
