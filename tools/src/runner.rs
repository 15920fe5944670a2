//! One emulator run: start QEMU or Bochs headless, stream and keep the
//! console, stop at the first of (the emulator exits, a failure marker, the
//! timeout, an interrupt), and judge the run.
//!
//! Invariants:
//! - The emulator never outlives [`run`]: every path out of the watch loop
//!   kills (QEMU: the process; Bochs: its whole session) and reaps it.
//! - The whole console is kept in the [`RunOutcome`], whatever happened.
//! - A run succeeds only as the `abi` contract says: under QEMU the exit
//!   status is `qemu_exit_status(QEMU_SUCCESS_VALUE)` *and* the console said
//!   `flotilla: run succeeded`; under Bochs (which always exits with 1) the
//!   console said so and no failure marker came first.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use abi::cmdline::ExitMethod;
use abi::run_end::{qemu_exit_status, QEMU_FAILURE_VALUE, QEMU_SUCCESS_VALUE};

use crate::accel::Accel;
use crate::bochs::{self, BochsMachine};
use crate::console::{self, Console, LineSplitter, Marker, Summary};
use crate::error::{Error, Result};
use crate::image;
use crate::qemu::{self, QemuBoot, QemuInvocation, UefiFirmware};
use crate::system::{self, Program};

/// How often the watch loop looks at the process when the console is quiet.
const POLL: Duration = Duration::from_millis(50);
/// After a failure marker: time for the rest of the report to arrive and for
/// the emulator to exit by itself before it is killed.
const FAILURE_GRACE: Duration = Duration::from_secs(2);
/// After the success marker: time for the emulator to exit by itself.
const SUCCESS_GRACE: Duration = Duration::from_secs(10);
/// After the emulator exited or was killed: time for its output to drain.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How much of the emulator's own output (stderr, Bochs' log) is kept.
const DIAGNOSTIC_LINES: usize = 40;

/// Set by [`interrupt`]; makes every running [`run`] stop its emulator.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Asks running and future runs to stop their emulators (Ctrl-C handler).
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Which emulator runs the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Emulator {
    /// QEMU with an accelerator; `cpu_model` overrides `max` / `host`.
    Qemu {
        /// TCG or KVM (resolve a request with [`crate::accel::resolve`]).
        accel: Accel,
        /// `-cpu` override.
        cpu_model: Option<String>,
    },
    /// Bochs with a CPU model (see [`bochs::DEFAULT_CPU_MODEL`]).
    Bochs {
        /// Bochs CPU model.
        cpu_model: String,
    },
}

impl Emulator {
    /// QEMU with TCG and `-cpu max`: works on every host.
    pub fn qemu_tcg() -> Self {
        Emulator::Qemu {
            accel: Accel::Tcg,
            cpu_model: None,
        }
    }

    /// Bochs with the default VMX CPU model.
    pub fn bochs() -> Self {
        Emulator::Bochs {
            cpu_model: bochs::DEFAULT_CPU_MODEL.into(),
        }
    }

    /// The exit method the hypervisor must be told to use under this emulator.
    pub fn exit_method(&self) -> ExitMethod {
        match self {
            Emulator::Qemu { .. } => ExitMethod::Qemu,
            Emulator::Bochs { .. } => ExitMethod::Bochs,
        }
    }
}

/// Firmware for ISO boots under QEMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Firmware {
    /// SeaBIOS (QEMU's default).
    #[default]
    Bios,
    /// OVMF.
    Uefi,
}

/// What the machine boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Boot {
    /// QEMU `-kernel`: the hypervisor ELF directly through its PVH note,
    /// with the command line `flotilla.exit=qemu`.
    Kernel {
        /// The hypervisor ELF.
        elf: PathBuf,
        /// The boot bundle passed as `-initrd` (layouts, issue #3).
        initrd: Option<PathBuf>,
    },
    /// A GRUB ISO built by [`image::build_iso`] with the emulator's exit method.
    Iso {
        /// The ISO.
        iso: PathBuf,
        /// BIOS or UEFI (QEMU only; Bochs boots with its BIOS).
        firmware: Firmware,
    },
}

