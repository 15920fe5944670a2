//! Vendor-neutral exit handling: what to do with each [`VmExit`] of a
//! partition. Allowed requests are served and the guest resumes; anything
//! forbidden stops the partition with a precise [`Fault`] (containment) —
//! nothing forbidden is silently ignored.

use crate::compat::{self, Platform};
use crate::cpuid_policy::{guest_cpuid, CpuidView};
use crate::guest_memory::GuestMemory;
use crate::hypercall::{self, HypercallHost, Outcome};
use crate::lvt_policy::{check_lvt, timer_is_periodic, Lvt, LvtCaps};
use crate::msr_policy::{pat_valid, MSR_PAT, VALIDATED_LVT};
use crate::partition::{End, Fault, Partition, RunRecord};
use crate::timer_policy::{
    clamp_count, divide_by, register_value, MIN_PERIOD_US, MSR_TIMER_DIVIDE, MSR_TIMER_INITIAL,
    MSR_TIMER_LVT,
};
use crate::vcpu::{Gpr, Vcpu, VmExit};
use crate::xcr0_policy::{check_xsetbv, XsaveCaps};
use abi::fault::FaultKind;
use abi::regs::half::{low32, low8, split_u64};
use abi::regs::{delivery, efer, icr};
use alloc::format;
use alloc::string::{String, ToString};

pub use x86::msr::{
    IA32_APIC_BASE as MSR_APIC_BASE, IA32_EFER as MSR_EFER, IA32_X2APIC_ICR as MSR_X2APIC_ICR,
};

/// EFER bits a partition may set: SCE, LME, NXE (and LMA, which the
/// processor owns; a written LMA is ignored).
pub const EFER_GUEST_BITS: u64 = efer::SCE | efer::LME | efer::LMA | efer::NXE;

/// The CPU refused a value the hypervisor's rule accepted: the instruction
/// raised #GP (or #UD) and the exception fixup resumed at its recovery
/// code instead of ending the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuRefused;

/// Services the exit handler needs from the machine.
pub trait ExitHost: HypercallHost {
    /// Executes CPUID on the host.
    fn host_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4];
    /// Whether another core asked this partition to stop (run timeout).
    fn stop_requested(&self) -> bool;
    /// "Max LVT Entry" of this core's local APIC (version register bits
    /// 23:16).
    fn apic_max_lvt(&self) -> u8;
    /// Writes a (validated) local vector table entry of this core's x2APIC,
    /// under the exception fixup.
    fn write_lvt(&mut self, msr: u32, value: u32) -> Result<(), CpuRefused>;
    /// Loads a (validated) XCR0 on this core, under the exception fixup.
    fn write_xcr0(&mut self, value: u64) -> Result<(), CpuRefused>;
    /// The shortest period of a periodic APIC timer, in timer ticks at
    /// divide by 1 (calibrated at boot, `timer_policy::floor_ticks`).
    fn timer_floor(&self) -> u64;
    /// Reads an x2APIC timer register of this core (LVT, initial count or
    /// divide configuration).
    fn read_timer(&self, msr: u32) -> u32;
    /// Writes the (checked) initial count or divide configuration of this
    /// core's x2APIC timer, under the exception fixup.
    fn write_timer(&mut self, msr: u32, value: u32) -> Result<(), CpuRefused>;
    /// Writes one of the hypervisor's own console lines.
    fn notice(&mut self, line: &str);
    /// The partition's emulated devices (used only with the compat opt-in).
    fn platform(&mut self) -> &mut Platform;
    /// This core's time-stamp counter.
    fn tsc(&self) -> u64;
}

/// Whether an x2APIC ICR value is a plain fixed IPI (physical destination,
/// no shorthand), returning its destination and vector.
pub fn fixed_ipi(value: u64) -> Option<(u32, u8)> {
    let fixed = value & u64::from(delivery::MASK) == u64::from(delivery::FIXED << delivery::SHIFT);
    let logical = value & icr::LOGICAL != 0;
    let shorthand = (value >> icr::SHORTHAND_SHIFT) & 0b11;
    // Deliberate truncations: the destination is bits 63:32, the vector 7:0.
    let (destination, vector) = (low32(value >> icr::X2APIC_DESTINATION_SHIFT), low8(value));
    (fixed && !logical && shorthand == 0).then_some((destination, vector))
}

/// Finishes an emulated RDMSR: `value` into EDX:EAX, past the instruction.
fn complete_rdmsr(vcpu: &mut impl Vcpu, value: u64) -> Option<End> {
    let (edx, eax) = split_u64(value);
    vcpu.set_gpr(Gpr::Rax, u64::from(eax));
    vcpu.set_gpr(Gpr::Rdx, u64::from(edx));
    vcpu.skip_instruction();
    None
}

fn fault(vcpu: &impl Vcpu, kind: FaultKind, gpa: Option<u64>, detail: String) -> Option<End> {
    Some(End::Faulted(Fault {
        kind,
        rip: vcpu.rip(),
        gpa,
        detail,
    }))
}

/// Raises a periodic timer's initial count to the floor if needed
/// (`count` at `divide`), writing the new count; counts and announces it.
fn clamp_timer(
    count: u32,
    divide: u32,
    partition: &Partition,
    record: &mut RunRecord,
    host: &mut impl ExitHost,
) -> Result<(), CpuRefused> {
    let Some(clamped) = clamp_count(count, divide, host.timer_floor()) else {
        return Ok(());
    };
    host.write_timer(MSR_TIMER_INITIAL, clamped)?;
    if record.timer_clamps == 0 {
        host.notice(&format!(
            "flotilla: partition {} periodic APIC timer clamped to {MIN_PERIOD_US} us \
             (initial count {count} at divide {divide} raised to {clamped})",
            partition.name
        ));
    }
    record.timer_clamps = record.timer_clamps.saturating_add(1);
    Ok(())
}

/// The divisor the timer uses now (its register, read back, is always
/// valid; 1, the strictest, if not).
fn live_divide(host: &impl ExitHost) -> u32 {
    divide_by(host.read_timer(MSR_TIMER_DIVIDE)).unwrap_or(1)
}

