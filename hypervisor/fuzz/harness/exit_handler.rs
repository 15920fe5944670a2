//! The exit handler under fuzzing: one partition's exits, in sequence, through
//! `exit_handler::handle_exit` on a fake vCPU and a fake host with a realistic CPU
//! ([`super::fakes::HOST_CPUS`]). Every exit is checked by [`run`]'s step checks:
//!
//! - every exit is counted once; an exit either ends the partition or resumes it, and never both
//!   ends it and skips the instruction; a resumed instruction exit is completed (skipped) exactly
//!   once, an NMI never;
//! - a faulted partition had no side effect: no IPI, LVT, XCR0, EFER or PAT write, no console
//!   line, no register change, and the fault names the exit's kind and RIP;
//! - every side effect comes from the one exit allowed to cause it and passes its oracle
//!   ([`super::oracle`]): an IPI is a fixed physical IPI to the partition's own core or to a peer
//!   on its vector, an LVT value has no reserved bit and raises only fixed interrupts, an XCR0 value
//!   is one XSETBV accepts on that CPU, EFER holds only guest bits, PAT only defined types;
//! - an XSETBV the CPU would refuse stops the partition (`xsetbv-denied`), a write the handler
//!   does not apply is refused, not ignored;
//! - CPUID hides VMX and SVM, signs Flotilla (`docs/boot-protocol.md` §5), offers no XSAVE
//!   component the host lacks, and writes 32-bit results;
//! - hypercall exits pass [`super::hypercall::check_call`]; the final report line is JSON.
//!
//! - a hypercall from CPL > 0 returns `Denied` and does nothing else.
//!
//! Input: CPU model (u8), flags (u8: [`STOP`], [`CR_OK`], [`VMX`], the CPL in bits 3–4,
//! [`TSC_DEADLINE`], [`CONSOLE_BUDGET`], [`OSXSAVE`]), [`Setup`], then up to [`MAX_EXITS`] steps,
//! each a tag byte and its fields (see [`Step::decode`]).

use super::bytes::{Reader, Writer};
use super::fakes::{FakeHost, FakeMemory, FakeVcpu, HostCpu, HostEffect, Setup, FAKE_TIMER_FLOOR};
use super::hypercall::{check_call, check_report};
use super::oracle::{self, Lvt};
use abi::cpuid::{self, Backend};
use abi::fault::{ExitReason, FaultKind};
use abi::regs::half::low32;
use hypervisor::exit_handler::{handle_exit, MSR_APIC_BASE, MSR_EFER, MSR_X2APIC_ICR};
use hypervisor::hypercall::Outcome;
use hypervisor::msr_policy::MSR_PAT;
use hypervisor::partition::{End, Partition, RunRecord};
use hypervisor::timer_policy::{MSR_TIMER_DIVIDE, MSR_TIMER_INITIAL, MSR_TIMER_LVT};
use hypervisor::vcpu::VmExit;

/// Most exits one input makes.
pub const MAX_EXITS: usize = 64;
/// Flag: the run's timeout has asked the partition to stop (NMIs end it).
pub const STOP: u8 = 1 << 0;
/// Flag: the backend can emulate the control-register access.
pub const CR_OK: u8 = 1 << 1;
/// Flag: the VMX backend (`abi::cpuid::Backend::Vmx` in CPUID `LEAF_INTERFACE`), else SVM.
pub const VMX: u8 = 1 << 2;
/// Flags bits 3-4: the guest's CPL.
pub const CPL_SHIFT: u8 = 3;
/// Flag: the backend offers TSC-deadline mode (when the host has it).
pub const TSC_DEADLINE: u8 = 1 << 5;
/// Flag: the console takes two lines, then drops.
pub const CONSOLE_BUDGET: u8 = 1 << 6;
/// Flag: the guest has set CR4.OSXSAVE.
pub const OSXSAVE: u8 = 1 << 7;

/// Mnemonics a `VirtualizationInstruction` exit may carry.
pub const VIRT_INSTRUCTIONS: &[&str] = &[
    "vmrun", "vmload", "vmsave", "stgi", "clgi", "skinit", "invlpga", "vmlaunch", "vmresume",
    "vmptrld", "vmptrst", "vmclear", "vmread", "vmwrite", "vmxon", "vmxoff", "invept", "invvpid",
    "vmfunc",
];

