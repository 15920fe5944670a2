//! The arguments a workload crate declares for its workloads, read from its
//! `Cargo.toml`, so a layout's `args` for a crate are type-checked exactly
//! like the built-in kernel's (one checker, in `validate`, over
//! [`ArgDecl`]s; the built-in catalog converts to the same type).
//!
//! The declaration lives in the package's metadata, one table per workload
//! (the layout's `workload` value), with one inline table per argument:
//!
//! ```toml
//! [package.metadata.flotilla.workloads.worker]
//! doc = "counts the primes in [lo, hi)"
//! args.lo = { type = "integer", min = 0, max = 1000000, doc = "first number" }
//! args.quiet = { type = "bool", default = false, doc = "no progress lines" }
//! args.mode = { type = "choice", values = ["fast", "exact"], default = "exact", doc = "how" }
//! ```
//!
//! A crate without `[package.metadata.flotilla]` declares nothing: its
//! arguments pass through untyped. A crate with it declares every workload
//! it runs. Any malformed part is a `bad-arg-declaration` diagnostic located
//! in the crate's `Cargo.toml`, and the crate's arguments are then not
//! checked at all (no follow-on errors).

use std::sync::Arc;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::catalog::{ArgKind, ArgSpec};
use crate::diagnostics::{Diagnostic, SourceFile};
use crate::limits::{is_valid_arg_key, is_valid_workload_name, ARG_STRING_MAX_LEN, MAX_ARGS};

/// The type and constraints of one declared argument (owned: a crate's
/// declaration is read at run time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeclKind {
    /// An integer in `min..=max`.
    Integer {
        min: i64,
        max: i64,
        default: Option<i64>,
    },
    /// `true` or `false`.
    Bool { default: Option<bool> },
    /// A string, one of `choices`.
    Choice {
        choices: Vec<String>,
        default: Option<String>,
    },
}

/// One argument a workload declares, built-in or from a crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArgDecl {
    pub name: String,
    pub kind: DeclKind,
    pub doc: String,
}

impl ArgDecl {
    /// The layout text of an example value, for a `missing-arg` help.
    pub(crate) fn example(&self) -> String {
        match &self.kind {
            DeclKind::Integer { min, .. } => min.to_string(),
            DeclKind::Bool { .. } => "true".to_owned(),
            DeclKind::Choice { choices, .. } => {
                format!("\"{}\"", choices.first().map_or("", String::as_str))
            }
        }
    }
}

impl From<&ArgSpec> for ArgDecl {
    fn from(a: &ArgSpec) -> Self {
        let kind = match a.kind {
            ArgKind::Integer { min, max, default } => DeclKind::Integer { min, max, default },
            ArgKind::Choice { choices, default } => DeclKind::Choice {
                choices: choices.iter().map(|c| (*c).to_owned()).collect(),
                default: default.map(str::to_owned),
            },
        };
        Self {
            name: a.name.to_owned(),
            kind,
            doc: a.doc.to_owned(),
        }
    }
}

/// One workload a crate declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeclaredWorkload {
    pub name: String,
    pub args: Vec<ArgDecl>,
}

/// What a crate's `Cargo.toml` declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Declared {
    /// No `[package.metadata.flotilla]`: arguments are untyped.
    Nothing,
    /// The workloads it runs, with their arguments.
    Workloads(Vec<DeclaredWorkload>),
}

impl Declared {
    /// The declared workload called `name`.
    pub(crate) fn workload(&self, name: &str) -> Option<&DeclaredWorkload> {
        match self {
            Self::Nothing => None,
            Self::Workloads(w) => w.iter().find(|w| w.name == name),
        }
    }
}

/// Keys of an argument's table.
const ARG_KEYS: &[&str] = &["type", "min", "max", "default", "values", "doc"];
/// Keys of a workload's table.
const WORKLOAD_KEYS: &[&str] = &["doc", "args"];
/// The argument types.
const TYPES: &[&str] = &["integer", "bool", "choice"];

/// Reads the declaration in a crate manifest's text (`file` names it in
/// diagnostics). `Err` holds the diagnostics of a malformed declaration
/// (never empty); a manifest that is not valid TOML declares nothing (the
/// caller has already refused it).
pub(crate) fn read(file: &SourceFile) -> Result<Declared, Vec<Diagnostic>> {
    let Ok(root) = DeTable::parse(&file.text) else {
        return Ok(Declared::Nothing);
    };
    let root = root.get_ref();
    let Some(DeValue::Table(package)) = root.get("package").map(Spanned::get_ref) else {
        return Ok(Declared::Nothing);
    };
    let Some(DeValue::Table(metadata)) = package.get("metadata").map(Spanned::get_ref) else {
        return Ok(Declared::Nothing);
    };
    let Some(flotilla) = metadata.get("flotilla") else {
        return Ok(Declared::Nothing);
    };
    let mut r = Reader {
        file,
        diags: Vec::new(),
    };
    let workloads = r.flotilla(flotilla);
    if r.diags.is_empty() {
        Ok(Declared::Workloads(workloads))
    } else {
        Err(r.diags)
    }
}

