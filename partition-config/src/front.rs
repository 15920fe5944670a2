//! The TOML front end: parses the text into a spanned document (`toml`'s
//! `DeTable`), then reads it strictly into a raw, spanned layout: unknown
//! keys (with a did-you-mean), wrong types and malformed sizes or port ranges
//! are reported here, all of them, before validation looks at the meaning.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::kernels::ReadKernel;
use crate::layout::{Layout, Notify, OnFault, PortRange};
use crate::limits::{GIB, KIB, MIB};

/// A value with the byte range of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sp<T> {
    pub value: T,
    pub span: Range<usize>,
    /// Whether the value was taken from `[defaults]`.
    pub inherited: bool,
}

impl<T> Sp<T> {
    fn new(value: T, span: Range<usize>) -> Self {
        Self {
            value,
            span,
            inherited: false,
        }
    }
}

/// A key that may be missing, present and valid, or present but invalid
/// (already reported, so not to be reported as missing too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field<T> {
    Missing,
    Invalid,
    Given(Sp<T>),
}

impl<T> Field<T> {
    pub fn given(&self) -> Option<&Sp<T>> {
        match self {
            Self::Given(v) => Some(v),
            _ => None,
        }
    }

    /// `self`, or `default` marked as inherited when `self` is missing.
    fn or_inherit(self, default: &Self) -> Self
    where
        T: Clone,
    {
        match (self, default) {
            (Self::Missing, Self::Given(d)) => Self::Given(Sp {
                value: d.value.clone(),
                span: d.span.clone(),
                inherited: true,
            }),
            (Self::Missing, Self::Invalid) => Self::Invalid,
            (this, _) => this,
        }
    }
}

/// A workload argument value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawArgValue {
    Integer(i64),
    Bool(bool),
    String(String),
    /// A TOML type arguments cannot have (float, array, …), by type name.
    Other(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawArg {
    pub key: Sp<String>,
    pub value: Sp<RawArgValue>,
}

/// The keys a partition (or `[defaults]`) may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawPartition {
    pub name: Field<String>,
    pub cpu: Field<i64>,
    pub memory: Field<u64>,
    pub base: Field<u64>,
    pub kernel: Field<String>,
    /// `kernel = { crate = "PATH" }`: a workload crate, by directory.
    pub kernel_crate: Field<String>,
    pub workload: Field<String>,
    pub args: Field<Vec<RawArg>>,
    pub ports: Field<Vec<Sp<PortRange>>>,
    pub on_fault: Field<OnFault>,
    pub max_restarts: Field<i64>,
    pub compat: Field<String>,
    pub cmdline: Field<String>,
    pub initrd: Field<String>,
    /// The partition's table (its `[[partition]]` header and body).
    pub span: Range<usize>,
}

impl RawPartition {
    fn empty(span: Range<usize>) -> Self {
        Self {
            name: Field::Missing,
            cpu: Field::Missing,
            memory: Field::Missing,
            base: Field::Missing,
            kernel: Field::Missing,
            kernel_crate: Field::Missing,
            workload: Field::Missing,
            args: Field::Missing,
            ports: Field::Missing,
            on_fault: Field::Missing,
            max_restarts: Field::Missing,
            compat: Field::Missing,
            cmdline: Field::Missing,
            initrd: Field::Missing,
            span,
        }
    }

