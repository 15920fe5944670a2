//! The attack matrix (issue #10): every attack of the guest kernel's
//! `rogue` workload, what it does, and what it must end in on each backend
//! ([`ROGUE_MATRIX`]). The same table drives the end-to-end runs
//! ([`run_matrix`]: several rogue partitions per boot next to well-behaved
//! ones) and the matrix section of `docs/threat-model.md`
//! ([`render_markdown`], checked by `tests/tests/threat_matrix.rs`), so the
//! documented outcomes are the tested ones.
//!
//! Environment knobs for [`run_matrix`]: `FLOTILLA_MATRIX_ONLY=a,b,...`
//! runs only those attacks; `FLOTILLA_MATRIX_SOLO=1` boots each attack on
//! its own (slower, but one attack cannot spoil another's evidence);
//! `FLOTILLA_MATRIX_CPUS=N` changes the cores per boot.

use crate::{boot_layout, layout, layout_config, primes_below, Emulator, LayoutOutcome};
use crate::{PartitionReport, PartitionState};
use abi::fault::FaultKind;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// What an attack goes after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Memory outside the partition's RAM and channels.
    Memory,
    /// I/O ports the partition was not (and cannot be) granted.
    Port,
    /// Model-specific registers.
    Msr,
    /// The local APIC: ICR delivery modes, LVT entries, self-IPI.
    Apic,
    /// IPIs along or outside channels.
    Ipi,
    /// Virtualization and cache instructions, XSETBV.
    Instruction,
    /// Hypercalls with hostile arguments.
    Hypercall,
    /// Never finishing: the run timeout must stop it.
    Stop,
}

impl Class {
    /// As shown in the matrix.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Memory => "memory",
            Class::Port => "port",
            Class::Msr => "MSR",
            Class::Apic => "APIC",
            Class::Ipi => "IPI",
            Class::Instruction => "instruction",
            Class::Hypercall => "hypercall",
            Class::Stop => "stop",
        }
    }
}