/// One exit and the guest registers it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// VMMCALL/VMCALL with these registers.
    Hypercall {
        /// Number.
        rax: u64,
        /// First argument.
        rdi: u64,
        /// Second argument.
        rsi: u64,
        /// Third argument.
        rdx: u64,
    },
    /// CPUID with these registers (the upper halves must be ignored).
    Cpuid {
        /// Leaf.
        rax: u64,
        /// Subleaf.
        rcx: u64,
    },
    /// Any other exit (not `Hypercall` or `Cpuid`).
    Exit(VmExit),
}

impl Step {
    /// Decodes one step: tag byte (modulo 14), then 0 hypercall (rax, rdi, rsi, rdx: u64),
    /// 1 cpuid (rax, rcx: u64), 2 RDMSR (msr: u32), 3 WRMSR (msr: u32, value: u64), 4 I/O (port:
    /// u16, size: u8, write: u8 bit 0), 5 NPF (gpa: u64, u8: bit 0 write, bit 1 fetch), 6 triple
    /// fault, 7 INIT, 8 virtualization instruction (u8 index into [`VIRT_INSTRUCTIONS`]), 9 XSETBV
    /// (xcr: u32, value: u64), 10 control-register access, 11 NMI, 12 invalid state (u64), 13
    /// other (u64).
    pub fn decode(r: &mut Reader) -> Step {
        let exit = match r.u8() % 14 {
            0 => {
                return Step::Hypercall {
                    rax: r.u64(),
                    rdi: r.u64(),
                    rsi: r.u64(),
                    rdx: r.u64(),
                }
            }
            1 => {
                return Step::Cpuid {
                    rax: r.u64(),
                    rcx: r.u64(),
                }
            }
            2 => VmExit::MsrRead { msr: r.u32() },
            3 => VmExit::MsrWrite {
                msr: r.u32(),
                value: r.u64(),
            },
            4 => VmExit::Io {
                port: r.u16(),
                size: r.u8(),
                write: r.u8() & 1 != 0,
            },
            5 => {
                let gpa = r.u64();
                let how = r.u8();
                VmExit::NestedPageFault {
                    gpa,
                    write: how & 1 != 0,
                    fetch: how & 2 != 0,
                }
            }
            6 => VmExit::TripleFault,
            7 => VmExit::Init,
            8 => VmExit::VirtualizationInstruction {
                name: VIRT_INSTRUCTIONS[usize::from(r.u8()) % VIRT_INSTRUCTIONS.len()],
            },
            9 => VmExit::Xsetbv {
                xcr: r.u32(),
                value: r.u64(),
            },
            10 => VmExit::ControlRegisterAccess,
            11 => VmExit::Nmi,
            12 => VmExit::InvalidState { code: r.u64() },
            14 => {
                let exit = ExitReason::ALL[usize::from(r.u8()) % ExitReason::ALL.len()];
                let mut bytes = [0u8; 15];
                for b in &mut bytes {
                    *b = r.u8();
                }
                VmExit::DecodeFailed {
                    exit,
                    bytes,
                    len: r.u8() % 16,
                }
            }
            _ => VmExit::Other { code: r.u64() },
        };
        Step::Exit(exit)
    }

