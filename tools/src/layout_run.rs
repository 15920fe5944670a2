//! A layout booted end to end: the boot bundle built from a validated
//! layout, the machine the layout describes (cores, memory) booted under
//! QEMU or Bochs, the run report read back from the console, and a verdict.
//!
//! Invariants:
//! - The emulator gets exactly the layout's machine: `[machine] cpus` cores
//!   and `[machine] memory`.
//! - A layout run is judged by the report and the expectations
//!   ([`judge_layout`]), never by the hypervisor's own success marker: it
//!   passes when every partition exited with code 0, except those expected
//!   to fault, which must have faulted (with the expected kind, if given).
//! - A run whose report is missing or incomplete (the emulator was killed at
//!   the host's timeout, the hypervisor crashed) still yields a report with
//!   one entry per partition; partitions that never ended are `timed-out`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use abi::fault::FaultKind;
use abi::run_end::{qemu_exit_status, QEMU_FAILURE_VALUE, QEMU_SUCCESS_VALUE};
use partition_config::{Diagnostics, Layout};

use crate::accel::Accel;
use crate::build::Images;
use crate::error::{Error, Result};
use crate::image::{self, ImageSpec};
use crate::report::{ConsoleReport, PartitionReport, PartitionState, RunReport};
use crate::runner::{self, Boot, Emulator, Ending, Firmware, RunConfig, RunOutcome};

/// Host timeout beyond the layout's own `[machine] timeout` under QEMU: the
/// hypervisor's watchdog reports partitions still running at its deadline,
/// so the host only has to cover boot and report.
pub const QEMU_TIMEOUT_MARGIN: Duration = Duration::from_secs(60);
/// The same under Bochs, whose BIOS and GRUB alone take 10–20 s and whose
/// cores are interleaved on one host thread.
pub const BOCHS_TIMEOUT_MARGIN: Duration = Duration::from_secs(180);

/// Where a layout comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutSource {
    /// A TOML file.
    File(PathBuf),
    /// TOML text; `name` is used in diagnostics and to resolve kernel paths.
    Text {
        /// The TOML.
        text: String,
        /// A file name for diagnostics.
        name: String,
    },
    /// The built-in default layout (`partition_config::DEFAULT_LAYOUT`).
    Default,
    /// Standard input, read to its end (`flotilla check -`); kernel paths are
    /// relative to the working directory.
    Stdin,
}

/// The name standard input has in diagnostics.
pub const STDIN_NAME: &str = "<stdin>";
/// The name the built-in default layout goes by (its file in the tree).
pub const DEFAULT_LAYOUT_NAME: &str = "examples/default.toml";

impl LayoutSource {
    /// `-` is standard input, anything else a file.
    pub fn from_arg(arg: &Path) -> Self {
        if arg == Path::new("-") {
            LayoutSource::Stdin
        } else {
            LayoutSource::File(arg.to_path_buf())
        }
    }
}

impl LayoutSource {
    /// Reads, parses and validates the layout.
    pub fn load(&self) -> Result<Layout, Diagnostics> {
        self.load_with_warnings().map(|(layout, _)| layout)
    }

    /// As [`LayoutSource::load`], and a valid layout comes with its warnings.
    /// Kernels given by path are read and checked as the bundle builder
    /// will need them ([`crate::kernel_check::read_kernel`]).
    ///
    /// Workload crates (`kernel = { crate = "…" }`) are built here
    /// ([`crate::build::build_workload`]) and their ELF checked the same
    /// way; a build failure is a diagnostic at the layout's `kernel =` with
    /// cargo's output.
    pub fn load_with_warnings(&self) -> Result<(Layout, Diagnostics), Diagnostics> {
        let read = &|path: &Path| {
            if path.is_dir() {
                // A workload crate: validation has checked its manifest.
                eprintln!(
                    "-- building workload crate {} (release, x86_64-unknown-none)",
                    path.display()
                );
                let elf = crate::build::build_workload(&crate::build::Workspace::locate(), path)
                    .map_err(|e| e.to_string())?;
                crate::kernel_check::read_kernel(&elf)
            } else {
                crate::kernel_check::read_kernel(path)
            }
        };
        match self {
            LayoutSource::File(path) => {
                let text = partition_config::read_file(path)?;
                partition_config::parse_str_with_kernels(&text, &path.display().to_string(), read)
            }
            LayoutSource::Stdin => {
                use std::io::Read;
                let mut bytes = Vec::new();
                if let Err(err) = std::io::stdin().lock().read_to_end(&mut bytes) {
                    return Err(Diagnostics::io_error(STDIN_NAME, &err));
                }
                let text = partition_config::decode_source(&bytes, STDIN_NAME)?;
                partition_config::parse_str_with_kernels(&text, STDIN_NAME, read)
            }
            LayoutSource::Text { text, name } => {
                partition_config::parse_str_with_kernels(text, name, read)
            }
            LayoutSource::Default => partition_config::parse_str_with_kernels(
                partition_config::DEFAULT_LAYOUT,
                DEFAULT_LAYOUT_NAME,
                read,
            ),
        }
    }

