//! Memory sizes as users write them: `512M`, `512 MiB`, `1G`, `2GiB`, `256`
//! (a bare number is MiB, as for QEMU's `-m`). Sizes are whole MiB.

/// A memory size the user asked for, in MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemorySize {
    mib: u64,
}

/// Largest size accepted: 1 TiB, well beyond any emulated machine here.
const MAX_MIB: u64 = 1 << 20;

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
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let usage =
            || format!("`{text}` is not a memory size: write e.g. 512M, 512 MiB, 1G or 2GiB");
        let value: u64 = number.parse().map_err(|_| usage())?;
        let factor = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "m" | "mb" | "mib" => 1,
            "g" | "gb" | "gib" => 1024,
            _ => return Err(usage()),
        };
        let mib = value
            .checked_mul(factor)
            .filter(|&m| m <= MAX_MIB)
            .ok_or_else(|| format!("`{text}` is too large (at most 1024 GiB)"))?;
        if mib == 0 {
            return Err(format!("`{text}`: memory size must be at least 1 MiB"));
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
    fn accepts_common_spellings() {
        assert_eq!(parse("512M"), Ok(512));
        assert_eq!(parse("512 MiB"), Ok(512));
        assert_eq!(parse("512mb"), Ok(512));
        assert_eq!(parse("256"), Ok(256));
        assert_eq!(parse("1G"), Ok(1024));
        assert_eq!(parse("2GiB"), Ok(2048));
        assert_eq!(parse(" 3 gb "), Ok(3072));
    }

    #[test]
    fn rejects_nonsense() {
        assert!(parse("").is_err());
        assert!(parse("M").is_err());
        assert!(parse("12K").is_err());
        assert!(parse("1.5G").is_err());
        assert!(parse("-1M").is_err());
        assert!(parse("0").is_err());
        assert!(parse("99999999999999999999G").is_err());
        assert!(parse("2048G").is_err());
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(MemorySize::from_mib(512).to_string(), "512 MiB");
        assert_eq!(MemorySize::from_mib(2048).to_string(), "2 GiB");
        assert_eq!(MemorySize::from_mib(1536).to_string(), "1536 MiB");
    }
}
