//! `flotilla`: the one entry point for humans and CI (`cargo flotilla ...`).
//!
//! This file only parses the command line and sequences library calls
//! (build, image, run); everything else lives in the `tools` library.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

use abi::cmdline::ExitMethod;
use tools::accel::{self, AccelRequest, HostFacts};
use tools::build::{self, Workspace};
use tools::console;
use tools::image::{self, ImageSpec};
use tools::runner::{self, Boot, BootKind, Emulator, Firmware, RunConfig};
use tools::units::MemorySize;

/// Flotilla: a hypervisor-hosted multikernel. Builds, boots and checks it.
#[derive(Debug, Parser)]
#[command(name = "flotilla", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build the hypervisor, boot it in an emulator, stream the console and
    /// exit 0 only if the run succeeded.
    Run(RunArgs),
    /// Build a GRUB multiboot2 ISO that boots with BIOS and UEFI.
    Image(ImageArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Fail (and kill the emulator) after this many seconds.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    timeout: u64,
    /// QEMU accelerator: tcg (default), kvm (needs nested virtualization),
    /// or auto (kvm when possible).
    #[arg(long, value_enum)]
    accel: Option<AccelArg>,
    /// Number of cores.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    cpus: u32,
    /// Guest RAM, e.g. 512M, "512 MiB", 1G.
    #[arg(long, default_value = "512M", value_name = "SIZE")]
    memory: MemorySize,
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
struct ImageArgs {
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

/// Lines of console shown after a failed `--quiet` run.
const TAIL_LINES: usize = 40;

fn main() -> ExitCode {
    let cli = Cli::parse();
    install_interrupt_handler();
    let result = match cli.command {
        Cmd::Run(args) => run(&args),
        Cmd::Image(args) => image(&args).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
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

fn run(args: &RunArgs) -> anyhow::Result<bool> {
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
                bail!("--accel applies to QEMU only; Bochs always emulates");
            }
            if matches!(args.boot, Some(BootArg::Kernel | BootArg::IsoUefi)) {
                bail!(
                    "Bochs boots the GRUB ISO with its BIOS only (drop --boot or use --boot iso)"
                );
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
    runner::check_tools(
        &emulator,
        match boot_kind {
            BootArg::Kernel => BootKind::Kernel,
            BootArg::Iso => BootKind::Iso(Firmware::Bios),
            BootArg::IsoUefi => BootKind::Iso(Firmware::Uefi),
        },
    )?;

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
    let machine = describe(&emulator, &boot, args);
    status(&format!("booting {machine}"));
    let config = RunConfig {
        emulator,
        boot,
        cpus: args.cpus,
        memory_mib: args.memory.mib(),
        timeout: Duration::from_secs(args.timeout),
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
        return Ok(true);
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
    Ok(false)
}

fn describe(emulator: &Emulator, boot: &Boot, args: &RunArgs) -> String {
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
    let cores = if args.cpus == 1 { "core" } else { "cores" };
    format!("{emu}, {} {cores}, {}, {how}", args.cpus, args.memory)
}

fn image(args: &ImageArgs) -> anyhow::Result<()> {
    image::check_tools()?;
    let workspace = Workspace::locate();
    status("building the hypervisor (release, x86_64-unknown-none)");
    let elf = build::build_hypervisor(&workspace)?;
    let exit = ExitMethod::from(args.exit);
    image::build_iso(
        &ImageSpec {
            hypervisor: elf,
            exit,
            bundle: None,
        },
        &args.output,
    )?;
    status(&format!(
        "wrote {} (GRUB multiboot2, BIOS + UEFI, {})",
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
        assert_eq!(args.timeout, 120);
        assert_eq!(args.cpus, 4);
        assert_eq!(args.memory.mib(), 512);
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
        assert_eq!(args.memory.mib(), 1024);
        assert_eq!(args.boot, Some(BootArg::Iso));
        assert!(Cli::try_parse_from(["flotilla", "run", "--cpus", "0"]).is_err());
        assert!(Cli::try_parse_from(["flotilla", "run", "--memory", "lots"]).is_err());
        assert!(Cli::try_parse_from(["flotilla", "run", "--boot", "iso-uefi"]).is_ok());
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
