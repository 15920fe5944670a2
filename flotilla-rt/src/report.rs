//! A workload's result as typed key/value pairs ([`Report`]), rendered as
//! the `key=value` words `REPORT_RESULT` carries (`docs/hypercalls.md`)
//! and the run report shows.
//!
//! Keys are words without spaces or `=`; text values are sent as they are
//! (a value with a space would read as two words, so callers keep them to
//! one word). The rendering is cut at `abi::hypercall::MAX_RESULT` bytes by
//! the hypercall.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// One value of a [`Report`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An unsigned number.
    U64(u64),
    /// A signed number.
    I64(i64),
    /// `true` / `false`.
    Bool(bool),
    /// One word of text.
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Text(v) => f.write_str(v),
        }
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::U64(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::U64(u64::from(v))
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        // usize is 64 bits on x86_64 (the only target).
        Value::U64(v as u64)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(String::from(v))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

/// A workload's result: key/value pairs in the order they were added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pairs: Vec<(&'static str, Value)>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Report::default()
    }

    /// Adds `key=value` (builder style).
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.add(key, value);
        self
    }

    /// Adds `key=value`.
    pub fn add(&mut self, key: &'static str, value: impl Into<Value>) {
        self.pairs.push((key, value.into()));
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> &[(&'static str, Value)] {
        &self.pairs
    }

    /// The value of `key` (the first one added).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The `key=value` words, separated by one space.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "{self}");
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_words_in_order() {
        let r = Report::new()
            .with("primes", 78_498u64)
            .with("ticks", 3u32)
            .with("ok", true)
            .with("delta", -4i64)
            .with("attack", "msr_efer");
        assert_eq!(
            r.render(),
            "primes=78498 ticks=3 ok=true delta=-4 attack=msr_efer"
        );
        assert_eq!(r.get("ticks"), Some(&Value::U64(3)));
        assert_eq!(r.get("nope"), None);
    }

    #[test]
    fn empty_renders_empty() {
        assert_eq!(Report::new().render(), "");
        assert!(Report::new().is_empty());
    }
}
