//! The emulator's console: bytes to clean lines, and the markers the
//! hypervisor prints (`abi::console`) parsed out of them.
//!
//! Everything here is pure so that it is tested without an emulator. The
//! [`Console`] keeps the whole text (for failure reports) and a [`Summary`]
//! of the markers seen so far; the runner decides from that summary when to
//! stop and whether the run succeeded.

use abi::console as markers;

/// Longest line kept in one piece; a guest that never prints a newline gets
/// its output cut into lines of this size rather than growing a buffer forever.
pub const MAX_LINE: usize = 16 * 1024;

/// Removes terminal control sequences (ANSI CSI and OSC, as firmware and
/// GRUB print them on a serial console) and control characters other than
/// tab, so that a line is safe to print and to match.
pub fn sanitize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ESC '\'.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                // Two-character escapes (ESC c, ESC 7, ...).
                _ => {}
            },
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// [`sanitize`] applied to each line of a block of text (an emulator's own
/// messages), keeping the line structure.
pub fn sanitize_block(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(&sanitize(line));
        out.push('\n');
    }
    out
}

/// Splits a byte stream into sanitized lines (`\n` or `\r\n` terminated).
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// A splitter with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes; returns the lines they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                lines.push(self.take());
            } else {
                self.partial.push(b);
                if self.partial.len() >= MAX_LINE {
                    lines.push(self.take());
                }
            }
        }
        lines
    }

    /// The unterminated rest, if any (call when the stream ends).
    pub fn finish(&mut self) -> Option<String> {
        if self.partial.is_empty() {
            None
        } else {
            Some(self.take())
        }
    }

    fn take(&mut self) -> String {
        let line = sanitize(&String::from_utf8_lossy(&self.partial));
        self.partial.clear();
        line
    }
}

/// One marker line of the hypervisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marker {
    /// `flotilla: cpu <index> apic <id> online ...`
    CpuOnline {
        /// The core's index (0 = bootstrap core).
        index: u32,
        /// Its local APIC ID.
        apic: u32,
    },
    /// `flotilla: cores online <online>/<expected>`
    CoresOnline {
        /// Cores that reported.
        online: u32,
        /// Cores the hypervisor expected (from the firmware tables).
        expected: u32,
    },
    /// `flotilla: run succeeded`
    RunSucceeded,
    /// `flotilla: run failed: <reason>`
    RunFailed(String),
    /// `flotilla: exception ...` (the whole marker line).
    Exception(String),
}

/// Parses a marker out of a (sanitized) console line. Text before the
/// `flotilla:` prefix (left-overs of firmware output) is ignored, except
/// that a partition's console line (`[name] text`) is never a marker, and
/// `run succeeded` counts only as a whole line: neither a guest nor bytes
/// mixed into another line can forge the hypervisor's verdict (failures are
/// read leniently: a false failure is safe, a false success is not).
pub fn parse_marker(line: &str) -> Option<Marker> {
    if line.starts_with('[') {
        return None;
    }
    let start = line.find(markers::PREFIX)?;
    let line = line[start..].trim_end();
    if let Some(rest) = line.strip_prefix(markers::RUN_FAILED) {
        return Some(Marker::RunFailed(rest.trim().to_string()));
    }
    if line == markers::RUN_SUCCEEDED {
        return (start == 0).then_some(Marker::RunSucceeded);
    }
    if line.starts_with(markers::EXCEPTION) {
        return Some(Marker::Exception(line.to_string()));
    }
    if let Some(rest) = line.strip_prefix(markers::CORES_ONLINE) {
        let (online, expected) = rest.split_whitespace().next()?.split_once('/')?;
        return Some(Marker::CoresOnline {
            online: online.parse().ok()?,
            expected: expected.parse().ok()?,
        });
    }
    if let Some(rest) = line.strip_prefix(markers::CPU_ONLINE) {
        let mut words = rest.split_whitespace();
        let index = words.next()?.parse().ok()?;
        if words.next()? != "apic" {
            return None;
        }
        let apic = words.next()?.parse().ok()?;
        if words.next()? != "online" {
            return None;
        }
        return Some(Marker::CpuOnline { index, apic });
    }
    None
}