    /// Encodes in [`Step::decode`]'s layout. `Step::Exit` of a hypercall or CPUID exit has no
    /// registers to encode: use `Step::Hypercall` / `Step::Cpuid`.
    pub fn encode(&self, w: &mut Writer) {
        match *self {
            Step::Hypercall { rax, rdi, rsi, rdx } => {
                w.u8(0);
                for v in [rax, rdi, rsi, rdx] {
                    w.u64(v);
                }
            }
            Step::Cpuid { rax, rcx } => {
                w.u8(1);
                w.u64(rax);
                w.u64(rcx);
            }
            Step::Exit(exit) => match exit {
                VmExit::Hypercall | VmExit::Cpuid => {
                    panic!("encode {exit:?} as Step::Hypercall / Step::Cpuid")
                }
                VmExit::MsrRead { msr } => {
                    w.u8(2);
                    w.u32(msr);
                }
                VmExit::MsrWrite { msr, value } => {
                    w.u8(3);
                    w.u32(msr);
                    w.u64(value);
                }
                VmExit::Io { port, size, write } => {
                    w.u8(4);
                    w.u16(port);
                    w.u8(size);
                    w.u8(u8::from(write));
                }
                VmExit::NestedPageFault { gpa, write, fetch } => {
                    w.u8(5);
                    w.u64(gpa);
                    w.u8(u8::from(write) | (u8::from(fetch) << 1));
                }
                VmExit::TripleFault => w.u8(6),
                VmExit::Init => w.u8(7),
                VmExit::VirtualizationInstruction { name } => {
                    w.u8(8);
                    let at = VIRT_INSTRUCTIONS.iter().position(|n| *n == name);
                    w.u8(at.and_then(|i| u8::try_from(i).ok()).unwrap_or(0));
                }
                VmExit::Xsetbv { xcr, value } => {
                    w.u8(9);
                    w.u32(xcr);
                    w.u64(value);
                }
                VmExit::ControlRegisterAccess => w.u8(10),
                VmExit::Nmi => w.u8(11),
                VmExit::InvalidState { code } => {
                    w.u8(12);
                    w.u64(code);
                }
                VmExit::Other { code } => {
                    w.u8(13);
                    w.u64(code);
                }
                VmExit::DecodeFailed { exit, bytes, len } => {
                    w.u8(14);
                    w.u8(u8::try_from(exit.index()).expect("a handful of exit kinds"));
                    for b in bytes {
                        w.u8(b);
                    }
                    w.u8(len);
                }
            },
        }
    }
}

/// One decoded input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Index into [`super::fakes::HOST_CPUS`] (modulo its length).
    pub cpu: u8,
    /// [`STOP`], [`CR_OK`], [`VMX`].
    pub flags: u8,
    /// The partition.
    pub setup: Setup,
    /// Its exits, in order (the run stops at the first that ends the partition).
    pub steps: Vec<Step>,
}

impl Scenario {
    /// Decodes fuzzer bytes (any bytes decode).
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let cpu = r.u8();
        let flags = r.u8();
        let setup = Setup::decode(&mut r);
        let mut steps = Vec::new();
        while !r.is_empty() && steps.len() < MAX_EXITS {
            steps.push(Step::decode(&mut r));
        }
        Scenario {
            cpu,
            flags,
            setup,
            steps,
        }
    }

    /// Encodes in [`Scenario::decode`]'s layout (for seeds).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(self.cpu);
        w.u8(self.flags);
        self.setup.encode(&mut w);
        for s in &self.steps {
            s.encode(&mut w);
        }
        w.0
    }
}

/// The power-on PAT (Intel SDM Vol. 3A §13.12.4): WB, WT, UC-, UC, twice.
const POWER_ON_PAT: u64 = 0x0007_0406_0007_0406;

/// The harness body: decode, run the exits until one ends the partition, check each.
pub fn run(data: &[u8]) {
    let s = Scenario::decode(data);
    let partition = s.setup.partition();
    let mem = FakeMemory(s.setup.ram.clone());
    let mut host = FakeHost::new(s.cpu, s.flags & STOP != 0);
    if s.flags & CONSOLE_BUDGET != 0 {
        host.console_room = Some(2);
    }
    let mut vcpu = FakeVcpu {
        regs: [0; 6],
        rip: 0,
        skipped: 0,
        efer: 0,
        pat: POWER_ON_PAT,
        backend: if s.flags & VMX != 0 {
            Backend::Vmx
        } else {
            Backend::Svm
        },
        cr_ok: s.flags & CR_OK != 0,
        cpl: (s.flags >> CPL_SHIFT) & 3,
        cr4: if s.flags & OSXSAVE != 0 { 1 << 18 } else { 0 },
        features: hypervisor::cpuid_policy::GuestFeatures {
            rdtscp: true,
            invpcid: true,
            tsc_deadline: s.flags & TSC_DEADLINE != 0 && host.cpu.tsc_deadline(),
        },
        effects: Vec::new(),
    };
    let mut record = RunRecord::default();
    let mut end = None;
    for (i, step) in s.steps.iter().enumerate() {
        vcpu.rip = 0x10_0000 + 16 * i as u64;
        end = run_step(*step, &mut vcpu, &mut host, &partition, &mem, &mut record);
        if end.is_some() {
            break;
        }
    }
    check_report(&partition, end.as_ref().unwrap_or(&End::TimedOut), &record);
}

