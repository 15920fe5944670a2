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
#![warn(missing_docs)]
// Cast discipline (see CONTRIBUTING.md): widening goes through `From`,
// narrowing through `try_from` or an `as` with a `// truncation:` comment.
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

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

pub mod matrix;

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

/// The `flotilla` binary (debug build of the `tools` package), built once
/// per test process.
pub fn flotilla_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let ws = Workspace::locate();
        let output = std::process::Command::new(build::cargo_program())
            .args([
                "build", "--locked", "--quiet", "-p", "tools", "--bin", "flotilla",
            ])
            .current_dir(&ws.root)
            .env("CARGO_TARGET_DIR", &ws.target_dir)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("running cargo");
        assert!(
            output.status.success(),
            "building flotilla failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let bin = ws.target_dir.join("debug").join("flotilla");
        assert!(bin.is_file(), "{} is missing", bin.display());
        bin
    })
}

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

/// Primes below `n` for the `n` the tests use (the `compute` workload's
/// result), from the prime-counting function.
pub fn primes_below(n: u64) -> u64 {
    match n {
        1_000 => 168,
        10_000 => 1_229,
        100_000 => 9_592,
        200_000 => 17_984,
        1_000_000 => 78_498,
        10_000_000 => 664_579,
        other => panic!("no known prime count below {other}"),
    }
}

// ---------------------------------------------------------------------------
// Channels and the exit budget (issues #5 and #6): what a partition printed,
// the IPIs it says it sent and received, its steady-state exits.

/// The console lines of partition `name` (`[name] TEXT`), as `TEXT`, in
/// order.
pub fn partition_console<'a>(outcome: &'a LayoutOutcome, name: &str) -> Vec<&'a str> {
    let prefix = format!("[{name}] ");
    outcome
        .console()
        .lines()
        .filter_map(|line| line.trim_end().strip_prefix(prefix.as_str()))
        .collect()
}

/// The one console line of `name` containing `needle`, or a failure.
pub fn console_line_with<'a>(outcome: &'a LayoutOutcome, name: &str, needle: &str) -> &'a str {
    let lines: Vec<&str> = partition_console(outcome, name)
        .into_iter()
        .filter(|l| l.contains(needle))
        .collect();
    match lines.as_slice() {
        [line] => line,
        _ => fail_layout(
            outcome,
            &format!("expected one console line of {name} containing {needle:?}, got {lines:?}"),
        ),
    }
}

/// The integer right before `marker` in `text` (`... (12 IPIs sent)` with
/// marker ` IPIs sent` gives 12).
fn number_before(text: &str, marker: &str) -> Option<u64> {
    let before = &text[..text.find(marker)?];
    let digits = before
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .filter(|d| !d.is_empty())?;
    digits.parse().ok()
}

/// The integer right after `marker` in `text`.
fn number_after(text: &str, marker: &str) -> Option<u64> {
    let after = &text[text.find(marker)? + marker.len()..];
    let end = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    after[..end].parse().ok()
}

/// The `SEND_IPI` hypercalls partition `name` made, as its channel
/// workload prints them: `pingpong: ... (N IPIs sent)` or `stream: ..., N
/// IPIs sent` (the guest kernel's `Machine::ipis_sent`, one per call,
/// refused ones included).
pub fn ipis_sent(outcome: &LayoutOutcome, name: &str) -> u64 {
    let line = console_line_with(outcome, name, " IPIs sent");
    number_before(line, " IPIs sent")
        .unwrap_or_else(|| fail_layout(outcome, &format!("no IPI count in {name}'s line {line:?}")))
}

/// The channel IPIs partition `name` received, from its last line
/// `guest-kernel: exit C (ticks T, ipis M)` (the guest kernel's interrupt
/// handler counts every interrupt that is not the timer, spurious or an
/// exception).
pub fn ipis_received(outcome: &LayoutOutcome, name: &str) -> u64 {
    let line = console_line_with(outcome, name, "guest-kernel: exit ");
    number_after(line, ", ipis ").unwrap_or_else(|| {
        fail_layout(
            outcome,
            &format!("no received-IPI count in {name}'s line {line:?}"),
        )
    })
}