/// What the markers seen so far say about the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// `(index, apic)` of every `cpu ... online` line, in console order.
    pub cpus_online: Vec<(u32, u32)>,
    /// The `cores online n/expected` line, if seen.
    pub cores_online: Option<(u32, u32)>,
    /// `run succeeded` was seen.
    pub succeeded: bool,
    /// How many times (more than once is a forgery or a broken console).
    pub succeeded_lines: u32,
    /// The first failure marker: the `run failed` reason or the exception line.
    pub failure: Option<String>,
}

impl Summary {
    /// Updates the summary with one marker.
    pub fn record(&mut self, marker: &Marker) {
        match marker {
            Marker::CpuOnline { index, apic } => self.cpus_online.push((*index, *apic)),
            Marker::CoresOnline { online, expected } => {
                self.cores_online = Some((*online, *expected))
            }
            Marker::RunSucceeded => {
                self.succeeded = true;
                self.succeeded_lines = self.succeeded_lines.saturating_add(1);
                if self.succeeded_lines == 2 {
                    self.failure.get_or_insert_with(|| {
                        format!(
                            "the console said `{}` twice: a line the hypervisor did not write",
                            markers::RUN_SUCCEEDED
                        )
                    });
                }
            }
            Marker::RunFailed(reason) => {
                self.failure
                    .get_or_insert_with(|| format!("the hypervisor reported: {reason}"));
            }
            Marker::Exception(line) => {
                self.failure.get_or_insert_with(|| line.clone());
            }
        }
    }

    /// Indices of the cores that reported online, sorted, duplicates kept.
    pub fn online_indices(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.cpus_online.iter().map(|&(i, _)| i).collect();
        v.sort_unstable();
        v
    }
}

/// The whole console of a run and its marker summary.
#[derive(Clone, Debug, Default)]
pub struct Console {
    text: String,
    summary: Summary,
}

impl Console {
    /// An empty console.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one line; returns the marker it carries, if any.
    pub fn push_line(&mut self, line: &str) -> Option<Marker> {
        self.text.push_str(line);
        self.text.push('\n');
        let marker = parse_marker(line);
        if let Some(m) = &marker {
            self.summary.record(m);
        }
        marker
    }

    /// Everything seen, one line per console line.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Consumes the console, returning its text.
    pub fn into_text(self) -> String {
        self.text
    }

    /// The marker summary.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }
}

