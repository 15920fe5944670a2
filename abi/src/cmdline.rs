//! The hypervisor's boot command line (PVH `cmdline_paddr` or the multiboot2
//! command-line tag): space-separated `key=value` words.
//!
//! Unknown words are ignored (a boot loader may add its own); known keys with
//! bad values are reported by the hypervisor and the default is used.

/// Key that tells the hypervisor how to end a run: see [`ExitMethod`].
pub const EXIT_KEY: &str = "flotilla.exit";

/// How the hypervisor ends a run once every core is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitMethod {
    /// Write to QEMU's `isa-debug-exit` port (`flotilla.exit=qemu`).
    Qemu,
    /// Write the shutdown string to the Bochs port (`flotilla.exit=bochs`).
    Bochs,
    /// Halt every core (`flotilla.exit=halt`); the default, for hardware.
    Halt,
}

impl ExitMethod {
    /// The value spelled after `flotilla.exit=`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExitMethod::Qemu => "qemu",
            ExitMethod::Bochs => "bochs",
            ExitMethod::Halt => "halt",
        }
    }

    /// Parses the value of `flotilla.exit=`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "qemu" => Some(ExitMethod::Qemu),
            "bochs" => Some(ExitMethod::Bochs),
            "halt" => Some(ExitMethod::Halt),
            _ => None,
        }
    }
}

/// Finds the value of `key` in a command line (`key=value` words separated
/// by ASCII whitespace); the last occurrence wins, as with most kernels.
pub fn find<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|word| word.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_last_value_of_a_key() {
        let line = "console=ttyS0 flotilla.exit=halt  flotilla.exit=qemu other";
        assert_eq!(find(line, EXIT_KEY), Some("qemu"));
        assert_eq!(find(line, "console"), Some("ttyS0"));
        assert_eq!(find(line, "missing"), None);
        assert_eq!(find("", EXIT_KEY), None);
    }

    #[test]
    fn exit_methods_round_trip() {
        for m in [ExitMethod::Qemu, ExitMethod::Bochs, ExitMethod::Halt] {
            assert_eq!(ExitMethod::parse(m.as_str()), Some(m));
        }
        assert_eq!(ExitMethod::parse("reboot"), None);
    }
}