    /// A short name for messages.
    pub fn describe(&self) -> String {
        match self {
            LayoutSource::File(path) => path.display().to_string(),
            LayoutSource::Text { name, .. } => name.clone(),
            LayoutSource::Default => format!("the default layout ({DEFAULT_LAYOUT_NAME})"),
            LayoutSource::Stdin => STDIN_NAME.into(),
        }
    }

    /// The name diagnostics and the report file give the layout: its path,
    /// `examples/default.toml` or `<stdin>`.
    pub fn name(&self) -> String {
        match self {
            LayoutSource::File(path) => path.display().to_string(),
            LayoutSource::Text { name, .. } => name.clone(),
            LayoutSource::Default => DEFAULT_LAYOUT_NAME.into(),
            LayoutSource::Stdin => STDIN_NAME.into(),
        }
    }
}

/// `--expect-fault NAME` or `NAME=KIND`: the partition must end `faulted`,
/// with that fault kind when one is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultExpectation {
    /// The partition.
    pub partition: String,
    /// The fault kind it must have, if checked.
    pub kind: Option<FaultKind>,
}

impl FaultExpectation {
    /// Expects `partition` to fault with `kind`.
    pub fn new(partition: impl Into<String>, kind: Option<FaultKind>) -> Self {
        FaultExpectation {
            partition: partition.into(),
            kind,
        }
    }
}

impl FromStr for FaultExpectation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (name, kind) = match text.split_once('=') {
            Some((name, kind)) => (name.trim(), Some(kind.trim())),
            None => (text.trim(), None),
        };
        if name.is_empty() {
            return Err("expected NAME or NAME=KIND".into());
        }
        let kind = match kind {
            None => None,
            Some("") => return Err(format!("expected a fault kind after `{name}=`")),
            Some(kind) => Some(
                kind.parse::<FaultKind>()
                    .map_err(|e| format!("`{kind}` is an {e}"))?,
            ),
        };
        Ok(FaultExpectation::new(name, kind))
    }
}

/// Boot method for QEMU layout runs (Bochs always boots the ISO with BIOS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LayoutBoot {
    /// `-kernel hypervisor -initrd bundle` (PVH).
    #[default]
    Kernel,
    /// A GRUB ISO with the bundle as a multiboot2 module.
    Iso(Firmware),
}

/// Everything a layout run needs.
#[derive(Clone, Debug)]
pub struct LayoutRunConfig {
    /// The validated layout.
    pub layout: Layout,
    /// The hypervisor and the built-in guest kernel.
    pub images: Images,
    /// Which emulator.
    pub emulator: Emulator,
    /// How QEMU boots (ignored by Bochs, which boots the ISO).
    pub boot: LayoutBoot,
    /// Partitions that must fault.
    pub expect_faults: Vec<FaultExpectation>,
    /// Hard limit on the emulator; `None`: the layout's timeout plus a
    /// margin ([`QEMU_TIMEOUT_MARGIN`], [`BOCHS_TIMEOUT_MARGIN`]).
    pub timeout: Option<Duration>,
    /// Print each console line as it arrives.
    pub echo: bool,
}

impl LayoutRunConfig {
    /// QEMU TCG, PVH boot, no expected faults, default timeout, quiet.
    pub fn new(layout: Layout, images: Images) -> Self {
        LayoutRunConfig {
            layout,
            images,
            emulator: Emulator::qemu_tcg(),
            boot: LayoutBoot::Kernel,
            expect_faults: Vec::new(),
            timeout: None,
            echo: false,
        }
    }

    /// The same under another emulator.
    pub fn with_emulator(mut self, emulator: Emulator) -> Self {
        self.emulator = emulator;
        self
    }

