//! A stock Debian kernel (the one `ci/setup.sh` fetched with `apt-get
//! download`) with an initramfs the tools build (busybox, `/init`,
//! `flotilla-linux`):
//!
//! - in a `compat = "linux"` partition (`examples/linux.toml`, with the
//!   fetched kernel and the initramfs next to it) beside two built-in
//!   partitions, under QEMU TCG (SVM) and Bochs (VMX): it reaches `/init`,
//!   `flotilla-linux` plays 1000 round trips with the built-in `pingpong`
//!   partition over a poll channel, `/init` powers off (ACPI S5: exit code
//!   0), and the built-in partitions' results are right; under QEMU TCG
//!   it runs twice, `/init` idling 1 s and then 6 s, and the 5 s more
//!   (1,250 timer ticks) may cost only a handful of VM exits beyond the
//!   console bytes (an idle partition takes no exit per tick);
//! - booted bare by QEMU TCG with a Flotilla block and a channel region
//!   the test wrote into reserved memory (QEMU's loader device, Linux's
//!   `memmap=`): `flotilla-linux` reads the block and maps the region
//!   through `/dev/mem` as in a partition, and echoes the messages the
//!   test put in the ring (the partition tests need the whole hypervisor;
//!   this one needs only Linux);
//! - booted bare by QEMU TCG (`-kernel` with the PVH ELF the tools take
//!   out of the bzImage, the same initramfs and command line): it reaches
//!   `/init`, the program finds no Flotilla block and says so, and the
//!   machine powers off. (Boot times, bare against in a partition, are the
//!   bench's: `cargo bench -p e2e --bench linux_boot`.)
//!
//! Needs the fetched kernel (`bash ci/setup.sh`); nothing is skipped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use e2e::{
    assert_passed, assert_result, boot_layout, examples_dir, fail_layout, layout_config,
    layout_file, partition, partition_console, primes_below, Emulator,
};
use tools::build::{self, Workspace};
use tools::initramfs::{
    self, LinuxAssets, IDLED, IDLE_PARAM, IDLING, PROGRAM_EXITED, USERSPACE_UP,
};
use tools::layout_run::LayoutOutcome;

/// Rounds of `examples/linux.toml`.
const ROUNDS: u64 = 1000;

/// The command line of every Linux boot here, `examples/linux.toml`'s (a
/// partition's also gets `flotilla-block=` and the TSC rate from the
/// hypervisor): quiet so the console carries the lines that matter and
/// the boot is not spent printing; the console is the early one on COM1,
/// kept, with no serial driver (it would poll the interrupt-less UART);
/// no I/O APIC (a partition has none), no port 0x80 delays, no
/// clocksource watchdog.
const CMDLINE: &str =
    "quiet earlyprintk=ttyS0,keep 8250.nr_uarts=0 noapic io_delay=none tsc=reliable nowatchdog";

/// One emulator at a time in this test binary (bare boots and layout
/// runs alike): two TCG runs side by side only make both slower, and the
/// boot times printed would not compare.
fn emulator_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the tests boot, prepared once per test binary.
struct Linux {
    /// The fetched kernel and busybox.
    assets: LinuxAssets,
    /// The initramfs.
    initrd: PathBuf,
    /// The PVH ELF inside the fetched bzImage, taken out as the bundle
    /// builder takes it (`tools::bzimage`): what the bare boots start, so
    /// that they and the partition start the same kernel the same way.
    vmlinux: PathBuf,
}

/// Writes `bytes` to `dir/name` under a name of this process first, then
/// renames it into place, so a concurrent test run never boots a
/// half-written file.
fn write_into_place(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
    std::fs::write(&partial, bytes).map_err(|e| format!("writing {}: {e}", partial.display()))?;
    let path = dir.join(name);
    std::fs::rename(&partial, &path).map_err(|e| format!("renaming {}: {e}", partial.display()))?;
    Ok(path)
}