/// How an attack must end (`docs/run-report.md` names the states and
/// fault kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Stopped by the hypervisor with this fault kind.
    Fault(FaultKind),
    /// Still running at the layout's deadline: stopped by the run timeout.
    TimedOut,
    /// Harmless, allowed: the rogue checks the answer itself and exits 0
    /// with `answer=WORD` in its result.
    Answer(&'static str),
    /// Refused by the CPU inside the guest: #UD, which the guest kernel's
    /// exception handler reports before ending the partition with exit code
    /// 255 (nothing reached the hypervisor but the `EXIT`).
    GuestUd,
    /// Allowed: the partition exits with this code.
    Exit(u64),
    /// A request the hypervisor must not honour: the partition is stopped
    /// (any fault kind), or the call fails and the rogue's next instruction
    /// (`ud2`) ends it through the guest kernel's #UD handler (exit 255).
    Refused,
    /// The other vendor's instruction, ignored by the emulated CPU inside
    /// the guest (QEMU TCG decodes the `0F C7 /6` VMX forms as no-ops
    /// where hardware raises #UD): nothing reaches the hypervisor and the
    /// rogue comes back (its "not stopped" exit code 3).
    Ignored,
    /// Hostile result text: the rogue exits 0 and its report line parses,
    /// with this key in its result (the text accepted, numbers re-emitted
    /// canonically) or `answer=invalid` (refused at the hypercall).
    ResultKept(&'static str),
}

/// Exit code of the guest kernel's exception handler.
pub const EXCEPTION_EXIT_CODE: u64 = 255;
/// Exit code of a rogue whose attack came back (`rogue.rs`).
pub const NOT_STOPPED_EXIT_CODE: u64 = 3;

impl Expect {
    /// As shown in the matrix.
    pub fn describe(self) -> String {
        match self {
            Expect::Fault(kind) => format!("`{}`", kind.as_str()),
            Expect::TimedOut => "`timed-out`".into(),
            Expect::Answer(word) => format!("allowed, `answer={word}`"),
            Expect::GuestUd => format!("#UD in the guest (exit {EXCEPTION_EXIT_CODE})"),
            Expect::Exit(code) => format!("allowed, exit code {code}"),
            Expect::Refused => {
                format!("refused (a fault, or the call fails: exit {EXCEPTION_EXIT_CODE})")
            }
            Expect::Ignored => format!("no effect in the guest (exit {NOT_STOPPED_EXIT_CODE})"),
            Expect::ResultKept(key) => format!("report parses (`{key}` kept or refused)"),
        }
    }

    /// Whether `p` (the rogue's report entry, `console` its console lines)
    /// ended as expected.
    pub fn matches(self, p: &PartitionReport, console: &[&str]) -> bool {
        let answer = result_str(p, "answer");
        match self {
            Expect::Fault(kind) => {
                p.state == PartitionState::Faulted && p.fault_kind() == Some(kind)
            }
            Expect::TimedOut => p.state == PartitionState::TimedOut,
            Expect::Answer(word) => p.exited_ok() && answer.as_deref() == Some(word),
            Expect::GuestUd => {
                p.state == PartitionState::Exited
                    && p.exit_code == Some(EXCEPTION_EXIT_CODE)
                    && console.iter().any(|l| l.contains("(#UD "))
            }
            Expect::Exit(code) => p.state == PartitionState::Exited && p.exit_code == Some(code),
            Expect::Refused => {
                p.state == PartitionState::Faulted || Expect::GuestUd.matches(p, console)
            }
            Expect::Ignored => {
                p.state == PartitionState::Exited && p.exit_code == Some(NOT_STOPPED_EXIT_CODE)
            }
            Expect::ResultKept(key) => {
                p.exited_ok()
                    && (answer.as_deref() == Some("invalid")
                        || p.result.as_ref().is_some_and(|r| r.contains_key(key)))
            }
        }
    }
}

fn result_str(p: &PartitionReport, key: &str) -> Option<String> {
    let value = p.result.as_ref()?.get(key)?;
    Some(match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Which backend (and the emulator that tests it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// AMD SVM under QEMU TCG `-cpu max`.
    Svm,
    /// Intel VMX under Bochs `corei7_skylake_x`.
    Vmx,
}

impl Backend {
    /// The report's `backend`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Svm => "svm",
            Backend::Vmx => "vmx",
        }
    }

    fn emulator(self) -> Emulator {
        match self {
            Backend::Svm => Emulator::qemu_tcg(),
            Backend::Vmx => Emulator::bochs(),
        }
    }
}

/// One attack of the matrix.
#[derive(Clone, Copy, Debug)]
pub struct Attack {
    /// The `rogue` workload's `attack` argument.
    pub name: &'static str,
    /// What it goes after.
    pub class: Class,
    /// What it does, for the matrix.
    pub what: &'static str,
    /// Whether it needs a channel to a well-behaved peer.
    pub channel: bool,
    /// Expected outcome under SVM.
    pub svm: Expect,
    /// Expected outcome under VMX.
    pub vmx: Expect,
}

impl Attack {
    /// The expected outcome on `backend`.
    pub fn expected(&self, backend: Backend) -> Expect {
        match backend {
            Backend::Svm => self.svm,
            Backend::Vmx => self.vmx,
        }
    }
}

const fn both(name: &'static str, class: Class, what: &'static str, e: Expect) -> Attack {
    Attack {
        name,
        class,
        what,
        channel: false,
        svm: e,
        vmx: e,
    }
}

const fn with_channel(name: &'static str, class: Class, what: &'static str, e: Expect) -> Attack {
    Attack {
        name,
        class,
        what,
        channel: true,
        svm: e,
        vmx: e,
    }
}

/// An SVM instruction: stopped under SVM, #UD in the guest under VMX.
const fn svm_insn(name: &'static str, what: &'static str) -> Attack {
    Attack {
        name,
        class: Class::Instruction,
        what,
        channel: false,
        svm: VIRT,
        vmx: Expect::GuestUd,
    }
}

/// A VMX instruction: stopped under VMX; under SVM (QEMU TCG) `svm`.
const fn vmx_insn(name: &'static str, what: &'static str, svm: Expect) -> Attack {
    Attack {
        name,
        class: Class::Instruction,
        what,
        channel: false,
        svm,
        vmx: VIRT,
    }
}

const NPF: Expect = Expect::Fault(FaultKind::Npf);
const PORT: Expect = Expect::Fault(FaultKind::PortDenied);
const MSR: Expect = Expect::Fault(FaultKind::MsrDenied);
const IPI: Expect = Expect::Fault(FaultKind::IpiDenied);
const LVT: Expect = Expect::Fault(FaultKind::LvtDenied);
const XSETBV: Expect = Expect::Fault(FaultKind::XsetbvDenied);
const VIRT: Expect = Expect::Fault(FaultKind::VirtInstruction);

use Class::*;

/// Every attack of the `rogue` workload, in the order of the layout
/// catalog's `ROGUE_ATTACKS` (and the guest kernel's table).
#[rustfmt::skip]
pub const ROGUE_MATRIX: &[Attack] = &[
    both("write-outside", Memory, "writes the word just above its RAM", NPF),
    both("read-outside", Memory, "reads at 6 GiB, far above the machine's RAM", NPF),
    both("fetch-outside", Memory, "calls code just above its RAM", NPF),
    both("write-apic-mmio", Memory, "writes the xAPIC page (0xFEE00080)", NPF),
    both("read-ioapic", Memory, "reads the IOAPIC (0xFEC00000)", NPF),
    both("read-hpet", Memory, "reads the HPET (0xFED00000)", NPF),
    with_channel("write-channel-identity", Memory, "writes its channel's identity line", NPF),
    with_channel("write-peer-control", Memory, "writes its peer's control line", NPF),
    with_channel("write-receive-ring", Memory, "writes the ring it receives on", NPF),
    both("page-1g-beyond-ram", Memory, "maps a 1 GiB guest page over 0..1 GiB, reads its last word", NPF),
    both("port-com1", Port, "`outb` to the hypervisor's UART (0x3F8)", PORT),
    both("port-debug-exit", Port, "`outl` to QEMU's isa-debug-exit (0xF4)", PORT),
    both("port-bochs-shutdown", Port, "`outb` to Bochs' shutdown port (0x8900)", PORT),
    both("port-pci-address", Port, "`outl` to PCI configuration address (0xCF8)", PORT),
    both("port-pci-data", Port, "`inl` from PCI configuration data (0xCFC)", PORT),
    both("port-reset-cf9", Port, "`outb` 0 to the reset control register (0xCF9)", PORT),
    both("port-a20-92", Port, "`outb` to System Control Port A (0x92)", PORT),
    both("port-keyboard-64", Port, "`inb` from the keyboard controller (0x64)", PORT),
    both("port-pic", Port, "`outb` to the PIC's mask register (0x21)", PORT),
    both("port-pit", Port, "`outb` to the PIT's mode register (0x43)", PORT),
    both("port-rtc", Port, "`outb` to the RTC/CMOS index (0x70)", PORT),
    both("port-apm", Port, "`outb` to the APM/SMI command port (0xB2)", PORT),
    both("port-dma", Port, "`outb` to DMA channel 0 (0x00)", PORT),
    both("port-fw-cfg", Port, "`outw` to QEMU fw_cfg (0x510)", PORT),
    both("port-debugcon", Port, "`outb` to the debug console (0xE9)", PORT),
    both("port-string-io", Port, "`rep outsb` of a forged run marker to 0x3F8", PORT),
    both("port-in", Port, "`inb` from COM1's line status (0x3FD)", PORT),
    both("msr-vmx-basic", Msr, "reads IA32_VMX_BASIC (0x480)", MSR),
    both("msr-svm-vm-cr", Msr, "writes VM_CR (0xC0010114)", MSR),
    both("msr-svm-hsave", Msr, "writes VM_HSAVE_PA (0xC0010117)", MSR),
    both("msr-mtrr-def-type", Msr, "writes IA32_MTRR_DEF_TYPE (0x2FF)", MSR),
    both("msr-pat-reserved", Msr, "writes a PAT with reserved type 2", MSR),
    both("msr-efer-svme", Msr, "sets EFER.SVME", MSR),
    both("msr-tsc", Msr, "writes the TSC (0x10)", MSR),
    both("msr-debugctl", Msr, "writes IA32_DEBUGCTL (0x1D9)", MSR),
    both("msr-pmu-evtsel", Msr, "writes IA32_PERFEVTSEL0 (0x186)", MSR),
    both("msr-pmu-counter", Msr, "writes IA32_PMC0 (0xC1)", MSR),
    both("msr-mca-ctl", Msr, "writes IA32_MC0_CTL (0x400)", MSR),
    both("msr-mcg-status", Msr, "writes IA32_MCG_STATUS (0x17A)", MSR),
    both("msr-spec-ctrl", Msr, "writes IA32_SPEC_CTRL (0x48)", MSR),
    both("msr-sysenter", Msr, "writes SYSENTER_EIP (its own, switched) and reads it back", Expect::Answer("kept")),
    both("apic-base", Msr, "rewrites IA32_APIC_BASE", Expect::Fault(FaultKind::ApicBase)),
    both("ipi-non-peer", Ipi, "fixed IPI to a core that is not its peer", IPI),
    both("icr-lowest-priority", Apic, "ICR lowest-priority delivery to a non-peer", IPI),
    both("icr-smi", Apic, "ICR SMI to a non-peer", IPI),
    both("icr-nmi", Apic, "ICR NMI to a non-peer", IPI),
    both("init-non-peer", Ipi, "ICR INIT to a non-peer", IPI),
    both("icr-sipi", Apic, "ICR SIPI to a non-peer", IPI),
    both("icr-self-shorthand", Apic, "ICR fixed IPI with the self shorthand", IPI),
    both("icr-all-including", Apic, "ICR fixed IPI to all including self", IPI),
    both("icr-all-excluding", Apic, "ICR fixed IPI to all excluding self", IPI),
    both("icr-logical", Apic, "ICR fixed IPI, logical destination (cluster 0, all)", IPI),
    with_channel("ipi-nmi-peer", Ipi, "ICR NMI to its channel peer", IPI),
    with_channel("ipi-flood-peer", Ipi, "20000 `SEND_IPI` to its peer (the peer keeps working)", Expect::Answer("ok")),
    both("lvt-timer-smi", Apic, "timer LVT (0x832) with SMI delivery", LVT),
    both("lvt-timer-reserved", Apic, "timer LVT with reserved bit 19 (masked)", LVT),
    both("lvt-error-reserved", Apic, "error LVT (0x837) with reserved bit 20 (masked)", LVT),
    both("lvt-lint0-extint", Apic, "LINT0 LVT (0x835) ExtINT, unmasked", LVT),
    both("lvt-thermal-nmi", Apic, "thermal LVT (0x833) NMI, unmasked", LVT),
    both("self-ipi", Apic, "SELF_IPI (0x83F): an interrupt to itself", Expect::Answer("delivered")),
    svm_insn("vmrun", "VMRUN"),
    svm_insn("vmload", "VMLOAD"),
    svm_insn("vmsave", "VMSAVE"),
    svm_insn("stgi", "STGI"),
    svm_insn("clgi", "CLGI"),
    svm_insn("skinit", "SKINIT"),
    svm_insn("invlpga", "INVLPGA"),
    vmx_insn("vmxon", "VMXON", Expect::Ignored),
    vmx_insn("vmptrld", "VMPTRLD", Expect::Ignored),
    vmx_insn("vmclear", "VMCLEAR", Expect::Ignored),
    vmx_insn("vmread", "VMREAD", Expect::GuestUd),
    vmx_insn("invept", "INVEPT", Expect::GuestUd),
    both("wrong-hypercall", Instruction, "the other vendor's hypercall instruction", Expect::GuestUd),
    both("invd", Instruction, "INVD", VIRT),
    both("xsetbv-x87-cleared", Instruction, "XCR0 without x87", XSETBV),
    both("xsetbv-avx-without-sse", Instruction, "XCR0 with AVX, without SSE", XSETBV),
    both("xsetbv-reserved-bit", Instruction, "XCR0 with reserved bit 62", XSETBV),
    both("xsetbv-avx512-partial", Instruction, "XCR0 with the opmask state, without the ZMM states", XSETBV),
    both("xsetbv-mpx-partial", Instruction, "XCR0 with MPX BNDREGS, without BNDCSR", XSETBV),
    both("xsetbv-amx-partial", Instruction, "XCR0 with AMX TILECFG, without TILEDATA", XSETBV),
    both("xsetbv-xcr1", Instruction, "XSETBV to XCR1", XSETBV),
    both("triple-fault", Instruction, "loads an empty IDT and raises an exception", Expect::Fault(FaultKind::TripleFault)),
    both("wbinvd-loop", Stop, "WBINVD forever", Expect::TimedOut),
    both("cli-hlt", Stop, "`cli; hlt`", Expect::TimedOut),
    both("cpuid-loop", Stop, "CPUID forever (an exit each)", Expect::TimedOut),
    both("timer-storm", Stop, "APIC timer periodic, initial count 1, divide by 1", Expect::TimedOut),
    both("hc-unknown", Hypercall, "an unknown hypercall number", Expect::Answer("unknown")),
    both("hc-console-wild-pointer", Hypercall, "`CONSOLE_WRITE` of a pointer at 6 GiB", Expect::Answer("fault")),
    both("hc-console-huge-length", Hypercall, "`CONSOLE_WRITE` of 1 TiB", Expect::Answer("too-long")),
    both("hc-console-control", Hypercall, "`CONSOLE_WRITE` with a newline and a forged run marker", Expect::Answer("invalid")),
    both("hc-console-flood", Hypercall, "3000 console lines as fast as it can", Expect::Answer("ok")),
    both("hc-result-leading-zero", Hypercall, "result `a=007`", Expect::ResultKept("a")),
    both("hc-result-quoted-key", Hypercall, "result with a quoted key `\"a\"=1`", Expect::ResultKept("\"a\"")),
    both("hc-result-long-value", Hypercall, "result of 512 bytes, one long value", Expect::ResultKept("v")),
    with_channel("hc-result-channel-pointer", Hypercall, "`REPORT_RESULT` from its channel region", Expect::Answer("fault")),
    both("hc-ipi-no-channel", Hypercall, "`SEND_IPI` on a channel it does not have", Expect::Answer("denied")),
    both("hc-membership-ack-foreign", Hypercall, "`MEMBERSHIP_ACK` of a group it is not in, epoch 2^64-1", Expect::Answer("denied")),
    both("hc-exit-huge-code", Hypercall, "`EXIT` with code 2^64-1", Expect::Exit(u64::MAX)),
    both("hc-from-ring3", Hypercall, "`EXIT(0x33)` from ring 3, then `ud2`", Expect::Refused),
];

/// The attack called `name`.
pub fn attack(name: &str) -> &'static Attack {
    ROGUE_MATRIX
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("{name} is not an attack of the rogue workload"))
}

