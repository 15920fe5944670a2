//! Boot to `/init`: Debian's kernel in a Flotilla partition against the
//! same kernel booted bare, both under QEMU TCG, side by side in one run
//! (`cargo bench -p e2e --bench linux_boot`; issue #15's target is a ratio
//! of at most 1.5).
//!
//! Each round boots, in turn:
//!
//! - **bare**: QEMU (`-accel tcg -cpu max`, one core, the partition's 256
//!   MiB) starting the PVH ELF inside the fetched bzImage with `-kernel`
//!   (as the hypervisor starts it), the initramfs with `-initrd`, the
//!   layout's command line;
//! - **partition**: the same QEMU booting the hypervisor with the boot
//!   bundle of a one-partition layout running the same kernel, initramfs
//!   and command line in a `compat = "linux"` partition of 256 MiB.
//!
//! The time measured is the wall time from QEMU's start to the console
//! line `/init` prints first (`tools::initramfs::USERSPACE_UP`); the
//! emulator is stopped there. Also printed: the kernel's uptime `/init`
//! reports, and the wall time before the kernel's clock started (the wall
//! time to `/init` less that uptime: QEMU's loading and the firmware bare;
//! also the hypervisor's boot and the partition's loading in a partition). The medians of
//! `FLOTILLA_BENCH_RUNS` rounds (default 3) and their ratio are printed,
//! with the load average (the machine may be shared). Nothing is asserted.
//!
//! Needs the fetched kernel (`bash ci/setup.sh`).
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use abi::cmdline::ExitMethod;
use tools::accel::Accel;
use tools::build::{self, Workspace};
use tools::initramfs::{self, LinuxAssets, USERSPACE_UP};
use tools::qemu::{QemuBoot, QemuInvocation};

/// The command line of both boots (`examples/linux.toml`'s).
const CMDLINE: &str =
    "quiet earlyprintk=ttyS0,keep 8250.nr_uarts=0 noapic io_delay=none tsc=reliable nowatchdog";
/// The partition's RAM, and the bare machine's.
const LINUX_MIB: u64 = 256;
/// The longest a boot to `/init` may take.
const TIMEOUT: Duration = Duration::from_secs(300);

/// The one-partition layout the partition boots run.
fn layout_toml() -> String {
    format!(
        r#"[machine]
cpus = 1
memory = "512 MiB"
timeout = 300

[[partition]]
name = "linux"
cpu = 0
memory = "{LINUX_MIB} MiB"
kernel = "vmlinuz"
compat = "linux"
cmdline = "{CMDLINE}"
initrd = "initramfs.cpio"
workload = "pingpong"      # no channel: flotilla-linux finds nothing to do
"#
    )
}

/// One boot to `/init`.
#[derive(Clone, Copy, Debug)]
struct Boot {
    /// From QEMU's start to `/init`'s first line.
    to_init: Duration,
    /// The kernel's uptime when `/init` started, as `/init` printed it.
    uptime: f64,
}