    /// Adds a fault expectation.
    pub fn expect_fault(mut self, partition: &str, kind: Option<FaultKind>) -> Self {
        self.expect_faults
            .push(FaultExpectation::new(partition, kind));
        self
    }

    /// The host timeout this run gets.
    pub fn effective_timeout(&self) -> Duration {
        self.timeout.unwrap_or_else(|| {
            let margin = match self.emulator {
                Emulator::Qemu { .. } => QEMU_TIMEOUT_MARGIN,
                Emulator::Bochs { .. } => BOCHS_TIMEOUT_MARGIN,
            };
            Duration::from_secs(u64::from(self.layout.machine.timeout_secs)) + margin
        })
    }

    /// Guest RAM in MiB, as the emulator is given it.
    pub fn memory_mib(&self) -> u64 {
        self.layout.machine.memory >> 20
    }

    /// Checks the expectations against the layout ([`check_expectations`]).
    pub fn validate(&self) -> Result<()> {
        check_expectations(&self.layout, &self.expect_faults)
    }
}

/// Checks fault expectations against a layout: each names a partition of
/// it, at most once.
pub fn check_expectations(layout: &Layout, expect_faults: &[FaultExpectation]) -> Result<()> {
    for (i, e) in expect_faults.iter().enumerate() {
        if layout.partition(&e.partition).is_none() {
            let names: Vec<&str> = layout.partitions.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::Invalid(format!(
                "--expect-fault {}: the layout has no such partition (it has {})",
                e.partition,
                names.join(", ")
            )));
        }
        if expect_faults[..i]
            .iter()
            .any(|o| o.partition == e.partition)
        {
            return Err(Error::Invalid(format!(
                "--expect-fault {} is given twice",
                e.partition
            )));
        }
    }
    Ok(())
}

/// The name of an emulator in reports: `qemu-tcg`, `qemu-kvm`,
/// `qemu-tcg:<model>` with a `-cpu` override, `bochs:<model>`.
pub fn emulator_name(emulator: &Emulator) -> String {
    match emulator {
        Emulator::Qemu { accel, cpu_model } => {
            let accel = match accel {
                Accel::Tcg => "qemu-tcg",
                Accel::Kvm => "qemu-kvm",
            };
            match cpu_model {
                Some(model) => format!("{accel}:{model}"),
                None => accel.to_string(),
            }
        }
        Emulator::Bochs { cpu_model } => format!("bochs:{cpu_model}"),
    }
}

/// The verdict on a layout run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every partition ended as expected.
    Passed,
    /// Why not, one reason per line.
    Failed(Vec<String>),
}

impl Verdict {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        *self == Verdict::Passed
    }

    /// The reasons (empty when it passed).
    pub fn reasons(&self) -> &[String] {
        match self {
            Verdict::Passed => &[],
            Verdict::Failed(r) => r,
        }
    }
}

/// What a layout run produced.
#[derive(Clone, Debug)]
pub struct LayoutOutcome {
    /// The run report (one entry per partition, in layout order).
    pub report: RunReport,
    /// Everything the console said about partitions (plan, end lines,
    /// the raw report).
    pub parsed: ConsoleReport,
    /// The verdict.
    pub verdict: Verdict,
    /// The emulator run (the whole console, exit status, duration, ...).
    pub run: RunOutcome,
}

/// Version of the `--report FILE.json` format (docs/report-file.md).
pub const REPORT_FILE_VERSION: u32 = 1;

/// What `--report FILE.json` holds: the run report with the run around it.
#[derive(Debug, serde::Serialize)]
pub struct ReportFile<'a> {
    /// [`REPORT_FILE_VERSION`].
    pub version: u32,
    /// `"passed"` or `"failed"`.
    pub verdict: &'static str,
    /// Why the run failed, one sentence each (empty when it passed).
    pub reasons: &'a [String],
    /// Wall-clock time of the emulator run, in milliseconds.
    pub duration_ms: u64,
    /// The layout that ran, as the command line named it.
    pub layout: &'a str,
    /// Virtualization backend (`svm`, `vmx`, or `unknown`).
    pub backend: &'a str,
    /// The emulator (`qemu-tcg`, `qemu-kvm`, `bochs:<model>`, ...).
    pub emulator: &'a str,
    /// One entry per partition, in layout order (docs/run-report.md).
    pub partitions: &'a [PartitionReport],
}