/// The matrix as a markdown table with a summary line per backend: the
/// `rogue-matrix` generated section of `docs/threat-model.md`.
pub fn render_markdown() -> String {
    let mut out = String::new();
    let count = |b: Backend, f: fn(Expect) -> bool| {
        ROGUE_MATRIX.iter().filter(|a| f(a.expected(b))).count()
    };
    for b in [Backend::Svm, Backend::Vmx] {
        let stopped = count(b, |e| matches!(e, Expect::Fault(_)));
        let timed_out = count(b, |e| e == Expect::TimedOut);
        let ud = count(b, |e| matches!(e, Expect::GuestUd | Expect::Ignored));
        let allowed = ROGUE_MATRIX.len() - stopped - timed_out - ud;
        let _ = writeln!(
            out,
            "{}: {} attacks — {stopped} stopped with a fault, {timed_out} stopped by the run timeout, \
             {ud} refused or ignored by the CPU inside the guest, {allowed} allowed as harmless (answer checked).",
            match b {
                Backend::Svm => "SVM (QEMU TCG `-cpu max`)",
                Backend::Vmx => "VMX (Bochs `corei7_skylake_x`)",
            },
            ROGUE_MATRIX.len()
        );
        out.push('\n');
    }
    out.push_str("| attack | class | what it does | SVM (QEMU TCG) | VMX (Bochs) |\n");
    out.push_str("|---|---|---|---|---|\n");
    for a in ROGUE_MATRIX {
        let _ = writeln!(
            out,
            "| `{}` | {} | {}{} | {} | {} |",
            a.name,
            a.class.as_str(),
            a.what.replace('|', "\\|"),
            if a.channel { " (with a channel)" } else { "" },
            a.svm.describe(),
            a.vmx.describe()
        );
    }
    out
}

