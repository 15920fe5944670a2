//! Workload arguments: `key=value` words separated by spaces (the block's
//! argument text, or the PVH command line when running bare).
//!
//! Pure and allocation-free. Getters take a default for a missing key and
//! return an error for a value of the wrong type; a key given twice takes
//! its last value. Words without `=` and keys a workload does not know are
//! reported by [`Args::unknown`] so the kernel can warn about them.

use core::fmt;

/// The argument text of one workload.
#[derive(Clone, Copy, Debug, Default)]
pub struct Args<'a> {
    text: &'a str,
}

/// A value that does not have the type its key needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgError<'a> {
    /// The key.
    pub key: &'a str,
    /// The offending value.
    pub value: &'a str,
    /// What was expected ("an unsigned integer", ...).
    pub expected: &'static str,
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "argument {}={:?}: expected {}",
            self.key, self.value, self.expected
        )
    }
}

impl<'a> Args<'a> {
    /// Wraps an argument text.
    pub const fn new(text: &'a str) -> Self {
        Args { text }
    }

    /// Every word as `(key, Some(value))`, or `(word, None)` for a word
    /// without `=`.
    pub fn words(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        self.text
            .split([' ', '\t', '\n', '\r'])
            .filter(|w| !w.is_empty())
            .map(|w| match w.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (w, None),
            })
    }

    /// The value of `key` (the last one if given twice).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.words()
            .filter(|&(k, _)| k == key)
            .filter_map(|(_, v)| v)
            .last()
    }

    /// `key` as a string, or `default`.
    pub fn str_or(&self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// `key` as an unsigned decimal integer (`_` separators allowed), or
    /// `default` when absent.
    pub fn u64_or(&self, key: &'a str, default: u64) -> Result<u64, ArgError<'a>> {
        let Some(value) = self.get(key) else {
            return Ok(default);
        };
        parse_u64(value).ok_or(ArgError {
            key,
            value,
            expected: "an unsigned decimal integer",
        })
    }

    /// `key` as `true`/`false`, or `default` when absent.
    #[cfg_attr(not(test), allow(dead_code))] // no workload takes a flag yet
    pub fn bool_or(&self, key: &'a str, default: bool) -> Result<bool, ArgError<'a>> {
        match self.get(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(value) => Err(ArgError {
                key,
                value,
                expected: "true or false",
            }),
        }
    }

    /// Words whose key is not in `known` (and words without `=`), in order.
    pub fn unknown<'k>(&self, known: &'k [&'k str]) -> impl Iterator<Item = &'a str> + 'k
    where
        'a: 'k,
    {
        self.words()
            .filter(move |(k, v)| v.is_none() || !known.contains(k))
            .map(|(k, _)| k)
    }
}

/// Parses a decimal integer with optional `_` separators; `None` on an
/// empty string, any other character or overflow.
pub fn parse_u64(s: &str) -> Option<u64> {
    let mut digits = 0usize;
    let mut value: u64 = 0;
    for b in s.bytes() {
        match b {
            b'0'..=b'9' => {
                value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                digits += 1;
            }
            b'_' if digits > 0 => {}
            _ => return None,
        }
    }
    (digits > 0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_with_defaults() {
        let a = Args::new("workload=compute  n=1_000 verbose=true name=x");
        assert_eq!(a.u64_or("n", 5), Ok(1000));
        assert_eq!(a.u64_or("m", 5), Ok(5));
        assert_eq!(a.bool_or("verbose", false), Ok(true));
        assert_eq!(a.bool_or("quiet", false), Ok(false));
        assert_eq!(a.str_or("name", "y"), "x");
        assert_eq!(a.str_or("workload", "hello"), "compute");
    }

    #[test]
    fn wrong_types_are_errors() {
        let a = Args::new("n=12x b=yes");
        let e = a.u64_or("n", 1).unwrap_err();
        assert_eq!((e.key, e.value), ("n", "12x"));
        assert!(a.bool_or("b", true).is_err());
        assert!(Args::new("n=").u64_or("n", 1).is_err());
        assert!(Args::new("n=99999999999999999999").u64_or("n", 1).is_err());
        assert!(Args::new("n=_1").u64_or("n", 1).is_err());
    }

    #[test]
    fn last_value_wins_and_unknown_keys_are_listed() {
        let a = Args::new("n=1 junk n=2 color=red");
        assert_eq!(a.u64_or("n", 0), Ok(2));
        let unknown: Vec<_> = a.unknown(&["n"]).collect();
        assert_eq!(unknown, ["junk", "color"]);
        assert_eq!(Args::new("").unknown(&[]).count(), 0);
        assert_eq!(Args::default().get("n"), None);
    }

    #[test]
    fn parse_u64_edges() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64("18446744073709551616"), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("1_000_000"), Some(1_000_000));
    }
}