/// The fault kind an exit that is never allowed must end with.
fn always_faults(exit: &VmExit) -> Option<FaultKind> {
    Some(match exit {
        VmExit::Io { .. } => FaultKind::PortDenied,
        VmExit::NestedPageFault { .. } => FaultKind::Npf,
        VmExit::TripleFault => FaultKind::TripleFault,
        VmExit::Init => FaultKind::Init,
        VmExit::VirtualizationInstruction { .. } => FaultKind::VirtInstruction,
        VmExit::InvalidState { .. } => FaultKind::InvalidState,
        VmExit::Other { .. } => FaultKind::UnexpectedExit,
        VmExit::DecodeFailed { .. } => FaultKind::DecodeFailed,
        _ => return None,
    })
}

/// Effects on the partition's own timer that may come with another one.
fn is_timer_aux(e: &HostEffect) -> bool {
    matches!(e, HostEffect::Timer { .. } | HostEffect::TimerIntercept(_))
}

/// The fault kinds a refused write to `msr` may carry.
fn write_fault_kinds(msr: u32) -> &'static [FaultKind] {
    match msr {
        MSR_X2APIC_ICR => &[FaultKind::IpiDenied],
        MSR_APIC_BASE => &[FaultKind::ApicBase],
        m if Lvt::of_msr(m).is_some() => &[FaultKind::LvtDenied, FaultKind::MsrDenied],
        _ => &[FaultKind::MsrDenied],
    }
}

/// Whether the partition may send a fixed IPI with `vector` to `apic_id`: to its own core, or to
/// the peer of one of its `ipi` channels on that channel's vector (`docs/threat-model.md`).
fn ipi_allowed(partition: &Partition, apic_id: u32, vector: u8) -> bool {
    apic_id == partition.apic_id
        || partition
            .channels
            .iter()
            .any(|c| c.ipi && c.peer_apic_id == apic_id && c.peer_vector == vector)
}

/// Checks that side effect `e` of `exit` is one that exit may have, with a value its oracle
/// accepts.
fn check_effect(exit: &VmExit, e: &HostEffect, partition: &Partition, cpu: &HostCpu, tsc: bool) {
    let what = format!("{exit:?} on {}", cpu.name);
    match (*exit, e) {
        // Checked in full by `check_call`.
        (VmExit::Hypercall, HostEffect::Console { .. } | HostEffect::Ipi { .. }) => {}
        (
            VmExit::MsrWrite {
                msr: MSR_X2APIC_ICR,
                value,
            },
            &HostEffect::Ipi { apic_id, vector },
        ) => {
            assert_eq!(
                oracle::icr_fixed_physical(value),
                Some((apic_id, vector)),
                "{what}: sent an IPI the ICR value does not ask for"
            );
            assert!(
                ipi_allowed(partition, apic_id, vector),
                "{what}: IPI to {apic_id} vector {vector:#x} not granted"
            );
        }
        (VmExit::MsrWrite { msr, value }, &HostEffect::Lvt { msr: m, value: v }) => {
            assert_eq!(m, msr, "{what}: wrote another LVT");
            assert!(
                oracle::lvt_written_is_guests(value, v),
                "{what}: wrote {v:#x}, not the guest's value"
            );
            let lvt = Lvt::of_msr(msr).unwrap_or_else(|| panic!("{what}: {msr:#x} is no LVT"));
            assert!(
                oracle::lvt_write_safe(lvt, v, tsc),
                "{what}: wrote LVT {lvt:?} = {v:#x}, which has reserved bits or can raise \
                 more than a fixed interrupt"
            );
        }
        (VmExit::Xsetbv { xcr, value }, &HostEffect::Xcr0(v)) => {
            assert_eq!((xcr, v), (0, value), "{what}: loaded another XCR or value");
            assert!(
                oracle::xcr0_valid(value, cpu.xcr0_supported()),
                "{what}: loaded XCR0 = {value:#x}, which XSETBV refuses with #GP (supported \
                 {:#x})",
                cpu.xcr0_supported()
            );
        }
        (
            VmExit::MsrWrite {
                msr: MSR_EFER,
                value,
            },
            &HostEffect::Efer(v),
        ) => {
            assert_eq!(v, value, "{what}: loaded another EFER");
            assert_eq!(
                value & !oracle::EFER_GUEST,
                0,
                "{what}: EFER {value:#x} not guest bits"
            );
        }
        (
            VmExit::MsrWrite {
                msr: MSR_PAT,
                value,
            },
            &HostEffect::Pat(v),
        ) => {
            assert_eq!(v, value, "{what}: loaded another PAT");
            assert!(
                oracle::pat_valid(value),
                "{what}: PAT {value:#x} has reserved types"
            );
        }
        (
            VmExit::MsrWrite {
                msr: msr @ (MSR_TIMER_LVT | MSR_TIMER_INITIAL | MSR_TIMER_DIVIDE),
                value,
            },
            &HostEffect::Timer {
                msr: m,
                value: v,
                periodic,
                count,
                divide,
            },
        ) => check_timer_write(&what, msr, value, m, v, periodic, count, divide),
        (
            VmExit::MsrWrite {
                msr: MSR_TIMER_LVT,
                value,
            },
            &HostEffect::TimerIntercept(on),
        ) => assert_eq!(
            on,
            oracle::timer_periodic(low32(value)), // the LVT is 32 bits
            "{what}: count/divide intercepts {on} for LVT {value:#x}"
        ),
        _ => panic!("{what}: side effect {e:?} this exit may not have"),
    }
}