/// The well-behaved neighbours of a boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Neighbours {
    /// `calc` (compute) and a `ping`/`pong` pair over an IPI channel.
    Full,
    /// `calc` and `peer` (compute), each channel rogue with a channel to
    /// `peer`; and the ping/pong pair.
    Channel,
    /// Only `calc` (the run timeout's watcher), with a short timeout.
    Stop,
}

/// One boot of the matrix: some attacks, each its own partition (named
/// after the attack), next to well-behaved neighbours.
#[derive(Clone, Debug)]
pub struct MatrixBoot {
    attacks: Vec<&'static Attack>,
    neighbours: Neighbours,
}

/// `calc`'s `n` and `peer`'s.
const CALC_N: u64 = 10_000;
/// The ping/pong pair's rounds: fewer under Bochs, where every round trip
/// waits for both cores' turns of the one host thread.
fn ping_rounds(backend: Backend) -> u64 {
    match backend {
        Backend::Svm => 200,
        Backend::Vmx => 20,
    }
}

impl MatrixBoot {
    fn cpus(&self) -> usize {
        let honest = match self.neighbours {
            Neighbours::Full => 3,
            Neighbours::Channel => 4,
            Neighbours::Stop => 1,
        };
        honest + self.attacks.len()
    }

    /// The layout: `calc` on core 0 (the first non-peer every IPI attack
    /// aims at), then the ping/pong pair, `peer`, and the rogues.
    pub fn layout_toml(&self, backend: Backend) -> String {
        let cpus = self.cpus();
        let timeout = match (self.neighbours, backend) {
            (Neighbours::Stop, _) => 4,
            (_, Backend::Svm) => 60,
            (_, Backend::Vmx) => 120,
        };
        let memory = 64 + 16 * cpus + 64;
        let mut toml = format!(
            "[machine]\ncpus = {cpus}\nmemory = \"{memory} MiB\"\ntimeout = {timeout}\n\n\
             [defaults]\nmemory = \"16 MiB\"\n"
        );
        let mut cpu = 0;
        let mut partition = |toml: &mut String, name: &str, workload: &str, args: String| {
            let _ = write!(
                toml,
                "\n[[partition]]\nname = \"{name}\"\ncpu = {cpu}\nworkload = \"{workload}\"\nargs = {{ {args} }}\n"
            );
            cpu += 1;
        };
        partition(&mut toml, "calc", "compute", format!("n = {CALC_N}"));
        if self.neighbours != Neighbours::Stop {
            partition(
                &mut toml,
                "ping",
                "pingpong",
                format!("rounds = {}", ping_rounds(backend)),
            );
            partition(
                &mut toml,
                "pong",
                "pingpong",
                format!("rounds = {}", ping_rounds(backend)),
            );
        }
        if self.neighbours == Neighbours::Channel {
            partition(&mut toml, "peer", "compute", format!("n = {CALC_N}"));
        }
        for a in &self.attacks {
            partition(
                &mut toml,
                a.name,
                "rogue",
                format!("attack = \"{}\"", a.name),
            );
        }
        if self.neighbours != Neighbours::Stop {
            toml.push_str(
                "\n[[channel]]\nbetween = [\"ping\", \"pong\"]\nslots = 16\nnotify = \"ipi\"\n",
            );
        }
        for a in self.attacks.iter().filter(|a| a.channel) {
            let _ = write!(
                toml,
                "\n[[channel]]\nbetween = [\"{}\", \"peer\"]\nslots = 16\nnotify = \"ipi\"\n",
                a.name
            );
        }
        toml
    }