/// Writes a validated timer LVT value: periodic mode turns the count and
/// divide intercepts on (first raising a too-short loaded count), one-shot
/// turns them off.
fn write_timer_lvt(
    value: u32,
    vcpu: &mut impl Vcpu,
    partition: &Partition,
    record: &mut RunRecord,
    host: &mut impl ExitHost,
) -> Result<(), CpuRefused> {
    let periodic = timer_is_periodic(value);
    if periodic {
        let count = host.read_timer(MSR_TIMER_INITIAL);
        clamp_timer(count, live_divide(host), partition, record, host)?;
    }
    vcpu.intercept_timer_writes(periodic);
    host.write_lvt(MSR_TIMER_LVT, value)
}

/// An intercepted write to the timer's initial count or divide
/// configuration (the timer is periodic): the period never falls below the
/// floor (`timer_policy`).
fn write_timer_register(
    msr: u32,
    value: u64,
    vcpu: &mut impl Vcpu,
    partition: &Partition,
    record: &mut RunRecord,
    host: &mut impl ExitHost,
) -> Option<End> {
    let denied = |vcpu: &mut _, why: String| {
        fault(
            vcpu,
            FaultKind::MsrDenied,
            None,
            format!("write {value:#x} to MSR {msr:#x}: {why}"),
        )
    };
    let register = match register_value(value) {
        Ok(v) => v,
        Err(why) => return denied(vcpu, why.to_string()),
    };
    // Re-read the mode rather than trust the intercept state.
    let periodic = timer_is_periodic(host.read_timer(MSR_TIMER_LVT));
    let written = if msr == MSR_TIMER_INITIAL {
        let divide = live_divide(host);
        if periodic && clamp_count(register, divide, host.timer_floor()).is_some() {
            clamp_timer(register, divide, partition, record, host)
        } else {
            host.write_timer(msr, register)
        }
    } else {
        let divide = match divide_by(register) {
            Ok(d) => d,
            Err(why) => return denied(vcpu, why.to_string()),
        };
        let raised = if periodic {
            let count = host.read_timer(MSR_TIMER_INITIAL);
            clamp_timer(count, divide, partition, record, host)
        } else {
            Ok(())
        };
        raised.and_then(|()| host.write_timer(msr, register))
    };
    match written {
        Ok(()) => {
            vcpu.skip_instruction();
            None
        }
        Err(CpuRefused) => denied(vcpu, String::from("the CPU refused it (#GP)")),
    }
}