/// A write to the timer's count or divide register during a write of the
/// guest's to `msr` (`value`): the period never falls below the floor while
/// the timer is (or is becoming) periodic, and otherwise the guest's value
/// is written as given.
#[allow(
    clippy::too_many_arguments,
    reason = "the fields of one HostEffect::Timer"
)]
fn check_timer_write(
    what: &str,
    msr: u32,
    value: u64,
    written_msr: u32,
    written: u32,
    periodic: bool,
    count: u32,
    divide: u32,
) {
    let floor = FAKE_TIMER_FLOOR;
    match written_msr {
        MSR_TIMER_INITIAL => {
            // An LVT write rewrites the count only when it makes the timer periodic.
            let bounded = periodic || msr == MSR_TIMER_LVT;
            let by = if msr == MSR_TIMER_DIVIDE {
                oracle::timer_divide(low32(value))
            } else {
                oracle::timer_divide(divide)
            };
            if msr == MSR_TIMER_INITIAL {
                assert!(value >> 32 == 0, "{what}: wrote a count for {value:#x}");
                if !bounded {
                    assert_eq!(u64::from(written), value, "{what}: one-shot count changed");
                }
                assert!(
                    u64::from(written) >= value,
                    "{what}: count lowered to {written}"
                );
                assert_eq!(written == 0, value == 0, "{what}: count 0 changed");
            }
            if bounded && written != 0 {
                let by = by.unwrap_or_else(|| panic!("{what}: reserved divide {divide:#x}"));
                assert!(
                    u64::from(written) * by >= floor,
                    "{what}: periodic count {written} at divide {by} under the floor {floor}"
                );
            }
        }
        MSR_TIMER_DIVIDE => {
            assert_eq!(
                msr, MSR_TIMER_DIVIDE,
                "{what}: divide written for another MSR"
            );
            assert_eq!(u64::from(written), value, "{what}: another divide written");
            let by = oracle::timer_divide(written)
                .unwrap_or_else(|| panic!("{what}: reserved divide {written:#x} written"));
            if periodic && count != 0 {
                assert!(
                    u64::from(count) * by >= floor,
                    "{what}: divide {by} with count {count} under the floor {floor}"
                );
            }
        }
        other => panic!("{what}: timer write to {other:#x}"),
    }
}

/// CPUID results as the guest must see them (`docs/boot-protocol.md` §5).
fn check_cpuid(leaf: u32, subleaf: u32, regs: [u64; 4], interface: u32, cpu: &HostCpu) {
    let what = format!("CPUID {leaf:#x}.{subleaf:#x} on {}", cpu.name);
    for r in regs {
        assert_eq!(r >> 32, 0, "{what}: a 64-bit result {regs:x?}");
    }
    let [eax, ebx, ecx, edx] = regs.map(|r| u32::try_from(r).expect("checked above"));
    match leaf {
        1 => {
            assert_eq!(ecx & (1 << 5), 0, "{what}: VMX shown");
            assert_ne!(ecx & (1 << 31), 0, "{what}: hypervisor bit clear");
        }
        0x8000_0001 => assert_eq!(ecx & (1 << 2), 0, "{what}: SVM shown"),
        0x8000_000a => assert_eq!([eax, ebx, ecx, edx], [0; 4], "{what}: SVM features shown"),
        cpuid::LEAF_SIGNATURE => {
            assert!(
                eax >= cpuid::LEAF_INTERFACE,
                "{what}: highest leaf {eax:#x}"
            );
            let mut sig = Vec::new();
            for r in [ebx, ecx, edx] {
                sig.extend_from_slice(&r.to_le_bytes());
            }
            assert_eq!(sig, cpuid::SIGNATURE, "{what}: signature");
        }
        cpuid::LEAF_INTERFACE => assert_eq!(eax, interface, "{what}: interface"),
        0xd if subleaf == 0 => {
            let shown = (u64::from(edx) << 32) | u64::from(eax);
            assert_eq!(
                shown & !cpu.xcr0_supported(),
                0,
                "{what}: XSAVE components {shown:#x} the host lacks"
            );
        }
        _ => {}
    }
}