/// Everything one run needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunConfig {
    /// Which emulator.
    pub emulator: Emulator,
    /// What it boots.
    pub boot: Boot,
    /// Number of cores.
    pub cpus: u32,
    /// Guest RAM in MiB.
    pub memory_mib: u64,
    /// Hard limit on the whole run, from the emulator's start.
    pub timeout: Duration,
    /// Print each console line to stdout as it arrives.
    pub echo: bool,
}

impl RunConfig {
    /// QEMU TCG booting `elf` with `cpus` cores, 256 MiB, 120 s, quiet.
    pub fn qemu_kernel(elf: impl Into<PathBuf>, cpus: u32) -> Self {
        RunConfig {
            emulator: Emulator::qemu_tcg(),
            boot: Boot::Kernel {
                elf: elf.into(),
                initrd: None,
            },
            cpus,
            memory_mib: 256,
            timeout: Duration::from_secs(120),
            echo: false,
        }
    }
}

/// The result of a run that took place.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The run succeeded (see the module documentation for what that means).
    pub success: bool,
    /// The whole console, sanitized, one line per console line.
    pub console: String,
    /// What the markers on the console said.
    pub summary: Summary,
    /// The emulator's exit status, if it exited by itself.
    pub exit_status: Option<i32>,
    /// Why the watch loop ended.
    pub ending: Ending,
    /// From the emulator's start to its end.
    pub duration: Duration,
    /// Why the run failed, in one line; `None` when it succeeded.
    pub failure: Option<String>,
    /// The tail of the emulator's own messages (QEMU's stderr; Bochs'
    /// output and log), for diagnosing failures.
    pub emulator_output: String,
}

impl RunOutcome {
    /// A report for humans: the failure, then the whole console, then the
    /// emulator's messages.
    pub fn report(&self) -> String {
        let mut text = format!(
            "{} ({:.1}s, exit status {})\n",
            self.failure.as_deref().unwrap_or("run succeeded"),
            self.duration.as_secs_f64(),
            self.exit_status
                .map_or_else(|| "none".to_string(), |s| s.to_string()),
        );
        text.push_str("----- console -----\n");
        text.push_str(&self.console);
        if !self.emulator_output.trim().is_empty() {
            text.push_str("----- emulator -----\n");
            text.push_str(&self.emulator_output);
            if !self.emulator_output.ends_with('\n') {
                text.push('\n');
            }
        }
        text.push_str("-------------------\n");
        text
    }
}

/// Boots the configured machine and watches it until the run ends.
///
/// Returns `Err` only when the run could not take place (a missing tool, an
/// invalid combination, an I/O error); a run that fails is an `Ok` outcome
/// with `success == false`.
pub fn run(config: &RunConfig) -> Result<RunOutcome> {
    if config.cpus == 0 {
        return Err(Error::Invalid("a machine needs at least one core".into()));
    }
    match &config.emulator {
        Emulator::Qemu { accel, cpu_model } => run_qemu(config, *accel, cpu_model.clone()),
        Emulator::Bochs { cpu_model } => run_bochs(config, cpu_model),
    }
}

/// Checks that everything a run with this emulator and boot needs is
/// installed, so that a missing tool is reported before a long build.
pub fn check_tools(emulator: &Emulator, boot: BootKind) -> Result<()> {
    match emulator {
        Emulator::Qemu { .. } => {
            system::QEMU.locate()?;
            if boot == BootKind::Iso(Firmware::Uefi) {
                system::OVMF_CODE.locate()?;
                system::OVMF_VARS.locate()?;
            }
        }
        Emulator::Bochs { .. } => {
            system::BOCHS.locate()?;
            system::SETSID.locate()?;
            system::BOCHS_TERM_PLUGIN.locate()?;
            system::BOCHS_BIOS.locate()?;
            system::BOCHS_VGABIOS.locate()?;
        }
    }
    if matches!(boot, BootKind::Iso(_)) {
        image::check_tools()?;
    }
    Ok(())
}

/// The shape of a [`Boot`] without its files, for [`check_tools`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootKind {
    /// QEMU `-kernel`.
    Kernel,
    /// A GRUB ISO with this firmware.
    Iso(Firmware),
}

/// Why the watch loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The emulator exited by itself.
    Exited {
        /// Its exit code (`None` when a signal ended it).
        code: Option<i32>,
    },
    /// The deadline passed; the emulator was killed.
    TimedOut,
    /// [`interrupt`] was called; the emulator was killed.
    Interrupted,
    /// A marker ended the run (failure, or success under an emulator that
    /// did not exit in time); the emulator was killed.
    Stopped,
}

