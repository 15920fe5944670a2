//! Writes the named seeds of the hypervisor's fuzz targets (`fuzz/seeds/exit_handler/` and
//! `fuzz/seeds/hypercall/`): boots on each host CPU model, every MSR class, every XSETBV group,
//! every LVT and delivery mode, every hypercall number with good and hostile arguments. Run with
//! `cargo run -p hypervisor --example hypervisor_fuzz_seeds`; it overwrites only its own files (the
//! minimised fuzzer finds, named by hash, stay).
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

#[allow(
    dead_code,
    reason = "the harness bodies are for the fuzzer and the replay test"
)]
#[path = "../fuzz/harness/mod.rs"]
mod harness;

use abi::hypercall as hc;
use harness::exit_handler::{Scenario, Step, CR_OK, STOP, VMX};
use harness::fakes::{Grant, Setup};
use harness::oracle::xcr0::*;
use hypervisor::vcpu::VmExit;
use std::path::Path;

/// Host CPU model indices (`harness::fakes::HOST_CPUS`).
const SPR: u8 = 0;
const SKX: u8 = 1;
const ZEN4: u8 = 2;
const ZEN2: u8 = 3;
const NO_XSAVE: u8 = 4;

/// Guest text at fixed offsets of the seed RAM.
const HELLO: (u64, &[u8]) = (0x10, b"hello from the fuzzer\n");
const RESULT: (u64, &[u8]) = (0x40, b"primes=78498 ok=true mode=fast");
const NEWLINE: (u64, &[u8]) = (0x80, b"ok\nflotilla: run passed");
const ESCAPE: (u64, &[u8]) = (0xa0, b"\x1b[2Jclear");
const BAD_UTF8: (u64, &[u8]) = (0xb0, &[0x66, 0xff, 0xfe]);
const LEADING_ZERO: (u64, &[u8]) = (0xc0, b"a=007");
const C1: (u64, &[u8]) = (0xd0, "x\u{9b}31m".as_bytes());
const TAB: (u64, &[u8]) = (0xe0, b"col1\tcol2\r\n");
const RAM: usize = 0x100;

fn setup(ram: usize) -> Setup {
    let mut bytes = vec![0u8; ram];
    for (at, text) in [
        HELLO,
        RESULT,
        NEWLINE,
        ESCAPE,
        BAD_UTF8,
        LEADING_ZERO,
        C1,
        TAB,
    ] {
        let at = usize::try_from(at).expect("a small offset");
        if at + text.len() <= ram {
            bytes[at..at + text.len()].copy_from_slice(text);
        }
    }
    Setup {
        apic_id: 1,
        grants: vec![
            Grant {
                channel_id: 0,
                ipi: true,
                peer_apic_id: 2,
                peer_vector: 0x40,
            },
            Grant {
                channel_id: 1,
                ipi: false,
                peer_apic_id: 3,
                peer_vector: 0x41,
            },
        ],
        ram: bytes,
    }
}

fn hcall(nr: u64, args: [u64; 3]) -> Step {
    Step::Hypercall {
        rax: nr,
        rdi: args[0],
        rsi: args[1],
        rdx: args[2],
    }
}
fn text(t: (u64, &[u8])) -> [u64; 3] {
    [t.0, t.1.len() as u64, 0]
}
fn cpuid(leaf: u32, subleaf: u32) -> Step {
    // Garbage in the upper halves: the handler must use eax/ecx only.
    Step::Cpuid {
        rax: 0xdead_0000_0000_0000 | u64::from(leaf),
        rcx: 0xbeef_0000_0000_0000 | u64::from(subleaf),
    }
}
fn wrmsr(msr: u32, value: u64) -> Step {
    Step::Exit(VmExit::MsrWrite { msr, value })
}
fn rdmsr(msr: u32) -> Step {
    Step::Exit(VmExit::MsrRead { msr })
}
fn xsetbv(value: u64) -> Step {
    Step::Exit(VmExit::Xsetbv { xcr: 0, value })
}

use x86::msr::{IA32_EFER as EFER, IA32_PAT as PAT, IA32_X2APIC_ICR as ICR};