/// Runs one step and checks it; returns how the partition ended, if it did.
fn run_step(
    step: Step,
    vcpu: &mut FakeVcpu,
    host: &mut FakeHost,
    partition: &Partition,
    mem: &FakeMemory,
    record: &mut RunRecord,
) -> Option<End> {
    let exit = match step {
        Step::Hypercall { rax, rdi, rsi, rdx } => {
            vcpu.regs[0] = rax;
            vcpu.regs[3] = rdx;
            vcpu.regs[4] = rsi;
            vcpu.regs[5] = rdi;
            VmExit::Hypercall
        }
        Step::Cpuid { rax, rcx } => {
            vcpu.regs[0] = rax;
            vcpu.regs[2] = rcx;
            VmExit::Cpuid
        }
        Step::Exit(exit) => exit,
    };
    let regs = vcpu.regs;
    let (rip, skipped, efer, pat) = (vcpu.rip, vcpu.skipped, vcpu.efer, vcpu.pat);
    let (host_seen, vcpu_seen) = (host.effects.len(), vcpu.effects.len());
    let before = record.clone();

    let end = handle_exit(exit, vcpu, partition, record, mem, host);

    let what = format!("{exit:?} on {}", host.cpu.name);
    let host_effects = host.effects[host_seen..].to_vec();
    let mut effects = host_effects.clone();
    effects.extend_from_slice(&vcpu.effects[vcpu_seen..]);
    let skips = vcpu.skipped - skipped;

    assert_eq!(
        record.total_exits(),
        before.total_exits() + 1,
        "{what}: not counted once"
    );
    // The timer's own registers may change alongside (minimum period); at
    // most one other effect per exit.
    let main_effects = effects.iter().filter(|e| !is_timer_aux(e)).count();
    assert!(
        main_effects <= 1,
        "{what}: several side effects {effects:?}"
    );
    match &end {
        Some(e) => assert_eq!(skips, 0, "{what}: ended the partition ({e:?}) and skipped"),
        None if exit == VmExit::Nmi => assert_eq!(skips, 0, "{what}: an NMI skipped"),
        None => assert_eq!(
            skips, 1,
            "{what}: resumed without completing the instruction once"
        ),
    }
    for e in &effects {
        check_effect(&exit, e, partition, host.cpu, vcpu.features.tsc_deadline);
    }
    if let Some(End::Faulted(f)) = &end {
        // Only its own timer may have changed (the count raised before a
        // refused LVT or divide write): harmless, the partition is over.
        assert_eq!(
            main_effects, 0,
            "{what}: faulted ({:?}) after {effects:?}",
            f.kind
        );
        assert_eq!(vcpu.regs, regs, "{what}: faulted but changed registers");
        assert_eq!(
            (vcpu.efer, vcpu.pat),
            (efer, pat),
            "{what}: faulted but changed EFER/PAT"
        );
        assert_eq!(f.rip, rip, "{what}: fault RIP");
    }
    let fault_kind = match &end {
        Some(End::Faulted(f)) => Some(f.kind),
        _ => None,
    };
    if let Some(kind) = always_faults(&exit) {
        assert_eq!(fault_kind, Some(kind), "{what}: must stop the partition");
    }
    match exit {
        VmExit::Hypercall if vcpu.cpl != 0 => {
            assert!(
                end.is_none(),
                "{what} at CPL {}: ended as {end:?}",
                vcpu.cpl
            );
            assert_eq!(
                vcpu.regs[0],
                abi::hypercall::Error::Denied.to_rax(),
                "{what} at CPL {}: not denied",
                vcpu.cpl
            );
            assert!(
                effects.is_empty(),
                "{what} at CPL {}: effects {effects:?}",
                vcpu.cpl
            );
            let mut served = before.clone();
            served.exits = record.exits;
            served.steady_exits = record.steady_exits;
            served.booted = record.booted;
            assert_eq!(
                &served, record,
                "{what} at CPL {}: changed the record",
                vcpu.cpl
            );
        }
        VmExit::Hypercall => {
            let outcome = match &end {
                None => Outcome::Return(vcpu.regs[0]),
                Some(End::Exited(code)) => Outcome::Exit(*code),
                Some(other) => panic!("{what}: a hypercall ended as {other:?}"),
            };
            // `check_call` looks at what dispatch changed: take the exit counting out.
            let mut before_call = before.clone();
            before_call.exits = record.exits;
            before_call.steady_exits = record.steady_exits;
            before_call.booted = record.booted;
            check_call(
                regs[0],
                [regs[5], regs[4], regs[3]],
                outcome,
                &host_effects,
                partition,
                mem,
                &before_call,
                record,
                false,
            );
            assert_eq!(
                vcpu.regs[1..],
                regs[1..],
                "{what}: a hypercall changed rbx..rdi"
            );
        }
        VmExit::Cpuid => {
            assert!(end.is_none(), "{what}: CPUID ended the partition");
            let r = vcpu.regs;
            check_cpuid(
                low32(regs[0]), // EAX, ECX
                low32(regs[2]),
                [r[0], r[1], r[2], r[3]],
                vcpu.backend.id(),
                host.cpu,
            );
            if low32(regs[0]) == 1 && r[2] & (1 << 27) != 0 {
                assert_ne!(
                    vcpu.cr4 & (1 << 18),
                    0,
                    "{what}: OSXSAVE shown, CR4.OSXSAVE clear"
                );
            }
            assert_eq!(vcpu.regs[4..], regs[4..], "{what}: CPUID changed rsi/rdi");
        }
        VmExit::MsrRead { msr } => {
            assert!(effects.is_empty(), "{what}: a read had effects {effects:?}");
            match fault_kind {
                Some(kind) => assert_eq!(kind, FaultKind::MsrDenied, "{what}"),
                None => {
                    let (rax, rdx) = (vcpu.regs[0], vcpu.regs[3]);
                    assert!(
                        rax >> 32 == 0 && rdx >> 32 == 0,
                        "{what}: EDX:EAX upper halves"
                    );
                    let value = (rdx << 32) | rax;
                    match msr {
                        MSR_EFER => assert_eq!(value, vcpu.efer, "{what}: EFER read"),
                        MSR_PAT => assert_eq!(value, vcpu.pat, "{what}: PAT read"),
                        _ => {}
                    }
                }
            }
        }
        VmExit::MsrWrite { msr, .. } => match fault_kind {
            Some(kind) => assert!(
                write_fault_kinds(msr).contains(&kind),
                "{what}: refused as {kind:?}"
            ),
            None if matches!(msr, MSR_TIMER_INITIAL | MSR_TIMER_DIVIDE) => assert!(
                effects
                    .iter()
                    .any(|e| matches!(e, HostEffect::Timer { msr: m, .. } if *m == msr)),
                "{what}: neither applied nor refused"
            ),
            None => assert_eq!(main_effects, 1, "{what}: neither applied nor refused"),
        },
        VmExit::NestedPageFault { gpa, .. } => match &end {
            Some(End::Faulted(f)) => assert_eq!(f.gpa, Some(gpa), "{what}: fault address"),
            other => panic!("{what}: ended as {other:?}"),
        },
        VmExit::Xsetbv { xcr, value }
            if !(xcr == 0 && oracle::xcr0_valid(value, host.cpu.xcr0_supported())) =>
        {
            assert_eq!(
                fault_kind,
                Some(FaultKind::XsetbvDenied),
                "{what}: an XSETBV the CPU refuses did not stop the partition"
            );
        }
        VmExit::ControlRegisterAccess => {
            let expected = (!vcpu.cr_ok).then_some(FaultKind::CrDenied);
            assert_eq!(fault_kind, expected, "{what}");
        }
        VmExit::Nmi => {
            assert!(effects.is_empty(), "{what}: effects {effects:?}");
            let expected = host.stop.then_some(End::TimedOut);
            assert_eq!(end, expected, "{what}");
        }
        _ => {}
    }
    end
}