    /// Which attacks it holds.
    pub fn names(&self) -> Vec<&'static str> {
        self.attacks.iter().map(|a| a.name).collect()
    }
}

/// The boots that cover `attacks` on a machine of at most `max_cpus`
/// cores: the never-finishing ones together (one short timeout), those
/// needing a channel together with a `peer`, the rest packed.
pub fn plan_boots(attacks: &[&'static Attack], max_cpus: usize, solo: bool) -> Vec<MatrixBoot> {
    let mut boots = Vec::new();
    type Member = fn(&Attack) -> bool;
    let groups: [(Neighbours, Member); 3] = [
        (Neighbours::Stop, |a| a.class == Class::Stop),
        (Neighbours::Channel, |a| a.class != Class::Stop && a.channel),
        (Neighbours::Full, |a| a.class != Class::Stop && !a.channel),
    ];
    for (neighbours, member) in groups {
        let members: Vec<&'static Attack> = attacks.iter().copied().filter(|a| member(a)).collect();
        let honest = MatrixBoot {
            attacks: Vec::new(),
            neighbours,
        }
        .cpus();
        let per_boot = if solo {
            1
        } else {
            max_cpus.saturating_sub(honest).max(1)
        };
        for chunk in members.chunks(per_boot) {
            boots.push(MatrixBoot {
                attacks: chunk.to_vec(),
                neighbours,
            });
        }
    }
    boots
}

/// One attack's verdict in one boot.
#[derive(Clone, Debug)]
pub struct AttackResult {
    /// The attack.
    pub name: &'static str,
    /// What was expected.
    pub expected: Expect,
    /// What the report says.
    pub observed: String,
    /// Whether it matched.
    pub ok: bool,
}

/// What the rogue's report entry says, in one line.
pub fn describe_end(p: &PartitionReport) -> String {
    match p.state {
        PartitionState::Faulted => match &p.fault {
            Some(f) => format!("faulted {} ({})", f.kind.as_str(), f.detail),
            None => "faulted".into(),
        },
        PartitionState::TimedOut => "timed-out".into(),
        PartitionState::Exited => format!(
            "exited {} result {}",
            p.exit_code
                .map_or_else(|| "?".to_string(), |c| c.to_string()),
            p.result_text()
        ),
    }
}

/// Judges one matrix boot: the run as a whole (no crash, a complete report
/// that parses, a line for every partition, the hypervisor's end line
/// agreeing with it), the well-behaved neighbours' results, and each
/// attack against its expectation. Returns the per-attack verdicts and the
/// problems of the run as a whole.
pub fn judge_boot(
    outcome: &LayoutOutcome,
    boot: &MatrixBoot,
    backend: Backend,
) -> (Vec<AttackResult>, Vec<String>) {
    let mut problems: Vec<String> = outcome
        .verdict
        .reasons()
        .iter()
        .filter(|r| !r.starts_with("partition "))
        .cloned()
        .collect();
    if outcome.report.backend != backend.as_str() {
        problems.push(format!(
            "expected the {} backend, the report says {:?}",
            backend.as_str(),
            outcome.report.backend
        ));
    }
    let reported = |name: &str| outcome.parsed.partitions.iter().any(|p| p.name == name);
    let mut honest = vec![("calc", "primes", primes_below(CALC_N))];
    if boot.neighbours != Neighbours::Stop {
        honest.push(("ping", "rounds", ping_rounds(backend)));
        honest.push(("pong", "rounds", ping_rounds(backend)));
    }
    if boot.neighbours == Neighbours::Channel {
        honest.push(("peer", "primes", primes_below(CALC_N)));
    }
    for (name, key, value) in honest {
        match outcome.report.partition(name) {
            Some(p) if p.exited_ok() && p.result_u64(key) == Some(value) && reported(name) => {}
            Some(p) => problems.push(format!(
                "well-behaved {name}: expected exit 0 with {key}={value} on a report line, got {}{}",
                describe_end(p),
                if reported(name) { "" } else { " (no report line)" }
            )),
            None => problems.push(format!("well-behaved {name}: no report")),
        }
    }
    let results = boot
        .attacks
        .iter()
        .map(|a| {
            let expected = a.expected(backend);
            let console = crate::partition_console(outcome, a.name);
            let (observed, ok) = match outcome.report.partition(a.name) {
                Some(p) if reported(a.name) => (describe_end(p), expected.matches(p, &console)),
                Some(p) => (format!("{} (no report line)", describe_end(p)), false),
                None => ("no report".to_string(), false),
            };
            AttackResult {
                name: a.name,
                expected,
                observed,
                ok,
            }
        })
        .collect();
    (results, problems)
}

/// The attacks [`run_matrix`] runs: all, or those `FLOTILLA_MATRIX_ONLY`
/// names.
fn selected() -> Vec<&'static Attack> {
    match std::env::var("FLOTILLA_MATRIX_ONLY") {
        Ok(list) if !list.trim().is_empty() => list.split(',').map(|n| attack(n.trim())).collect(),
        _ => ROGUE_MATRIX.iter().collect(),
    }
}