fn exit_seeds() -> Vec<(String, Scenario)> {
    let mut seeds = Vec::new();
    let mut add = |name: &str, cpu: u8, flags: u8, ram: usize, steps: Vec<Step>| {
        seeds.push((
            name.to_string(),
            Scenario {
                cpu,
                flags,
                setup: setup(ram),
                steps,
            },
        ));
    };
    // A boot on each CPU: CPUID probes, long mode, PAT, the XCR0 it supports, a console line, a
    // result, LVT masking, an IPI to the peer, then EXIT.
    let full_xcr0 = [
        (
            SPR,
            "spr",
            X87 | SSE | AVX | AVX512 | PKRU | TILECFG | TILEDATA,
        ),
        (
            SKX,
            "skx",
            X87 | SSE | AVX | BNDREGS | BNDCSR | AVX512 | PKRU,
        ),
        (ZEN4, "zen4", X87 | SSE | AVX | AVX512 | PKRU),
        (ZEN2, "zen2", X87 | SSE | AVX),
    ];
    for (cpu, name, xcr0) in full_xcr0 {
        let mut steps: Vec<Step> = [
            (0, 0),
            (1, 0),
            (7, 0),
            (0xd, 0),
            (0xd, 1),
            (0x8000_0000, 0),
            (0x8000_0001, 0),
            (0x8000_000a, 0),
            (abi::cpuid::LEAF_SIGNATURE, 0),
            (abi::cpuid::LEAF_INTERFACE, 0),
        ]
        .into_iter()
        .map(|(l, s)| cpuid(l, s))
        .collect();
        steps.extend([
            wrmsr(EFER, 0xd01),
            rdmsr(EFER),
            rdmsr(PAT),
            wrmsr(PAT, 0x0606_0606_0606_0606),
            xsetbv(X87 | SSE),
            xsetbv(xcr0),
            hcall(hc::VERSION, [0; 3]),
            hcall(hc::CONSOLE_WRITE, text(HELLO)),
            wrmsr(0x835, 0x1_0700),
            wrmsr(0x836, 0x1_0400),
            wrmsr(0x834, 0x1_0000),
            wrmsr(ICR, (2 << 32) | 0x40),
            wrmsr(ICR, (1 << 32) | 0x30),
            hcall(hc::SEND_IPI, [0, 0, 0]),
            hcall(hc::REPORT_RESULT, text(RESULT)),
            Step::Exit(VmExit::Nmi),
            hcall(hc::EXIT, [0, 0, 0]),
        ]);
        add(&format!("boot-{name}"), cpu, 0, RAM, steps.clone());
        add(&format!("boot-{name}-vmx"), cpu, VMX | CR_OK, RAM, {
            let mut s = steps;
            s.insert(0, Step::Exit(VmExit::ControlRegisterAccess));
            s
        });
    }
    add(
        "boot-no-xsave",
        NO_XSAVE,
        0,
        RAM,
        vec![cpuid(1, 0), cpuid(0xd, 0), xsetbv(X87)],
    );
    // XSETBV: each group a CPU refuses, one per file (the first refusal ends the partition).
    for (name, cpu, xcr, value) in [
        ("x87-clear", ZEN2, 0, SSE),
        ("avx-without-sse", ZEN2, 0, X87 | AVX),
        ("unsupported-pkru", ZEN2, 0, X87 | SSE | AVX | PKRU),
        ("unsupported-bit63", SPR, 0, X87 | SSE | (1 << 63)),
        ("xcr1", SPR, 1, X87 | SSE),
        ("supervisor-pt", SPR, 0, X87 | SSE | (1 << 8)),
        ("mpx-split", SKX, 0, X87 | SSE | BNDREGS),
        ("avx512-partial", SKX, 0, X87 | SSE | AVX | (1 << 5)),
        ("avx512-without-avx", ZEN4, 0, X87 | SSE | AVX512),
        ("amx-split", SPR, 0, X87 | SSE | AVX | TILEDATA),
    ] {
        add(
            &format!("xsetbv-{name}"),
            cpu,
            0,
            0,
            vec![xsetbv(X87 | SSE), Step::Exit(VmExit::Xsetbv { xcr, value })],
        );
    }
    // ICR: the allowed IPIs, then each refused kind.
    for (name, icr) in [
        ("not-a-peer", (3u64 << 32) | 0x40),
        ("wrong-vector", (2u64 << 32) | 0x41),
        ("poll-peer", (3u64 << 32) | 0x41),
        ("init", (2u64 << 32) | 0x4500),
        ("sipi", (2u64 << 32) | 0x4608),
        ("nmi", (2u64 << 32) | 0x400),
        ("smi", (2u64 << 32) | 0x200),
        ("lowest-priority", (2u64 << 32) | 0x140),
        ("all-but-self", (0b11 << 18) | 0x40),
        ("self-shorthand", (0b01 << 18) | 0x40),
        ("logical", (2u64 << 32) | (1 << 11) | 0x40),
    ] {
        add(
            &format!("icr-{name}"),
            ZEN4,
            0,
            0,
            vec![wrmsr(ICR, (2 << 32) | 0x40), wrmsr(ICR, icr)],
        );
    }
    // LVT entries: allowed values on each, then one refusal per file.
    let lvts = [0x82f, 0x832, 0x833, 0x834, 0x835, 0x836, 0x837];
    add(
        "lvt-masked-and-fixed",
        SPR,
        0,
        0,
        lvts.iter()
            .flat_map(|&m| [wrmsr(m, 0x1_0031), wrmsr(m, 0x31)])
            .collect(),
    );
    for (name, msr, value) in [
        ("lint0-extint", 0x835, 0x700),
        ("lint1-nmi", 0x836, 0x400),
        ("lint0-init", 0x835, 0x500),
        ("thermal-smi", 0x833, 0x200),
        ("perf-nmi", 0x834, 0x400),
        ("cmci-smi", 0x82f, 0x200),
        ("timer-smi", 0x832, 0x200),
        ("timer-reserved-mode", 0x832, 0x6_0030),
        ("timer-periodic", 0x832, 0x2_0030),
        ("timer-tsc-deadline", 0x832, 0x4_0030),
        ("error-nmi", 0x837, 0x400),
        ("thermal-bit11", 0x833, 0x1_0830),
        ("lint0-bit17", 0x835, 0x3_0000),
        ("perf-bit32", 0x834, 0x1_0001_0000),
        ("lint1-reserved-mode", 0x836, 0x1_0100),
    ] {
        for (cpu, suffix) in [(SPR, ""), (ZEN4, "-zen4")] {
            if suffix.is_empty() || name.starts_with("timer") {
                add(
                    &format!("lvt-{name}{suffix}"),
                    cpu,
                    0,
                    0,
                    vec![wrmsr(msr, 0x1_0000), wrmsr(msr, value)],
                );
            }
        }
    }
    // The periodic timer's minimum period: a count-1 storm, a divide that would shorten a
    // legal period, a short count loaded before the switch to periodic, one-shot untouched,
    // a divide with reserved bits.
    for (name, steps) in [
        (
            "timer-storm",
            vec![
                wrmsr(0x83e, 0b1011),
                wrmsr(0x832, 0x2_0030),
                wrmsr(0x838, 1),
            ],
        ),
        (
            "timer-divide-shortens",
            vec![
                wrmsr(0x832, 0x2_0030),
                wrmsr(0x838, 1000),
                wrmsr(0x83e, 0b1011),
                wrmsr(0x83e, 0b0011),
            ],
        ),
        (
            "timer-short-then-periodic",
            vec![wrmsr(0x838, 2), wrmsr(0x832, 0x2_0030), wrmsr(0x838, 0)],
        ),
        (
            "timer-one-shot",
            vec![
                wrmsr(0x832, 0x2_0030),
                wrmsr(0x832, 0x30),
                wrmsr(0x838, 1),
                wrmsr(0x838, 1 << 32),
            ],
        ),
        (
            "timer-divide-reserved",
            vec![wrmsr(0x832, 0x2_0030), wrmsr(0x83e, 0b0100)],
        ),
    ] {
        add(name, SPR, 0, 0, steps);
    }
    // Other MSRs: EFER and PAT, good and bad; the APIC base; MSRs no partition may touch.
    for (name, step) in [
        ("efer-svme", wrmsr(EFER, 0x1d01)),
        ("efer-bit63", wrmsr(EFER, (1 << 63) | 0x500)),
        ("pat-type2", wrmsr(PAT, 0x0007_0406_0007_0402)),
        ("pat-type8", wrmsr(PAT, 0x0800_0000_0000_0006)),
        ("apic-base", wrmsr(0x1b, 0xfee0_0d00)),
        ("vm-cr", wrmsr(0xc001_0114, 0x10)),
        ("vm-hsave", wrmsr(0xc001_0117, 0x1000)),
        ("feature-control", wrmsr(0x3a, 0x5)),
        ("tsc", wrmsr(0x10, 0)),
        ("debugctl", wrmsr(0x1d9, 1)),
        ("tsc-deadline", wrmsr(0x6e0, u64::MAX)),
        ("spec-ctrl", wrmsr(0x48, 1)),
        ("mtrr-def-type", wrmsr(0x2ff, 0xc06)),
        ("mc0-ctl", wrmsr(0x400, u64::MAX)),
        ("self-ipi-exit", wrmsr(0x83f, 0x40)),
        ("read-hsave", rdmsr(0xc001_0117)),
        ("read-vmx-basic", rdmsr(0x480)),
        ("read-arch-capabilities", rdmsr(0x10a)),
        ("read-lint0", rdmsr(0x835)),
    ] {
        add(
            &format!("msr-{name}"),
            SKX,
            0,
            0,
            vec![wrmsr(EFER, 0x501), rdmsr(PAT), step],
        );
    }
    // Exits that always stop the partition, and the ones that depend on the backend or a stop.
    for (name, flags, exit) in [
        (
            "io-out",
            0,
            VmExit::Io {
                port: 0x3f8,
                size: 1,
                write: true,
            },
        ),
        (
            "io-in",
            0,
            VmExit::Io {
                port: 0xcfc,
                size: 4,
                write: false,
            },
        ),
        (
            "npf-read",
            0,
            VmExit::NestedPageFault {
                gpa: 0xfee0_0000,
                write: false,
                fetch: false,
            },
        ),
        (
            "npf-write",
            0,
            VmExit::NestedPageFault {
                gpa: 0x4000_0000,
                write: true,
                fetch: false,
            },
        ),
        (
            "npf-fetch",
            0,
            VmExit::NestedPageFault {
                gpa: u64::MAX,
                write: false,
                fetch: true,
            },
        ),
        ("triple-fault", 0, VmExit::TripleFault),
        ("init", 0, VmExit::Init),
        (
            "vmrun",
            0,
            VmExit::VirtualizationInstruction { name: "vmrun" },
        ),
        (
            "vmxon",
            VMX,
            VmExit::VirtualizationInstruction { name: "vmxon" },
        ),
        (
            "invalid-state",
            VMX,
            VmExit::InvalidState { code: 0x8000_0021 },
        ),
        ("other", 0, VmExit::Other { code: 0x7f }),
        ("cr-denied", VMX, VmExit::ControlRegisterAccess),
        ("nmi-stop", STOP, VmExit::Nmi),
    ] {
        add(
            &format!("exit-{name}"),
            ZEN4,
            flags,
            0,
            vec![Step::Exit(VmExit::Nmi), cpuid(1, 0), Step::Exit(exit)],
        );
    }
    // Hypercalls through the exit path: every number, good and hostile arguments.
    let mut calls = vec![
        hcall(hc::VERSION, [0; 3]),
        hcall(hc::CONSOLE_WRITE, text(HELLO)),
        hcall(hc::CONSOLE_WRITE, text(TAB)),
        hcall(hc::CONSOLE_WRITE, text(NEWLINE)),
        hcall(hc::CONSOLE_WRITE, text(ESCAPE)),
        hcall(hc::CONSOLE_WRITE, text(C1)),
        hcall(hc::CONSOLE_WRITE, text(BAD_UTF8)),
        hcall(hc::CONSOLE_WRITE, [RAM as u64 - 4, 8, 0]),
        hcall(hc::CONSOLE_WRITE, [u64::MAX - 2, 8, 0]),
        hcall(hc::CONSOLE_WRITE, [0, hc::MAX_CONSOLE_LINE + 1, 0]),
        hcall(hc::REPORT_RESULT, text(RESULT)),
        hcall(hc::REPORT_RESULT, text(NEWLINE)),
        hcall(hc::SEND_IPI, [0, 0, 0]),
        hcall(hc::SEND_IPI, [1, 0, 0]),
        hcall(hc::SEND_IPI, [1 << 32, 0, 0]),
        hcall(5, [0; 3]),
        hcall(u64::MAX, [0; 3]),
    ];
    add("hypercalls", ZEN4, 0, RAM, calls.clone());
    calls.push(hcall(hc::EXIT, [7, 0, 0]));
    add("hypercalls-exit", SKX, VMX, RAM, calls);
    add(
        "hypercall-leading-zero",
        ZEN4,
        0,
        RAM,
        vec![hcall(hc::REPORT_RESULT, text(LEADING_ZERO))],
    );
    seeds
}