/// Which emulator's rules judge a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judge {
    /// Exit status 33 and the success marker.
    Qemu,
    /// The success marker.
    Bochs,
}

/// The verdict on a run: `None` for success, else the reason in one line.
pub fn judge(rules: Judge, summary: &Summary, ending: Ending, timeout: Duration) -> Option<String> {
    if ending == Ending::Interrupted {
        return Some("interrupted".into());
    }
    if let Some(failure) = &summary.failure {
        return Some(failure.clone());
    }
    if ending == Ending::TimedOut {
        return Some(format!("timed out after {}s", timeout.as_secs()));
    }
    let ok = qemu_exit_status(QEMU_SUCCESS_VALUE);
    let bad = qemu_exit_status(QEMU_FAILURE_VALUE);
    match rules {
        Judge::Bochs if summary.succeeded => None,
        Judge::Bochs => Some(match ending {
            Ending::Exited { code } => format!(
                "Bochs exited (status {}) before the console said `{}`",
                code.map_or_else(|| "signal".to_string(), |c| c.to_string()),
                abi::console::RUN_SUCCEEDED
            ),
            _ => "the run stopped without a verdict".into(),
        }),
        Judge::Qemu => match ending {
            Ending::Exited { code: Some(c) } if c == ok && summary.succeeded => None,
            Ending::Exited { code: Some(c) } if c == ok => Some(format!(
                "QEMU exit status {ok} (success) but the console never said `{}`",
                abi::console::RUN_SUCCEEDED
            )),
            Ending::Exited { code: Some(c) } if c == bad => Some(format!(
                "the hypervisor ended the run with failure (QEMU exit status {bad})"
            )),
            Ending::Exited { code: Some(0) } => Some(
                "QEMU exited with status 0 before the run ended: the guest reset, \
                 shut down or triple-faulted"
                    .into(),
            ),
            Ending::Exited { code: Some(c) } => Some(format!(
                "QEMU exited with status {c} (not the hypervisor's {ok}/{bad}): \
                 see its messages below the console"
            )),
            Ending::Exited { code: None } => Some("QEMU was killed by a signal".into()),
            _ if summary.succeeded => Some(format!(
                "the console said `{}` but QEMU did not exit through isa-debug-exit \
                 within {}s",
                abi::console::RUN_SUCCEEDED,
                SUCCESS_GRACE.as_secs()
            )),
            _ => Some("the run stopped without a verdict".into()),
        },
    }
}

/// A console line or the end of the console.
enum Event {
    Line(String),
    Closed,
}

fn spawn_error(program: &Program, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        program.missing().into()
    } else {
        Error::io(format!("starting {}", program.name), e)
    }
}

fn scratch_dir(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| Error::io("creating a temporary directory", e))
}

fn run_qemu(config: &RunConfig, accel: Accel, cpu_model: Option<String>) -> Result<RunOutcome> {
    let program = system::QEMU.locate()?;
    let scratch = scratch_dir("flotilla-qemu-")?;
    let boot = match &config.boot {
        Boot::Kernel { elf, initrd } => QemuBoot::Kernel {
            elf: elf.clone(),
            cmdline: image::kernel_cmdline(ExitMethod::Qemu),
            initrd: initrd.clone(),
        },
        Boot::Iso { iso, firmware } => QemuBoot::Cdrom {
            iso: iso.clone(),
            uefi: match firmware {
                Firmware::Bios => None,
                Firmware::Uefi => Some(ovmf_in(scratch.path())?),
            },
        },
    };
    let invocation = QemuInvocation {
        accel,
        cpu_model,
        cpus: config.cpus,
        memory_mib: config.memory_mib,
        boot,
    };
    let mut child = Command::new(&program)
        .args(qemu::arguments(&invocation))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(&system::QEMU, e))?;
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stdout = child.stdout.take().map(|out| spawn_pipe_reader(out, tx));
    let stderr = child.stderr.take().map(spawn_collector);
    let watched = watch(&mut child, &rx, config, &stop, |c| {
        let _ = c.kill();
    })?;
    let duration = start.elapsed();
    if let Some(h) = stdout {
        let _ = h.join();
    }
    let emulator_output = stderr
        .and_then(|h| h.join().ok())
        .map(|text| console::tail(&text, DIAGNOSTIC_LINES).to_string())
        .unwrap_or_default();
    Ok(outcome(
        Judge::Qemu,
        config,
        watched,
        duration,
        emulator_output,
    ))
}

