//! `flotilla`: the one entry point for humans and CI (`cargo flotilla ...`).
//!
//! This file only parses the command line and sequences library calls
//! (check, explain, schema, build, image, run, doctor); everything else lives in the
//! `tools` library.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use abi::cmdline::ExitMethod;
use tools::accel::{self, AccelRequest, HostFacts};
use tools::build::{self, Workspace};
use tools::console;
use tools::image::{self, ImageSpec};
use tools::layout_run::{self, FaultExpectation, LayoutBoot, LayoutRunConfig, LayoutSource};
use tools::options::{color_enabled, ColorChoice};
use tools::runner::{self, Boot, BootKind, Emulator, Firmware, RunConfig};
use tools::units::MemorySize;

/// Flotilla: a hypervisor-hosted multikernel. Checks layouts, builds
/// images, boots them.
#[derive(Debug, Parser)]
#[command(name = "flotilla", version, about, after_help = EXIT_STATUS_HELP)]
struct Cli {
    /// When to color diagnostics: auto (on a terminal; NO_COLOR,
    /// CLICOLOR_FORCE and TERM=dumb are honoured), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorArg::Auto, value_name = "WHEN")]
    color: ColorArg,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum MessageFormat {
    /// Rendered for people, with the source underlined.
    Human,
    /// One JSON object per line (docs/layout.md, "Diagnostics").
    Json,
}

/// Whether diagnostics are colored, decided once in `main`.
static COLOR: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Boot a layout (the built-in default layout without LAYOUT) in an
    /// emulator, stream the console, print the run report; exit 0 only if
    /// every partition exited with code 0 (or faulted as --expect-fault says).
    Run(RunArgs),
    /// Check layouts: exit 0 with a summary of each if all are valid, else
    /// exit 2 with every error (file:line:column, the offending text
    /// underlined).
    Check(CheckArgs),
    /// Show a layout's memory map and who may message or interrupt whom.
    Explain(LayoutArg),
    /// Print the JSON Schema of the layout format (for editors).
    Schema,
    /// Build the hypervisor and the guest kernel (release,
    /// x86_64-unknown-none) without booting, and with a LAYOUT its boot
    /// bundle; copy them into DIR and print their paths.
    Build(BuildArgs),
    /// Build a GRUB multiboot2 ISO that boots with BIOS and UEFI.
    Image(ImageArgs),
    /// Make a new workload crate in directory NAME (which must not exist)
    /// with a layout that runs it next to a built-in partition:
    /// `cargo flotilla run NAME/layout.toml` runs it as it is.
    New(NewArgs),
    /// Build the initramfs of a Linux partition (docs/linux.md): a static
    /// busybox, an /init that runs flotilla-linux (built here for
    /// x86_64-unknown-linux-musl: pingpong with the partition's channel
    /// peers) and powers off; print its path.
    Initramfs(InitramfsArgs),
    /// Report what this host can do (KVM, nested virtualization, QEMU,
    /// Bochs, GRUB, OVMF) and what to install or enable; exit 3 when
    /// something the default runs need is missing.
    Doctor,
}

#[derive(Debug, clap::Args)]
struct NewArgs {
    /// The new crate's directory; its last component names the crate and
    /// its partition (a-z, 0-9, `-`, `_`, starting with a letter).
    #[arg(value_name = "NAME")]
    dir: PathBuf,
}