impl<'a> ReportFile<'a> {
    /// The report file of a run of `layout` that produced `report` and
    /// `verdict` in `duration`.
    pub fn new(
        report: &'a RunReport,
        verdict: &'a Verdict,
        duration: Duration,
        layout: &'a str,
    ) -> ReportFile<'a> {
        ReportFile {
            version: REPORT_FILE_VERSION,
            verdict: if verdict.passed() { "passed" } else { "failed" },
            reasons: verdict.reasons(),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            layout,
            backend: &report.backend,
            emulator: &report.emulator,
            partitions: &report.partitions,
        }
    }

    /// As pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl LayoutOutcome {
    /// The `--report` file of this run of `layout`.
    pub fn report_file<'a>(&'a self, layout: &'a str) -> ReportFile<'a> {
        ReportFile::new(&self.report, &self.verdict, self.run.duration, layout)
    }

    /// The whole console.
    pub fn console(&self) -> &str {
        &self.run.console
    }

    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.verdict.passed()
    }

    /// For failure messages: the verdict, the report table, the whole
    /// console and the emulator's own messages.
    pub fn details(&self) -> String {
        let mut text = String::new();
        match &self.verdict {
            Verdict::Passed => text.push_str("layout run passed\n"),
            Verdict::Failed(reasons) => {
                text.push_str("layout run failed:\n");
                for r in reasons {
                    text.push_str("  - ");
                    text.push_str(r);
                    text.push('\n');
                }
            }
        }
        text.push_str("----- report -----\n");
        text.push_str(&self.report.table());
        text.push_str(&self.run.report());
        text
    }
}

/// Boots the layout and judges the run.
///
/// Returns `Err` only when the run could not take place (a missing tool,
/// a bundle that cannot be built, an expectation naming no partition); a
/// run that fails is an `Ok` outcome with a failed [`Verdict`].
pub fn run_layout(config: &LayoutRunConfig) -> Result<LayoutOutcome> {
    config.validate()?;
    let scratch = tempfile::Builder::new()
        .prefix("flotilla-layout-")
        .tempdir()
        .map_err(|e| Error::io("creating a temporary directory", e))?;
    let bundle = write_bundle(&config.layout, &config.images, scratch.path())?;
    let boot = match (&config.emulator, config.boot) {
        (Emulator::Qemu { .. }, LayoutBoot::Kernel) => Boot::Kernel {
            elf: config.images.hypervisor.clone(),
            initrd: Some(bundle),
        },
        (Emulator::Qemu { .. }, LayoutBoot::Iso(firmware)) => Boot::Iso {
            iso: write_iso(config, &bundle, scratch.path())?,
            firmware,
        },
        (Emulator::Bochs { .. }, _) => Boot::Iso {
            iso: write_iso(config, &bundle, scratch.path())?,
            firmware: Firmware::Bios,
        },
    };
    let run = runner::run(&RunConfig {
        emulator: config.emulator.clone(),
        boot,
        cpus: u32::from(config.layout.machine.cpus),
        memory_mib: config.memory_mib(),
        timeout: config.effective_timeout(),
        echo: config.echo,
    })?;
    Ok(judge_run(config, run))
}

/// A bundle of `len` bytes is one the hypervisor accepts
/// (`partition_config::limits::MAX_BUNDLE_LEN`): refused here, before the
/// boot, rather than by the hypervisor after it.
///
/// # Errors
/// [`Error::Invalid`] naming both sizes.
pub fn check_bundle_len(len: usize) -> Result<()> {
    let max = partition_config::limits::MAX_BUNDLE_LEN;
    if u64::try_from(len).map_or(true, |l| l > max) {
        return Err(Error::Invalid(format!(
            "the boot bundle is {len} bytes; the hypervisor accepts at most {max} (use smaller kernels)"
        )));
    }
    Ok(())
}

/// Writes the layout's boot bundle into `dir`.
pub fn write_bundle(layout: &Layout, images: &Images, dir: &Path) -> Result<PathBuf> {
    let bytes = crate::bundle::build(layout, &images.guest_kernel)?;
    check_bundle_len(bytes.len())?;
    let path = dir.join("bundle.bin");
    std::fs::write(&path, bytes)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(path)
}

