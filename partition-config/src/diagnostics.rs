//! User-facing diagnostics: what is wrong, where (`file:line:column` with the
//! offending text underlined), and how to fix it. Rendering is done by
//! `annotate-snippets`, plain or with ANSI colors.
//!
//! A diagnostic is an error (the layout is refused) or a warning (the layout
//! is accepted, but something in it is likely not what was meant). Warnings
//! never make a layout invalid: `flotilla check` prints them as
//! `warning[code]` and still succeeds.

use std::fmt;
use std::ops::Range;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// A span of the source with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Byte range in the source.
    pub span: Range<usize>,
    /// What this text is.
    pub message: String,
}

/// Whether a diagnostic refuses the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    /// The layout is invalid.
    #[default]
    Error,
    /// The layout is valid; this is worth a look.
    Warning,
}

/// One error or warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable short name for the kind of error (`unknown-key`,
    /// `duplicate-cpu`, …), listed in `docs/layout.md`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// The offending text (absent only when there is no source, e.g. an
    /// unreadable file).
    pub primary: Option<Label>,
    /// Related text (the first use of a duplicated value, …).
    pub secondary: Vec<Label>,
    /// How to fix it.
    pub help: Option<String>,
    /// Further explanation.
    pub notes: Vec<String>,
    /// The file the spans point into, when it is not the layout itself (a
    /// workload crate's `Cargo.toml` whose argument declarations are
    /// malformed): `None` for the layout.
    pub file: Option<SourceFile>,
}

/// A file other than the layout that a diagnostic's spans point into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Its name as shown (a path).
    pub name: String,
    /// Its text.
    pub text: std::sync::Arc<str>,
}

