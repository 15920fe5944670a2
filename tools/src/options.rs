//! Command-line values checked when they are parsed, so that `flotilla run`
//! refuses a bad option at once (a usage error, exit status 2) instead of
//! after a build or a boot: the report file's directory, the timeout, the
//! bare machine's memory. And when diagnostics are colored (`--color`).

use std::path::{Path, PathBuf};

use partition_config::limits::{FIRMWARE_RESERVE, HYPERVISOR_RESERVE, MIB};

use crate::units::MemorySize;

/// Least memory a bare machine boots in: the hypervisor's reserved low
/// memory plus the firmware's top of RAM (`partition_config::limits`).
pub const BARE_MIN_MEMORY_MIB: u64 = (HYPERVISOR_RESERVE + FIRMWARE_RESERVE) / MIB;

/// `--timeout SECS`: a whole number of seconds, at least 1.
///
/// # Errors
/// Not a number, or 0.
pub fn timeout_secs(text: &str) -> Result<u64, String> {
    let secs: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds (e.g. `--timeout 60`)"))?;
    if secs == 0 {
        return Err("the timeout must be at least 1 second".into());
    }
    Ok(secs)
}

/// `--memory SIZE` of the bare machine: a size as in layouts, at least
/// [`BARE_MIN_MEMORY_MIB`].
///
/// # Errors
/// Not a size ([`MemorySize`]'s reasons), or too small to boot.
pub fn bare_memory(text: &str) -> Result<MemorySize, String> {
    let size: MemorySize = text.parse()?;
    if size.mib() < BARE_MIN_MEMORY_MIB {
        return Err(format!(
            "{size} is too small for the machine: the hypervisor reserves 64 MiB and the firmware 16 MiB; use at least \"{BARE_MIN_MEMORY_MIB} MiB\""
        ));
    }
    Ok(size)
}

/// `--report FILE`: a file that can be written once the run ends, checked
/// now (its directory exists and takes a new file; it is not a directory)
/// so a long run's report is not lost.
///
/// # Errors
/// Why the report could not be written there.
pub fn report_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if text.is_empty() {
        return Err("expected the path of a file for the report".into());
    }
    if path.is_dir() {
        return Err(format!(
            "`{text}` is a directory: give the path of a file, e.g. `{}`",
            path.join("report.json").display()
        ));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    if !dir.is_dir() {
        return Err(format!(
            "the directory `{}` does not exist: create it first (mkdir -p {})",
            dir.display(),
            dir.display()
        ));
    }
    tempfile::Builder::new()
        .prefix(".flotilla-report-")
        .tempfile_in(&dir)
        .map_err(|e| format!("cannot write a file in `{}`: {e}", dir.display()))?;
    Ok(path)
}

/// `--color`: when diagnostics are colored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colored on a terminal, as the environment allows (the default).
    #[default]
    Auto,
    /// Always colored.
    Always,
    /// Never colored.
    Never,
}

/// Whether to color diagnostics: `--color always|never` decides; under
/// `auto`, a non-empty `NO_COLOR` turns color off, then a `CLICOLOR_FORCE`
/// other than `0` turns it on, then `TERM=dumb` turns it off, and otherwise
/// stderr being a terminal decides. `env` reads an environment variable.
pub fn color_enabled(
    choice: ColorChoice,
    env: impl Fn(&str) -> Option<String>,
    stderr_is_terminal: bool,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            if env("NO_COLOR").is_some_and(|v| !v.is_empty()) {
                false
            } else if env("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0") {
                true
            } else if env("TERM").is_some_and(|v| v == "dumb") {
                false
            } else {
                stderr_is_terminal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_follows_the_option_then_the_environment() {
        let none = |_: &str| None;
        let only = |key: &'static str, value: &'static str| {
            move |k: &str| (k == key).then(|| value.to_owned())
        };
        assert!(color_enabled(
            ColorChoice::Always,
            only("NO_COLOR", "1"),
            false
        ));
        assert!(!color_enabled(
            ColorChoice::Never,
            only("CLICOLOR_FORCE", "1"),
            true
        ));
        assert!(color_enabled(ColorChoice::Auto, none, true));
        assert!(!color_enabled(ColorChoice::Auto, none, false));
        assert!(!color_enabled(
            ColorChoice::Auto,
            only("NO_COLOR", "1"),
            true
        ));
        assert!(color_enabled(ColorChoice::Auto, only("NO_COLOR", ""), true));
        assert!(color_enabled(
            ColorChoice::Auto,
            only("CLICOLOR_FORCE", "1"),
            false
        ));
        assert!(!color_enabled(
            ColorChoice::Auto,
            only("CLICOLOR_FORCE", "0"),
            false
        ));
        assert!(!color_enabled(
            ColorChoice::Auto,
            only("TERM", "dumb"),
            true
        ));
        let both = |k: &str| match k {
            "NO_COLOR" => Some("1".to_owned()),
            "CLICOLOR_FORCE" => Some("1".to_owned()),
            _ => None,
        };
        assert!(
            !color_enabled(ColorChoice::Auto, both, true),
            "NO_COLOR wins"
        );
    }

    #[test]
    fn timeouts_are_at_least_one_second() {
        assert_eq!(timeout_secs("1"), Ok(1));
        assert_eq!(timeout_secs("300"), Ok(300));
        assert!(timeout_secs("0").unwrap_err().contains("at least 1 second"));
        assert!(timeout_secs("-1").is_err());
        assert!(timeout_secs("1.5").is_err());
        assert!(timeout_secs("soon").is_err());
    }

    #[test]
    fn the_bare_machine_needs_its_reserves() {
        assert_eq!(BARE_MIN_MEMORY_MIB, 80);
        assert_eq!(bare_memory("80 MiB").map(MemorySize::mib), Ok(80));
        assert_eq!(bare_memory("512MiB").map(MemorySize::mib), Ok(512));
        assert!(bare_memory("1 MiB")
            .unwrap_err()
            .contains("at least \"80 MiB\""));
        assert!(bare_memory("512MB").unwrap_err().contains("\"512 MiB\""));
    }

    #[test]
    fn report_paths_are_checked_before_the_run() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ok = dir.path().join("r.json");
        assert_eq!(report_path(ok.to_str().unwrap()), Ok(ok.clone()));
        assert!(!ok.exists(), "the check leaves nothing behind");
        let missing = dir.path().join("nope").join("r.json");
        let err = report_path(missing.to_str().unwrap()).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        let err = report_path(dir.path().to_str().unwrap()).unwrap_err();
        assert!(err.contains("is a directory"), "{err}");
        assert!(report_path("").is_err());
        assert!(report_path("r.json").is_ok());
    }
}