/// A [`SourceFile`] for a crate manifest.
pub(crate) fn source_file(name: String, text: String) -> SourceFile {
    SourceFile {
        name,
        text: Arc::from(text),
    }
}

/// A TOML value's type with its article ("an integer", "a string").
fn a_type(v: &Value<'_>) -> String {
    let t = v.get_ref().type_str();
    let article = if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {t}")
}

/// A table's entries in the order they are written (the map may be sorted).
fn ordered<'v, 'a>(
    t: &'v DeTable<'a>,
) -> Vec<(&'v Spanned<std::borrow::Cow<'a, str>>, &'v Value<'a>)> {
    let mut entries: Vec<_> = t.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

struct Reader<'f> {
    file: &'f SourceFile,
    diags: Vec<Diagnostic>,
}

type Value<'a> = Spanned<DeValue<'a>>;

impl Reader<'_> {
    fn bad(&mut self, span: std::ops::Range<usize>, message: String, label: &str, help: &str) {
        self.diags.push(
            Diagnostic::new("bad-arg-declaration", message)
                .at(span, label)
                .help(help.to_owned())
                .note("docs/guest-sdk.md, \"Declaring arguments\", describes the declaration")
                .in_file(self.file),
        );
    }

    fn table<'v, 'a>(&mut self, value: &'v Value<'a>, what: &str) -> Option<&'v DeTable<'a>> {
        if let DeValue::Table(t) = value.get_ref() {
            Some(t)
        } else {
            self.bad(
                value.span(),
                format!("{what} must be a table, not {}", a_type(value)),
                "expected a table",
                "see the example in docs/guest-sdk.md",
            );
            None
        }
    }

    fn flotilla(&mut self, value: &Value<'_>) -> Vec<DeclaredWorkload> {
        let Some(t) = self.table(value, "`package.metadata.flotilla`") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, v) in ordered(t) {
            if key.get_ref() != "workloads" {
                self.bad(
                    key.span(),
                    format!(
                        "unknown key `{}` in `package.metadata.flotilla`",
                        key.get_ref()
                    ),
                    "unknown key",
                    "its only key is `workloads`, one table per workload",
                );
                continue;
            }
            let Some(workloads) = self.table(v, "`workloads`") else {
                continue;
            };
            for (name, w) in ordered(workloads) {
                if let Some(w) = self.workload(name, w) {
                    out.push(w);
                }
            }
        }
        out
    }

    fn workload(
        &mut self,
        name: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Value<'_>,
    ) -> Option<DeclaredWorkload> {
        let mut ok = true;
        if !is_valid_workload_name(name.get_ref()) {
            self.bad(
                name.span(),
                format!("`{}` is not a valid workload name", name.get_ref()),
                "invalid workload name",
                "a workload name is 1 to 32 printable ASCII characters without spaces",
            );
            ok = false;
        }
        let t = self.table(value, &format!("workload `{}`", name.get_ref()))?;
        let mut args = Vec::new();
        for (key, v) in ordered(t) {
            match key.get_ref().as_ref() {
                "doc" => ok &= self.string(v, "doc").is_some(),
                "args" => {
                    let Some(a) = self.table(v, "`args`") else {
                        ok = false;
                        continue;
                    };
                    if a.len() > MAX_ARGS {
                        self.bad(
                            v.span(),
                            format!(
                                "{} arguments declared; at most {MAX_ARGS} are allowed",
                                a.len()
                            ),
                            "too many arguments",
                            "declare fewer arguments",
                        );
                        ok = false;
                    }
                    for (arg, spec) in ordered(a) {
                        match self.arg(arg, spec) {
                            Some(d) => args.push(d),
                            None => ok = false,
                        }
                    }
                }
                other => {
                    self.bad(
                        key.span(),
                        format!("unknown key `{other}` in workload `{}`", name.get_ref()),
                        "unknown key",
                        &format!("a workload's keys are: {}", WORKLOAD_KEYS.join(", ")),
                    );
                    ok = false;
                }
            }
        }
        ok.then(|| DeclaredWorkload {
            name: name.get_ref().to_string(),
            args,
        })
    }

    fn string(&mut self, v: &Value<'_>, key: &str) -> Option<String> {
        if let DeValue::String(s) = v.get_ref() {
            Some(s.to_string())
        } else {
            self.bad(
                v.span(),
                format!("`{key}` must be a string, not {}", a_type(v)),
                "expected a string",
                &format!("write `{key}` as a quoted string"),
            );
            None
        }
    }

    fn int(&mut self, v: &Value<'_>, key: &str) -> Option<i64> {
        if let DeValue::Integer(i) = v.get_ref() {
            if let Ok(n) = i64::from_str_radix(i.as_str(), i.radix()) {
                return Some(n);
            }
        }
        self.bad(
            v.span(),
            format!("`{key}` must be a 64-bit integer"),
            "expected an integer",
            &format!("write `{key}` as an integer"),
        );
        None
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one match over the three types, read top to bottom"
    )]
    fn arg(
        &mut self,
        name: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Value<'_>,
    ) -> Option<ArgDecl> {
        let arg = name.get_ref().to_string();
        if !is_valid_arg_key(&arg) {
            self.bad(
                name.span(),
                format!("`{arg}` is not a valid argument name"),
                "invalid argument name",
                "an argument name is 1 to 32 characters: a lowercase letter or `_`, then lowercase letters, digits, `_` or `-`",
            );
            return None;
        }
        let t = self.table(value, &format!("argument `{arg}`"))?;
        let mut ok = true;
        for (key, _) in ordered(t) {
            if !ARG_KEYS.contains(&key.get_ref().as_ref()) {
                self.bad(
                    key.span(),
                    format!("unknown key `{}` in argument `{arg}`", key.get_ref()),
                    "unknown key",
                    &format!("an argument's keys are: {}", ARG_KEYS.join(", ")),
                );
                ok = false;
            }
        }
        let doc = match t.get("doc") {
            Some(v) => self.string(v, "doc").unwrap_or_default(),
            None => String::new(),
        };
        let Some(ty) = t.get("type") else {
            self.bad(
                value.span(),
                format!("argument `{arg}` has no `type`"),
                "no `type` here",
                "add `type = \"integer\"`, `\"bool\"` or `\"choice\"`",
            );
            return None;
        };
        let ty_name = self.string(ty, "type")?;
        // Keys that belong to another type are refused, so a `min` on a
        // choice does not silently mean nothing.
        let allowed: &[&str] = match ty_name.as_str() {
            "integer" => &["min", "max", "default"],
            "bool" => &["default"],
            "choice" => &["values", "default"],
            _ => {
                self.bad(
                    ty.span(),
                    format!("argument `{arg}` has unknown type `{ty_name}`"),
                    "unknown type",
                    &format!("the types are: {}", TYPES.join(", ")),
                );
                return None;
            }
        };
        for key in ["min", "max", "values"] {
            if let Some(v) = t.get(key) {
                if !allowed.contains(&key) {
                    self.bad(
                        v.span(),
                        format!("`{key}` does not apply to a {ty_name} argument (`{arg}`)"),
                        "not for this type",
                        &format!("remove `{key}`"),
                    );
                    ok = false;
                }
            }
        }
        let kind = match ty_name.as_str() {
            "integer" => {
                let min = t.get("min").map_or(Some(i64::MIN), |v| self.int(v, "min"));
                let max = t.get("max").map_or(Some(i64::MAX), |v| self.int(v, "max"));
                let default = t.get("default").map(|v| (v, self.int(v, "default")));
                let (Some(min), Some(max)) = (min, max) else {
                    return None;
                };
                if min > max {
                    self.bad(
                        value.span(),
                        format!("argument `{arg}` has min {min} above max {max}"),
                        "empty range",
                        "make `min` at most `max`",
                    );
                    return None;
                }
                let default = match default {
                    None => None,
                    Some((_, None)) => return None,
                    Some((_, Some(d))) if (min..=max).contains(&d) => Some(d),
                    Some((v, Some(d))) => {
                        let side = if d > max {
                            format!("above its max {max}")
                        } else {
                            format!("below its min {min}")
                        };
                        self.bad(
                            v.span(),
                            format!("the default of `{arg}`, {d}, is {side}"),
                            "default out of range",
                            "pick a default inside the range",
                        );
                        return None;
                    }
                };
                DeclKind::Integer { min, max, default }
            }
            "bool" => {
                let default = match t.get("default") {
                    None => None,
                    Some(v) => match v.get_ref() {
                        DeValue::Boolean(b) => Some(*b),
                        _ => {
                            self.bad(
                                v.span(),
                                format!(
                                    "the default of `{arg}` must be a boolean, not {}",
                                    a_type(v)
                                ),
                                "expected true or false",
                                "write `default = true` or `default = false`",
                            );
                            return None;
                        }
                    },
                };
                DeclKind::Bool { default }
            }
            _ => {
                let Some(values) = t.get("values") else {
                    self.bad(
                        value.span(),
                        format!("choice argument `{arg}` has no `values`"),
                        "no `values` here",
                        "add `values = [\"a\", \"b\"]`, the strings the argument may be",
                    );
                    return None;
                };
                let choices = self.choices(values, &arg)?;
                let default = match t.get("default") {
                    None => None,
                    Some(v) => {
                        let d = self.string(v, "default")?;
                        if !choices.contains(&d) {
                            self.bad(
                                v.span(),
                                format!("the default of `{arg}`, `{d}`, is not one of its values"),
                                "not in `values`",
                                &format!("pick one of: {}", choices.join(", ")),
                            );
                            return None;
                        }
                        Some(d)
                    }
                };
                DeclKind::Choice { choices, default }
            }
        };
        ok.then_some(ArgDecl {
            name: arg,
            kind,
            doc,
        })
    }

    fn choices(&mut self, values: &Value<'_>, arg: &str) -> Option<Vec<String>> {
        let DeValue::Array(items) = values.get_ref() else {
            self.bad(
                values.span(),
                format!("`values` of `{arg}` must be an array of strings"),
                "expected an array",
                "write `values = [\"a\", \"b\"]`",
            );
            return None;
        };
        let mut out: Vec<String> = Vec::new();
        for item in items {
            match item.get_ref() {
                DeValue::String(s) if !s.is_empty() && s.len() <= ARG_STRING_MAX_LEN => {
                    if out.iter().any(|o| o == s.as_ref()) {
                        self.bad(
                            item.span(),
                            format!("`values` of `{arg}` lists `{s}` twice"),
                            "duplicate value",
                            "list each value once",
                        );
                        return None;
                    }
                    out.push(s.to_string());
                }
                _ => {
                    self.bad(
                        item.span(),
                        format!("`values` of `{arg}` must be non-empty strings of at most {ARG_STRING_MAX_LEN} bytes"),
                        "not a usable value",
                        "write each value as a quoted string",
                    );
                    return None;
                }
            }
        }
        if out.is_empty() {
            self.bad(
                values.span(),
                format!("`values` of `{arg}` is empty"),
                "no values",
                "list the strings the argument may be",
            );
            return None;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<Declared, Vec<Diagnostic>> {
        read(&source_file("Cargo.toml".into(), text.into()))
    }

    #[test]
    fn a_manifest_without_metadata_declares_nothing() {
        let text = "[package]\nname = \"x\"\n[package.metadata.other]\na = 1\n";
        assert_eq!(read_text(text), Ok(Declared::Nothing));
    }

    #[test]
    fn every_type_is_read_with_its_constraints() {
        let text = r#"[package]
name = "x"
[package.metadata.flotilla.workloads.w]
doc = "a workload"
args.n = { type = "integer", min = 1, max = 9, default = 3, doc = "count" }
args.q = { type = "bool" }
args.m = { type = "choice", values = ["a", "b"], default = "b" }
"#;
        let Ok(Declared::Workloads(w)) = read_text(text) else {
            panic!("{:?}", read_text(text));
        };
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].name, "w");
        let kinds: Vec<_> = w[0]
            .args
            .iter()
            .map(|a| (a.name.as_str(), a.kind.clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                (
                    "n",
                    DeclKind::Integer {
                        min: 1,
                        max: 9,
                        default: Some(3)
                    }
                ),
                ("q", DeclKind::Bool { default: None }),
                (
                    "m",
                    DeclKind::Choice {
                        choices: vec!["a".into(), "b".into()],
                        default: Some("b".into())
                    }
                ),
            ]
        );
        assert_eq!(w[0].args[0].doc, "count");
    }

    #[test]
    fn malformed_declarations_point_into_the_manifest() {
        let text = r#"[package]
name = "x"
[package.metadata.flotilla.workloads.w]
args.n = { type = "integer", min = 5, max = 1 }
args.d = { type = "integer", max = 4, default = 7 }
args.t = { type = "float" }
args.c = { type = "choice", values = [], min = 1 }
args.k = { type = "bool", colour = "red" }
"#;
        let diags = read_text(text).unwrap_err();
        let spans: Vec<&str> = diags
            .iter()
            .map(|d| {
                assert_eq!(d.code, "bad-arg-declaration");
                assert_eq!(d.file.as_ref().map(|f| f.name.as_str()), Some("Cargo.toml"));
                let s = d.primary.as_ref().unwrap().span.clone();
                &text[s]
            })
            .collect();
        assert_eq!(
            spans,
            [
                "{ type = \"integer\", min = 5, max = 1 }",
                "7",
                "\"float\"",
                "1",
                "[]",
                "colour",
            ]
        );
    }
}