impl Diagnostic {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
            notes: Vec::new(),
            file: None,
        }
    }

    /// A warning: reported, but the layout stays valid.
    pub(crate) fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::new(code, message)
        }
    }

    /// Whether this is an error (not a warning).
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub(crate) fn at(mut self, span: Range<usize>, message: impl Into<String>) -> Self {
        self.primary = Some(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub(crate) fn also(mut self, span: Range<usize>, message: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Points the spans into `file` instead of the layout.
    pub(crate) fn in_file(mut self, file: &SourceFile) -> Self {
        self.file = Some(file.clone());
        self
    }

    /// The name and text of the file its spans point into: `file`, or the
    /// layout's (`layout_name`, `layout_source`).
    fn source<'s>(&'s self, layout_name: &'s str, layout_source: &'s str) -> (&'s str, &'s str) {
        match &self.file {
            Some(f) => (f.name.as_str(), &f.text),
            None => (layout_name, layout_source),
        }
    }
}

/// Every error and warning found in one layout, with the source they refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    file_name: String,
    source: String,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn new(file_name: &str, source: &str, items: Vec<Diagnostic>) -> Self {
        Self {
            file_name: file_name.to_owned(),
            source: source.to_owned(),
            items,
        }
    }

    /// The one diagnostic (`unreadable-file`) of a layout that could not be
    /// read at all.
    #[must_use]
    pub fn io_error(file_name: &str, err: &std::io::Error) -> Self {
        let d = Diagnostic::new(
            "unreadable-file",
            format!("cannot read `{file_name}`: {err}"),
        )
        .help("check the path and the file's permissions");
        Self::new(file_name, "", vec![d])
    }

    /// The errors and warnings, in source order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Number of diagnostics (errors and warnings).
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Number of errors.
    #[must_use]
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    /// Number of warnings.
    #[must_use]
    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    /// Whether there are no diagnostics at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The file the errors are about, as given.
    #[must_use]
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// 1-based line and column (in characters) of `diagnostic`'s primary span.
    #[must_use]
    pub fn location(&self, diagnostic: &Diagnostic) -> Option<(usize, usize)> {
        let (_, source) = diagnostic.source(&self.file_name, &self.source);
        location_in(source, diagnostic.primary.as_ref()?.span.clone())
    }

    /// Every diagnostic as one line of JSON (JSON Lines), in source order:
    /// `{"reason": "diagnostic", "code", "severity": "error" | "warning",
    /// "file", "line", "column", "span": {"start", "end"}, "message",
    /// "label", "help", "notes", "related": [{"line", "column", "span",
    /// "message"}]}`. Lines and columns are 1-based (columns in
    /// characters), spans are byte offsets; location fields are `null` for a
    /// diagnostic without source (an unreadable file).
    #[must_use]
    pub fn render_json(&self) -> String {
        use serde_json::{json, Value};
        let mut out = String::new();
        for d in &self.items {
            let (file, source) = d.source(&self.file_name, &self.source);
            let label = |l: &Label| {
                let (line, column) = location_in(source, l.span.clone()).unzip();
                let span = clamp(source, l.span.clone());
                (
                    line,
                    column,
                    json!({ "start": span.start, "end": span.end }),
                )
            };
            let (line, column, span) = match &d.primary {
                Some(p) => {
                    let (line, column, span) = label(p);
                    (line, column, span)
                }
                None => (None, None, Value::Null),
            };
            let related: Vec<Value> = d
                .secondary
                .iter()
                .map(|s| {
                    let (line, column, span) = label(s);
                    json!({ "line": line, "column": column, "span": span, "message": s.message })
                })
                .collect();
            let object = json!({
                "reason": "diagnostic",
                "code": d.code,
                "severity": match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                "file": file,
                "line": line,
                "column": column,
                "span": span,
                "message": d.message,
                "label": d.primary.as_ref().map(|p| p.message.as_str()),
                "help": d.help,
                "notes": d.notes,
                "related": related,
            });
            out.push_str(&object.to_string());
            out.push('\n');
        }
        out
    }

    /// Renders every error as plain text.
    #[must_use]
    pub fn render_plain(&self) -> String {
        self.render(&Renderer::plain())
    }

    /// Renders every error with ANSI colors, for a terminal.
    #[must_use]
    pub fn render_colored(&self) -> String {
        self.render(&Renderer::styled())
    }

    fn render(&self, renderer: &Renderer) -> String {
        let mut out = String::new();
        for d in &self.items {
            let level = match d.severity {
                Severity::Error => Level::ERROR,
                Severity::Warning => Level::WARNING,
            };
            let message = escape_controls(&bound_quoted(&d.message));
            let title = level.primary_title(message.as_str()).id(d.code);
            let mut group = Group::with_title(title);
            let label_texts: Vec<String> = d
                .primary
                .iter()
                .chain(&d.secondary)
                .map(|l| escape_controls(&bound_label(&l.message)))
                .collect();
            let mut labels = label_texts.iter().map(String::as_str);
            let help = d.help.as_deref().map(escape_controls);
            let notes: Vec<String> = d.notes.iter().map(|n| escape_controls(n)).collect();
            if let Some(primary) = &d.primary {
                let (file, source) = d.source(&self.file_name, &self.source);
                let mut snippet = Snippet::source(source).path(file).annotation(
                    AnnotationKind::Primary
                        .span(clamp(source, primary.span.clone()))
                        .label(labels.next().unwrap_or_default()),
                );
                for s in &d.secondary {
                    snippet = snippet.annotation(
                        AnnotationKind::Context
                            .span(clamp(source, s.span.clone()))
                            .label(labels.next().unwrap_or_default()),
                    );
                }
                group = group.element(snippet);
            }
            if let Some(help) = &help {
                group = group.element(Level::HELP.message(help.as_str()));
            }
            for note in &notes {
                group = group.element(Level::NOTE.message(note.as_str()));
            }
            out.push_str(&renderer.render(&[group]));
            out.push_str("\n\n");
        }
        let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let (errors, warnings) = (self.error_count(), self.warning_count());
        let total = match (errors, warnings) {
            (0, 0) => return out,
            (e, 0) => count(e, "error"),
            (0, w) => count(w, "warning"),
            (e, w) => format!("{}, {}", count(e, "error"), count(w, "warning")),
        };
        out.push_str(&format!("{total} in `{}`\n", self.file_name));
        out
    }
}

/// Longest value quoted in a title (between backticks), in characters.
const TITLE_VALUE_MAX: usize = 40;
/// Longest label, in characters.
const LABEL_MAX: usize = 160;

/// `text` cut to `max` characters, the cut marked with an ellipsis.
fn ellipsize(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A title with every value quoted in it (between backticks) bounded: a
/// layout's values are unbounded, a title is one line.
fn bound_quoted(message: &str) -> String {
    message
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                ellipsize(part, TITLE_VALUE_MAX)
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// A label bounded to one reasonable line.
fn bound_label(label: &str) -> String {
    ellipsize(&bound_quoted(label), LABEL_MAX)
}

/// `text` with control characters written as escapes (`\u{1b}`, `\t`, …):
/// a value from a layout must not drive the terminal.
fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// 1-based line and column (in characters) in `source` of the start of
/// `span`.
fn location_in(source: &str, span: Range<usize>) -> Option<(usize, usize)> {
    let start = clamp(source, span).start;
    let before = source.get(..start)?;
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..)?.chars().count() + 1;
    Some((line, column))
}

/// Clamps `span` into `source` and onto character boundaries.
fn clamp(source: &str, span: Range<usize>) -> Range<usize> {
    let fix = |mut i: usize| {
        i = i.min(source.len());
        while i > 0 && !source.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = fix(span.start);
    let end = fix(span.end).max(start);
    start..end
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render_plain())
    }
}

impl std::error::Error for Diagnostics {}