/// Runs the matrix on `backend` with machines of at most `max_cpus` cores
/// and fails, after every boot, with each attack that did not end as
/// expected (name, expected, observed) and each boot's problems with its
/// console.
pub fn run_matrix(backend: Backend, max_cpus: usize) {
    let solo = std::env::var_os("FLOTILLA_MATRIX_SOLO").is_some_and(|v| v == "1");
    let max_cpus = std::env::var("FLOTILLA_MATRIX_CPUS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(max_cpus);
    let boots = plan_boots(&selected(), max_cpus, solo);
    let start = Instant::now();
    let mut failures = String::new();
    let mut details = String::new();
    let (mut passed, mut failed) = (0, 0);
    for (i, boot) in boots.iter().enumerate() {
        let name = format!("matrix-{}-{i}.toml", backend.as_str());
        let mut config = layout_config(layout(&boot.layout_toml(backend), &name))
            .with_emulator(backend.emulator());
        // A stop path that fails should not cost the default margin:
        // enough for QEMU's start, or Bochs' BIOS and GRUB, and the report.
        let margin = match backend {
            Backend::Svm => 20,
            Backend::Vmx => 90,
        };
        config.timeout = Some(Duration::from_secs(
            u64::from(config.layout.machine.timeout_secs) + margin,
        ));
        let outcome = boot_layout(&config);
        let (results, problems) = judge_boot(&outcome, boot, backend);
        let mut boot_failed = !problems.is_empty();
        for r in &results {
            let mark = if r.ok { "ok" } else { "FAIL" };
            eprintln!(
                "matrix {} {:<28} expected {:<40} observed {} — {mark}",
                backend.as_str(),
                r.name,
                r.expected.describe(),
                r.observed
            );
            if r.ok {
                passed += 1;
            } else {
                failed += 1;
                boot_failed = true;
                let _ = writeln!(
                    failures,
                    "attack {} on {}: expected {}, observed {}",
                    r.name,
                    backend.as_str(),
                    r.expected.describe(),
                    r.observed
                );
            }
        }
        for p in &problems {
            eprintln!(
                "matrix {} boot {i} ({:?}): {p}",
                backend.as_str(),
                boot.names()
            );
            let _ = writeln!(failures, "boot {i} {:?}: {p}", boot.names());
        }
        if boot_failed {
            let _ = writeln!(
                details,
                "----- boot {i} {:?} -----\n{}",
                boot.names(),
                outcome.details()
            );
        }
    }
    eprintln!(
        "matrix {}: {passed} attacks as expected, {failed} not, {} boots in {:.0}s",
        backend.as_str(),
        boots.len(),
        start.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        panic!(
            "the attack matrix on {} failed ({failed} of {} attacks):\n{failures}\n{details}\n\
             (again) the attack matrix on {} failed:\n{failures}",
            backend.as_str(),
            passed + failed,
            backend.as_str(),
        );
    }
}
