//! Memory sizes on the command line, spelled as in layouts
//! (`partition_config::parse_size`): `512MiB`, `"512 MiB"`, `1 GiB`. A bare
//! number or a decimal unit (`512M`, `512MB`) is refused with the binary
//! spelling as the hint. Sizes are whole MiB.

/// A memory size the user asked for, in MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemorySize {
    mib: u64,
}

/// Largest size accepted: 1 TiB, well beyond any emulated machine here.
const MAX_MIB: u64 = 1 << 20;

/// Bytes in a MiB.
const MIB: u64 = 1 << 20;

impl MemorySize {
    /// A size of `mib` MiB.
    pub const fn from_mib(mib: u64) -> Self {
        MemorySize { mib }
    }

    /// The size in MiB.
    pub const fn mib(self) -> u64 {
        self.mib
    }
}

impl std::fmt::Display for MemorySize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.mib >= 1024 && self.mib.is_multiple_of(1024) {
            write!(f, "{} GiB", self.mib / 1024)
        } else {
            write!(f, "{} MiB", self.mib)
        }
    }
}

impl std::str::FromStr for MemorySize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "`{text}` has no unit: write \"{trimmed} MiB\" (sizes are spelled as in layouts)"
            ));
        }
        let bytes = partition_config::parse_size(trimmed)
            .map_err(|why| format!("`{text}` is not a memory size: {why}"))?;
        if bytes == 0 {
            return Err(format!("`{text}`: memory size must be at least 1 MiB"));
        }
        if !bytes.is_multiple_of(MIB) {
            return Err(format!("`{text}` is not a whole number of MiB"));
        }
        let mib = bytes / MIB;
        if mib > MAX_MIB {
            return Err(format!("`{text}` is too large (at most 1024 GiB)"));
        }
        Ok(MemorySize { mib })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<u64, String> {
        s.parse::<MemorySize>().map(MemorySize::mib)
    }

    #[test]
    fn accepts_the_layout_spellings() {
        assert_eq!(parse("512MiB"), Ok(512));
        assert_eq!(parse("512 MiB"), Ok(512));
        assert_eq!(parse("1 GiB"), Ok(1024));
        assert_eq!(parse("2GiB"), Ok(2048));
        assert_eq!(parse(" 3 GiB "), Ok(3072));
        assert_eq!(parse("1048576 KiB"), Ok(1024));
    }

    #[test]
    fn decimal_units_and_bare_numbers_are_refused_with_a_hint() {
        for (text, hint) in [
            ("512MB", "\"512 MiB\""),
            ("512M", "\"512 MiB\""),
            ("1G", "\"1 GiB\""),
            ("512mb", "\"512 MiB\""),
            ("256", "\"256 MiB\""),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(hint), "{text}: {err}");
        }
    }

    #[test]
    fn rejects_nonsense() {
        assert!(parse("").is_err());
        assert!(parse("MiB").is_err());
        assert!(parse("12 KiB").is_err());
        assert!(parse("1.5 GiB").is_err());
        assert!(parse("-1 MiB").is_err());
        assert!(parse("0 MiB").is_err());
        assert!(parse("99999999999999999999 GiB").is_err());
        assert!(parse("2048 GiB").is_err());
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(MemorySize::from_mib(512).to_string(), "512 MiB");
        assert_eq!(MemorySize::from_mib(2048).to_string(), "2 GiB");
        assert_eq!(MemorySize::from_mib(1536).to_string(), "1536 MiB");
    }
}