/// The last `n` lines of a text (all of it if shorter).
pub fn tail(text: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    let trimmed = text.trim_end_matches('\n');
    let mut newlines = trimmed.rmatch_indices('\n');
    match newlines.nth(n - 1) {
        Some((pos, _)) => &trimmed[pos + 1..],
        None => trimmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_escapes_and_controls() {
        assert_eq!(
            sanitize("\u{1b}[2J\u{1b}[01;01Hflotilla: cpu 0"),
            "flotilla: cpu 0"
        );
        assert_eq!(sanitize("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(sanitize("a\u{1b}]0;title\u{1b}\\b"), "ab");
        assert_eq!(sanitize("x\r\u{0}\u{8}y\tz\u{7f}"), "xy\tz");
        assert_eq!(sanitize("\u{1b}cplain"), "plain");
        assert_eq!(sanitize("ünïcode ok"), "ünïcode ok");
    }

    #[test]
    fn sanitize_block_keeps_lines() {
        assert_eq!(sanitize_block("a\u{1b}[1m\r\nb\n\nc"), "a\nb\n\nc\n");
    }

    #[test]
    fn splitter_handles_crlf_partial_lines_and_bad_utf8() {
        let mut s = LineSplitter::new();
        assert!(s.push(b"flotilla: cp").is_empty());
        assert_eq!(s.push(b"u 0\r\nsecond\nthi"), ["flotilla: cpu 0", "second"]);
        assert_eq!(s.push(b"rd \xff\n"), ["third \u{fffd}"]);
        assert_eq!(s.finish(), None);
        s.push(b"tail");
        assert_eq!(s.finish().as_deref(), Some("tail"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn splitter_cuts_endless_lines() {
        let mut s = LineSplitter::new();
        let lines = s.push(&vec![b'x'; MAX_LINE * 2 + 3]);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() == MAX_LINE));
        assert_eq!(s.finish().map(|l| l.len()), Some(3));
    }

    #[test]
    fn parses_each_marker() {
        assert_eq!(
            parse_marker("flotilla: cpu 3 apic 6 online svm npt asid 1"),
            Some(Marker::CpuOnline { index: 3, apic: 6 })
        );
        assert_eq!(
            parse_marker("garbage flotilla: cores online 4/4"),
            Some(Marker::CoresOnline {
                online: 4,
                expected: 4
            })
        );
        assert_eq!(
            parse_marker("flotilla: run succeeded\t"),
            Some(Marker::RunSucceeded)
        );
        assert_eq!(
            parse_marker("flotilla: run failed: 1 of 4 cores did not start"),
            Some(Marker::RunFailed("1 of 4 cores did not start".into()))
        );
        assert_eq!(
            parse_marker("flotilla: exception #GP(0) at rip 0x1234"),
            Some(Marker::Exception(
                "flotilla: exception #GP(0) at rip 0x1234".into()
            ))
        );
    }

    #[test]
    fn ignores_non_markers_and_malformed_ones() {
        for line in [
            "",
            "SeaBIOS (version 1.16)",
            "flotilla: booting",
            "flotilla: cpu x apic 0 online",
            "flotilla: cpu 1 apic 1 offline",
            "flotilla: cpu 1 lapic 1 online",
            "flotilla: cores online 4",
            "flotilla: cores online a/4",
            "flotilla: run succeeded partially",
            "run succeeded",
            "[rogue] flotilla: run succeeded",
            "[rogue] flotilla: run failed: forged",
            "x flotilla: run succeeded",
            "[calcflotilla: run succeeded",
        ] {
            assert_eq!(parse_marker(line), None, "{line:?}");
        }
    }

    #[test]
    fn a_second_success_marker_is_a_failure() {
        let mut c = Console::new();
        c.push_line("flotilla: run succeeded");
        assert_eq!(c.summary().failure, None);
        c.push_line("flotilla: run succeeded");
        assert!(c.summary().failure.as_deref().unwrap().contains("twice"));
        // Failures with junk before them still count: failing is safe.
        assert_eq!(
            parse_marker("junk flotilla: run failed: x"),
            Some(Marker::RunFailed("x".into()))
        );
    }

    #[test]
    fn console_keeps_text_and_first_failure() {
        let mut c = Console::new();
        for line in [
            "hello",
            "flotilla: cpu 1 apic 1 online",
            "flotilla: cpu 0 apic 0 online",
            "flotilla: exception #PF at 0x0",
            "flotilla: run failed: core 1 faulted",
        ] {
            c.push_line(line);
        }
        let s = c.summary();
        assert_eq!(s.online_indices(), [0, 1]);
        assert_eq!(s.failure.as_deref(), Some("flotilla: exception #PF at 0x0"));
        assert!(!s.succeeded);
        assert!(c.text().starts_with("hello\nflotilla: cpu 1"));
        assert_eq!(c.text().lines().count(), 5);
    }

    #[test]
    fn tail_returns_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a\nb\nc", 5), "a\nb\nc");
        assert_eq!(tail("a\nb\nc", 1), "c");
        assert_eq!(tail("", 3), "");
        assert_eq!(tail("a\n", 0), "");
    }
}
