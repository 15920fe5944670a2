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
//!   own messages ([`RunOutcome::report`]; for layouts, [`fail_layout`]
//!   adds the verdict and the run report table).
//! - Layout runs ([`boot_layout`]) boot the hypervisor and the guest kernel
//!   built once per test binary ([`images`]) with a layout's boot bundle.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use abi::cmdline::ExitMethod;
use partition_config::Layout;
use tools::build::{self, Images, Workspace};
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
    let _turn = emulator_turn();
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

/// Waits for this test binary's emulator slot (held until dropped).
fn emulator_turn() -> MutexGuard<'static, ()> {
    static EMULATOR: Mutex<()> = Mutex::new(());
    EMULATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

// ---------------------------------------------------------------------------
// Layout runs (issues #3 and #4): a layout booted with its boot bundle, the
// run report read back, the verdict.

pub use tools::layout_run::{LayoutOutcome, LayoutRunConfig, LayoutSource, Verdict};
pub use tools::report::{PartitionReport, PartitionState, RunReport};

/// The hypervisor and the built-in guest kernel, built (release, bare
/// metal, one cargo call) on first use.
pub fn images() -> &'static Images {
    static IMAGES: OnceLock<Result<Images, String>> = OnceLock::new();
    let built =
        IMAGES.get_or_init(|| build::build_images(&Workspace::locate()).map_err(|e| e.to_string()));
    match built {
        Ok(images) => images,
        Err(e) => panic!("cannot build the hypervisor and the guest kernel: {e}"),
    }
}

/// The workspace's `examples/` directory.
pub fn examples_dir() -> PathBuf {
    Workspace::locate().root.join("examples")
}

/// Parses a layout given as TOML text; panics with the rendered
/// diagnostics if it is invalid (a bug in the test).
pub fn layout(toml: &str, name: &str) -> Layout {
    let source = LayoutSource::Text {
        text: toml.to_string(),
        name: name.to_string(),
    };
    match source.load() {
        Ok(layout) => layout,
        Err(d) => panic!("test layout {name} is invalid:\n{}", d.render_plain()),
    }
}

/// Loads a layout file; panics with the diagnostics if it is invalid.
pub fn layout_file(path: &Path) -> Layout {
    match LayoutSource::File(path.to_path_buf()).load() {
        Ok(layout) => layout,
        Err(d) => panic!("{} is invalid:\n{}", path.display(), d.render_plain()),
    }
}

/// A layout run of `layout` under QEMU TCG with the built images.
pub fn layout_config(layout: Layout) -> LayoutRunConfig {
    LayoutRunConfig::new(layout, images().clone())
}

/// Boots a layout (one emulator at a time per test binary) and returns
/// what happened. A run that could not start panics with the reason.
pub fn boot_layout(config: &LayoutRunConfig) -> LayoutOutcome {
    let _turn = emulator_turn();
    match tools::layout_run::run_layout(config) {
        Ok(outcome) => {
            eprintln!(
                "e2e: layout of {} partition(s) under {}: {} in {:.1}s",
                config.layout.partitions.len(),
                tools::layout_run::emulator_name(&config.emulator),
                if outcome.passed() { "passed" } else { "failed" },
                outcome.run.duration.as_secs_f64()
            );
            outcome
        }
        Err(e) => panic!("the layout run could not start: {e}"),
    }
}

/// Panics with `what`, the verdict, the report table and the whole console.
pub fn fail_layout(outcome: &LayoutOutcome, what: &str) -> ! {
    panic!("{what}\n{}", outcome.details())
}

/// Asserts the layout run passed (every partition exited 0, or faulted as
/// expected).
pub fn assert_passed(outcome: &LayoutOutcome) {
    if !outcome.passed() {
        fail_layout(outcome, "the layout run did not pass");
    }
}

/// The report entry of `name`, or a failure with the whole console.
pub fn partition<'a>(outcome: &'a LayoutOutcome, name: &str) -> &'a PartitionReport {
    match outcome.report.partition(name) {
        Some(p) => p,
        None => fail_layout(outcome, &format!("no report for partition {name}")),
    }
}

/// Asserts that partition `name` exited 0 with `key = value` in its result.
pub fn assert_result(outcome: &LayoutOutcome, name: &str, key: &str, value: u64) {
    let p = partition(outcome, name);
    if !p.exited_ok() || p.result_u64(key) != Some(value) {
        fail_layout(
            outcome,
            &format!(
                "expected partition {name} to exit 0 with {key}={value}, got {} {:?} result {}",
                p.state.as_str(),
                p.exit_code,
                p.result_text()
            ),
        );
    }
}

/// Asserts the hypervisor announced every partition of the layout, on its
/// core (`flotilla: partition NAME on cpu C ...`), in layout order.
pub fn assert_plan_printed(outcome: &LayoutOutcome, layout: &Layout) {
    let printed: Vec<(&str, u32)> = outcome
        .parsed
        .plan
        .iter()
        .map(|p| (p.name.as_str(), p.cpu))
        .collect();
    let expected: Vec<(&str, u32)> = layout
        .partitions
        .iter()
        .map(|p| (p.name.as_str(), u32::from(p.cpu)))
        .collect();
    if printed != expected {
        fail_layout(
            outcome,
            &format!("the hypervisor decoded {printed:?}, the layout has {expected:?}"),
        );
    }
}

/// The attacks of the guest kernel's `rogue` workload and the fault kind
/// each must end in (`docs/run-report.md`).
pub const ROGUE_MATRIX: [(&str, &str); 9] = [
    ("write-outside", "npf"),
    ("read-outside", "npf"),
    ("write-apic-mmio", "npf"),
    ("ipi-non-peer", "ipi-denied"),
    ("init-non-peer", "ipi-denied"),
    ("port-denied", "port-denied"),
    ("apic-base", "apic-base"),
    ("vmrun", "virt-instruction"),
    ("triple-fault", "triple-fault"),
];

/// The fault kind `attack` must end in.
pub fn rogue_fault_kind(attack: &str) -> &'static str {
    ROGUE_MATRIX
        .iter()
        .find(|(a, _)| *a == attack)
        .map(|(_, k)| *k)
        .unwrap_or_else(|| panic!("{attack} is not an attack of the rogue workload"))
}

/// Primes below `n` for the `n` the tests use (the `compute` workload's
/// result), from the prime-counting function.
pub fn primes_below(n: u64) -> u64 {
    match n {
        1_000 => 168,
        10_000 => 1_229,
        100_000 => 9_592,
        1_000_000 => 78_498,
        10_000_000 => 664_579,
        other => panic!("no known prime count below {other}"),
    }
}
