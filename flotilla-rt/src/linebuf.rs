//! Console line buffering: text is collected into lines and handed to a
//! sink one whole line at a time (one `CONSOLE_WRITE` hypercall per line).
//!
//! Invariant: every emitted line is valid UTF-8 of at most [`LINE_MAX`]
//! bytes and contains no `\n`; a longer line is split at a character
//! boundary. `\r` is dropped.

/// Longest line handed to the sink (the hypercall's limit).
#[allow(
    clippy::cast_possible_truncation,
    reason = "256 fits any usize; `try_from` is not `const`"
)]
pub const LINE_MAX: usize = abi::hypercall::MAX_CONSOLE_LINE as usize;

/// A partial console line.
#[derive(Debug)]
pub struct LineBuf {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuf {
    /// An empty buffer.
    pub const fn new() -> Self {
        LineBuf {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    /// Appends `s`, calling `emit` for each completed line.
    pub fn push_str(&mut self, s: &str, emit: &mut impl FnMut(&str)) {
        for c in s.chars() {
            match c {
                '\n' => self.flush_line(emit),
                '\r' => {}
                c => {
                    let mut tmp = [0u8; 4];
                    let bytes = c.encode_utf8(&mut tmp).as_bytes();
                    if self.len + bytes.len() > LINE_MAX {
                        self.flush_line(emit);
                    }
                    self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
                    self.len += bytes.len();
                }
            }
        }
    }

    /// Emits the pending partial line, if any.
    pub fn flush(&mut self, emit: &mut impl FnMut(&str)) {
        if self.len > 0 {
            self.flush_line(emit);
        }
    }

    fn flush_line(&mut self, emit: &mut impl FnMut(&str)) {
        // Only whole characters are ever appended, so this cannot fail.
        let line = core::str::from_utf8(&self.buf[..self.len]).unwrap_or("");
        emit(line);
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str]) -> (Vec<String>, LineBuf) {
        let mut lines = Vec::new();
        let mut b = LineBuf::new();
        for c in chunks {
            b.push_str(c, &mut |l| lines.push(l.to_string()));
        }
        (lines, b)
    }

    #[test]
    fn lines_are_collected_across_writes() {
        let (lines, mut b) = run(&["hel", "lo\nwor", "ld\r\n\n", "tail"]);
        assert_eq!(lines, ["hello", "world", ""]);
        let mut rest = Vec::new();
        b.flush(&mut |l| rest.push(l.to_string()));
        assert_eq!(rest, ["tail"]);
        b.flush(&mut |l| rest.push(l.to_string()));
        assert_eq!(rest, ["tail"]);
    }

    #[test]
    fn long_lines_split_at_char_boundaries() {
        let long = "é".repeat(200); // 400 bytes
        let (lines, _) = run(&[&long, "\n"]);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() <= LINE_MAX));
        assert_eq!(lines[0].len(), 256);
        assert_eq!(lines.concat(), long);
        let odd = format!("ab{}", "€".repeat(100)); // 2 + 300 bytes
        let (lines, _) = run(&[&odd, "\n"]);
        assert_eq!(lines[0].len(), 254);
        assert_eq!(lines.concat(), odd);
    }
}