/// Asserts the exit budget of partition `name` in steady state: only
/// hypercalls, exactly one per console line, one `REPORT_RESULT`, one
/// `EXIT` and `extra_hypercalls` more (the `SEND_IPI`s it made); and the
/// console lines the report counts are the ones on the console.
pub fn assert_steady_exits(outcome: &LayoutOutcome, name: &str, extra_hypercalls: u64) {
    let p = partition(outcome, name);
    let steady = &p.vm_exits.steady;
    let reasons: Vec<&str> = steady.by_reason.keys().map(String::as_str).collect();
    if reasons != ["hypercall"] {
        fail_layout(
            outcome,
            &format!(
                "{name}: steady-state exits other than hypercalls: {:?}",
                steady.by_reason
            ),
        );
    }
    // Every CONSOLE_WRITE is one exit, printed or dropped over the budget.
    let expected = p.console_lines + p.console_dropped + 2 + extra_hypercalls;
    if steady.total != expected || steady.by_reason["hypercall"] != steady.total {
        fail_layout(
            outcome,
            &format!(
                "{name}: expected steady.total = console_lines ({}) + REPORT_RESULT + EXIT + \
                 {extra_hypercalls} SEND_IPI = {expected}, got {} ({:?})",
                p.console_lines, steady.total, steady.by_reason
            ),
        );
    }
    let printed = outcome.parsed.console_lines.get(name).copied().unwrap_or(0);
    if printed != p.console_lines {
        fail_layout(
            outcome,
            &format!(
                "{name}: the report counts {} console lines, the console shows {printed}",
                p.console_lines
            ),
        );
    }
    if p.vm_exits.total < steady.total {
        fail_layout(
            outcome,
            &format!(
                "{name}: fewer exits in all ({}) than in steady state",
                p.vm_exits.total
            ),
        );
    }
}

/// Asserts the report's `backend` (`"svm"` or `"vmx"`).
pub fn assert_backend(outcome: &LayoutOutcome, backend: &str) {
    if outcome.report.backend != backend {
        fail_layout(
            outcome,
            &format!(
                "expected the {backend} backend, the report says {:?}",
                outcome.report.backend
            ),
        );
    }
}

/// The result value `key` of partition `name` (which must have exited 0),
/// or a failure.
pub fn result_of(outcome: &LayoutOutcome, name: &str, key: &str) -> u64 {
    let p = partition(outcome, name);
    match p.result_u64(key) {
        Some(v) if p.exited_ok() => v,
        _ => fail_layout(
            outcome,
            &format!(
                "expected partition {name} to exit 0 with an integer {key}, got {} {:?} result {}",
                p.state.as_str(),
                p.exit_code,
                p.result_text()
            ),
        ),
    }
}

/// How a channel notifies (the layout's `notify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// The receiver polls: no IPIs along the channel.
    Poll,
    /// Each endpoint may interrupt the other.
    Ipi,
}

impl Notify {
    /// As written in a layout.
    pub fn as_str(self) -> &'static str {
        match self {
            Notify::Poll => "poll",
            Notify::Ipi => "ipi",
        }
    }
}

/// A channel workload of the built-in guest kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelWorkload {
    /// `pingpong` with `rounds`.
    PingPong,
    /// `stream` with `messages`.
    Stream,
}

impl ChannelWorkload {
    /// The workload's name and the argument that counts its messages.
    pub fn name_and_arg(self) -> (&'static str, &'static str) {
        match self {
            ChannelWorkload::PingPong => ("pingpong", "rounds"),
            ChannelWorkload::Stream => ("stream", "messages"),
        }
    }
}

/// Two partitions running one channel workload over one channel between
/// them (`a` is endpoint A: the pinger, or the stream's sender).
#[derive(Clone, Copy, Debug)]
pub struct ChannelPair<'a> {
    /// The workload both run.
    pub workload: ChannelWorkload,
    /// Its `rounds` or `messages`.
    pub count: u64,
    /// Endpoint A.
    pub a: &'a str,
    /// Endpoint B.
    pub b: &'a str,
    /// The channel's `notify`.
    pub notify: Notify,
}