/// Copies OVMF's variable template into `dir` (the firmware writes to it).
fn ovmf_in(dir: &Path) -> Result<UefiFirmware> {
    let code = system::OVMF_CODE.locate()?;
    let template = system::OVMF_VARS.locate()?;
    let vars = dir.join("OVMF_VARS.fd");
    std::fs::copy(&template, &vars)
        .map_err(|e| Error::io(format!("copying {}", template.display()), e))?;
    Ok(UefiFirmware { code, vars })
}

fn run_bochs(config: &RunConfig, cpu_model: &str) -> Result<RunOutcome> {
    let Boot::Iso { iso, firmware } = &config.boot else {
        return Err(Error::Invalid(
            "Bochs boots ISOs only (build one with `flotilla image`)".into(),
        ));
    };
    if *firmware != Firmware::Bios {
        return Err(Error::Invalid(
            "Bochs boots with its BIOS only, not UEFI".into(),
        ));
    }
    let program = system::BOCHS.locate()?;
    let setsid = system::SETSID.locate()?;
    system::BOCHS_TERM_PLUGIN.locate()?;
    let machine = BochsMachine {
        cpus: config.cpus,
        memory_mib: config.memory_mib,
        cpu_model: cpu_model.to_string(),
        bios: system::BOCHS_BIOS.locate()?,
        vgabios: system::BOCHS_VGABIOS.locate()?,
    };
    let scratch = scratch_dir("flotilla-bochs-")?;
    let dir = scratch.path();
    bochs::prepare(dir, &machine, iso)?;
    let output_path = dir.join(bochs::files::OUTPUT);
    let output = File::create(&output_path)
        .map_err(|e| Error::io(format!("creating {}", output_path.display()), e))?;
    let output_err = output
        .try_clone()
        .map_err(|e| Error::io("duplicating a file handle", e))?;
    // `setsid` (not a process-group leader here, so it does not fork) gives
    // Bochs a session of its own: its terminal UI cannot touch ours, and the
    // whole session is killed as one group.
    let mut child = Command::new(&setsid)
        .arg(&program)
        .args(bochs::arguments())
        .current_dir(dir)
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(output_err)
        .spawn()
        .map_err(|e| spawn_error(&system::SETSID, e))?;
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let tail = spawn_file_tailer(dir.join(bochs::files::SERIAL), tx, Arc::clone(&stop));
    let watched = watch(&mut child, &rx, config, &stop, kill_session)?;
    let duration = start.elapsed();
    let _ = tail.join();
    let mut emulator_output = String::new();
    for name in [bochs::files::OUTPUT, bochs::files::LOG] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            let text: String = console::sanitize_block(&String::from_utf8_lossy(&bytes))
                .lines()
                .filter(|l| bochs::is_interesting_output(l))
                .flat_map(|l| [l, "\n"])
                .collect();
            emulator_output.push_str(&format!("[{name}]\n"));
            emulator_output.push_str(console::tail(&text, DIAGNOSTIC_LINES));
            emulator_output.push('\n');
        }
    }
    Ok(outcome(
        Judge::Bochs,
        config,
        watched,
        duration,
        emulator_output,
    ))
}

/// Kills the session Bochs leads (its pid is the session's and group's id),
/// falling back to the process alone if `setsid` has not run yet.
fn kill_session(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let group = nix::unistd::Pid::from_raw(pid);
        if nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).is_ok() {
            return;
        }
    }
    let _ = child.kill();
}

struct Watched {
    console: Console,
    ending: Ending,
}

fn outcome(
    rules: Judge,
    config: &RunConfig,
    watched: Watched,
    duration: Duration,
    emulator_output: String,
) -> RunOutcome {
    let failure = judge(
        rules,
        watched.console.summary(),
        watched.ending,
        config.timeout,
    );
    let exit_status = match watched.ending {
        Ending::Exited { code } => code,
        _ => None,
    };
    let summary = watched.console.summary().clone();
    RunOutcome {
        success: failure.is_none(),
        console: watched.console.into_text(),
        summary,
        exit_status,
        ending: watched.ending,
        duration,
        failure,
        emulator_output,
    }
}