    fn inherit(self, d: &Self) -> Self {
        // `kernel` is one key, as a path or as a crate: a partition that
        // gives it either way inherits neither.
        let (kernel, kernel_crate) = if matches!(self.kernel, Field::Missing)
            && matches!(self.kernel_crate, Field::Missing)
        {
            (
                self.kernel.or_inherit(&d.kernel),
                self.kernel_crate.or_inherit(&d.kernel_crate),
            )
        } else {
            (self.kernel, self.kernel_crate)
        };
        Self {
            kernel,
            kernel_crate,
            name: self.name.or_inherit(&d.name),
            cpu: self.cpu.or_inherit(&d.cpu),
            memory: self.memory.or_inherit(&d.memory),
            base: self.base.or_inherit(&d.base),
            workload: self.workload.or_inherit(&d.workload),
            args: self.args.or_inherit(&d.args),
            ports: self.ports.or_inherit(&d.ports),
            on_fault: self.on_fault.or_inherit(&d.on_fault),
            max_restarts: self.max_restarts.or_inherit(&d.max_restarts),
            compat: self.compat.or_inherit(&d.compat),
            cmdline: self.cmdline.or_inherit(&d.cmdline),
            initrd: self.initrd.or_inherit(&d.initrd),
            span: self.span,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawChannel {
    pub between: Field<Vec<Sp<String>>>,
    pub slots: Field<i64>,
    pub notify: Field<Notify>,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawGroup {
    pub name: Field<String>,
    pub members: Field<Vec<Sp<String>>>,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawMachine {
    pub cpus: Field<i64>,
    pub memory: Field<u64>,
    pub timeout: Field<i64>,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawLayout {
    /// `None` when `[machine]` is missing or not a table (reported).
    pub machine: Option<RawMachine>,
    pub partitions: Vec<RawPartition>,
    pub channels: Vec<RawChannel>,
    pub groups: Vec<RawGroup>,
    /// Span of the `partition` key, if present.
    pub partitions_span: Option<Range<usize>>,
    /// `partition` (or one of its items) is not a table: already reported.
    pub partitions_invalid: bool,
    pub source_len: usize,
}

pub(crate) const TOP_KEYS: &[&str] = &["machine", "defaults", "partition", "channel", "group"];
pub(crate) const MACHINE_KEYS: &[&str] = &["cpus", "memory", "timeout"];
pub(crate) const PARTITION_KEYS: &[&str] = &[
    "name",
    "cpu",
    "memory",
    "base",
    "kernel",
    "workload",
    "args",
    "ports",
    "on_fault",
    "max_restarts",
    "compat",
    "cmdline",
    "initrd",
];
pub(crate) const CHANNEL_KEYS: &[&str] = &["between", "slots", "notify"];
pub(crate) const GROUP_KEYS: &[&str] = &["name", "members"];

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub(crate) fn suggest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Parses and validates `source`; a valid layout comes with its warnings.
pub(crate) fn parse(
    source: &str,
    file_name: &str,
    read_kernel: Option<ReadKernel<'_>>,
) -> Result<(Layout, Diagnostics), Diagnostics> {
    let mut diags = Vec::new();
    let (root, errors) = DeTable::parse_recoverable(source);
    for e in &errors {
        let span = e.span().unwrap_or(0..0);
        diags.push(
            Diagnostic::new("toml-syntax", format!("invalid TOML: {}", e.message()))
                .at(span, "here")
                .help("see docs/layout.md for the layout format and https://toml.io for TOML"),
        );
    }
    if !diags.is_empty() {
        return Err(Diagnostics::new(file_name, source, diags));
    }
    let raw = read_document(root.get_ref(), source.len(), &mut diags);
    let base_dir = Path::new(file_name).parent().unwrap_or(Path::new(""));
    let layout = crate::validate::validate(&raw, base_dir, read_kernel, &mut diags);
    // The layout's diagnostics in source order, then those that point into
    // a workload crate's Cargo.toml.
    diags.sort_by_key(|d| {
        (
            d.file.as_ref().map(|f| f.name.clone()),
            d.primary.as_ref().map_or(0, |p| p.span.start),
        )
    });
    let diags = merge_inherited(diags);
    match layout {
        Some(layout) if !diags.iter().any(Diagnostic::is_error) => {
            Ok((layout, Diagnostics::new(file_name, source, diags)))
        }
        _ => Err(Diagnostics::new(file_name, source, diags)),
    }
}

/// One diagnostic per faulty value in `[defaults]`, not one per partition
/// that inherits it: diagnostics with the same code, message and primary
/// span, each marking a partition that inherits the value, become one that
/// marks every such partition (the help fits them all: it is the same).
fn merge_inherited(diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    use crate::validate::INHERITED_LABEL;
    let inherits = |d: &Diagnostic| {
        d.secondary
            .iter()
            .any(|l| l.message.ends_with(INHERITED_LABEL))
    };
    let mut out: Vec<Diagnostic> = Vec::with_capacity(diags.len());
    for d in diags {
        let same = out.iter_mut().find(|o| {
            inherits(o)
                && inherits(&d)
                && o.code == d.code
                && o.severity == d.severity
                && o.message == d.message
                && o.primary.as_ref().map(|l| &l.span) == d.primary.as_ref().map(|l| &l.span)
        });
        match same {
            Some(o) => {
                for l in d.secondary {
                    if !o.secondary.contains(&l) {
                        o.secondary.push(l);
                    }
                }
            }
            None => out.push(d),
        }
    }
    for d in &mut out {
        let n = d
            .secondary
            .iter()
            .filter(|l| l.message.ends_with(INHERITED_LABEL))
            .count();
        if n > 1 {
            d.notes.push(format!(
                "{n} partitions take this value from [defaults]: fixing it there fixes them all"
            ));
        }
    }
    out
}

fn unknown_key(
    key: &Spanned<std::borrow::Cow<'_, str>>,
    allowed: &[&str],
    context: &str,
) -> Diagnostic {
    let word = key.get_ref().as_ref();
    let d = Diagnostic::new("unknown-key", format!("unknown key `{word}` in {context}"))
        .at(key.span(), "not a key of the layout format");
    match suggest(word, allowed.iter().copied()) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None => d.help(format!("the keys of {context} are: {}", allowed.join(", "))),
    }
}

/// The key an unknown `key` is likely a typo of, if any (`unknown_key`'s
/// did-you-mean): that key is then not reported missing as well.
fn typo_of(
    key: &Spanned<std::borrow::Cow<'_, str>>,
    allowed: &[&'static str],
) -> Option<&'static str> {
    suggest(key.get_ref().as_ref(), allowed.iter().copied())
}

impl<T> Field<T> {
    /// A missing key written with a typo (reported as an unknown key):
    /// invalid, so it is not reported missing too.
    fn mistyped(&mut self) {
        if matches!(self, Field::Missing) {
            *self = Field::Invalid;
        }
    }
}

fn wrong_type(value: &Spanned<DeValue<'_>>, key: &str, expected: &str) -> Diagnostic {
    Diagnostic::new(
        "wrong-type",
        format!(
            "`{key}` must be {expected}, not {}",
            article(value.get_ref().type_str())
        ),
    )
    .at(value.span(), format!("expected {expected}"))
    .note("docs/layout.md describes every key and its type")
}

fn article(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

fn read_document(root: &DeTable<'_>, source_len: usize, diags: &mut Vec<Diagnostic>) -> RawLayout {
    let mut machine = None;
    let mut machine_seen = false;
    let mut defaults = RawPartition::empty(0..0);
    let mut partitions = Vec::new();
    let mut channels = Vec::new();
    let mut groups = Vec::new();
    let mut partitions_span = None;
    let mut partitions_invalid = false;
    for (key, value) in root.iter() {
        match key.get_ref().as_ref() {
            "machine" => {
                machine_seen = true;
                match value.get_ref() {
                    DeValue::Table(t) => machine = Some(read_machine(t, key.span(), diags)),
                    _ => diags.push(
                        wrong_type(value, "machine", "a table")
                            .help("write `[machine]` on its own line, followed by its keys"),
                    ),
                }
            }
            "defaults" => match value.get_ref() {
                DeValue::Table(t) => {
                    defaults = read_partition(t, key.span(), "[defaults]", diags);
                }
                _ => diags.push(
                    wrong_type(value, "defaults", "a table")
                        .help("write `[defaults]` on its own line, followed by its keys"),
                ),
            },
            "partition" => {
                partitions_span = Some(key.span());
                match value.get_ref() {
                    DeValue::Array(items) => {
                        for item in items.iter() {
                            match item.get_ref() {
                                DeValue::Table(t) => partitions.push(read_partition(
                                    t,
                                    item.span(),
                                    "a [[partition]]",
                                    diags,
                                )),
                                _ => {
                                    partitions_invalid = true;
                                    diags.push(wrong_type(item, "partition", "a table"));
                                }
                            }
                        }
                    }
                    _ => {
                        partitions_invalid = true;
                        diags.push(
                            wrong_type(value, "partition", "an array of tables").help(
                                "declare each partition with `[[partition]]` (double brackets)",
                            ),
                        );
                    }
                }
            }
            "channel" => match value.get_ref() {
                DeValue::Array(items) => {
                    for item in items.iter() {
                        match item.get_ref() {
                            DeValue::Table(t) => channels.push(read_channel(t, item.span(), diags)),
                            _ => diags.push(wrong_type(item, "channel", "a table")),
                        }
                    }
                }
                _ => diags.push(
                    wrong_type(value, "channel", "an array of tables")
                        .help("declare each channel with `[[channel]]` (double brackets)"),
                ),
            },
            "group" => match value.get_ref() {
                DeValue::Array(items) => {
                    for item in items.iter() {
                        match item.get_ref() {
                            DeValue::Table(t) => groups.push(read_group(t, item.span(), diags)),
                            _ => diags.push(wrong_type(item, "group", "a table")),
                        }
                    }
                }
                _ => diags.push(
                    wrong_type(value, "group", "an array of tables")
                        .help("declare each group with `[[group]]` (double brackets)"),
                ),
            },
            _ => {
                diags.push(unknown_key(key, TOP_KEYS, "the top level"));
                // Not also reported missing.
                match typo_of(key, TOP_KEYS) {
                    Some("machine") => machine_seen = true,
                    Some("partition") => partitions_invalid = true,
                    _ => {}
                }
            }
        }
    }
    if !machine_seen {
        diags.push(
            Diagnostic::new("missing-key", "the layout has no `[machine]` table")
                .at(0..0, "expected `[machine]` in this file")
                .help("add `[machine]` with `cpus = N` and `memory = \"512 MiB\"`"),
        );
    }
    let partitions = partitions
        .into_iter()
        .map(|p| p.inherit(&defaults))
        .collect();
    RawLayout {
        machine,
        partitions,
        channels,
        groups,
        partitions_span,
        partitions_invalid,
        source_len,
    }
}

fn read_machine(t: &DeTable<'_>, span: Range<usize>, diags: &mut Vec<Diagnostic>) -> RawMachine {
    let mut m = RawMachine {
        cpus: Field::Missing,
        memory: Field::Missing,
        timeout: Field::Missing,
        span,
    };
    for (key, value) in t.iter() {
        match key.get_ref().as_ref() {
            "cpus" => m.cpus = read_int(value, "cpus", diags),
            "memory" => m.memory = read_size(value, "memory", diags),
            "timeout" => {
                m.timeout = match value.get_ref() {
                    DeValue::String(_) => {
                        diags.push(
                            wrong_type(value, "timeout", "an integer (seconds)")
                                .help("write the timeout in whole seconds, e.g. `timeout = 60`"),
                        );
                        Field::Invalid
                    }
                    _ => read_int(value, "timeout", diags),
                }
            }
            _ => {
                diags.push(unknown_key(key, MACHINE_KEYS, "[machine]"));
                match typo_of(key, MACHINE_KEYS) {
                    Some("cpus") => m.cpus.mistyped(),
                    Some("memory") => m.memory.mistyped(),
                    _ => {}
                }
            }
        }
    }
    m
}

fn read_partition(
    t: &DeTable<'_>,
    span: Range<usize>,
    context: &str,
    diags: &mut Vec<Diagnostic>,
) -> RawPartition {
    let mut p = RawPartition::empty(span);
    for (key, value) in t.iter() {
        match key.get_ref().as_ref() {
            "name" => p.name = read_string(value, "name", diags),
            "cpu" => p.cpu = read_int(value, "cpu", diags),
            "memory" => p.memory = read_size(value, "memory", diags),
            "base" => p.base = read_size(value, "base", diags),
            "kernel" => match value.get_ref() {
                DeValue::Table(_) => p.kernel_crate = read_kernel_crate(value, diags),
                _ => p.kernel = read_string(value, "kernel", diags),
            },
            "workload" => p.workload = read_string(value, "workload", diags),
            "args" => p.args = read_args(value, diags),
            "ports" => p.ports = read_ports(value, diags),
            "on_fault" => p.on_fault = read_on_fault(value, diags),
            "max_restarts" => p.max_restarts = read_int(value, "max_restarts", diags),
            "compat" => p.compat = read_string(value, "compat", diags),
            "cmdline" => p.cmdline = read_string(value, "cmdline", diags),
            "initrd" => p.initrd = read_string(value, "initrd", diags),
            _ => {
                diags.push(unknown_key(key, PARTITION_KEYS, context));
                match typo_of(key, PARTITION_KEYS) {
                    Some("name") => p.name.mistyped(),
                    Some("cpu") => p.cpu.mistyped(),
                    Some("memory") => p.memory.mistyped(),
                    Some("workload") => p.workload.mistyped(),
                    _ => {}
                }
            }
        }
    }
    p
}

fn read_channel(t: &DeTable<'_>, span: Range<usize>, diags: &mut Vec<Diagnostic>) -> RawChannel {
    let mut c = RawChannel {
        between: Field::Missing,
        slots: Field::Missing,
        notify: Field::Missing,
        span,
    };
    for (key, value) in t.iter() {
        match key.get_ref().as_ref() {
            "between" => c.between = read_between(value, diags),
            "slots" => c.slots = read_int(value, "slots", diags),
            "notify" => {
                c.notify = match read_string(value, "notify", diags) {
                    Field::Given(s) => match s.value.as_str() {
                        "ipi" => Field::Given(Sp::new(Notify::Ipi, s.span)),
                        "poll" => Field::Given(Sp::new(Notify::Poll, s.span)),
                        other => {
                            let d = Diagnostic::new(
                                "bad-notify",
                                format!("unknown notification kind `{other}`"),
                            )
                            .at(s.span, "expected \"ipi\" or \"poll\"");
                            diags.push(match suggest(other, ["ipi", "poll"]) {
                                Some(m) => d.help(format!("did you mean \"{m}\"?")),
                                None => d.help(
                                    "use \"ipi\" (the receiver is interrupted) or \"poll\" (the receiver polls)",
                                ),
                            });
                            Field::Invalid
                        }
                    },
                    other => other.map_invalid(),
                }
            }
            _ => {
                diags.push(unknown_key(key, CHANNEL_KEYS, "a [[channel]]"));
                if typo_of(key, CHANNEL_KEYS) == Some("between") {
                    c.between.mistyped();
                }
            }
        }
    }
    c
}

fn read_on_fault(value: &Spanned<DeValue<'_>>, diags: &mut Vec<Diagnostic>) -> Field<OnFault> {
    match read_string(value, "on_fault", diags) {
        Field::Given(s) => match s.value.as_str() {
            "stop" => Field::Given(Sp::new(OnFault::Stop, s.span)),
            "restart" => Field::Given(Sp::new(OnFault::Restart, s.span)),
            other => {
                let d = Diagnostic::new("bad-on-fault", format!("unknown fault policy `{other}`"))
                    .at(s.span, "expected \"stop\" or \"restart\"");
                diags.push(match suggest(other, ["stop", "restart"]) {
                    Some(m) => d.help(format!("did you mean \"{m}\"?")),
                    None => d.help(
                        "use \"stop\" (a faulted partition stays stopped) or \"restart\" (it is reloaded and run again)",
                    ),
                });
                Field::Invalid
            }
        },
        other => other.map_invalid(),
    }
}

fn read_group(t: &DeTable<'_>, span: Range<usize>, diags: &mut Vec<Diagnostic>) -> RawGroup {
    let mut g = RawGroup {
        name: Field::Missing,
        members: Field::Missing,
        span,
    };
    for (key, value) in t.iter() {
        match key.get_ref().as_ref() {
            "name" => g.name = read_string(value, "name", diags),
            "members" => g.members = read_members(value, diags),
            _ => {
                diags.push(unknown_key(key, GROUP_KEYS, "a [[group]]"));
                match typo_of(key, GROUP_KEYS) {
                    Some("name") => g.name.mistyped(),
                    Some("members") => g.members.mistyped(),
                    _ => {}
                }
            }
        }
    }
    g
}

fn read_members(
    value: &Spanned<DeValue<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Field<Vec<Sp<String>>> {
    let help = "list the group's partitions, e.g. `members = [\"a\", \"b\", \"c\"]`";
    let DeValue::Array(items) = value.get_ref() else {
        diags.push(wrong_type(value, "members", "an array of partition names").help(help));
        return Field::Invalid;
    };
    let mut names = Vec::new();
    for item in items.iter() {
        match item.get_ref() {
            DeValue::String(s) => names.push(Sp::new(s.to_string(), item.span())),
            _ => {
                diags.push(wrong_type(item, "members", "a partition name (a string)").help(help));
                return Field::Invalid;
            }
        }
    }
    Field::Given(Sp::new(names, value.span()))
}

impl<T> Field<T> {
    fn map_invalid<U>(self) -> Field<U> {
        match self {
            Field::Missing => Field::Missing,
            _ => Field::Invalid,
        }
    }
}

fn read_int(value: &Spanned<DeValue<'_>>, key: &str, diags: &mut Vec<Diagnostic>) -> Field<i64> {
    match value.get_ref() {
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(v) => Field::Given(Sp::new(v, value.span())),
            Err(_) => {
                diags.push(
                    Diagnostic::new("bad-integer", format!("`{key}` is too large"))
                        .at(value.span(), "does not fit in a 64-bit integer"),
                );
                Field::Invalid
            }
        },
        _ => {
            diags.push(wrong_type(value, key, "an integer"));
            Field::Invalid
        }
    }
}

/// `kernel = { crate = "PATH" }`: the path, spanned.
fn read_kernel_crate(value: &Spanned<DeValue<'_>>, diags: &mut Vec<Diagnostic>) -> Field<String> {
    let DeValue::Table(t) = value.get_ref() else {
        return Field::Invalid;
    };
    let mut path = Field::Missing;
    for (key, v) in t.iter() {
        match key.get_ref().as_ref() {
            "crate" => path = read_string(v, "crate", diags),
            _ => {
                diags.push(unknown_key(key, &["crate"], "a `kernel` table"));
                path.mistyped();
            }
        }
    }
    if matches!(path, Field::Missing) {
        diags.push(
            Diagnostic::new("missing-key", "a `kernel` table needs a `crate` key")
                .at(value.span(), "no `crate` here")
                .help("name the workload crate's directory, e.g. `kernel = { crate = \"workloads/sieve\" }`"),
        );
        return Field::Invalid;
    }
    path
}

fn read_string(
    value: &Spanned<DeValue<'_>>,
    key: &str,
    diags: &mut Vec<Diagnostic>,
) -> Field<String> {
    match value.get_ref() {
        DeValue::String(s) => Field::Given(Sp::new(s.to_string(), value.span())),
        _ => {
            diags.push(wrong_type(value, key, "a string"));
            Field::Invalid
        }
    }
}

/// Parses a size: an integer number of bytes, or a string `"<n> <unit>"`
/// with unit `B`, `KiB`, `MiB` or `GiB`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err("a size starts with a whole number, e.g. \"16 MiB\"".to_owned());
    }
    let unit = unit.trim_start();
    let scale = match unit {
        "" | "B" => 1,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        other => {
            let binary = match other.to_ascii_lowercase().as_str() {
                "k" | "kb" | "kib" => Some("KiB"),
                "m" | "mb" | "mib" => Some("MiB"),
                "g" | "gb" | "gib" => Some("GiB"),
                _ => None,
            };
            return Err(match binary {
                Some(b) => format!("sizes use binary units: write \"{digits} {b}\""),
                None => "the unit must be one of B, KiB, MiB, GiB".to_owned(),
            });
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| "the size is too large".to_owned())
}

fn read_size(value: &Spanned<DeValue<'_>>, key: &str, diags: &mut Vec<Diagnostic>) -> Field<u64> {
    match value.get_ref() {
        DeValue::Integer(_) => match read_int(value, key, diags) {
            Field::Given(v) => match u64::try_from(v.value) {
                Ok(bytes) => Field::Given(Sp::new(bytes, v.span)),
                Err(_) => {
                    diags.push(
                        Diagnostic::new("bad-size", format!("`{key}` is negative"))
                            .at(v.span, "a size cannot be negative"),
                    );
                    Field::Invalid
                }
            },
            other => other.map_invalid(),
        },
        DeValue::String(s) => match parse_size(s) {
            Ok(bytes) => Field::Given(Sp::new(bytes, value.span())),
            Err(help) => {
                diags.push(
                    Diagnostic::new("bad-size", format!("`{key}` is not a valid size"))
                        .at(value.span(), "not a size")
                        .help(help)
                        .note("sizes are integers (bytes) or strings with a binary unit: \"64 KiB\", \"16 MiB\", \"1 GiB\""),
                );
                Field::Invalid
            }
        },
        _ => {
            diags.push(
                wrong_type(value, key, "a size")
                    .help("write a size as an integer of bytes or a string like \"16 MiB\""),
            );
            Field::Invalid
        }
    }
}

fn read_args(value: &Spanned<DeValue<'_>>, diags: &mut Vec<Diagnostic>) -> Field<Vec<RawArg>> {
    let DeValue::Table(t) = value.get_ref() else {
        diags.push(
            wrong_type(value, "args", "a table")
                .help("write arguments as an inline table, e.g. `args = { rounds = 1000 }`"),
        );
        return Field::Invalid;
    };
    let mut args = Vec::new();
    for (key, v) in t.iter() {
        let raw = match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => RawArgValue::Integer(n),
                Err(_) => {
                    diags.push(
                        Diagnostic::new(
                            "bad-integer",
                            format!("argument `{}` is too large", key.get_ref()),
                        )
                        .at(v.span(), "does not fit in a 64-bit integer"),
                    );
                    continue;
                }
            },
            DeValue::Boolean(b) => RawArgValue::Bool(*b),
            DeValue::String(s) => RawArgValue::String(s.to_string()),
            other => RawArgValue::Other(other.type_str()),
        };
        args.push(RawArg {
            key: Sp::new(key.get_ref().to_string(), key.span()),
            value: Sp::new(raw, v.span()),
        });
    }
    Field::Given(Sp::new(args, value.span()))
}

/// One port number: decimal digits, or `0x` and hexadecimal digits. Only
/// digits: `from_str_radix` alone would also take a sign (`"0x+2f8"`).
fn parse_port(text: &str) -> Option<u16> {
    let text = text.trim();
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u16::from_str_radix(digits, radix).ok()
}

/// Parses `"0x2f8-0x2ff"`, `"0x3e8"` or `"760-767"`.
pub(crate) fn parse_port_range(text: &str) -> Result<PortRange, &'static str> {
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (parse_port(a), parse_port(b)),
        None => (parse_port(text), parse_port(text)),
    };
    match (first, last) {
        (Some(first), Some(last)) if first <= last => Ok(PortRange { first, last }),
        (Some(_), Some(_)) => Err("the first port is after the last"),
        _ => Err("ports are numbers from 0 to 0xffff, decimal or 0x-hexadecimal"),
    }
}

fn read_ports(
    value: &Spanned<DeValue<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Field<Vec<Sp<PortRange>>> {
    let DeValue::Array(items) = value.get_ref() else {
        diags
            .push(wrong_type(value, "ports", "an array").help(
                "write port ranges as an array of strings, e.g. `ports = [\"0x2f8-0x2ff\"]`",
            ));
        return Field::Invalid;
    };
    let mut ranges = Vec::new();
    for item in items.iter() {
        let parsed = match item.get_ref() {
            DeValue::String(s) => parse_port_range(s),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .and_then(|n| u16::try_from(n).ok())
                .map(|p| PortRange { first: p, last: p })
                .ok_or("ports are numbers from 0 to 0xffff"),
            _ => {
                diags.push(wrong_type(item, "ports", "a string like \"0x2f8-0x2ff\""));
                continue;
            }
        };
        match parsed {
            Ok(r) => ranges.push(Sp::new(r, item.span())),
            Err(why) => {
                diags.push(
                    Diagnostic::new("bad-port", "malformed I/O port range")
                        .at(item.span(), why)
                        .help("write a range as \"0x2f8-0x2ff\" (inclusive) or a single port as \"0x3e8\""),
                );
            }
        }
    }
    // Malformed entries are reported; the well-formed ones are still
    // checked for conflicts (no layout is produced either way).
    Field::Given(Sp::new(ranges, value.span()))
}

fn read_between(
    value: &Spanned<DeValue<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Field<Vec<Sp<String>>> {
    let help = "name the channel's two partitions, e.g. `between = [\"ping\", \"pong\"]`";
    let DeValue::Array(items) = value.get_ref() else {
        diags.push(wrong_type(value, "between", "an array of two partition names").help(help));
        return Field::Invalid;
    };
    let mut names = Vec::new();
    for item in items.iter() {
        match item.get_ref() {
            DeValue::String(s) => names.push(Sp::new(s.to_string(), item.span())),
            _ => {
                diags.push(wrong_type(item, "between", "a partition name (a string)").help(help));
                return Field::Invalid;
            }
        }
    }
    if names.len() != 2 {
        diags.push(
            Diagnostic::new(
                "bad-between",
                format!(
                    "a channel connects exactly two partitions, not {}",
                    names.len()
                ),
            )
            .at(value.span(), "expected two names")
            .help(help)
            .note("to connect more partitions, declare one channel per pair"),
        );
        return Field::Invalid;
    }
    Field::Given(Sp::new(names, value.span()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16 MiB"), Ok(16 * MIB));
        assert_eq!(parse_size("64KiB"), Ok(64 * KIB));
        assert_eq!(parse_size("1 GiB"), Ok(GIB));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("12 B"), Ok(12));
        assert!(parse_size("16 MB").is_err_and(|e| e.contains("16 MiB")));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("1.5 GiB").is_err());
        assert!(parse_size("99999999999999999999 GiB").is_err());
        assert!(parse_size("17179869184 GiB").is_err());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(
            parse_port_range("0x2f8-0x2ff"),
            Ok(PortRange {
                first: 0x2f8,
                last: 0x2ff
            })
        );
        assert_eq!(
            parse_port_range("0x3f8"),
            Ok(PortRange {
                first: 0x3f8,
                last: 0x3f8
            })
        );
        assert_eq!(
            parse_port_range("760 - 767"),
            Ok(PortRange {
                first: 760,
                last: 767
            })
        );
        assert!(parse_port_range("0x2ff-0x2f8").is_err());
        // Signs are not part of a port number.
        assert!(parse_port_range("0x+2f8").is_err());
        assert!(parse_port_range("+760-+767").is_err());
        assert!(parse_port_range("+760").is_err());
        assert!(parse_port_range("0x").is_err());
        assert!(parse_port_range("0x2f8-").is_err());
        assert!(parse_port_range("0x10000").is_err());
        assert!(parse_port_range("serial").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("memroy", PARTITION_KEYS.iter().copied()),
            Some("memory")
        );
        assert_eq!(suggest("cpus", PARTITION_KEYS.iter().copied()), Some("cpu"));
        assert_eq!(suggest("zzzzzz", PARTITION_KEYS.iter().copied()), None);
    }
}