#[derive(Debug, clap::Args)]
struct InitramfsArgs {
    /// Where to write the archive (cpio newc, uncompressed).
    #[arg(value_name = "OUT")]
    output: PathBuf,
    /// A static busybox [default: the one `ci/setup.sh` fetched from
    /// Debian's busybox-static].
    #[arg(long, value_name = "FILE")]
    busybox: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct LayoutArg {
    /// The layout file (TOML, see docs/layout.md); `-` reads standard input.
    layout: PathBuf,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The layout files (TOML, see docs/layout.md); `-` reads standard
    /// input (kernel paths are then relative to the working directory).
    #[arg(required = true, value_name = "LAYOUT")]
    layouts: Vec<PathBuf>,
    /// How to print diagnostics: human, or json (one object per line on
    /// stdout, then one `layout-checked` object per file).
    #[arg(long, value_enum, default_value_t = MessageFormat::Human, value_name = "FMT")]
    message_format: MessageFormat,
    /// Fail (exit 2) when a layout has warnings, not only errors.
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The layout to boot; without it, the built-in default layout
    /// (examples/default.toml: 4 partitions).
    #[arg(value_name = "LAYOUT")]
    layout: Option<PathBuf>,
    /// Boot the bare machine (hypervisor only, no partitions: every core
    /// reports and the run ends). Implied by --cpus or --memory.
    #[arg(long, conflicts_with = "layout")]
    no_layout: bool,
    /// Kill the emulator after this many seconds [default: the layout's
    /// timeout plus a margin (60 s QEMU, 180 s Bochs); 120 without a layout].
    #[arg(long, value_name = "SECS", value_parser = tools::options::timeout_secs)]
    timeout: Option<u64>,
    /// Write the run report as JSON to FILE (layout runs). Its directory
    /// must exist and be writable: that is checked before anything is built.
    #[arg(long, value_name = "FILE", conflicts_with = "no_layout",
          value_parser = tools::options::report_path)]
    report: Option<PathBuf>,
    /// The partition NAME must fault (optionally with fault KIND, e.g.
    /// rogue=npf) instead of exiting 0. Repeatable.
    #[arg(long, value_name = "NAME[=KIND]", conflicts_with = "no_layout")]
    expect_fault: Vec<FaultExpectation>,
    /// QEMU accelerator: tcg (default), kvm (needs nested virtualization),
    /// or auto (kvm when possible).
    #[arg(long, value_enum)]
    accel: Option<AccelArg>,
    /// Boot the bare machine with N cores [default: 4] (a layout's machine
    /// comes from its `[machine]` table).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64), conflicts_with = "layout")]
    cpus: Option<u32>,
    /// Bare machine RAM, spelled as in layouts: 512MiB, "512 MiB", 1GiB;
    /// at least 80 MiB [default: 512 MiB].
    #[arg(long, value_name = "SIZE", conflicts_with = "layout",
          value_parser = tools::options::bare_memory)]
    memory: Option<MemorySize>,
    /// Which emulator boots the machine.
    #[arg(long, value_enum, default_value_t = EmulatorArg::Qemu)]
    emulator: EmulatorArg,
    /// CPU model: Bochs `corei7_skylake_x` (default, VMX) or `ryzen` (SVM)
    /// etc.; for QEMU a `-cpu` model instead of max/host.
    #[arg(long, value_name = "MODEL")]
    cpu_model: Option<String>,
    /// How QEMU boots: the ELF directly (kernel), or a GRUB ISO with BIOS
    /// (iso) or UEFI (iso-uefi). Bochs always boots an ISO with BIOS.
    #[arg(long, value_enum)]
    boot: Option<BootArg>,
    /// Do not stream the console (it is still printed if the run fails).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// A layout whose boot bundle to build too (checked first).
    #[arg(value_name = "LAYOUT")]
    layout: Option<PathBuf>,
    /// Where to put hypervisor.elf, guest-kernel.elf and bundle.bin
    /// [default: target/flotilla].
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ImageArgs {
    /// A layout to put on the ISO (its boot bundle becomes a multiboot2
    /// module, so the machine boots straight into its partitions); without
    /// it the ISO boots the bare hypervisor, which brings the cores up.
    #[arg(value_name = "LAYOUT")]
    layout: Option<PathBuf>,
    /// Where to write the ISO.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// How the hypervisor ends the run: halt (real hardware), qemu or bochs.
    #[arg(long, value_enum, default_value_t = ExitArg::Halt)]
    exit: ExitArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum AccelArg {
    Tcg,
    Kvm,
    Auto,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum EmulatorArg {
    Qemu,
    Bochs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BootArg {
    Kernel,
    Iso,
    IsoUefi,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ExitArg {
    Qemu,
    Bochs,
    Halt,
}

impl From<ExitArg> for ExitMethod {
    fn from(arg: ExitArg) -> Self {
        match arg {
            ExitArg::Qemu => ExitMethod::Qemu,
            ExitArg::Bochs => ExitMethod::Bochs,
            ExitArg::Halt => ExitMethod::Halt,
        }
    }
}

/// The exit statuses, as `--help` shows them (README.md has the same table).
const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success (check: the layout is valid, warnings allowed; run: it passed)
  1  the run failed (a partition faulted unexpectedly, timed out, ...), or a
     build failed
  2  usage error or invalid layout (diagnostics on stderr)
  3  a required tool is missing (QEMU, Bochs, GRUB, OVMF, KVM for --accel kvm)

Results (check's summary, explain, schema, the run report table) go to
stdout; diagnostics, progress and errors go to stderr.";

/// What a command ended in, as its exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// 0: it did what was asked.
    Success,
    /// 1: the run happened and failed.
    Failed,
    /// 2: bad usage or an invalid layout.
    Invalid,
    /// 3: a required tool is missing.
    MissingTool,
}

impl Status {
    fn code(self) -> u8 {
        match self {
            Status::Success => 0,
            Status::Failed => 1,
            Status::Invalid => 2,
            Status::MissingTool => 3,
        }
    }

    fn from_passed(passed: bool) -> Self {
        if passed {
            Status::Success
        } else {
            Status::Failed
        }
    }
}

/// A command line that does not make sense (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// The exit status of an error: a missing tool 3, a usage error or an
/// invalid request 2, anything else (a build or I/O failure) 1.
fn error_status(err: &anyhow::Error) -> Status {
    for cause in err.chain() {
        if cause.is::<Usage>() {
            return Status::Invalid;
        }
        if cause.is::<tools::system::Missing>() || cause.is::<tools::accel::KvmUnavailable>() {
            return Status::MissingTool;
        }
        match cause.downcast_ref::<tools::Error>() {
            Some(tools::Error::Missing(_) | tools::Error::Kvm(_)) => return Status::MissingTool,
            Some(tools::Error::Invalid(_) | tools::Error::Bundle(_)) => return Status::Invalid,
            _ => {}
        }
    }
    Status::Failed
}

/// Lines of console shown after a failed `--quiet` run.
const TAIL_LINES: usize = 40;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let choice = match cli.color {
        ColorArg::Auto => ColorChoice::Auto,
        ColorArg::Always => ColorChoice::Always,
        ColorArg::Never => ColorChoice::Never,
    };
    let _ = COLOR.set(color_enabled(
        choice,
        |key| std::env::var(key).ok(),
        std::io::stderr().is_terminal(),
    ));
    install_interrupt_handler();
    let result = match cli.command {
        Cmd::Run(args) => run(&args),
        Cmd::Check(args) => {
            // Every file is checked, even after an invalid one.
            let invalid = args
                .layouts
                .iter()
                .filter(|path| !check(path, &args))
                .count();
            Ok(valid(invalid == 0))
        }
        Cmd::Explain(args) => Ok(valid(explain(&args.layout))),
        Cmd::Schema => {
            println!("{}", partition_config::schema());
            Ok(Status::Success)
        }
        Cmd::Image(args) => image(&args).map(|()| Status::Success),
        Cmd::Build(args) => build_command(&args),
        Cmd::New(args) => new_crate(&args),
        Cmd::Initramfs(args) => initramfs(&args),
        Cmd::Doctor => {
            let diagnosis = tools::doctor::diagnose(&tools::doctor::probe());
            println!("{diagnosis}");
            Ok(if diagnosis.ready() {
                Status::Success
            } else {
                Status::MissingTool
            })
        }
    };
    let status = match result {
        Ok(status) => status,
        Err(err) => {
            eprintln!("error: {err:#}");
            error_status(&err)
        }
    };
    ExitCode::from(status.code())
}

/// A layout command's status: 0 when the layout was valid, else 2.
fn valid(ok: bool) -> Status {
    if ok {
        Status::Success
    } else {
        Status::Invalid
    }
}

/// First Ctrl-C: stop the emulator and report. Second: leave at once.
fn install_interrupt_handler() {
    let mut pressed = false;
    let _ = ctrlc::set_handler(move || {
        if pressed {
            std::process::exit(130);
        }
        pressed = true;
        runner::interrupt();
    });
}

fn status(message: &str) {
    eprintln!("-- {message}");
}

/// Loads a layout, printing its diagnostics if it is invalid, and its
/// warnings (which do not make it invalid) if it is valid.
fn load_layout(source: &LayoutSource) -> Option<partition_config::Layout> {
    match source.load_with_warnings() {
        Ok((layout, warnings)) => {
            if !warnings.is_empty() {
                // Ends with "N warnings in `FILE`".
                eprint!("{}", render(&warnings));
            }
            Some(layout)
        }
        Err(diagnostics) => {
            // The rendering ends with its own count ("N errors in `FILE`").
            eprint!("{}", render(&diagnostics));
            None
        }
    }
}

/// Diagnostics in color when `--color` and the environment say so.
fn render(diagnostics: &partition_config::Diagnostics) -> String {
    if COLOR.get().copied().unwrap_or(false) {
        diagnostics.render_colored()
    } else {
        diagnostics.render_plain()
    }
}

/// `check` of one file: its diagnostics (human on stderr, or JSON on
/// stdout), then its summary; whether it passed (`--deny-warnings`: no
/// warnings either).
fn check(path: &std::path::Path, args: &CheckArgs) -> bool {
    let source = LayoutSource::from_arg(path);
    let (layout, diagnostics) = match source.load_with_warnings() {
        Ok((layout, warnings)) => (Some(layout), warnings),
        Err(diagnostics) => (None, diagnostics),
    };
    let denied = args.deny_warnings && diagnostics.warning_count() > 0;
    if args.message_format == MessageFormat::Json {
        print!("{}", diagnostics.render_json());
        let summary = serde_json::json!({
            "reason": "layout-checked",
            "file": source.describe(),
            "valid": layout.is_some() && !denied,
            "errors": diagnostics.error_count(),
            "warnings": diagnostics.warning_count(),
        });
        println!("{summary}");
        return layout.is_some() && !denied;
    }
    if !diagnostics.is_empty() {
        // Ends with "N errors, M warnings in `FILE`".
        eprint!("{}", render(&diagnostics));
    }
    let Some(layout) = layout else {
        return false;
    };
    if denied {
        eprintln!(
            "error: {}: warnings are denied (--deny-warnings)",
            source.describe()
        );
        return false;
    }
    let cores = if layout.machine.cpus == 1 {
        "core"
    } else {
        "cores"
    };
    println!(
        "{}: ok: {} partition(s), {} channel(s) on {} {cores}, {}, timeout {} s",
        source.describe(),
        layout.partitions.len(),
        layout.channels.len(),
        layout.machine.cpus,
        MemorySize::from_mib(layout.machine.memory >> 20),
        layout.machine.timeout_secs
    );
    for p in &layout.partitions {
        println!(
            "  {:<16} cpu {:<3} {:>5} MiB  {}",
            p.name,
            p.cpu,
            p.region.size >> 20,
            p.workload
        );
    }
    for g in &layout.groups {
        let members: Vec<&str> = g
            .members
            .iter()
            .filter_map(|&i| layout.partitions.get(i).map(|p| p.name.as_str()))
            .collect();
        println!("  group {:<10} {}", g.name, members.join(", "));
    }
    true
}

fn explain(path: &std::path::Path) -> bool {
    let Some(layout) = load_layout(&LayoutSource::from_arg(path)) else {
        return false;
    };
    print!("{}", layout.explain());
    true
}

fn run(args: &RunArgs) -> anyhow::Result<Status> {
    let bare = args.no_layout || args.cpus.is_some() || args.memory.is_some();
    if bare && (args.report.is_some() || !args.expect_fault.is_empty()) {
        return Err(usage(
            "--report and --expect-fault apply to layout runs (drop --cpus/--memory/--no-layout)",
        ));
    }
    let source = match &args.layout {
        Some(path) => Some(LayoutSource::from_arg(path)),
        None if bare => None,
        None => Some(LayoutSource::Default),
    };
    let layout = match &source {
        Some(source) => match load_layout(source) {
            Some(layout) => Some(layout),
            None => return Ok(Status::Invalid),
        },
        None => None,
    };
    let emulator = match args.emulator {
        EmulatorArg::Qemu => {
            let request = match args.accel.unwrap_or(AccelArg::Tcg) {
                AccelArg::Tcg => AccelRequest::Tcg,
                AccelArg::Kvm => AccelRequest::Kvm,
                AccelArg::Auto => AccelRequest::Auto,
            };
            let accel = accel::resolve(request, &HostFacts::probe())?;
            Emulator::Qemu {
                accel,
                cpu_model: args.cpu_model.clone(),
            }
        }
        EmulatorArg::Bochs => {
            if args.accel.is_some() {
                return Err(usage("--accel applies to QEMU only; Bochs always emulates"));
            }
            if matches!(args.boot, Some(BootArg::Kernel | BootArg::IsoUefi)) {
                return Err(usage(
                    "Bochs boots the GRUB ISO with its BIOS only (drop --boot or use --boot iso)",
                ));
            }
            Emulator::Bochs {
                cpu_model: args
                    .cpu_model
                    .clone()
                    .unwrap_or_else(|| tools::bochs::DEFAULT_CPU_MODEL.into()),
            }
        }
    };
    let boot_kind = args.boot.unwrap_or(match args.emulator {
        EmulatorArg::Qemu => BootArg::Kernel,
        EmulatorArg::Bochs => BootArg::Iso,
    });
    // A missing tool is reported before the build, not after it.
    let kind = match boot_kind {
        BootArg::Kernel => BootKind::Kernel,
        BootArg::Iso => BootKind::Iso(Firmware::Bios),
        BootArg::IsoUefi => BootKind::Iso(Firmware::Uefi),
    };
    runner::check_tools(&emulator, kind)?;
    match (layout, source) {
        (Some(layout), Some(source)) => run_layout(args, layout, &source, emulator, kind),
        _ => run_bare(args, emulator, boot_kind),
    }
}

fn run_layout(
    args: &RunArgs,
    layout: partition_config::Layout,
    source: &LayoutSource,
    emulator: Emulator,
    kind: BootKind,
) -> anyhow::Result<Status> {
    layout_run::check_expectations(&layout, &args.expect_fault)?;
    let workspace = Workspace::locate();
    status("building the hypervisor and the guest kernel (release, x86_64-unknown-none)");
    let images = build::build_images(&workspace)?;
    let mut config = LayoutRunConfig::new(layout, images).with_emulator(emulator);
    config.boot = match kind {
        BootKind::Kernel => LayoutBoot::Kernel,
        BootKind::Iso(firmware) => LayoutBoot::Iso(firmware),
    };
    config.expect_faults = args.expect_fault.clone();
    config.timeout = args.timeout.map(Duration::from_secs);
    config.echo = !args.quiet;
    let machine = &config.layout.machine;
    let cores = if machine.cpus == 1 { "core" } else { "cores" };
    let described = format!(
        "{}, {} {cores}, {}",
        layout_run::emulator_name(&config.emulator),
        machine.cpus,
        MemorySize::from_mib(config.memory_mib())
    );
    status(&format!(
        "booting {} ({} partition(s)) on {described}",
        source.describe(),
        config.layout.partitions.len()
    ));
    let outcome = layout_run::run_layout(&config)?;
    if let Some(path) = &args.report {
        let layout_name = source.name();
        std::fs::write(path, outcome.report_file(&layout_name).to_json() + "\n")
            .with_context(|| format!("writing the report to {}", path.display()))?;
    }
    let passed = outcome.passed();
    if !passed && args.quiet {
        eprintln!("----- console (last {TAIL_LINES} lines) -----");
        eprintln!("{}", console::tail(outcome.console(), TAIL_LINES));
    }
    if !passed && !outcome.run.emulator_output.trim().is_empty() {
        eprintln!("----- emulator messages -----");
        eprintln!("{}", outcome.run.emulator_output.trim_end());
    }
    println!();
    print!("{}", outcome.report.table());
    if let Some(path) = &args.report {
        status(&format!("report written to {}", path.display()));
    }
    let seconds = outcome.run.duration.as_secs_f64();
    if passed {
        status(&format!("run passed in {seconds:.1}s ({described})"));
    } else {
        for reason in outcome.verdict.reasons() {
            eprintln!("error: {reason}");
        }
        eprintln!("error: run failed after {seconds:.1}s ({described})");
    }
    Ok(Status::from_passed(passed))
}

fn run_bare(args: &RunArgs, emulator: Emulator, boot_kind: BootArg) -> anyhow::Result<Status> {
    let cpus = args.cpus.unwrap_or(4);
    let memory = args.memory.unwrap_or(MemorySize::from_mib(512));
    let workspace = Workspace::locate();
    status("building the hypervisor (release, x86_64-unknown-none)");
    let elf = build::build_hypervisor(&workspace)?;

    // Kept alive until the run ends: the ISO lives in it.
    let scratch = tempfile::Builder::new()
        .prefix("flotilla-run-")
        .tempdir()
        .context("creating a temporary directory")?;
    let boot = match boot_kind {
        BootArg::Kernel => Boot::Kernel { elf, initrd: None },
        BootArg::Iso | BootArg::IsoUefi => {
            let iso = scratch.path().join("boot.iso");
            status("building the GRUB ISO");
            image::build_iso(
                &ImageSpec {
                    hypervisor: elf,
                    exit: emulator.exit_method(),
                    bundle: None,
                },
                &iso,
            )?;
            let firmware = if boot_kind == BootArg::IsoUefi {
                Firmware::Uefi
            } else {
                Firmware::Bios
            };
            Boot::Iso { iso, firmware }
        }
    };
    let machine = describe(&emulator, &boot, cpus, memory);
    status(&format!("booting {machine}"));
    let config = RunConfig {
        emulator,
        boot,
        cpus,
        memory_mib: memory.mib(),
        timeout: Duration::from_secs(args.timeout.unwrap_or(120)),
        echo: !args.quiet,
    };
    let outcome = runner::run(&config)?;
    let summary = &outcome.summary;
    let cores = summary
        .cores_online
        .map_or_else(|| "? cores".to_string(), |(n, e)| format!("{n}/{e} cores"));
    if outcome.success {
        status(&format!(
            "run succeeded: {cores} online, {:.1}s ({machine})",
            outcome.duration.as_secs_f64()
        ));
        return Ok(Status::Success);
    }
    if args.quiet {
        eprintln!("----- console (last {TAIL_LINES} lines) -----");
        eprintln!("{}", console::tail(&outcome.console, TAIL_LINES));
    }
    if !outcome.emulator_output.trim().is_empty() {
        eprintln!("----- emulator messages -----");
        eprintln!("{}", outcome.emulator_output.trim_end());
    }
    eprintln!(
        "error: run failed after {:.1}s: {}",
        outcome.duration.as_secs_f64(),
        outcome.failure.as_deref().unwrap_or("unknown reason")
    );
    Ok(Status::Failed)
}

fn describe(emulator: &Emulator, boot: &Boot, cpus: u32, memory: MemorySize) -> String {
    let emu = match emulator {
        Emulator::Qemu { accel, cpu_model } => format!(
            "QEMU {accel} -cpu {}",
            cpu_model.as_deref().unwrap_or(match accel {
                accel::Accel::Tcg => "max",
                accel::Accel::Kvm => "host",
            })
        ),
        Emulator::Bochs { cpu_model } => format!("Bochs {cpu_model}"),
    };
    let how = match boot {
        Boot::Kernel { .. } => "kernel",
        Boot::Iso {
            firmware: Firmware::Bios,
            ..
        } => "ISO, BIOS",
        Boot::Iso {
            firmware: Firmware::Uefi,
            ..
        } => "ISO, UEFI",
    };
    let cores = if cpus == 1 { "core" } else { "cores" };
    format!("{emu}, {cpus} {cores}, {memory}, {how}")
}

fn new_crate(args: &NewArgs) -> anyhow::Result<Status> {
    let runtime = Workspace::locate().root.join("flotilla-rt");
    let runtime = runtime.canonicalize().unwrap_or(runtime);
    let made = tools::scaffold::create(&args.dir, &runtime).map_err(usage)?;
    for file in &made.files {
        println!("{}", file.display());
    }
    status(&format!(
        "made workload crate `{}`; run it with: cargo flotilla run {}",
        made.name,
        made.dir.join("layout.toml").display()
    ));
    Ok(Status::Success)
}

fn build_command(args: &BuildArgs) -> anyhow::Result<Status> {
    let layout = match &args.layout {
        Some(path) => match load_layout(&LayoutSource::from_arg(path)) {
            Some(layout) => Some(layout),
            None => return Ok(Status::Invalid),
        },
        None => None,
    };
    let workspace = Workspace::locate();
    let dir = args
        .output
        .clone()
        .unwrap_or_else(|| workspace.target_dir.join("flotilla"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    status("building the hypervisor and the guest kernel (release, x86_64-unknown-none)");
    let images = build::build_images(&workspace)?;
    let copy = |from: &std::path::Path, name: &str| -> anyhow::Result<PathBuf> {
        let to = dir.join(name);
        std::fs::copy(from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        Ok(to)
    };
    println!("{}", copy(&images.hypervisor, "hypervisor.elf")?.display());
    println!(
        "{}",
        copy(&images.guest_kernel, "guest-kernel.elf")?.display()
    );
    if let Some(layout) = &layout {
        let bytes = tools::bundle::build(layout, &images.guest_kernel)?;
        layout_run::check_bundle_len(bytes.len())?;
        let path = dir.join("bundle.bin");
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(Status::Success)
}

fn initramfs(args: &InitramfsArgs) -> anyhow::Result<Status> {
    let busybox = match &args.busybox {
        Some(path) => path.clone(),
        None => tools::initramfs::LinuxAssets::locate()?.busybox,
    };
    // Before the build: a wrong path should not wait for cargo.
    if !busybox.is_file() {
        return Err(usage(format!(
            "--busybox {}: no such file (a static busybox, e.g. Debian's busybox-static)",
            busybox.display()
        )));
    }
    status("building flotilla-linux (release, x86_64-unknown-linux-musl)");
    let program = build::build_linux_user(&Workspace::locate())?;
    tools::initramfs::write(&busybox, &program, &args.output)?;
    println!("{}", args.output.display());
    Ok(Status::Success)
}

fn image(args: &ImageArgs) -> anyhow::Result<()> {
    image::check_tools()?;
    let layout = match &args.layout {
        Some(path) => match load_layout(&LayoutSource::from_arg(path)) {
            Some(layout) => Some(layout),
            None => {
                return Err(usage(format!(
                    "{} is not a valid layout (see the errors above)",
                    path.display()
                )))
            }
        },
        None => None,
    };
    let workspace = Workspace::locate();
    let exit = ExitMethod::from(args.exit);
    // The bundle file must outlive build_iso, which copies it into the ISO.
    let bundle_dir = tempfile::tempdir().context("creating a temporary directory")?;
    let (elf, bundle) = match &layout {
        Some(layout) => {
            status("building the hypervisor and the guest kernel (release, x86_64-unknown-none)");
            let images = build::build_images(&workspace)?;
            let bytes = tools::bundle::build(layout, &images.guest_kernel)?;
            layout_run::check_bundle_len(bytes.len())?;
            let path = bundle_dir.path().join("bundle.bin");
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
            (images.hypervisor, Some(path))
        }
        None => {
            status("building the hypervisor (release, x86_64-unknown-none)");
            (build::build_hypervisor(&workspace)?, None)
        }
    };
    let with_layout = args
        .layout
        .as_ref()
        .map(|p| format!(", layout {}", p.display()))
        .unwrap_or_default();
    image::build_iso(
        &ImageSpec {
            hypervisor: elf,
            exit,
            bundle,
        },
        &args.output,
    )?;
    status(&format!(
        "wrote {} (GRUB multiboot2, BIOS + UEFI, {}{with_layout})",
        args.output.display(),
        image::kernel_cmdline(exit)
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_defaults() {
        let cli = Cli::try_parse_from(["flotilla", "run"]).unwrap();
        let Cmd::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.timeout, None);
        assert_eq!(args.cpus, None);
        assert_eq!(args.layout, None);
        assert!(!args.no_layout);
        assert_eq!(args.emulator, EmulatorArg::Qemu);
        assert_eq!(args.accel, None);
        assert!(!args.quiet);
    }

    #[test]
    fn run_options_parse() {
        let cli = Cli::try_parse_from([
            "flotilla",
            "run",
            "--emulator",
            "bochs",
            "--cpu-model",
            "ryzen",
            "--cpus",
            "2",
            "--memory",
            "1 GiB",
            "--boot",
            "iso",
            "--timeout",
            "300",
            "--quiet",
        ])
        .unwrap();
        let Cmd::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.emulator, EmulatorArg::Bochs);
        assert_eq!(args.cpu_model.as_deref(), Some("ryzen"));
        assert_eq!(args.memory.map(MemorySize::mib), Some(1024));
        assert_eq!(args.boot, Some(BootArg::Iso));
        assert!(Cli::try_parse_from(["flotilla", "run", "--cpus", "0"]).is_err());
        assert!(Cli::try_parse_from(["flotilla", "run", "--memory", "lots"]).is_err());
        assert!(Cli::try_parse_from(["flotilla", "run", "--boot", "iso-uefi"]).is_ok());
    }

    #[test]
    fn layout_runs_take_reports_and_expectations() {
        let cli = Cli::try_parse_from([
            "flotilla",
            "run",
            "rogue.toml",
            "--report",
            "r.json",
            "--expect-fault",
            "rogue=npf",
            "--expect-fault",
            "other",
        ])
        .unwrap();
        let Cmd::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(
            args.layout.as_deref(),
            Some(std::path::Path::new("rogue.toml"))
        );
        assert_eq!(
            args.expect_fault,
            [
                FaultExpectation::new("rogue", Some(abi::fault::FaultKind::Npf)),
                FaultExpectation::new("other", None)
            ]
        );
        // A layout's machine comes from the layout.
        assert!(Cli::try_parse_from(["flotilla", "run", "x.toml", "--cpus", "2"]).is_err());
        assert!(Cli::try_parse_from(["flotilla", "run", "x.toml", "--no-layout"]).is_err());
        assert!(Cli::try_parse_from(["flotilla", "run", "--no-layout", "--report", "r"]).is_err());
        assert!(Cli::try_parse_from(["flotilla", "run", "--expect-fault", "="]).is_err());
        // An unknown kind is a usage error, naming the kinds there are.
        let err = Cli::try_parse_from(["flotilla", "run", "--expect-fault", "ping=npff"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`npff` is an unknown fault kind"), "{err}");
        assert!(err.contains("npf, triple-fault"), "{err}");
    }

    #[test]
    fn layout_commands_parse() {
        assert!(matches!(
            Cli::try_parse_from(["flotilla", "check", "a.toml"])
                .unwrap()
                .command,
            Cmd::Check(_)
        ));
        assert!(matches!(
            Cli::try_parse_from(["flotilla", "explain", "a.toml"])
                .unwrap()
                .command,
            Cmd::Explain(_)
        ));
        assert!(Cli::try_parse_from(["flotilla", "check"]).is_err());
        assert!(matches!(
            Cli::try_parse_from(["flotilla", "schema"]).unwrap().command,
            Cmd::Schema
        ));
        assert!(matches!(
            Cli::try_parse_from(["flotilla", "doctor"]).unwrap().command,
            Cmd::Doctor
        ));
    }

    #[test]
    fn image_needs_an_output() {
        assert!(Cli::try_parse_from(["flotilla", "image"]).is_err());
        let cli =
            Cli::try_parse_from(["flotilla", "image", "-o", "x.iso", "--exit", "bochs"]).unwrap();
        let Cmd::Image(args) = cli.command else {
            panic!("not image")
        };
        assert_eq!(ExitMethod::from(args.exit), ExitMethod::Bochs);
    }
}