/// Handles one exit. Returns `Some(end)` when the partition is over.
pub fn handle_exit(
    exit: VmExit,
    vcpu: &mut impl Vcpu,
    partition: &Partition,
    record: &mut RunRecord,
    mem: &impl GuestMemory,
    host: &mut impl ExitHost,
) -> Option<End> {
    record.count_exit(exit.reason());
    match exit {
        VmExit::Hypercall if vcpu.cpl() != 0 => {
            // Only the partition's kernel may call the hypervisor: a user
            // program's call does nothing and returns `Denied`.
            vcpu.set_gpr(Gpr::Rax, abi::hypercall::Error::Denied.to_rax());
            vcpu.skip_instruction();
            None
        }
        VmExit::Hypercall => {
            let nr = vcpu.gpr(Gpr::Rax);
            let args = [vcpu.gpr(Gpr::Rdi), vcpu.gpr(Gpr::Rsi), vcpu.gpr(Gpr::Rdx)];
            match hypercall::dispatch(nr, args, partition, record, mem, host) {
                Outcome::Return(value) => {
                    vcpu.set_gpr(Gpr::Rax, value);
                    vcpu.skip_instruction();
                    None
                }
                Outcome::Exit(code) => Some(End::Exited(code)),
            }
        }
        VmExit::Cpuid => {
            let (leaf, subleaf) = (low32(vcpu.gpr(Gpr::Rax)), low32(vcpu.gpr(Gpr::Rcx)));
            let view = CpuidView {
                backend: vcpu.backend(),
                features: vcpu.guest_features(),
                guest_cr4: vcpu.guest_cr4(),
            };
            let mut regs = guest_cpuid(leaf, subleaf, host.host_cpuid(leaf, subleaf), &view);
            if partition.compat {
                compat::cpuid(leaf, &mut regs);
            }
            let [a, b, c, d] = regs;
            vcpu.set_gpr(Gpr::Rax, u64::from(a));
            vcpu.set_gpr(Gpr::Rbx, u64::from(b));
            vcpu.set_gpr(Gpr::Rcx, u64::from(c));
            vcpu.set_gpr(Gpr::Rdx, u64::from(d));
            vcpu.skip_instruction();
            None
        }
        VmExit::MsrWrite {
            msr: MSR_X2APIC_ICR,
            value,
        } => match fixed_ipi(value) {
            Some((apic_id, vector)) if partition.may_interrupt(apic_id, vector) => {
                host.send_ipi(apic_id, vector);
                vcpu.skip_instruction();
                None
            }
            _ => fault(
                vcpu,
                FaultKind::IpiDenied,
                None,
                format!("x2APIC ICR write {value:#x} denied"),
            ),
        },
        VmExit::MsrWrite {
            msr: MSR_EFER,
            value,
        } if value & !EFER_GUEST_BITS == 0 => {
            vcpu.write_efer(value);
            vcpu.skip_instruction();
            None
        }
        VmExit::MsrWrite {
            msr: MSR_PAT,
            value,
        } if pat_valid(value) => {
            vcpu.write_pat(value);
            vcpu.skip_instruction();
            None
        }
        VmExit::MsrRead { msr: MSR_PAT } => complete_rdmsr(vcpu, vcpu.read_pat()),
        VmExit::MsrRead { msr: MSR_EFER } => complete_rdmsr(vcpu, vcpu.read_efer()),
        VmExit::MsrWrite { msr, value } if VALIDATED_LVT.contains(&msr) => {
            let Some(lvt) = Lvt::from_msr(msr) else {
                return fault(
                    vcpu,
                    FaultKind::LvtDenied,
                    None,
                    format!("MSR {msr:#x} is no LVT"),
                );
            };
            let value = match lvt {
                Lvt::Lint0 | Lvt::Lint1 | Lvt::Pmc if partition.compat => {
                    compat::lint_value(value, &mut record.compat)
                }
                _ => value,
            };
            let caps = LvtCaps {
                max_entry: host.apic_max_lvt(),
                tsc_deadline: vcpu.guest_features().tsc_deadline,
            };
            let refused = match check_lvt(lvt, value, caps) {
                Ok(checked) => {
                    let written = if lvt == Lvt::Timer {
                        write_timer_lvt(checked, vcpu, partition, record, host)
                    } else {
                        host.write_lvt(msr, checked)
                    };
                    match written {
                        Ok(()) => {
                            vcpu.skip_instruction();
                            return None;
                        }
                        Err(CpuRefused) => String::from("the CPU refused it (#GP)"),
                    }
                }
                Err(why) => why.to_string(),
            };
            fault(
                vcpu,
                FaultKind::LvtDenied,
                None,
                format!("{} write {value:#x} (MSR {msr:#x}): {refused}", lvt.name()),
            )
        }
        VmExit::MsrWrite {
            msr: msr @ (MSR_TIMER_INITIAL | MSR_TIMER_DIVIDE),
            value,
        } => write_timer_register(msr, value, vcpu, partition, record, host),
        VmExit::MsrWrite {
            msr: MSR_APIC_BASE,
            value,
        } => fault(
            vcpu,
            FaultKind::ApicBase,
            None,
            format!("write {value:#x} to IA32_APIC_BASE"),
        ),
        VmExit::MsrRead {
            msr: compat::MSR_MISC_ENABLE,
        } if partition.compat => complete_rdmsr(vcpu, compat::MISC_ENABLE_VALUE),
        VmExit::MsrRead { .. } | VmExit::MsrWrite { .. } if partition.compat => {
            record.compat.msr_gp = record.compat.msr_gp.saturating_add(1);
            vcpu.inject_exception(&compat::GENERAL_PROTECTION);
            None
        }
        VmExit::Io { port, size, write } if partition.compat => {
            compat::port_exit((port, size, write), vcpu, partition, record, host)
        }
        VmExit::MsrWrite { msr, value } => fault(
            vcpu,
            FaultKind::MsrDenied,
            None,
            format!("write {value:#x} to MSR {msr:#x}"),
        ),
        VmExit::MsrRead { msr } => fault(
            vcpu,
            FaultKind::MsrDenied,
            None,
            format!("read of MSR {msr:#x}"),
        ),
        VmExit::Io { port, size, write } => fault(
            vcpu,
            FaultKind::PortDenied,
            None,
            format!(
                "{} of {size} byte(s) on port {port:#x}",
                if write { "out" } else { "in" }
            ),
        ),
        VmExit::NestedPageFault { gpa, write, fetch } => {
            let access = if fetch {
                "fetch"
            } else if write {
                "write"
            } else {
                "read"
            };
            fault(
                vcpu,
                FaultKind::Npf,
                Some(gpa),
                format!("{access} outside the partition's map"),
            )
        }
        VmExit::TripleFault => fault(vcpu, FaultKind::TripleFault, None, String::from("shutdown")),
        VmExit::Init => fault(vcpu, FaultKind::Init, None, String::from("INIT signal")),
        VmExit::VirtualizationInstruction { name } => fault(
            vcpu,
            FaultKind::VirtInstruction,
            None,
            format!("{name} executed"),
        ),
        VmExit::Xsetbv { xcr, value } => {
            let caps = XsaveCaps::from_cpuid(
                host.host_cpuid(1, 0),
                host.host_cpuid(0xd, 0),
                host.host_cpuid(0xd, 1),
            );
            let refused = match check_xsetbv(xcr, value, caps) {
                Ok(()) => match host.write_xcr0(value) {
                    Ok(()) => {
                        vcpu.skip_instruction();
                        return None;
                    }
                    Err(CpuRefused) => String::from("the CPU refused it (#GP)"),
                },
                Err(why) => why.to_string(),
            };
            fault(
                vcpu,
                FaultKind::XsetbvDenied,
                None,
                format!("XSETBV XCR{xcr} = {value:#x}: {refused}"),
            )
        }
        VmExit::ControlRegisterAccess => match vcpu.emulate_control_register_access() {
            Ok(()) => {
                vcpu.skip_instruction();
                None
            }
            Err(why) => fault(vcpu, FaultKind::CrDenied, None, String::from(why)),
        },
        VmExit::Nmi if host.stop_requested() => Some(End::TimedOut),
        VmExit::Nmi => None,
        VmExit::InvalidState { code } => fault(
            vcpu,
            FaultKind::InvalidState,
            None,
            format!("hardware refused the guest state or a VMCS access failed ({code:#x})"),
        ),
        VmExit::DecodeFailed { exit, bytes, len } => fault(
            vcpu,
            FaultKind::DecodeFailed,
            None,
            format!(
                "{exit} exit: no {exit} instruction at rip in bytes {:02x?}",
                bytes.get(..usize::from(len)).unwrap_or(&[])
            ),
        ),
        VmExit::Other { code } => fault(
            vcpu,
            FaultKind::UnexpectedExit,
            None,
            format!("exit code {code:#x}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpuid_policy::GuestFeatures;
    use crate::guest_memory::FakeGuestMemory;
    use crate::partition::ChannelGrant;
    use abi::fault::ExitReason;
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    #[derive(Default)]
    struct FakeVcpu {
        regs: [u64; 6],
        rip: u64,
        skipped: u32,
        efer: u64,
        pat: u64,
        cpl: u8,
        cr4: u64,
        /// The last `intercept_timer_writes` call.
        timer_intercepted: Option<bool>,
        /// Exceptions injected.
        injected: Vec<crate::event::PendingEvent>,
    }

    fn slot(r: Gpr) -> usize {
        match r {
            Gpr::Rax => 0,
            Gpr::Rbx => 1,
            Gpr::Rcx => 2,
            Gpr::Rdx => 3,
            Gpr::Rsi => 4,
            Gpr::Rdi => 5,
        }
    }

    impl Vcpu for FakeVcpu {
        fn run(&mut self) -> VmExit {
            VmExit::Other { code: 0 }
        }
        fn gpr(&self, reg: Gpr) -> u64 {
            self.regs[slot(reg)]
        }
        fn set_gpr(&mut self, reg: Gpr, value: u64) {
            self.regs[slot(reg)] = value;
        }
        fn rip(&self) -> u64 {
            self.rip
        }
        fn skip_instruction(&mut self) {
            self.skipped += 1;
        }
        fn cpl(&self) -> u8 {
            self.cpl
        }
        fn write_efer(&mut self, value: u64) {
            self.efer = value;
        }
        fn read_efer(&self) -> u64 {
            self.efer
        }
        fn read_pat(&self) -> u64 {
            self.pat
        }
        fn write_pat(&mut self, value: u64) {
            self.pat = value;
        }
        fn backend(&self) -> abi::cpuid::Backend {
            abi::cpuid::Backend::Svm
        }
        fn emulate_control_register_access(&mut self) -> Result<(), &'static str> {
            Err("fake")
        }
        fn guest_cr4(&self) -> u64 {
            self.cr4
        }
        fn guest_features(&self) -> GuestFeatures {
            GuestFeatures {
                rdtscp: true,
                invpcid: true,
                tsc_deadline: false,
            }
        }
        fn intercept_timer_writes(&mut self, intercept: bool) {
            self.timer_intercepted = Some(intercept);
        }
        fn inject_exception(&mut self, event: &crate::event::PendingEvent) {
            self.injected.push(*event);
        }
        fn pass_tsc_deadline(&mut self) {}
    }

    /// A host that answers CPUID like QEMU 10 TCG `-cpu max` (measured:
    /// XSAVE with x87, SSE, AVX, MPX and PKRU; no TSC-deadline) and whose
    /// CPU refuses XSETBV/WRMSR when `refuse` is set (as a CPU that
    /// disagrees with the rule would: the fixup path).
    #[derive(Default)]
    struct Host {
        ipis: Vec<(u32, u8)>,
        stop: bool,
        lvts: Vec<(u32, u32)>,
        xcr0: Option<u64>,
        refuse: bool,
        /// The x2APIC timer's LVT, initial count and divide configuration.
        timer: [u32; 3],
        /// Timer count and divide writes, in order.
        timer_writes: Vec<(u32, u32)>,
        notices: Vec<String>,
        platform: Platform,
        tsc: u64,
        lines: Vec<String>,
    }

    /// The floor of the fake host: QEMU's 1 GHz APIC timer, 100 µs.
    const FLOOR: u64 = 100_000;

    fn timer_slot(msr: u32) -> usize {
        match msr {
            MSR_TIMER_LVT => 0,
            MSR_TIMER_INITIAL => 1,
            MSR_TIMER_DIVIDE => 2,
            other => panic!("MSR {other:#x} is no timer register"),
        }
    }

    impl HypercallHost for Host {
        fn console_line(&mut self, _: &str, line: &str) -> bool {
            self.lines.push(line.to_string());
            true
        }
        fn send_ipi(&mut self, apic_id: u32, vector: u8) {
            self.ipis.push((apic_id, vector));
        }
    }

    impl ExitHost for Host {
        fn host_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
            match (leaf, subleaf) {
                (1, _) => [0x663, 0x800, 0xfef8_320b, 0x0fcb_fbfd],
                (0xd, 0) => [0x21f, 0x240, 0xa88, 0],
                (0xd, 1) => [0x5, 0x3c8, 0, 0],
                _ => [0; 4],
            }
        }
        fn stop_requested(&self) -> bool {
            self.stop
        }
        fn apic_max_lvt(&self) -> u8 {
            5 // QEMU's APIC: no CMCI
        }
        fn write_lvt(&mut self, msr: u32, value: u32) -> Result<(), CpuRefused> {
            if self.refuse {
                return Err(CpuRefused);
            }
            self.lvts.push((msr, value));
            if msr == MSR_TIMER_LVT {
                self.timer[0] = value;
            }
            Ok(())
        }
        fn write_xcr0(&mut self, value: u64) -> Result<(), CpuRefused> {
            if self.refuse {
                return Err(CpuRefused);
            }
            self.xcr0 = Some(value);
            Ok(())
        }
        fn timer_floor(&self) -> u64 {
            FLOOR
        }
        fn read_timer(&self, msr: u32) -> u32 {
            self.timer[timer_slot(msr)]
        }
        fn write_timer(&mut self, msr: u32, value: u32) -> Result<(), CpuRefused> {
            if self.refuse {
                return Err(CpuRefused);
            }
            assert_ne!(msr, MSR_TIMER_LVT, "the LVT goes through write_lvt");
            self.timer[timer_slot(msr)] = value;
            self.timer_writes.push((msr, value));
            Ok(())
        }
        fn notice(&mut self, line: &str) {
            self.notices.push(line.to_string());
        }
        fn platform(&mut self) -> &mut Platform {
            &mut self.platform
        }
        fn tsc(&self) -> u64 {
            self.tsc
        }
    }

    fn partition() -> Partition {
        Partition {
            id: 1,
            name: "rogue".to_string(),
            cpu: 1,
            apic_id: 1,
            memory: 4096,
            compat: false,
            channels: vec![ChannelGrant {
                channel_id: 0,
                ipi: true,
                peer_apic_id: 2,
                peer_vector: 0x40,
            }],
        }
    }

    fn run(exit: VmExit, vcpu: &mut FakeVcpu, host: &mut Host) -> (Option<End>, RunRecord) {
        let mut record = RunRecord::default();
        let mem = FakeGuestMemory(vec![0; 4096]);
        let end = handle_exit(exit, vcpu, &partition(), &mut record, &mem, host);
        (end, record)
    }

    fn kind(end: Option<End>) -> FaultKind {
        match end {
            Some(End::Faulted(f)) => f.kind,
            other => panic!("expected a fault, got {other:?}"),
        }
    }

    fn fault_of(end: Option<End>) -> Fault {
        match end {
            Some(End::Faulted(f)) => f,
            other => panic!("expected a fault, got {other:?}"),
        }
    }

    #[test]
    fn cpuid_is_filtered_with_the_guest_cr4() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        vcpu.regs[0] = 1;
        assert_eq!(run(VmExit::Cpuid, &mut vcpu, &mut host).0, None);
        let ecx = low32(vcpu.regs[2]);
        assert_ne!(ecx & (1 << 31), 0, "hypervisor present");
        assert_eq!(
            ecx & (1 << 27),
            0,
            "OSXSAVE: the guest has not set CR4.OSXSAVE"
        );
        assert_eq!(vcpu.skipped, 1);
        vcpu.regs[0] = 1;
        vcpu.cr4 = 1 << 18;
        run(VmExit::Cpuid, &mut vcpu, &mut host);
        assert_ne!(low32(vcpu.regs[2]) & (1 << 27), 0, "OSXSAVE once it has");
        vcpu.regs[0] = u64::from(abi::cpuid::LEAF_INTERFACE);
        run(VmExit::Cpuid, &mut vcpu, &mut host);
        assert_eq!(vcpu.regs[0], 1);
    }

    #[test]
    fn icr_writes_are_validated() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        let to_peer = (2u64 << 32) | 0x40;
        assert_eq!(
            run(
                VmExit::MsrWrite {
                    msr: MSR_X2APIC_ICR,
                    value: to_peer
                },
                &mut vcpu,
                &mut host
            )
            .0,
            None
        );
        assert_eq!(host.ipis, vec![(2, 0x40)]);
        assert_eq!(vcpu.skipped, 1);
        for denied in [
            (3u64 << 32) | 0x40,                // not a peer
            (2u64 << 32) | 0x41,                // wrong vector
            (2u64 << 32) | (0b101 << 8),        // INIT
            (2u64 << 32) | (0b110 << 8) | 0x08, // SIPI
            (2u64 << 32) | (0b100 << 8),        // NMI
            (0b11 << 18) | 0x40,                // all excluding self
            (2u64 << 32) | (1 << 11) | 0x40,    // logical destination
        ] {
            let (end, _) = run(
                VmExit::MsrWrite {
                    msr: MSR_X2APIC_ICR,
                    value: denied,
                },
                &mut vcpu,
                &mut host,
            );
            assert_eq!(kind(end), FaultKind::IpiDenied, "ICR {denied:#x}");
        }
        assert_eq!(host.ipis.len(), 1, "no denied IPI was sent");
    }

    #[test]
    fn forbidden_accesses_fault_with_their_kind() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu {
            rip: 0x10_1234,
            ..FakeVcpu::default()
        };
        let (end, record) = run(
            VmExit::NestedPageFault {
                gpa: 0x1000,
                write: true,
                fetch: false,
            },
            &mut vcpu,
            &mut host,
        );
        assert_eq!(
            end,
            Some(End::Faulted(Fault {
                kind: FaultKind::Npf,
                rip: 0x10_1234,
                gpa: Some(0x1000),
                detail: "write outside the partition's map".to_string()
            }))
        );
        assert_eq!(record.total_exits(), 1);
        assert_eq!(
            kind(
                run(
                    VmExit::Io {
                        port: 0x3f8,
                        size: 1,
                        write: true
                    },
                    &mut vcpu,
                    &mut host
                )
                .0
            ),
            FaultKind::PortDenied
        );
        assert_eq!(
            kind(
                run(
                    VmExit::MsrWrite {
                        msr: MSR_APIC_BASE,
                        value: 0xfee00d00
                    },
                    &mut vcpu,
                    &mut host
                )
                .0
            ),
            FaultKind::ApicBase
        );
        assert_eq!(
            kind(run(VmExit::MsrRead { msr: 0xc001_0117 }, &mut vcpu, &mut host).0),
            FaultKind::MsrDenied
        );
        assert_eq!(
            kind(run(VmExit::TripleFault, &mut vcpu, &mut host).0),
            FaultKind::TripleFault
        );
        assert_eq!(
            kind(
                run(
                    VmExit::VirtualizationInstruction { name: "vmrun" },
                    &mut vcpu,
                    &mut host
                )
                .0
            ),
            FaultKind::VirtInstruction
        );
        assert_eq!(
            kind(run(VmExit::Other { code: 0x99 }, &mut vcpu, &mut host).0),
            FaultKind::UnexpectedExit
        );
        let mut bytes = [0u8; 15];
        bytes[..2].copy_from_slice(&[0x66, 0x0f]);
        let (end, record) = run(
            VmExit::DecodeFailed {
                exit: ExitReason::Cpuid,
                bytes,
                len: 2,
            },
            &mut vcpu,
            &mut host,
        );
        assert_eq!(
            end,
            Some(End::Faulted(Fault {
                kind: FaultKind::DecodeFailed,
                rip: 0x10_1234,
                gpa: None,
                detail: "cpuid exit: no cpuid instruction at rip in bytes [66, 0f]".to_string()
            }))
        );
        assert_eq!(
            record.exits[ExitReason::Cpuid.index()],
            1,
            "counted as the cpuid exit it was"
        );
    }

    fn run_compat(
        exit: VmExit,
        vcpu: &mut FakeVcpu,
        host: &mut Host,
        r: &mut RunRecord,
    ) -> Option<End> {
        let mem = FakeGuestMemory(vec![0; 4096]);
        let p = Partition {
            compat: true,
            ..partition()
        };
        handle_exit(exit, vcpu, &p, r, &mem, host)
    }

    #[test]
    fn compat_msrs_raise_gp_and_misc_enable_reads() {
        let (mut host, mut vcpu, mut r) =
            (Host::default(), FakeVcpu::default(), RunRecord::default());
        let gp = crate::compat::GENERAL_PROTECTION;
        for exit in [
            VmExit::MsrRead { msr: 0xc001_0117 },
            VmExit::MsrWrite {
                msr: 0x1a0,
                value: 1,
            },
            VmExit::MsrWrite {
                msr: MSR_EFER,
                value: 0x1000,
            }, // SVME: reserved to the guest
            VmExit::MsrWrite {
                msr: 0x82f,
                value: 0x1_0000,
            }, // CMCI
        ] {
            assert_eq!(
                run_compat(exit, &mut vcpu, &mut host, &mut r),
                None,
                "{exit:?}"
            );
        }
        assert_eq!(vcpu.injected, vec![gp; 4]);
        assert_eq!(
            (r.compat.msr_gp, vcpu.skipped),
            (4, 0),
            "#GP leaves RIP at the instruction"
        );
        assert_eq!(vcpu.efer, 0, "the refused EFER write changed nothing");
        assert_eq!(
            run_compat(VmExit::MsrRead { msr: 0x1a0 }, &mut vcpu, &mut host, &mut r),
            None
        );
        assert_eq!((vcpu.regs[0], vcpu.regs[3], vcpu.skipped), (0x1801, 0, 1));
        // Still faults under compat: a denied IPI, a write of IA32_APIC_BASE.
        let ipi = VmExit::MsrWrite {
            msr: MSR_X2APIC_ICR,
            value: 7u64 << 32 | 0x40,
        };
        assert_eq!(
            kind(run_compat(ipi, &mut vcpu, &mut host, &mut r)),
            FaultKind::IpiDenied
        );
        let base = VmExit::MsrWrite {
            msr: MSR_APIC_BASE,
            value: 0,
        };
        assert_eq!(
            kind(run_compat(base, &mut vcpu, &mut host, &mut r)),
            FaultKind::ApicBase
        );
        assert_eq!(r.compat.msr_gp, 4);
    }

    #[test]
    fn compat_ports_float_print_and_power_off() {
        let (mut host, mut vcpu, mut r) =
            (Host::default(), FakeVcpu::default(), RunRecord::default());
        vcpu.regs[0] = 0x1234_5678;
        let inb = |port| VmExit::Io {
            port,
            size: 1,
            write: false,
        };
        let outb = |port| VmExit::Io {
            port,
            size: 1,
            write: true,
        };
        assert_eq!(run_compat(inb(0x61), &mut vcpu, &mut host, &mut r), None);
        assert_eq!(vcpu.regs[0], 0x1234_56ff, "all ones in AL");
        for b in b"hi\n" {
            vcpu.regs[0] = u64::from(*b);
            assert_eq!(run_compat(outb(0x3f8), &mut vcpu, &mut host, &mut r), None);
        }
        assert_eq!(host.lines, vec!["hi".to_string()]);
        assert_eq!(
            (r.console_lines, r.compat.uart_bytes, r.compat.ports_floated),
            (1, 3, 1)
        );
        assert_eq!(vcpu.skipped, 4);
        vcpu.regs[0] = 5 << 2 | 1 << 5;
        assert_eq!(
            run_compat(outb(0x604), &mut vcpu, &mut host, &mut r),
            Some(End::Exited(0))
        );
        vcpu.regs[0] = 1;
        assert_eq!(
            run_compat(outb(0x60c), &mut vcpu, &mut host, &mut r),
            Some(End::Exited(0x52))
        );
    }

    #[test]
    fn compat_lint_extint_and_nmi_are_stored_masked() {
        let (mut host, mut vcpu, mut r) =
            (Host::default(), FakeVcpu::default(), RunRecord::default());
        for (msr, value) in [(0x835, 0x700), (0x836, 0x400)] {
            assert_eq!(
                run_compat(
                    VmExit::MsrWrite { msr, value },
                    &mut vcpu,
                    &mut host,
                    &mut r
                ),
                None
            );
        }
        let pmc = VmExit::MsrWrite {
            msr: 0x834,
            value: 0x400,
        };
        assert_eq!(run_compat(pmc, &mut vcpu, &mut host, &mut r), None);
        assert_eq!(
            host.lvts,
            vec![(0x835, 0x1_0700), (0x836, 0x1_0400), (0x834, 0x1_0400)]
        );
        assert_eq!(r.compat.lvt_masked, 3);
        // Other LVT rules stay: SMI on the thermal entry is refused.
        let smi = VmExit::MsrWrite {
            msr: 0x833,
            value: 0x200,
        };
        assert_eq!(
            kind(run_compat(smi, &mut vcpu, &mut host, &mut r)),
            FaultKind::LvtDenied
        );
        // Strict partitions: the same LINT0 write is refused.
        let f = fault_of(
            run(
                VmExit::MsrWrite {
                    msr: 0x835,
                    value: 0x700,
                },
                &mut vcpu,
                &mut host,
            )
            .0,
        );
        assert_eq!(f.kind, FaultKind::LvtDenied);
    }

    #[test]
    fn xsetbv_loads_only_a_valid_xcr0() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        for value in [0x1, 0x3, 0x7, 0x1f, 0x21f] {
            assert_eq!(
                run(VmExit::Xsetbv { xcr: 0, value }, &mut vcpu, &mut host).0,
                None,
                "XCR0 = {value:#x}"
            );
            assert_eq!(host.xcr0, Some(value));
        }
        for (xcr, value) in [
            (0, 0b110),   // no x87
            (0, 0b101),   // AVX without SSE
            (1, 0b11),    // XCR1
            (0, 0xf),     // BNDREGS without BNDCSR (the red team's QEMU crash)
            (0, 0x17),    // BNDCSR without BNDREGS
            (0, 0xe7),    // AVX-512: QEMU TCG has none
            (0, 0x60003), // AMX: not on this host
            (0, 0x103),   // PT is supervisor state
        ] {
            let f = fault_of(run(VmExit::Xsetbv { xcr, value }, &mut vcpu, &mut host).0);
            assert_eq!(f.kind, FaultKind::XsetbvDenied, "XCR{xcr} = {value:#x}");
            assert!(f
                .detail
                .starts_with(&format!("XSETBV XCR{xcr} = {value:#x}: ")));
        }
        assert_eq!(host.xcr0, Some(0x21f), "refused values are never loaded");
        assert_eq!(vcpu.skipped, 5);
    }

    #[test]
    fn a_cpu_that_refuses_xsetbv_or_an_lvt_stops_only_the_partition() {
        let mut host = Host {
            refuse: true,
            ..Host::default()
        };
        let mut vcpu = FakeVcpu::default();
        let f = fault_of(run(VmExit::Xsetbv { xcr: 0, value: 0x7 }, &mut vcpu, &mut host).0);
        assert_eq!(f.kind, FaultKind::XsetbvDenied);
        assert!(f.detail.contains("the CPU refused it"), "{}", f.detail);
        let f = fault_of(
            run(
                VmExit::MsrWrite {
                    msr: 0x832,
                    value: 0x2_0020,
                },
                &mut vcpu,
                &mut host,
            )
            .0,
        );
        assert_eq!(f.kind, FaultKind::LvtDenied);
        assert!(f.detail.contains("the CPU refused it"), "{}", f.detail);
        assert_eq!(vcpu.skipped, 0);
    }

    #[test]
    fn hypercalls_from_user_mode_are_denied() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu {
            cpl: 3,
            ..FakeVcpu::default()
        };
        vcpu.regs[0] = abi::hypercall::EXIT;
        assert_eq!(
            run(VmExit::Hypercall, &mut vcpu, &mut host).0,
            None,
            "no exit"
        );
        assert_eq!(vcpu.regs[0], abi::hypercall::Error::Denied.to_rax());
        assert_eq!(vcpu.skipped, 1);
        vcpu.regs[0] = abi::hypercall::SEND_IPI;
        vcpu.regs[5] = 0;
        vcpu.cpl = 1;
        run(VmExit::Hypercall, &mut vcpu, &mut host);
        assert_eq!(vcpu.regs[0], abi::hypercall::Error::Denied.to_rax());
        assert!(host.ipis.is_empty(), "nothing was done");
        vcpu.cpl = 0;
        vcpu.regs[0] = abi::hypercall::SEND_IPI;
        run(VmExit::Hypercall, &mut vcpu, &mut host);
        assert_eq!((vcpu.regs[0], host.ipis.len()), (0, 1), "CPL 0 may");
    }

    #[test]
    fn pat_is_emulated_and_validated() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        let wb_everywhere = 0x0606_0606_0606_0606;
        let write = |value| VmExit::MsrWrite {
            msr: MSR_PAT,
            value,
        };
        assert_eq!(run(write(wb_everywhere), &mut vcpu, &mut host).0, None);
        assert_eq!(vcpu.pat, wb_everywhere);
        assert_eq!(
            run(VmExit::MsrRead { msr: MSR_PAT }, &mut vcpu, &mut host).0,
            None
        );
        assert_eq!((vcpu.regs[0], vcpu.regs[3]), (0x0606_0606, 0x0606_0606));
        let (end, _) = run(write(0x0202_0202_0202_0202), &mut vcpu, &mut host);
        assert_eq!(kind(end), FaultKind::MsrDenied, "reserved memory type");
        assert_eq!(vcpu.pat, wb_everywhere);
    }

    #[test]
    fn lvt_writes_are_validated() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        let write = |msr, value| VmExit::MsrWrite { msr, value };
        for (msr, value) in [
            (0x835, 0x1_0000), // mask LINT0
            (0x832, 0x2_0020), // the guest kernel's periodic timer
            (0x837, 0xfe),     // error interrupt
            (0x834, 0x1_0400), // masked NMI on the PMC entry
        ] {
            assert_eq!(run(write(msr, value), &mut vcpu, &mut host).0, None);
        }
        assert_eq!(
            host.lvts,
            vec![
                (0x835, 0x1_0000),
                (0x832, 0x2_0020),
                (0x837, 0xfe),
                (0x834, 0x1_0400)
            ]
        );
        for (msr, value, why) in [
            (0x835, 0x700, "ExtINT on LINT0"),
            (0x833, 0x200, "SMI from the thermal LVT"),
            (0x832, 0x220, "a delivery mode on the timer (SMI)"),
            (0x832, 0x4_0020, "TSC-deadline mode"),
            (0x832, 0x6_0020, "timer mode 11"),
            (0x837, 0x1_0400, "delivery mode bits on the error LVT"),
            (0x836, 0x2_0020, "reserved bit 17 on LINT1"),
            (0x832, 1 << 32 | 0x20, "upper half"),
        ] {
            let f = fault_of(run(write(msr, value), &mut vcpu, &mut host).0);
            assert_eq!(f.kind, FaultKind::LvtDenied, "{why}");
        }
        let f = fault_of(run(write(0x82f, 0x1_0000), &mut vcpu, &mut host).0);
        assert_eq!(
            f.kind,
            FaultKind::MsrDenied,
            "CMCI: no machine-check architecture"
        );
        assert_eq!(host.lvts.len(), 4, "denied writes never reach the APIC");
    }

    #[test]
    fn efer_writes_go_to_the_backend_and_nmis_stop_only_on_request() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        let efer_write = |value| VmExit::MsrWrite {
            msr: MSR_EFER,
            value,
        };
        assert_eq!(run(efer_write(0x901), &mut vcpu, &mut host).0, None);
        assert_eq!(vcpu.efer, 0x901);
        assert_eq!(
            run(VmExit::MsrRead { msr: MSR_EFER }, &mut vcpu, &mut host).0,
            None
        );
        assert_eq!(
            (vcpu.regs[0], vcpu.regs[3]),
            (0x901, 0),
            "EFER read into edx:eax"
        );
        // SVME (bit 12) or any reserved bit: the write is refused.
        let (end, _) = run(efer_write(0x1000), &mut vcpu, &mut host);
        assert_eq!(kind(end), FaultKind::MsrDenied);
        assert_eq!(vcpu.efer, 0x901, "a refused EFER write changes nothing");
        assert_eq!(run(VmExit::Nmi, &mut vcpu, &mut host).0, None);
        host.stop = true;
        assert_eq!(
            run(VmExit::Nmi, &mut vcpu, &mut host).0,
            Some(End::TimedOut)
        );
    }

    #[test]
    fn exit_hypercall_ends_the_partition() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        vcpu.regs[0] = abi::hypercall::EXIT;
        vcpu.regs[5] = 0;
        assert_eq!(
            run(VmExit::Hypercall, &mut vcpu, &mut host).0,
            Some(End::Exited(0))
        );
        vcpu.regs[0] = abi::hypercall::VERSION;
        assert_eq!(run(VmExit::Hypercall, &mut vcpu, &mut host).0, None);
        assert_eq!(vcpu.regs[0], abi::hypercall::HYPERCALL_VERSION);
        assert_eq!(vcpu.skipped, 1);
    }

    fn write_msr(
        msr: u32,
        value: u64,
        vcpu: &mut FakeVcpu,
        host: &mut Host,
        record: &mut RunRecord,
    ) -> Option<End> {
        let mem = FakeGuestMemory(vec![0; 4096]);
        let exit = VmExit::MsrWrite { msr, value };
        handle_exit(exit, vcpu, &partition(), record, &mem, host)
    }

    #[test]
    fn the_guest_kernels_tick_is_never_clamped() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        let mut record = RunRecord::default();
        // `start_timer`: divide by 16 (passed through: one-shot), the
        // periodic LVT (exits), then the count (exits: now periodic).
        host.timer[2] = 0b0011;
        assert_eq!(
            write_msr(0x832, 0x2_0020, &mut vcpu, &mut host, &mut record),
            None
        );
        assert_eq!(vcpu.timer_intercepted, Some(true));
        assert!(
            host.timer_writes.is_empty(),
            "a stopped timer is left alone"
        );
        assert_eq!(
            write_msr(0x838, 62_500, &mut vcpu, &mut host, &mut record),
            None
        );
        assert_eq!(host.timer_writes, vec![(0x838, 62_500)]);
        assert_eq!((record.timer_clamps, host.notices.len()), (0, 0));
        assert_eq!(vcpu.skipped, 2);
        // Back to one-shot: the count and divide are the guest's again.
        assert_eq!(
            write_msr(0x832, 0x20, &mut vcpu, &mut host, &mut record),
            None
        );
        assert_eq!(vcpu.timer_intercepted, Some(false));
    }

    #[test]
    fn a_timer_storm_is_raised_to_the_floor_and_announced_once() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        let mut record = RunRecord::default();
        // `start_timer_storm`: divide by 1, periodic LVT, count 1.
        host.timer[2] = 0b1011;
        write_msr(0x832, 0x2_0020, &mut vcpu, &mut host, &mut record);
        assert_eq!(write_msr(0x838, 1, &mut vcpu, &mut host, &mut record), None);
        assert_eq!(host.timer_writes, vec![(0x838, 100_000)]);
        assert_eq!(record.timer_clamps, 1);
        assert_eq!(
            host.notices,
            vec![String::from(
                "flotilla: partition rogue periodic APIC timer clamped to 100 us \
                 (initial count 1 at divide 1 raised to 100000)"
            )]
        );
        write_msr(0x838, 2, &mut vcpu, &mut host, &mut record);
        assert_eq!(host.timer[1], 100_000);
        assert_eq!(record.timer_clamps, 2, "every clamp is counted");
        assert_eq!(host.notices.len(), 1, "the console line is written once");
        assert_eq!(vcpu.skipped, 3);
        // A masked periodic timer still reloads: still clamped.
        write_msr(0x832, 0x3_0020, &mut vcpu, &mut host, &mut record);
        assert_eq!(vcpu.timer_intercepted, Some(true));
        write_msr(0x838, 5, &mut vcpu, &mut host, &mut record);
        assert_eq!(host.timer[1], 100_000);
    }

    #[test]
    fn switching_to_periodic_raises_a_loaded_short_count() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        let mut record = RunRecord::default();
        // One-shot count 10 at divide by 4, loaded without an exit.
        host.timer = [0x20, 10, 0b0001];
        write_msr(0x832, 0x2_0020, &mut vcpu, &mut host, &mut record);
        assert_eq!(host.timer_writes, vec![(0x838, 25_000)]);
        assert_eq!(host.timer[0], 0x2_0020);
        assert_eq!(record.timer_clamps, 1);
    }

    #[test]
    fn a_shorter_divide_rewrites_the_count_first() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        let mut record = RunRecord::default();
        host.timer = [0x2_0020, 6_250, 0b0011]; // exactly the floor at 16
        assert_eq!(
            write_msr(0x83e, 0b1011, &mut vcpu, &mut host, &mut record),
            None
        );
        assert_eq!(host.timer_writes, vec![(0x838, 100_000), (0x83e, 0b1011)]);
        // A longer divide is just written.
        write_msr(0x83e, 0b1010, &mut vcpu, &mut host, &mut record);
        assert_eq!(host.timer_writes.last(), Some(&(0x83e, 0b1010)));
        assert_eq!(host.timer[1], 100_000);
        assert_eq!(record.timer_clamps, 1);
        // Not periodic (the intercept lags behind): written as asked.
        host.timer[0] = 0x20;
        write_msr(0x838, 1, &mut vcpu, &mut host, &mut record);
        assert_eq!(host.timer[1], 1);
        assert_eq!(vcpu.skipped, 3);
    }

    #[test]
    fn bad_timer_register_values_stop_the_partition() {
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        let mut record = RunRecord::default();
        host.timer = [0x2_0020, 62_500, 0b0011];
        for (msr, value) in [
            (0x838, 1u64 << 32),
            (0x83e, 1 << 32),
            (0x83e, 0b0100),
            (0x83e, 0x10),
        ] {
            let f = fault_of(write_msr(msr, value, &mut vcpu, &mut host, &mut record));
            assert_eq!(f.kind, FaultKind::MsrDenied, "{msr:#x} = {value:#x}");
        }
        assert!(host.timer_writes.is_empty());
        host.refuse = true;
        let f = fault_of(write_msr(0x838, 1, &mut vcpu, &mut host, &mut record));
        assert_eq!(f.kind, FaultKind::MsrDenied);
        assert!(f.detail.contains("the CPU refused it"), "{}", f.detail);
        assert_eq!(vcpu.skipped, 0);
    }
}