fn write_iso(config: &LayoutRunConfig, bundle: &Path, dir: &Path) -> Result<PathBuf> {
    let iso = dir.join("boot.iso");
    image::build_iso(
        &ImageSpec {
            hypervisor: config.images.hypervisor.clone(),
            exit: config.emulator.exit_method(),
            bundle: Some(bundle.to_path_buf()),
        },
        &iso,
    )?;
    Ok(iso)
}

/// Reads the report out of a finished run and judges it.
pub fn judge_run(config: &LayoutRunConfig, run: RunOutcome) -> LayoutOutcome {
    let parsed = ConsoleReport::parse(&run.console);
    let partitions: Vec<(&str, u32)> = config
        .layout
        .partitions
        .iter()
        .map(|p| (p.name.as_str(), u32::from(p.cpu)))
        .collect();
    let report = RunReport::from_console(&parsed, &partitions, &emulator_name(&config.emulator));
    let verdict = judge_layout(
        &report,
        &parsed,
        &config.expect_faults,
        &run,
        &config.emulator,
    );
    LayoutOutcome {
        report,
        parsed,
        verdict,
        run,
    }
}

/// The verdict on a layout run (see the module documentation).
pub fn judge_layout(
    report: &RunReport,
    parsed: &ConsoleReport,
    expect_faults: &[FaultExpectation],
    run: &RunOutcome,
    emulator: &Emulator,
) -> Verdict {
    let mut reasons = Vec::new();
    match run.ending {
        Ending::Interrupted => reasons.push("interrupted".to_string()),
        Ending::TimedOut => reasons.push(format!(
            "the emulator was killed at the host timeout ({:.0}s) before the run ended",
            run.duration.as_secs_f64()
        )),
        _ => {}
    }
    if let Some(exception) = run
        .summary
        .failure
        .as_ref()
        .filter(|f| f.starts_with(abi::console::EXCEPTION))
    {
        reasons.push(format!("the hypervisor crashed: {exception}"));
    }
    if !parsed.is_complete() {
        reasons.push(if parsed.header.is_none() {
            "the console has no run report (`flotilla: report-begin` never came)".to_string()
        } else {
            "the run report is incomplete".to_string()
        });
    }
    reasons.extend(parsed.problems.iter().cloned());
    for (i, p) in parsed.partitions.iter().enumerate() {
        match report.partitions.iter().position(|r| r.name == p.name) {
            None => reasons.push(format!(
                "the report names partition {}, which the layout does not have",
                p.name
            )),
            Some(at) if at != i => reasons.push(format!(
                "report line {} is partition {}, which is number {} in the layout",
                i + 1,
                p.name,
                at + 1
            )),
            Some(_) => {}
        }
    }
    if let Some(h) = &parsed.header {
        if h.partitions != report.partitions.len() as u64 {
            reasons.push(format!(
                "the report header announces {} partition(s); the layout has {}",
                h.partitions,
                report.partitions.len()
            ));
        }
    }
    for name in &parsed.dropping {
        if !report.partitions.iter().any(|r| &r.name == name) {
            reasons.push(format!(
                "the console names partition {name}, which the layout does not have"
            ));
        }
    }
    for p in &report.partitions {
        let expected = expect_faults.iter().find(|e| e.partition == p.name);
        let what = match (&p.state, &p.exit_code) {
            (PartitionState::Exited, Some(code)) => format!("exited with code {code}"),
            (PartitionState::Faulted, _) => match &p.fault {
                Some(f) => format!("faulted ({}: {})", f.kind, f.detail),
                None => "faulted".to_string(),
            },
            (state, _) => state.as_str().to_string(),
        };
        match expected {
            None if p.exited_ok() => {}
            None => reasons.push(format!("partition {} {what}; expected exit code 0", p.name)),
            Some(e) => match (p.state, e.kind) {
                (PartitionState::Faulted, None) => {}
                (PartitionState::Faulted, Some(kind)) if p.fault_kind() == Some(kind) => {}
                (_, kind) => reasons.push(format!(
                    "partition {} {what}; expected it to fault{}",
                    p.name,
                    kind.map(|k| format!(" with {k}")).unwrap_or_default()
                )),
            },
        }
    }
    if parsed.is_complete() {
        reasons.extend(check_run_end(report, run, emulator));
    }
    if reasons.is_empty() {
        Verdict::Passed
    } else {
        Verdict::Failed(reasons)
    }
}