/// Runs QEMU with `args` until a console line contains [`USERSPACE_UP`].
fn boot_to_init(args: &[OsString]) -> Result<Boot, String> {
    let qemu = tools::system::QEMU.locate().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut child = Command::new(qemu)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting QEMU: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            if tx.send((start.elapsed(), text)).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let found = loop {
        let left = TIMEOUT.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok((at, line)) => {
                if line.contains(USERSPACE_UP) {
                    break Some((at, line));
                }
                seen.push(line);
            }
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let Some((to_init, line)) = found else {
        return Err(format!(
            "no /init line within {TIMEOUT:?}; console:\n{}",
            seen.join("\n")
        ));
    };
    let uptime = line
        .split(USERSPACE_UP)
        .nth(1)
        .and_then(|rest| rest.strip_prefix(" after "))
        .and_then(|rest| rest.split_once('s'))
        .and_then(|(u, _)| u.parse().ok())
        .unwrap_or(f64::NAN);
    Ok(Boot { to_init, uptime })
}

/// QEMU's arguments for booting `elf` with `initrd` and `cmdline`.
fn qemu_args(elf: &Path, initrd: &Path, cmdline: String, cpus: u32, mib: u64) -> Vec<OsString> {
    tools::qemu::arguments(&QemuInvocation {
        accel: Accel::Tcg,
        cpu_model: None,
        cpus,
        memory_mib: mib,
        boot: QemuBoot::Kernel {
            elf: elf.to_path_buf(),
            cmdline,
            initrd: Some(initrd.to_path_buf()),
        },
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() -> Result<(), String> {
    // `cargo bench` passes `--bench`; filters are not supported.
    let runs: usize = match std::env::var("FLOTILLA_BENCH_RUNS") {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("FLOTILLA_BENCH_RUNS={v}: not a number"))?,
        Err(_) => 3,
    };
    let assets = LinuxAssets::locate().map_err(|e| e.to_string())?;
    let ws = Workspace::locate();
    let images = build::build_images(&ws).map_err(|e| e.to_string())?;
    let program = build::build_linux_user(&ws).map_err(|e| e.to_string())?;
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(path(name), bytes).map_err(|e| format!("writing {name}: {e}"))
    };
    let archive =
        initramfs::build(&read(&assets.busybox)?, &read(&program)?).map_err(|e| e.to_string())?;
    write("initramfs.cpio", &archive)?;
    write(
        "vmlinux",
        &tools::bzimage::extract(&read(&assets.vmlinuz)?)?,
    )?;
    std::fs::copy(&assets.vmlinuz, path("vmlinuz")).map_err(|e| e.to_string())?;
    write("linux.toml", layout_toml().as_bytes())?;
    let layout = tools::layout_run::LayoutSource::File(path("linux.toml"))
        .load()
        .map_err(|d| format!("the bench layout: {}", d.render_plain()))?;
    let bundle =
        tools::layout_run::write_bundle(&layout, &images, dir.path()).map_err(|e| e.to_string())?;
    let machine_mib =
        tools::layout_run::LayoutRunConfig::new(layout.clone(), images.clone()).memory_mib();
    let bare = qemu_args(
        &path("vmlinux"),
        &path("initramfs.cpio"),
        CMDLINE.to_string(),
        1,
        LINUX_MIB,
    );
    let partition = qemu_args(
        &images.hypervisor,
        &bundle,
        tools::image::kernel_cmdline(ExitMethod::Qemu),
        u32::from(layout.machine.cpus),
        machine_mib,
    );
    let sizes = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    println!(
        "linux_boot: Debian {} ({}), {runs} round(s); bzImage {} B, PVH ELF {} B, initramfs {} B, \
         bundle {} B; load average {}",
        assets.kernel_version,
        assets.package,
        sizes(&assets.vmlinuz),
        sizes(&path("vmlinux")),
        sizes(&path("initramfs.cpio")),
        sizes(&bundle),
        load_average()
    );
    let (mut bare_boots, mut partition_boots) = (Vec::new(), Vec::new());
    for round in 1..=runs {
        for (what, args, boots) in [
            ("bare", &bare, &mut bare_boots),
            ("partition", &partition, &mut partition_boots),
        ] {
            let boot = boot_to_init(args)?;
            println!(
                "linux_boot: round {round} {what:>9}: /init after {:6.2} s (kernel uptime {:5.2} \
                 s, so the kernel's clock started after {:5.2} s)",
                boot.to_init.as_secs_f64(),
                boot.uptime,
                boot.to_init.as_secs_f64() - boot.uptime
            );
            boots.push(boot);
        }
    }
    let med = |boots: &[Boot], f: fn(&Boot) -> f64| median(boots.iter().map(f).collect());
    let wall = |b: &Boot| b.to_init.as_secs_f64();
    let before = |b: &Boot| b.to_init.as_secs_f64() - b.uptime;
    let uptime = |b: &Boot| b.uptime;
    let (bw, pw) = (med(&bare_boots, wall), med(&partition_boots, wall));
    println!(
        "linux_boot: median wall time to /init: partition {pw:.2} s, bare {bw:.2} s: ratio {:.2} \
         (before the kernel's clock {:.2} s / {:.2} s; kernel uptime at /init {:.2} s / {:.2} s); load \
         average {}",
        pw / bw,
        med(&partition_boots, before),
        med(&bare_boots, before),
        med(&partition_boots, uptime),
        med(&bare_boots, uptime),
        load_average()
    );
    Ok(())
}