/// The fetched kernel, its PVH ELF and the initramfs, built once per test
/// binary.
fn linux() -> &'static Linux {
    static BUILT: OnceLock<Result<Linux, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let assets = LinuxAssets::locate().map_err(|e| e.to_string())?;
        let ws = Workspace::locate();
        let program = build::build_linux_user(&ws).map_err(|e| e.to_string())?;
        let dir = ws.scratch_dir("linux").map_err(|e| e.to_string())?;
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))
        };
        let archive = initramfs::build(&read(&assets.busybox)?, &read(&program)?)
            .map_err(|e| e.to_string())?;
        let initrd = write_into_place(&dir, "initramfs.cpio", &archive)?;
        let elf = tools::bzimage::extract(&read(&assets.vmlinuz)?)?;
        let vmlinux = write_into_place(&dir, "vmlinux", &elf)?;
        Ok(Linux {
            assets,
            initrd,
            vmlinux,
        })
    });
    match built {
        Ok(b) => b,
        Err(e) => panic!("cannot prepare Linux: {e}"),
    }
}

/// The kernel's uptime when `/init` started, from the line `/init` prints
/// ([`USERSPACE_UP`]), if the line names `release`.
fn uptime_at_init(console: &str, release: &str) -> Option<f64> {
    let line = console.lines().find(|l| l.contains(USERSPACE_UP))?;
    let rest = line.split(USERSPACE_UP).nth(1)?;
    let (uptime, kernel) = rest.strip_prefix(" after ")?.split_once("s (Linux ")?;
    if kernel.trim_end_matches(')') != release {
        return None;
    }
    uptime.parse().ok()
}

/// What a bare boot printed, and when.
struct Bare {
    /// Console lines with their time from QEMU's start.
    lines: Vec<(Duration, String)>,
    /// QEMU's exit status, if it exited before the timeout.
    status: Option<std::process::ExitStatus>,
    /// From QEMU's start to its exit (or the timeout).
    duration: Duration,
}

