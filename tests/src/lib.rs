//! Shared harness of the end-to-end tests (see `tests/tests/`).
//!
//! - Images are built once per test binary ([`hypervisor`], [`iso`]) with
//!   the same library calls `flotilla` uses, so the tests boot exactly what
//!   users boot.
//! - Emulator runs are serialized within a test binary ([`boot`]): the
//!   machines this runs on have two cores, and a TCG or Bochs run competing
//!   with another one only makes both slower. Each run has its own hard
//!   timeout, counted from the emulator's start.
//! - Nothing is skipped: a missing emulator or tool fails the test with the
//!   install hint (CI installs everything with `ci/setup.sh`).
//! - Every assertion failure prints the whole console and the emulator's
//!   own messages ([`RunOutcome::report`]).
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use abi::cmdline::ExitMethod;
use tools::build::{self, Workspace};
use tools::image::{self, ImageSpec};
use tools::runner::{self, RunConfig, RunOutcome};

pub use tools::runner::{Boot, Emulator, Firmware};

/// The hypervisor ELF, built (release, bare metal) on first use.
pub fn hypervisor() -> &'static Path {
    static ELF: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = ELF
        .get_or_init(|| build::build_hypervisor(&Workspace::locate()).map_err(|e| e.to_string()));
    match built {
        Ok(path) => path,
        Err(e) => panic!("cannot build the hypervisor: {e}"),
    }
}

/// A GRUB ISO of the hypervisor telling it to end runs with `exit`, built on
/// first use under the target directory.
pub fn iso(exit: ExitMethod) -> &'static Path {
    static ISOS: [OnceLock<Result<PathBuf, String>>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match exit {
        ExitMethod::Qemu => &ISOS[0],
        ExitMethod::Bochs => &ISOS[1],
        ExitMethod::Halt => &ISOS[2],
    };
    let built = slot.get_or_init(|| build_iso(exit).map_err(|e| e.to_string()));
    match built {
        Ok(path) => path,
        Err(e) => panic!(
            "cannot build the ISO (flotilla.exit={}): {e}",
            exit.as_str()
        ),
    }
}

fn build_iso(exit: ExitMethod) -> tools::Result<PathBuf> {
    let dir = Workspace::locate().scratch_dir("e2e")?;
    let name = format!("flotilla-{}.iso", exit.as_str());
    // Built under a name of this process, then renamed into place, so a
    // concurrent test run never boots a half-written ISO.
    let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
    let spec = ImageSpec {
        hypervisor: hypervisor().to_path_buf(),
        exit,
        bundle: None,
    };
    image::build_iso(&spec, &partial)?;
    let path = dir.join(name);
    std::fs::rename(&partial, &path)
        .map_err(|e| tools::Error::io(format!("renaming {}", partial.display()), e))?;
    Ok(path)
}

/// A machine to boot: the usual defaults with what a test chooses.
pub fn machine(emulator: Emulator, boot: Boot, cpus: u32, timeout_secs: u64) -> RunConfig {
    RunConfig {
        emulator,
        boot,
        cpus,
        memory_mib: 256,
        timeout: Duration::from_secs(timeout_secs),
        echo: false,
    }
}

/// Boots a machine (one at a time per test binary) and returns what
/// happened. A run that could not start (missing emulator, ...) panics with
/// the reason, which names the package to install.
pub fn boot(config: &RunConfig) -> RunOutcome {
    static EMULATOR: Mutex<()> = Mutex::new(());
    let _turn = EMULATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match runner::run(config) {
        Ok(outcome) => {
            eprintln!(
                "e2e: {:?} {} cores: {} in {:.1}s",
                config.emulator,
                config.cpus,
                outcome.failure.as_deref().unwrap_or("succeeded"),
                outcome.duration.as_secs_f64()
            );
            outcome
        }
        Err(e) => panic!("the run could not start: {e}"),
    }
}

/// Panics with `what` and the whole run report.
pub fn fail(outcome: &RunOutcome, what: &str) -> ! {
    panic!("{what}\n{}", outcome.report())
}

/// Asserts the run succeeded.
pub fn assert_succeeded(outcome: &RunOutcome) {
    if !outcome.success {
        fail(outcome, "the run failed");
    }
}

/// Asserts the run succeeded with every one of `cpus` cores reporting:
/// exactly one `cpu <i> ... online` line for each index 0..cpus, distinct
/// APIC IDs, and `cores online cpus/cpus`.
pub fn assert_all_cores_online(outcome: &RunOutcome, cpus: u32) {
    assert_succeeded(outcome);
    let summary = &outcome.summary;
    let indices = summary.online_indices();
    let expected: Vec<u32> = (0..cpus).collect();
    if indices != expected {
        fail(
            outcome,
            &format!("expected one `cpu N ... online` line for each core 0..{cpus}, got cores {indices:?}"),
        );
    }
    let apics: BTreeSet<u32> = summary.cpus_online.iter().map(|&(_, apic)| apic).collect();
    if apics.len() != cpus as usize {
        fail(
            outcome,
            &format!("APIC IDs are not distinct: {:?}", summary.cpus_online),
        );
    }
    if summary.cores_online != Some((cpus, cpus)) {
        fail(
            outcome,
            &format!(
                "expected `cores online {cpus}/{cpus}`, got {:?}",
                summary.cores_online
            ),
        );
    }
}