/// Follows the console until the run ends; kills the emulator with `kill`
/// unless it exited by itself; always reaps it.
fn watch(
    child: &mut Child,
    rx: &Receiver<Event>,
    config: &RunConfig,
    stop: &AtomicBool,
    kill: impl Fn(&mut Child),
) -> Result<Watched> {
    let deadline = Instant::now() + config.timeout;
    let mut console = Console::new();
    let mut closed = false;
    let mut stop_at: Option<Instant> = None;
    let mut exited: Option<(ExitStatus, Instant)> = None;
    let take = |event: Event, console: &mut Console, stop_at: &mut Option<Instant>| -> bool {
        match event {
            Event::Line(line) => {
                if config.echo {
                    println!("{line}");
                }
                match console.push_line(&line) {
                    Some(Marker::RunFailed(_) | Marker::Exception(_)) => {
                        let t = Instant::now() + FAILURE_GRACE;
                        *stop_at = Some(stop_at.map_or(t, |s| s.min(t)));
                    }
                    Some(Marker::RunSucceeded) => {
                        stop_at.get_or_insert(Instant::now() + SUCCESS_GRACE);
                    }
                    _ => {}
                }
                false
            }
            Event::Closed => true,
        }
    };
    let ending = loop {
        if closed {
            thread::sleep(POLL);
        } else {
            match rx.recv_timeout(POLL) {
                Ok(event) => closed = take(event, &mut console, &mut stop_at),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => closed = true,
            }
        }
        let now = Instant::now();
        if exited.is_none() {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| Error::io("waiting for the emulator", e))?
            {
                exited = Some((status, now));
                stop.store(true, Ordering::SeqCst);
            }
        }
        if let Some((status, at)) = exited {
            if closed || now >= at + DRAIN_GRACE {
                break Ending::Exited {
                    code: status.code(),
                };
            }
            continue;
        }
        let reason = if INTERRUPTED.load(Ordering::SeqCst) {
            Some(Ending::Interrupted)
        } else if now >= deadline {
            Some(Ending::TimedOut)
        } else if stop_at.is_some_and(|t| now >= t) {
            Some(Ending::Stopped)
        } else {
            None
        };
        if let Some(ending) = reason {
            kill(child);
            let _ = child.wait();
            stop.store(true, Ordering::SeqCst);
            break ending;
        }
    };
    // Whatever the emulator wrote before it ended belongs to the console.
    let drain_until = Instant::now() + DRAIN_GRACE;
    while !closed {
        let left = drain_until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left) {
            Ok(event) => closed = take(event, &mut console, &mut stop_at),
            Err(_) => break,
        }
    }
    let _ = child.wait();
    Ok(Watched { console, ending })
}

/// Reads a pipe (QEMU's stdout) into console lines until it closes.
fn spawn_pipe_reader(mut pipe: impl Read + Send + 'static, tx: Sender<Event>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut splitter = LineSplitter::new();
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    for line in splitter.push(&buf[..n]) {
                        if tx.send(Event::Line(line)).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        if let Some(line) = splitter.finish() {
            let _ = tx.send(Event::Line(line));
        }
        let _ = tx.send(Event::Closed);
    })
}

/// Collects a pipe (QEMU's stderr) into a string, keeping its tail.
fn spawn_collector(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        console::sanitize_block(&String::from_utf8_lossy(&bytes))
    })
}