impl Bare {
    fn console(&self) -> String {
        self.lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    fn when(&self, needle: &str) -> Option<Duration> {
        self.lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
    }
}

/// Boots the kernel bare under QEMU TCG (its PVH ELF with `-kernel`, as a
/// partition starts it) with the initramfs, until it powers off or
/// `timeout` passes.
fn bare_boot(linux: &Linux, timeout: Duration) -> Bare {
    bare_boot_with(linux, "", &[], timeout)
}

/// [`bare_boot`] with `extra` appended to the command line and more QEMU
/// arguments.
fn bare_boot_with(linux: &Linux, extra: &str, qemu_args: &[String], timeout: Duration) -> Bare {
    let qemu = tools::system::QEMU.locate().expect("QEMU (ci/setup.sh)");
    let _turn = emulator_turn();
    let start = Instant::now();
    let memory = if qemu_args.is_empty() { "256" } else { "3136" };
    let mut child = Command::new(qemu)
        .args(["-m", memory])
        .args(["-accel", "tcg", "-cpu", "max", "-smp", "1"])
        .args([
            "-nographic",
            "-no-reboot",
            "-monitor",
            "none",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(&linux.vmlinux)
        .arg("-initrd")
        .arg(&linux.initrd)
        .args(qemu_args)
        .arg("-append")
        .arg(format!("{CMDLINE}{extra}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("QEMU starts");
    let (tx, rx) = mpsc::channel();
    let reader = child.stdout.take().map(|stdout| {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                if tx.send((start.elapsed(), text)).is_err() {
                    break;
                }
            }
        })
    });
    let mut status = None;
    while start.elapsed() < timeout {
        match child.try_wait() {
            Ok(Some(s)) => {
                status = Some(s);
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => break,
        }
    }
    let duration = start.elapsed();
    if status.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    if let Some(reader) = reader {
        let _ = reader.join();
    }
    Bare {
        lines: rx.try_iter().collect(),
        status,
        duration,
    }
}

/// `examples/linux.toml` booted under `emulator`, with the fetched kernel
/// and the initramfs copied next to it (as its comment tells users to).
fn boot_example(emulator: Emulator, extra_cmdline: &str) -> LayoutOutcome {
    let Linux { assets, initrd, .. } = linux();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let copy = |from: &std::path::Path, name: &str| {
        std::fs::copy(from, dir.path().join(name))
            .unwrap_or_else(|e| panic!("copying {} to {name}: {e}", from.display()));
    };
    let toml = std::fs::read_to_string(examples_dir().join("linux.toml")).expect("the example");
    let cmdline = format!("cmdline = \"{CMDLINE}\"");
    assert!(toml.contains(&cmdline), "examples/linux.toml has {cmdline}");
    let toml = toml.replace(&cmdline, &format!("cmdline = \"{CMDLINE}{extra_cmdline}\""));
    std::fs::write(dir.path().join("linux.toml"), toml).expect("write the layout");
    copy(&assets.vmlinuz, "vmlinuz");
    copy(initrd, "initramfs.cpio");
    let layout = layout_file(&dir.path().join("linux.toml"));
    let mut config = layout_config(layout);
    config.emulator = emulator;
    let _turn = emulator_turn();
    boot_layout(&config)
}

/// Asserts what every Linux run must show, and returns the kernel's uptime
/// at `/init`: every partition exited 0 (Linux by powering off), Linux's
/// userspace came up on the fetched kernel, `flotilla-linux` did its round
/// trips with `pong` and exited 0, and the built-in partitions' results
/// are right.
fn assert_linux_example(outcome: &LayoutOutcome) -> f64 {
    let assets = &linux().assets;
    assert_passed(outcome);
    let linux = partition(outcome, "linux");
    if linux.exit_code != Some(0) {
        fail_layout(outcome, "linux did not power off with exit code 0");
    }
    let console = partition_console(outcome, "linux").join("\n");
    let Some(uptime) = uptime_at_init(&console, &assets.kernel_version) else {
        fail_layout(outcome, "no /init line naming the fetched kernel")
    };
    for expected in [
        format!("flotilla-linux: pingpong: {ROUNDS} round trips with pong: median "),
        format!("flotilla-linux: result rounds={ROUNDS} channels=1 broken_channels=0 median_ns="),
        format!("{PROGRAM_EXITED} 0"),
    ] {
        if !console.contains(&expected) {
            fail_layout(outcome, &format!("linux's console lacks {expected:?}"));
        }
    }
    assert_result(outcome, "pong", "rounds", ROUNDS);
    assert_result(outcome, "compute", "primes", primes_below(100_000));
    eprintln!(
        "linux: in a partition: /init after {uptime:.2}s of kernel uptime; {} VM exits ({:?}); \
         compat use {:?}",
        linux.vm_exits.total, linux.vm_exits.by_reason, linux.compat
    );
    uptime
}

/// VM exits an idle Linux partition may take in 5 s beyond its console
/// bytes: its 1,250 timer ticks (HZ=250) take none (measured: 0 in all; a
/// handful is allowed for a timer reprogramming that lands in the idle
/// phase on one run and not the other).
const IDLE_EXITS_ALLOWED: u64 = 8;
/// VM exits per byte on the virtual UART: the early console reads the line
/// status, then writes the byte.
const EXITS_PER_UART_BYTE: u64 = 2;

/// The VM exits of `partition` by reason, one `reason n` word each.
fn exits_by_reason(report: &e2e::PartitionReport) -> String {
    let words: Vec<String> = report
        .vm_exits
        .by_reason
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    words.join(", ")
}

#[test]
fn debian_linux_in_a_partition_pings_the_built_in_kernel_under_qemu_tcg() {
    // With an idle phase of 1 s, then of 6 s, before the power-off: both
    // print the same lines and run the same programs, so the difference
    // in VM exits is what 5 s (1,250 ticks) of an idle Linux cost.
    let short = boot_example(Emulator::qemu_tcg(), &format!(" {IDLE_PARAM}=1"));
    assert_linux_example(&short);
    let long = boot_example(Emulator::qemu_tcg(), &format!(" {IDLE_PARAM}=6"));
    assert_linux_example(&long);
    for (outcome, secs) in [(&short, 1), (&long, 6)] {
        let console = partition_console(outcome, "linux").join("\n");
        if !console.contains(&format!("{IDLING} {secs} s")) || !console.contains(IDLED) {
            fail_layout(outcome, &format!("linux did not idle {secs} s"));
        }
    }
    let (a, b) = (partition(&short, "linux"), partition(&long, "linux"));
    let uart = |r: &e2e::PartitionReport| r.compat.map_or(0, |c| c.uart_bytes);
    let extra = b.vm_exits.total.saturating_sub(a.vm_exits.total);
    let console_exits = uart(b).abs_diff(uart(a)) * EXITS_PER_UART_BYTE;
    let mut reasons: Vec<String> = b
        .vm_exits
        .by_reason
        .iter()
        .map(|(reason, n)| {
            let before = a.vm_exits.by_reason.get(reason).copied().unwrap_or(0);
            format!("{reason} {}", i128::from(*n) - i128::from(before))
        })
        .collect();
    reasons.sort();
    eprintln!(
        "linux: VM exits idling 1 s: {} ({}); idling 6 s: {} ({}); the 5 s more (1,250 ticks \
         at HZ=250) cost {extra} ({}), {console_exits} of them explained by {} more UART \
         byte(s); compat use {:?} then {:?}",
        a.vm_exits.total,
        exits_by_reason(a),
        b.vm_exits.total,
        exits_by_reason(b),
        reasons.join(", "),
        uart(b).abs_diff(uart(a)),
        a.compat,
        b.compat
    );
    if extra > console_exits + IDLE_EXITS_ALLOWED {
        fail_layout(
            &long,
            &format!(
                "5 s more of idle cost {extra} VM exits: more than the {console_exits} of the \
                 console bytes and {IDLE_EXITS_ALLOWED} more"
            ),
        );
    }
}

#[test]
fn debian_linux_in_a_partition_pings_the_built_in_kernel_under_bochs_vmx() {
    let outcome = boot_example(Emulator::bochs(), "");
    e2e::assert_backend(&outcome, "vmx");
    assert_linux_example(&outcome);
}

#[test]
fn the_stock_kernel_boots_bare_to_init_and_powers_off() {
    let linux = linux();
    let Linux { assets, initrd, .. } = linux;
    let bare = bare_boot(linux, Duration::from_secs(300));
    let console = bare.console();
    let fail = |what: &str| -> ! {
        panic!(
            "{what} ({:.1}s, QEMU status {:?})\n----- console -----\n{console}-------------------",
            bare.duration.as_secs_f64(),
            bare.status
        )
    };
    let Some(up) = bare.when(USERSPACE_UP) else {
        fail("no /init line")
    };
    let Some(uptime) = uptime_at_init(&console, &assets.kernel_version) else {
        fail("/init does not say its uptime and the fetched kernel's release")
    };
    // Bare, there is no Flotilla block: the program says why and exits 4.
    if !console.contains("flotilla-linux: no flotilla-block= on the kernel command line") {
        fail("the program did not report the missing block");
    }
    if !console.contains(&format!("{PROGRAM_EXITED} 4")) {
        fail("the program's exit status is not 4");
    }
    if bare.status.is_none() {
        fail("QEMU did not exit: no power-off");
    }
    eprintln!(
        "linux: bare QEMU TCG (PVH), Debian {} ({}): /init after {uptime:.2}s of kernel uptime, \
         {:.2}s from QEMU's start; powered off after {:.2}s; bzImage {} bytes, its PVH ELF {} \
         bytes, initramfs {} bytes",
        assets.kernel_version,
        assets.package,
        up.as_secs_f64(),
        bare.duration.as_secs_f64(),
        std::fs::metadata(&assets.vmlinuz).map_or(0, |m| m.len()),
        std::fs::metadata(&linux.vmlinux).map_or(0, |m| m.len()),
        std::fs::metadata(initrd).map_or(0, |m| m.len()),
    );
}

/// Where the test puts the channel region in the bare machine: the
/// bottom of the channel window, which is RAM in a machine of 3136 MiB
/// (QEMU's `pc` puts RAM below 4 GiB up to there; Linux is told to leave
/// it alone, `memmap=`).
const BARE_REGION_GPA: u64 = abi::boot::CHANNEL_WINDOW_GPA;
/// Where the test puts the block: 1 MiB above the region, same reserved
/// range. (A partition's block is below 1 MiB, in its boot area; bare, the
/// firmware, SeaBIOS, uses and clears that memory before Linux starts.)
const BARE_BLOCK_GPA: u64 = BARE_REGION_GPA + 0x10_0000;

/// A 64-slot channel region formatted by the `channels` crate (as the
/// hypervisor formats it) with `rounds` messages from endpoint A already
/// in its ring, as bytes.
fn prefilled_region(rounds: u64) -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let words = channels::region_size(64) / 8;
    let mut mem: Vec<AtomicU64> = (0..words + 8).map(|_| AtomicU64::new(0)).collect();
    let skip = mem.as_ptr().align_offset(64);
    let region = channels::Region::from_words(&mut mem[skip..skip + words]).expect("aligned");
    let mut channel = channels::Channel::format(region, 64).expect("format");
    let region = channel.words();
    let mut a = channel.duplex(channels::Side::A).expect("side A, once");
    for round in 0..rounds {
        a.try_send(&round.to_le_bytes()).expect("a free slot");
    }
    region
        .iter()
        .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
        .collect()
}

/// The Flotilla block of a partition `linux` that is endpoint B of one
/// poll channel (with `ping`) at [`BARE_REGION_GPA`], running `pingpong`.
fn bare_block(rounds: u64) -> Vec<u8> {
    use abi::boot::{name_field, ChannelInfo, FlotillaBlock, Notify};
    use zerocopy::{FromZeros, IntoBytes};
    let args = format!("rounds={rounds}");
    let header = std::mem::size_of::<FlotillaBlock>();
    let record = std::mem::size_of::<ChannelInfo>();
    let size = u32::try_from(header + record + args.len()).expect("small");
    let block = FlotillaBlock {
        magic: abi::boot::BLOCK_MAGIC,
        version: abi::boot::BOOT_PROTOCOL_VERSION,
        size,
        partition_count: 2,
        memory: 256 << 20,
        name: name_field("linux").expect("short"),
        workload: name_field("pingpong").expect("short"),
        channel_count: 1,
        channels_offset: u32::try_from(header).expect("small"),
        args_offset: u32::try_from(header + record).expect("small"),
        args_len: u32::try_from(args.len()).expect("small"),
        ..FlotillaBlock::new_zeroed()
    };
    let channel = ChannelInfo {
        gpa: BARE_REGION_GPA,
        size: channels::region_size(64) as u64,
        channel_id: 0,
        slots: 64,
        side: 1,
        notify: Notify::Poll as u32,
        vector: 0x40,
        peer_vector: 0x40,
        peer_name: name_field("ping").expect("short"),
        ..ChannelInfo::new_zeroed()
    };
    let mut bytes = block.as_bytes().to_vec();
    bytes.extend_from_slice(channel.as_bytes());
    bytes.extend_from_slice(args.as_bytes());
    bytes
}

#[test]
fn flotilla_linux_reads_the_block_and_maps_its_channel_through_dev_mem() {
    const ROUNDS: u64 = 5;
    let linux = linux();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let region = dir.path().join("region.bin");
    let block = dir.path().join("block.bin");
    std::fs::write(&region, prefilled_region(ROUNDS)).expect("write the region");
    std::fs::write(&block, bare_block(ROUNDS)).expect("write the block");
    let loader = |file: &std::path::Path, gpa: u64| {
        [
            "-device".to_string(),
            format!("loader,file={},addr={gpa:#x},force-raw=on", file.display()),
        ]
    };
    let mut qemu_args = Vec::new();
    qemu_args.extend(loader(&region, BARE_REGION_GPA));
    qemu_args.extend(loader(&block, BARE_BLOCK_GPA));
    // Reserved in Linux's memory map, as a partition's boot area and
    // channel regions are: /dev/mem (STRICT_DEVMEM) then allows them.
    let extra = format!(
        " memmap=2M${BARE_REGION_GPA:#x} flotilla-block={BARE_BLOCK_GPA:#x} {IDLE_PARAM}=1"
    );
    let bare = bare_boot_with(linux, &extra, &qemu_args, Duration::from_secs(300));
    let console = bare.console();
    let fail = |what: &str| -> ! {
        panic!(
            "{what} ({:.1}s, QEMU status {:?})\n----- console -----\n{console}-------------------",
            bare.duration.as_secs_f64(),
            bare.status
        )
    };
    for expected in [
        format!("flotilla-linux: partition linux (partition 0, cpu 0): pingpong rounds={ROUNDS} over 1 channel(s)"),
        format!("flotilla-linux: pingpong: echoed {ROUNDS} messages from ping"),
        format!("flotilla-linux: result rounds={ROUNDS} channels=1 broken_channels=0"),
        format!("{PROGRAM_EXITED} 0"),
        format!("{IDLING} 1 s"),
        IDLED.to_string(),
    ] {
        if !console.contains(&expected) {
            fail(&format!("no {expected:?}"));
        }
    }
    if bare.status.is_none() {
        fail("QEMU did not exit: no power-off");
    }
}