/// A layout of `pairs`, one partition per core (16 MiB each, in order:
/// a, b of the first pair, then the next), one 64-slot channel per pair,
/// and a `timeout` in seconds.
pub fn channel_layout_toml(pairs: &[ChannelPair<'_>], timeout: u32) -> String {
    let cpus = 2 * pairs.len();
    let memory = if cpus <= 2 { 128 } else { 256 };
    let mut toml = format!(
        "[machine]\ncpus = {cpus}\nmemory = \"{memory} MiB\"\ntimeout = {timeout}\n\n\
         [defaults]\nmemory = \"16 MiB\"\n"
    );
    let mut cpu = 0;
    for pair in pairs {
        let (workload, arg) = pair.workload.name_and_arg();
        for name in [pair.a, pair.b] {
            toml.push_str(&format!(
                "\n[[partition]]\nname = \"{name}\"\ncpu = {cpu}\nworkload = \"{workload}\"\n\
                 args = {{ {arg} = {} }}\n",
                pair.count
            ));
            cpu += 1;
        }
    }
    for pair in pairs {
        toml.push_str(&format!(
            "\n[[channel]]\nbetween = [\"{}\", \"{}\"]\nslots = 64\nnotify = \"{}\"\n",
            pair.a,
            pair.b,
            pair.notify.as_str()
        ));
    }
    toml
}

/// Asserts what a channel pair's run must show (each partition of the
/// pair having only this channel):
/// - the workload's results (`pingpong`: `rounds` on both sides, median
///   <= p99 on A; `stream`: B received `count` messages, A sent `count`,
///   the checksums agree, nothing went the other way);
/// - the exit budget: on each side, steady-state exits are hypercalls
///   only, one per console line, `REPORT_RESULT`, `EXIT` and one per IPI
///   the side sent ([`assert_steady_exits`]); receiving IPIs costs none;
/// - `poll`: no IPI sent or received; `ipi`: at least one sent, and no
///   side received more than its peer sent.
pub fn assert_channel_pair(outcome: &LayoutOutcome, pair: &ChannelPair<'_>) {
    let (a, b, n) = (pair.a, pair.b, pair.count);
    match pair.workload {
        ChannelWorkload::PingPong => {
            assert_result(outcome, a, "rounds", n);
            assert_result(outcome, b, "rounds", n);
            let median = result_of(outcome, a, "median_cycles");
            let p99 = result_of(outcome, a, "p99_cycles");
            if median == 0 || median > p99 {
                fail_layout(
                    outcome,
                    &format!("{a}: expected 0 < median ({median}) <= p99 ({p99})"),
                );
            }
            console_line_with(outcome, a, &format!("pingpong: {n} round trips with {b}:"));
            console_line_with(
                outcome,
                b,
                &format!("pingpong: echoed {n} messages from {a} "),
            );
        }
        ChannelWorkload::Stream => {
            assert_result(outcome, a, "sent", n);
            assert_result(outcome, a, "messages", 0);
            assert_result(outcome, b, "messages", n);
            assert_result(outcome, b, "sent", 0);
            let sent = result_of(outcome, a, "sent_checksum");
            let received = result_of(outcome, b, "checksum");
            if sent != received || sent == 0 {
                fail_layout(
                    outcome,
                    &format!(
                        "{b} received checksum {received}, {a} sent checksum {sent} (non-zero)"
                    ),
                );
            }
        }
    }
    let sent = [ipis_sent(outcome, a), ipis_sent(outcome, b)];
    let received = [ipis_received(outcome, a), ipis_received(outcome, b)];
    assert_steady_exits(outcome, a, sent[0]);
    assert_steady_exits(outcome, b, sent[1]);
    let counts = format!("{a}/{b}: IPIs sent {sent:?}, received {received:?}");
    eprintln!(
        "e2e: {} over {}: {counts}",
        pair.workload.name_and_arg().0,
        pair.notify.as_str()
    );
    match pair.notify {
        Notify::Poll => {
            if sent != [0, 0] || received != [0, 0] {
                fail_layout(outcome, &format!("a poll channel raised IPIs: {counts}"));
            }
        }
        Notify::Ipi => {
            if sent[0] + sent[1] == 0 || received[0] > sent[1] || received[1] > sent[0] {
                fail_layout(
                    outcome,
                    &format!(
                        "expected IPIs on an ipi channel, none received beyond those sent: {counts}"
                    ),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Generated documentation: sections of `docs/*.md` that tests regenerate
// from the code, so the docs cannot drift from it.

/// Checks that the section `name` of the document `doc` (a path relative
/// to the workspace root) holds exactly `expected`. A section is framed by
/// `<!-- generated: NAME -->` and `<!-- end generated: NAME -->` lines.
/// With `FLOTILLA_BLESS=1` in the environment the section is rewritten
/// instead (and the test passes), for updating the docs after a change.
pub fn assert_generated_section(doc: &str, name: &str, expected: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(doc);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{doc}: {e}"));
    let begin = format!("<!-- generated: {name} -->\n");
    let end = format!("<!-- end generated: {name} -->");
    let start = text
        .find(&begin)
        .unwrap_or_else(|| panic!("{doc} has no `{}` line", begin.trim_end()))
        + begin.len();
    let stop = start
        + text[start..]
            .find(&end)
            .unwrap_or_else(|| panic!("{doc} has no `{end}` line"));
    let expected = format!("{}\n", expected.trim_end());
    if text[start..stop] == expected {
        return;
    }
    if std::env::var_os("FLOTILLA_BLESS").is_some_and(|v| v == "1") {
        let updated = format!("{}{expected}{}", &text[..start], &text[stop..]);
        std::fs::write(&path, updated).unwrap_or_else(|e| panic!("{doc}: {e}"));
        return;
    }
    panic!(
        "the `{name}` section of {doc} is out of date; run the test with FLOTILLA_BLESS=1 \
         to regenerate it.\n--- expected ---\n{expected}--- found ---\n{}",
        &text[start..stop]
    );
}