/// After a whole report: the hypervisor's last line must agree with the
/// report, and QEMU must have exited through `isa-debug-exit` with the
/// matching status (Bochs always exits with 1, so only its console counts).
fn check_run_end(report: &RunReport, run: &RunOutcome, emulator: &Emulator) -> Vec<String> {
    let mut reasons = Vec::new();
    let all_ok = report.partitions.iter().all(|p| p.exited_ok());
    let said_failed = run
        .summary
        .failure
        .as_ref()
        .is_some_and(|f| !f.starts_with(abi::console::EXCEPTION));
    let said = match (run.summary.succeeded, said_failed) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    };
    match said {
        None => reasons.push("the hypervisor never said `run succeeded` or `run failed`".into()),
        Some(ok) if ok != all_ok => reasons.push(format!(
            "the hypervisor said the run {} but the report says otherwise",
            if ok { "succeeded" } else { "failed" }
        )),
        Some(_) => {}
    }
    if let (Emulator::Qemu { .. }, Some(ok)) = (emulator, said) {
        let value = if ok {
            QEMU_SUCCESS_VALUE
        } else {
            QEMU_FAILURE_VALUE
        };
        let expected = qemu_exit_status(value);
        match run.ending {
            Ending::Exited { code: Some(c) } if c == expected => {}
            Ending::Exited { code } => reasons.push(format!(
                "QEMU exited with status {} where the hypervisor's end means {expected}",
                code.map_or_else(|| "none (signal)".to_string(), |c| c.to_string())
            )),
            Ending::Stopped => reasons.push(
                "QEMU did not exit through isa-debug-exit after the run ended; it was killed"
                    .into(),
            ),
            Ending::TimedOut | Ending::Interrupted => {}
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::Summary;

    fn layout() -> Layout {
        partition_config::parse_str(
            "[machine]\ncpus = 2\nmemory = \"128 MiB\"\ntimeout = 30\n\
             [[partition]]\nname = \"calc\"\ncpu = 0\nmemory = \"16 MiB\"\nworkload = \"compute\"\n\
             [[partition]]\nname = \"rogue\"\ncpu = 1\nmemory = \"16 MiB\"\nworkload = \"rogue\"\n\
             args = { attack = \"vmrun\" }\n",
            "t.toml",
        )
        .unwrap()
    }

    fn images() -> Images {
        Images {
            hypervisor: "/x/hv".into(),
            guest_kernel: "/x/gk".into(),
        }
    }

    const REPORT: &str = "\
flotilla: partition rogue faulted: virt-instruction at rip 0x10: VMRUN
flotilla: partition calc exited with code 0
flotilla: report-begin {\"version\":4,\"backend\":\"svm\",\"partitions\":2}
flotilla: report {\"name\":\"calc\",\"cpu\":0,\"state\":\"exited\",\"exit_code\":0,\"fault\":null,\"restarts\":0,\"faults\":[],\"vm_exits\":{\"total\":2,\"by_reason\":{\"hypercall\":2},\"steady\":{\"total\":2,\"by_reason\":{\"hypercall\":2}}},\"console_lines\":1,\"console_dropped\":0,\"result\":{\"primes\":9592}}
flotilla: report {\"name\":\"rogue\",\"cpu\":1,\"state\":\"faulted\",\"exit_code\":null,\"fault\":{\"kind\":\"virt-instruction\",\"rip\":16,\"gpa\":null,\"detail\":\"VMRUN\"},\"restarts\":0,\"faults\":[],\"vm_exits\":{\"total\":1,\"by_reason\":{\"virt-instruction\":1},\"steady\":{\"total\":1,\"by_reason\":{\"virt-instruction\":1}}},\"console_lines\":1,\"console_dropped\":0,\"result\":null}
flotilla: report-end
flotilla: run failed: 1 partition(s) did not exit with code 0
";

    fn run(console: &str, ending: Ending) -> RunOutcome {
        let mut c = crate::console::Console::new();
        for l in console.lines() {
            c.push_line(l);
        }
        RunOutcome {
            success: false,
            console: console.to_string(),
            summary: c.summary().clone(),
            exit_status: match ending {
                Ending::Exited { code } => code,
                _ => None,
            },
            ending,
            duration: Duration::from_secs(1),
            failure: None,
            emulator_output: String::new(),
        }
    }

    #[test]
    fn expected_faults_pass_and_unexpected_ones_fail() {
        let done = run(REPORT, Ending::Exited { code: Some(35) });
        let config = LayoutRunConfig::new(layout(), images());
        let out = judge_run(&config, done.clone());
        assert_eq!(
            out.verdict.reasons(),
            ["partition rogue faulted (virt-instruction: VMRUN); expected exit code 0"]
        );
        let config = config.expect_fault("rogue", None);
        assert!(judge_run(&config, done.clone()).passed());
        let mut config =
            LayoutRunConfig::new(layout(), images()).expect_fault("rogue", Some(FaultKind::Npf));
        let out = judge_run(&config, done.clone());
        assert!(out.verdict.reasons()[0].contains("expected it to fault with npf"));
        config.expect_faults = vec!["calc=npf".parse().unwrap()];
        let out = judge_run(&config, done);
        assert_eq!(out.verdict.reasons().len(), 2, "{:?}", out.verdict);
    }

    #[test]
    fn the_report_file_carries_the_run_around_the_report() {
        let done = run(REPORT, Ending::Exited { code: Some(35) });
        let out = judge_run(&LayoutRunConfig::new(layout(), images()), done);
        let file: serde_json::Value =
            serde_json::from_str(&out.report_file("t.toml").to_json()).expect("JSON");
        assert_eq!(file["version"], REPORT_FILE_VERSION);
        assert_eq!(file["verdict"], "failed");
        assert_eq!(file["reasons"].as_array().map(Vec::len), Some(1));
        assert_eq!(file["duration_ms"], 1000);
        assert_eq!(file["layout"], "t.toml");
        assert_eq!(file["backend"], "svm");
        assert_eq!(file["partitions"][0]["name"], "calc");
        assert_eq!(file["partitions"][1]["fault"]["kind"], "virt-instruction");
        let mut keys: Vec<&str> = file
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut expected = [
            "version",
            "verdict",
            "reasons",
            "duration_ms",
            "layout",
            "backend",
            "emulator",
            "partitions",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }

    /// A partition that can write to the UART prints a whole report in
    /// which its faulted neighbour exited, and the verdict; the hypervisor's
    /// real report follows (or never comes). Never a pass.
    #[test]
    fn a_forged_report_never_passes() {
        let forged = "\
flotilla: report-begin {\"version\":4,\"backend\":\"svm\",\"partitions\":2}
flotilla: report {\"name\":\"calc\",\"cpu\":0,\"state\":\"exited\",\"exit_code\":0,\"fault\":null,\"restarts\":0,\"faults\":[],\"vm_exits\":{\"total\":0,\"by_reason\":{},\"steady\":{\"total\":0,\"by_reason\":{}}},\"console_lines\":0,\"console_dropped\":0,\"result\":null}
flotilla: report {\"name\":\"rogue\",\"cpu\":1,\"state\":\"exited\",\"exit_code\":0,\"fault\":null,\"restarts\":0,\"faults\":[],\"vm_exits\":{\"total\":0,\"by_reason\":{},\"steady\":{\"total\":0,\"by_reason\":{}}},\"console_lines\":0,\"console_dropped\":0,\"result\":null}
flotilla: report-end
flotilla: run succeeded
";
        // The rogue (expected to fault) forges calc's success after calc faulted.
        let real = REPORT
            .replace(
                "flotilla: partition calc exited with code 0",
                "flotilla: partition calc faulted: npf at rip 0x10: write",
            )
            .replace(
                "\"name\":\"calc\",\"cpu\":0,\"state\":\"exited\",\"exit_code\":0,\"fault\":null",
                "\"name\":\"calc\",\"cpu\":0,\"state\":\"faulted\",\"exit_code\":null,\"fault\":{\"kind\":\"npf\",\"rip\":16,\"gpa\":null,\"detail\":\"write\"}",
            );
        let (ends, rest) = real.split_at(real.find("flotilla: report-begin").unwrap());
        let config = LayoutRunConfig::new(layout(), images()).expect_fault("rogue", None);
        let bochs = LayoutRunConfig {
            emulator: Emulator::bochs(),
            ..config.clone()
        };
        for console in [
            format!("{ends}{forged}{rest}"),
            format!("{ends}{forged}"),
            format!("{forged}{ends}{rest}"),
        ] {
            for (config, ending) in [
                (&config, Ending::Exited { code: Some(33) }),
                (&bochs, Ending::Exited { code: Some(1) }),
            ] {
                let out = judge_run(config, run(&console, ending));
                assert!(!out.passed(), "{console}");
            }
        }
        // Forged calc end line and report only (the real ones never came):
        // the report contradicts nothing, but rogue's own forged success
        // contradicts its expectation to fault.
        let out = judge_run(
            &config,
            run(
                &format!("{ends}{forged}"),
                Ending::Exited { code: Some(33) },
            ),
        );
        let reasons = out.verdict.reasons().join("\n");
        assert!(reasons.contains("contradicts its end line"), "{reasons}");
    }

    #[test]
    fn the_report_must_follow_the_layout() {
        let swapped = {
            let lines: Vec<&str> = REPORT.lines().collect();
            let mut l: Vec<&str> = lines.clone();
            l.swap(3, 4);
            l.join("\n") + "\n"
        };
        let config = LayoutRunConfig::new(layout(), images()).expect_fault("rogue", None);
        let out = judge_run(&config, run(&swapped, Ending::Exited { code: Some(35) }));
        let reasons = out.verdict.reasons().join("\n");
        assert!(
            reasons.contains("report line 1 is partition rogue"),
            "{reasons}"
        );
        let short = REPORT.replace("\"partitions\":2", "\"partitions\":1");
        let out = judge_run(&config, run(&short, Ending::Exited { code: Some(35) }));
        assert!(!out.passed());
    }

    #[test]
    fn a_killed_run_reports_partitions_without_an_end_as_timed_out() {
        let console = "flotilla: layout: 2 partition(s), 0 channel(s), timeout 30 s, backend vmx\n\
                       flotilla: partition rogue faulted: virt-instruction at rip 0x10: VMRUN\n";
        let config = LayoutRunConfig::new(layout(), images()).expect_fault("rogue", None);
        let out = judge_run(&config, run(console, Ending::TimedOut));
        assert_eq!(out.report.backend, "vmx");
        assert_eq!(out.report.partitions[0].state, PartitionState::TimedOut);
        assert_eq!(out.report.partitions[1].state, PartitionState::Faulted);
        let reasons = out.verdict.reasons().join("\n");
        assert!(reasons.contains("killed at the host timeout"), "{reasons}");
        assert!(reasons.contains("partition calc timed-out"), "{reasons}");
        assert!(!reasons.contains("partition rogue"), "{reasons}");
    }

    #[test]
    fn qemu_must_exit_as_the_hypervisor_said() {
        let config = LayoutRunConfig::new(layout(), images()).expect_fault("rogue", None);
        let out = judge_run(&config, run(REPORT, Ending::Exited { code: Some(0) }));
        assert!(
            out.verdict.reasons()[0].contains("status 0 where"),
            "{:?}",
            out.verdict
        );
        let bochs = LayoutRunConfig {
            emulator: Emulator::bochs(),
            ..config
        };
        assert!(judge_run(&bochs, run(REPORT, Ending::Exited { code: Some(1) })).passed());
        let mut silent = run(REPORT, Ending::Exited { code: Some(1) });
        silent.summary = Summary::default();
        assert!(judge_run(&bochs, silent).verdict.reasons()[0].contains("never said"));
    }

    #[test]
    fn expectations_must_name_partitions() {
        let config = LayoutRunConfig::new(layout(), images()).expect_fault("nobody", None);
        assert!(matches!(config.validate(), Err(Error::Invalid(_))));
        let twice = LayoutRunConfig::new(layout(), images())
            .expect_fault("rogue", None)
            .expect_fault("rogue", Some(FaultKind::Npf));
        assert!(twice.validate().is_err());
        assert!("".parse::<FaultExpectation>().is_err());
        assert!("x=".parse::<FaultExpectation>().is_err());
        assert_eq!(
            "rogue=ipi-denied".parse::<FaultExpectation>().unwrap(),
            FaultExpectation::new("rogue", Some(FaultKind::IpiDenied))
        );
    }

    #[test]
    fn names_and_timeouts() {
        assert_eq!(emulator_name(&Emulator::qemu_tcg()), "qemu-tcg");
        assert_eq!(
            emulator_name(&Emulator::Bochs {
                cpu_model: "ryzen".into()
            }),
            "bochs:ryzen"
        );
        let config = LayoutRunConfig::new(layout(), images());
        assert_eq!(config.effective_timeout(), Duration::from_secs(90));
        assert_eq!(config.memory_mib(), 128);
        assert_eq!(
            config.with_emulator(Emulator::bochs()).effective_timeout(),
            Duration::from_secs(210)
        );
    }
}
