//! Finding the Flotilla block from the kernel command line
//! (`/proc/cmdline`): `flotilla-block=<gpa>`, the address the host tools
//! put there for a `compat = "linux"` partition (`docs/linux.md`).

/// The command-line parameter naming the block's guest-physical address.
pub const BLOCK_PARAM: &str = "flotilla-block";

/// Why the command line named no usable block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmdlineError {
    /// No `flotilla-block=` word: not a Flotilla partition (booted bare?).
    Missing,
    /// The value is not a number (`0x`-prefixed hexadecimal or decimal).
    BadValue(String),
}

impl std::fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CmdlineError::Missing => write!(
                f,
                "no {BLOCK_PARAM}= on the kernel command line (not in a Flotilla partition?)"
            ),
            CmdlineError::BadValue(v) => write!(
                f,
                "{BLOCK_PARAM}={v}: not an address (0x-prefixed hexadecimal or decimal)"
            ),
        }
    }
}

/// Parses `0x`-prefixed hexadecimal or decimal.
pub fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The block's address from a kernel command line; the last
/// `flotilla-block=` word wins, as for Linux's own parameters.
pub fn block_gpa(cmdline: &str) -> Result<u64, CmdlineError> {
    let value = cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix(BLOCK_PARAM)?.strip_prefix('='))
        .next_back()
        .ok_or(CmdlineError::Missing)?;
    parse_number(value).ok_or_else(|| CmdlineError::BadValue(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_block_among_other_parameters() {
        let line = "console=ttyS0 flotilla-block=0x2000 quiet\n";
        assert_eq!(block_gpa(line), Ok(0x2000));
        assert_eq!(block_gpa("flotilla-block=8192"), Ok(8192));
        assert_eq!(
            block_gpa("flotilla-block=1 flotilla-block=0X30"),
            Ok(0x30),
            "the last one wins"
        );
    }

    #[test]
    fn missing_or_bad_values_are_reported() {
        assert_eq!(block_gpa("console=ttyS0"), Err(CmdlineError::Missing));
        assert_eq!(
            block_gpa("flotilla-blockx=1 xflotilla-block=2"),
            Err(CmdlineError::Missing)
        );
        assert_eq!(
            block_gpa("flotilla-block=0xzz"),
            Err(CmdlineError::BadValue("0xzz".into()))
        );
        assert_eq!(
            block_gpa("flotilla-block="),
            Err(CmdlineError::BadValue(String::new()))
        );
        assert!(block_gpa("flotilla-block=-1")
            .unwrap_err()
            .to_string()
            .contains("not an address"));
    }
}