fn hypercall_seeds() -> Vec<(String, harness::hypercall::Scenario)> {
    use harness::hypercall::Scenario;
    let s = |calls: Vec<(u64, [u64; 3])>| Scenario {
        setup: setup(RAM),
        calls,
    };
    vec![
        ("version".into(), s(vec![(hc::VERSION, [0; 3])])),
        (
            "console".into(),
            s(vec![
                (hc::CONSOLE_WRITE, text(HELLO)),
                (hc::CONSOLE_WRITE, text(TAB)),
                (hc::CONSOLE_WRITE, [HELLO.0, 0, 0]),
            ]),
        ),
        (
            "console-hostile-text".into(),
            s(vec![
                (hc::CONSOLE_WRITE, text(NEWLINE)),
                (hc::CONSOLE_WRITE, text(ESCAPE)),
                (hc::CONSOLE_WRITE, text(C1)),
                (hc::CONSOLE_WRITE, text(BAD_UTF8)),
            ]),
        ),
        (
            "console-hostile-range".into(),
            s(vec![
                (hc::CONSOLE_WRITE, [RAM as u64 - 4, 8, 0]),
                (hc::CONSOLE_WRITE, [RAM as u64, 0, 0]),
                (hc::CONSOLE_WRITE, [RAM as u64 + 1, 0, 0]),
                (hc::CONSOLE_WRITE, [u64::MAX - 2, 8, 0]),
                (hc::CONSOLE_WRITE, [0, u64::MAX, 0]),
                (hc::CONSOLE_WRITE, [0, hc::MAX_CONSOLE_LINE + 1, 0]),
            ]),
        ),
        (
            "result".into(),
            s(vec![
                (hc::REPORT_RESULT, text(RESULT)),
                (hc::REPORT_RESULT, text(NEWLINE)),
                (hc::REPORT_RESULT, [0, hc::MAX_RESULT + 1, 0]),
                (hc::REPORT_RESULT, [u64::MAX, 2, 0]),
            ]),
        ),
        (
            "result-leading-zero".into(),
            s(vec![(hc::REPORT_RESULT, text(LEADING_ZERO))]),
        ),
        (
            "ipis".into(),
            s(vec![
                (hc::SEND_IPI, [0, 0, 0]),
                (hc::SEND_IPI, [1, 0, 0]),
                (hc::SEND_IPI, [2, 0, 0]),
                (hc::SEND_IPI, [1 << 32, 0, 0]),
            ]),
        ),
        (
            "unknown-and-exit".into(),
            s(vec![
                (5, [0; 3]),
                (u64::MAX, [1, 2, 3]),
                (hc::EXIT, [9, 0, 0]),
            ]),
        ),
    ]
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let write = |target: &str, name: &str, bytes: Vec<u8>| {
        let d = root.join(target);
        std::fs::create_dir_all(&d).expect("seed directory");
        std::fs::write(d.join(format!("{name}.bin")), bytes).expect("seed written");
    };
    for (name, s) in exit_seeds() {
        write("exit_handler", &name, s.encode());
    }
    for (name, s) in hypercall_seeds() {
        write("hypercall", &name, s.encode());
    }
}