/// Follows a file another process appends to (Bochs' COM1 file) until
/// `stop` is set, then reads what is left and reports the end.
fn spawn_file_tailer(path: PathBuf, tx: Sender<Event>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut splitter = LineSplitter::new();
        let mut file: Option<File> = None;
        let mut offset = 0u64;
        let mut buf = [0u8; 4096];
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            if file.is_none() {
                file = File::open(&path).ok();
            }
            let mut got = 0;
            if let Some(f) = file.as_mut() {
                // Bochs may truncate and rewrite the file at start.
                if f.metadata().map(|m| m.len() < offset).unwrap_or(false) {
                    offset = 0;
                }
                if f.seek(SeekFrom::Start(offset)).is_ok() {
                    while let Ok(n) = f.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        got += n;
                        offset += n as u64;
                        for line in splitter.push(&buf[..n]) {
                            if tx.send(Event::Line(line)).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            if stopping {
                break;
            }
            if got == 0 {
                thread::sleep(POLL);
            }
        }
        if let Some(line) = splitter.finish() {
            let _ = tx.send(Event::Line(line));
        }
        let _ = tx.send(Event::Closed);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(lines: &[&str]) -> Summary {
        let mut c = Console::new();
        for l in lines {
            c.push_line(l);
        }
        c.summary().clone()
    }

    const T: Duration = Duration::from_secs(120);

    #[test]
    fn qemu_needs_status_33_and_the_marker() {
        let ok = summary(&["flotilla: cores online 2/2", "flotilla: run succeeded"]);
        let silent = summary(&["flotilla: cores online 2/2"]);
        assert_eq!(
            judge(Judge::Qemu, &ok, Ending::Exited { code: Some(33) }, T),
            None
        );
        let msg = judge(Judge::Qemu, &silent, Ending::Exited { code: Some(33) }, T).unwrap();
        assert!(
            msg.contains("never said `flotilla: run succeeded`"),
            "{msg}"
        );
        let msg = judge(Judge::Qemu, &ok, Ending::Exited { code: Some(0) }, T).unwrap();
        assert!(msg.contains("triple-faulted"), "{msg}");
        let msg = judge(Judge::Qemu, &silent, Ending::Exited { code: Some(35) }, T).unwrap();
        assert!(msg.contains("status 35"), "{msg}");
        let msg = judge(Judge::Qemu, &silent, Ending::Exited { code: Some(1) }, T).unwrap();
        assert!(msg.contains("status 1"), "{msg}");
        let msg = judge(Judge::Qemu, &ok, Ending::Stopped, T).unwrap();
        assert!(msg.contains("did not exit through isa-debug-exit"), "{msg}");
    }

    #[test]
    fn failure_markers_win() {
        let failed = summary(&[
            "flotilla: run failed: core 1 silent",
            "flotilla: run succeeded",
        ]);
        let msg = judge(Judge::Qemu, &failed, Ending::Exited { code: Some(33) }, T).unwrap();
        assert_eq!(msg, "the hypervisor reported: core 1 silent");
        let exc = summary(&["flotilla: exception #UD at 0x100000"]);
        let msg = judge(Judge::Bochs, &exc, Ending::Stopped, T).unwrap();
        assert_eq!(msg, "flotilla: exception #UD at 0x100000");
        let msg = judge(Judge::Qemu, &exc, Ending::TimedOut, T).unwrap();
        assert!(msg.starts_with("flotilla: exception"), "{msg}");
    }

    #[test]
    fn bochs_is_judged_by_the_console() {
        let ok = summary(&["flotilla: run succeeded"]);
        assert_eq!(
            judge(Judge::Bochs, &ok, Ending::Exited { code: Some(1) }, T),
            None
        );
        assert_eq!(judge(Judge::Bochs, &ok, Ending::Stopped, T), None);
        let msg = judge(
            Judge::Bochs,
            &Summary::default(),
            Ending::Exited { code: Some(1) },
            T,
        );
        assert!(msg.unwrap().contains("Bochs exited (status 1)"));
    }

    #[test]
    fn timeouts_and_interrupts_are_failures() {
        let none = Summary::default();
        assert_eq!(
            judge(Judge::Qemu, &none, Ending::TimedOut, Duration::from_secs(7)).as_deref(),
            Some("timed out after 7s")
        );
        let ok = summary(&["flotilla: run succeeded"]);
        assert_eq!(
            judge(Judge::Bochs, &ok, Ending::Interrupted, T).as_deref(),
            Some("interrupted")
        );
    }

    #[test]
    fn report_holds_the_failure_the_console_and_the_emulator_messages() {
        let outcome = RunOutcome {
            success: false,
            console: "flotilla: cpu 0 apic 0 online\n".into(),
            summary: Summary::default(),
            exit_status: Some(0),
            ending: Ending::Exited { code: Some(0) },
            duration: Duration::from_millis(1500),
            failure: Some("timed out after 1s".into()),
            emulator_output: "qemu: warning".into(),
        };
        let report = outcome.report();
        assert!(report.starts_with("timed out after 1s (1.5s, exit status 0)\n"));
        assert!(report.contains("----- console -----\nflotilla: cpu 0 apic 0 online\n"));
        assert!(report.contains("----- emulator -----\nqemu: warning\n"));
    }

    #[test]
    fn bochs_refuses_kernel_boots_and_uefi() {
        let mut config = RunConfig::qemu_kernel("/nonexistent.elf", 2);
        config.emulator = Emulator::bochs();
        assert!(matches!(run(&config), Err(Error::Invalid(_))));
        config.boot = Boot::Iso {
            iso: "/nonexistent.iso".into(),
            firmware: Firmware::Uefi,
        };
        assert!(matches!(run(&config), Err(Error::Invalid(_))));
        config.cpus = 0;
        assert!(matches!(run(&config), Err(Error::Invalid(_))));
    }

    /// The watch loop against a real process standing in for an emulator:
    /// a shell that prints markers and exits with QEMU's success status.
    #[test]
    fn watch_follows_a_process_to_its_exit() {
        let config = RunConfig::qemu_kernel("/unused", 1);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(
                "printf 'boot\\r\\nflotilla: cpu 0 apic 0 online\\n'; \
                 printf 'flotilla: cores online 1/1\\nflotilla: run succeeded\\n'; exit 33",
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = spawn_pipe_reader(child.stdout.take().unwrap(), tx);
        let stop = AtomicBool::new(false);
        let w = watch(&mut child, &rx, &config, &stop, |c| {
            let _ = c.kill();
        })
        .unwrap();
        reader.join().unwrap();
        assert_eq!(w.ending, Ending::Exited { code: Some(33) });
        assert_eq!(w.console.text().lines().next(), Some("boot"));
        assert!(w.console.summary().succeeded);
        assert!(stop.load(Ordering::SeqCst));
    }

    /// A failure marker stops a process that would otherwise run on.
    #[test]
    fn watch_stops_after_a_failure_marker() {
        let config = RunConfig {
            timeout: Duration::from_secs(60),
            ..RunConfig::qemu_kernel("/unused", 1)
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("echo 'flotilla: run failed: test'; exec sleep 60")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let _reader = spawn_pipe_reader(child.stdout.take().unwrap(), tx);
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        let w = watch(&mut child, &rx, &config, &stop, |c| {
            let _ = c.kill();
        })
        .unwrap();
        assert_eq!(w.ending, Ending::Stopped);
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(
            w.console.summary().failure.as_deref(),
            Some("the hypervisor reported: test")
        );
    }

    /// The deadline kills a silent process.
    #[test]
    fn watch_enforces_the_timeout() {
        let config = RunConfig {
            timeout: Duration::from_millis(300),
            ..RunConfig::qemu_kernel("/unused", 1)
        };
        let mut child = Command::new("sleep")
            .arg("60")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let _reader = spawn_pipe_reader(child.stdout.take().unwrap(), tx);
        let stop = AtomicBool::new(false);
        let w = watch(&mut child, &rx, &config, &stop, |c| {
            let _ = c.kill();
        })
        .unwrap();
        assert_eq!(w.ending, Ending::TimedOut);
        assert!(
            child.try_wait().unwrap().is_some(),
            "the process was reaped"
        );
    }

    /// The tailer follows a file written in pieces and flushes at stop.
    #[test]
    fn tailer_follows_a_growing_file() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serial.txt");
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = spawn_file_tailer(path.clone(), tx, Arc::clone(&stop));
        let mut f = File::create(&path).unwrap();
        f.write_all(b"flotilla: cpu 0 apic 0 online\nflotilla: run ")
            .unwrap();
        f.flush().unwrap();
        match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            Event::Line(l) => assert_eq!(l, "flotilla: cpu 0 apic 0 online"),
            Event::Closed => panic!("closed early"),
        }
        f.write_all(b"succeeded").unwrap();
        stop.store(true, Ordering::SeqCst);
        handle.join().unwrap();
        let rest: Vec<String> = rx
            .try_iter()
            .filter_map(|e| match e {
                Event::Line(l) => Some(l),
                Event::Closed => None,
            })
            .collect();
        assert_eq!(rest, ["flotilla: run succeeded"]);
    }
}
