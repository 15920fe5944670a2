//! Vendor-neutral exit handling: what to do with each [`VmExit`] of a
//! partition. Allowed requests are served and the guest resumes; anything
//! forbidden stops the partition with a precise [`Fault`] (containment) —
//! nothing forbidden is silently ignored.

use crate::guest_memory::GuestMemory;
use crate::hypercall::{self, HypercallHost, Outcome};
use crate::msr_policy::{pat_valid, MSR_PAT};
use crate::partition::{End, Fault, Partition, RunRecord};
use crate::vcpu::{Gpr, Vcpu, VmExit};
use abi::fault::FaultKind;
use alloc::format;
use alloc::string::String;

/// x2APIC interrupt command register.
pub const MSR_X2APIC_ICR: u32 = 0x830;
/// IA32_APIC_BASE.
pub const MSR_APIC_BASE: u32 = 0x1b;
/// IA32_EFER.
pub const MSR_EFER: u32 = 0xc000_0080;

/// EFER bits a partition may set: SCE, LME, NXE (and LMA, which the
/// processor owns; a written LMA is ignored).
pub const EFER_GUEST_BITS: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);

/// CPUID leaf of Flotilla's hypervisor signature.
pub const CPUID_HV_SIGNATURE: u32 = 0x4000_0000;
/// CPUID leaf of Flotilla's interface: `eax` = 1 (SVM, `vmmcall`) or 2 (VMX, `vmcall`).
pub const CPUID_HV_INTERFACE: u32 = 0x4000_0001;

/// Services the exit handler needs from the machine.
pub trait ExitHost: HypercallHost {
    /// Executes CPUID on the host.
    fn host_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4];
    /// Whether another core asked this partition to stop (run timeout).
    fn stop_requested(&self) -> bool;
    /// Writes a (validated) local vector table entry of this core's x2APIC.
    fn write_lvt(&mut self, msr: u32, value: u64);
    /// Loads a (validated) XCR0 on this core.
    fn write_xcr0(&mut self, value: u64);
}

/// Backend-specific operations the neutral handler needs.
pub trait VcpuExt: Vcpu {
    /// Loads a guest EFER value (only [`EFER_GUEST_BITS`]; the backend
    /// keeps LMA and what it needs itself, e.g. SVME).
    fn write_efer(&mut self, value: u64);
    /// The guest's view of EFER (without bits only the backend needs).
    fn read_efer(&self) -> u64;
    /// The guest's PAT.
    fn read_pat(&self) -> u64;
    /// Loads a (validated) guest PAT.
    fn write_pat(&mut self, value: u64);
    /// The hypervisor interface number for CPUID leaf 0x4000_0001.
    fn interface_id(&self) -> u32;
    /// Emulates the control-register access behind the last exit;
    /// `Err` says why it cannot be allowed.
    fn emulate_control_register_access(&mut self) -> Result<(), &'static str>;
}

/// Filters host CPUID for a partition: hides SVM and VMX, sets the
/// hypervisor-present bit, and adds Flotilla's leaves.
pub fn guest_cpuid(leaf: u32, host: [u32; 4], interface_id: u32) -> [u32; 4] {
    let [mut eax, mut ebx, mut ecx, mut edx] = host;
    match leaf {
        1 => {
            ecx &= !(1 << 5); // VMX
            ecx |= 1 << 31; // hypervisor present
        }
        0x8000_0001 => ecx &= !(1 << 2), // SVM
        0x8000_000a => [eax, ebx, ecx, edx] = [0; 4],
        CPUID_HV_SIGNATURE => {
            eax = CPUID_HV_INTERFACE;
            ebx = u32::from_le_bytes(*b"Flot");
            ecx = u32::from_le_bytes(*b"illa");
            edx = u32::from_le_bytes(*b"HV\0\0");
        }
        CPUID_HV_INTERFACE => [eax, ebx, ecx, edx] = [interface_id, 0, 0, 0],
        0x4000_0002..=0x4000_00ff => [eax, ebx, ecx, edx] = [0; 4],
        _ => {}
    }
    [eax, ebx, ecx, edx]
}

/// Whether `value` is an XCR0 the partition may load, given the host's
/// supported mask (CPUID.(0xD,0) EDX:EAX): x87 set, only supported
/// components, AVX only with SSE (Intel SDM Vol. 1 §13.3).
pub fn xcr0_allowed(value: u64, supported: u64) -> bool {
    const X87: u64 = 1 << 0;
    const SSE: u64 = 1 << 1;
    const AVX: u64 = 1 << 2;
    value & X87 != 0 && value & !supported == 0 && (value & AVX == 0 || value & SSE != 0)
}

/// Whether an x2APIC ICR value is a plain fixed IPI (physical destination,
/// no shorthand), returning its destination and vector.
pub fn fixed_ipi(icr: u64) -> Option<(u32, u8)> {
    let delivery = (icr >> 8) & 0b111;
    let logical = icr & (1 << 11) != 0;
    let shorthand = (icr >> 18) & 0b11;
    (delivery == 0 && !logical && shorthand == 0).then_some(((icr >> 32) as u32, icr as u8))
}

/// Finishes an emulated RDMSR: `value` into EDX:EAX, past the instruction.
fn complete_rdmsr(vcpu: &mut impl Vcpu, value: u64) -> Option<End> {
    vcpu.set_gpr(Gpr::Rax, value & 0xffff_ffff);
    vcpu.set_gpr(Gpr::Rdx, value >> 32);
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

/// Handles one exit. Returns `Some(end)` when the partition is over.
pub fn handle_exit(
    exit: VmExit,
    vcpu: &mut impl VcpuExt,
    partition: &Partition,
    record: &mut RunRecord,
    mem: &impl GuestMemory,
    host: &mut impl ExitHost,
) -> Option<End> {
    record.count_exit(exit.reason());
    match exit {
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
            let leaf = vcpu.gpr(Gpr::Rax) as u32;
            let subleaf = vcpu.gpr(Gpr::Rcx) as u32;
            let [a, b, c, d] =
                guest_cpuid(leaf, host.host_cpuid(leaf, subleaf), vcpu.interface_id());
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
        VmExit::MsrWrite { msr, value } if crate::msr_policy::VALIDATED_LVT.contains(&msr) => {
            if crate::msr_policy::lvt_write_allowed(value) {
                host.write_lvt(msr, value);
                vcpu.skip_instruction();
                None
            } else {
                fault(
                    vcpu,
                    FaultKind::LvtDenied,
                    None,
                    format!("LVT write {value:#x} to MSR {msr:#x}: only fixed delivery or masked"),
                )
            }
        }
        VmExit::MsrWrite {
            msr: MSR_APIC_BASE,
            value,
        } => fault(
            vcpu,
            FaultKind::ApicBase,
            None,
            format!("write {value:#x} to IA32_APIC_BASE"),
        ),
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
            let [eax, _, _, edx] = host.host_cpuid(0xd, 0);
            let supported = (u64::from(edx) << 32) | u64::from(eax);
            if xcr == 0 && xcr0_allowed(value, supported) {
                host.write_xcr0(value);
                vcpu.skip_instruction();
                None
            } else {
                fault(
                    vcpu,
                    FaultKind::XsetbvDenied,
                    None,
                    format!("XSETBV XCR{xcr} = {value:#x}"),
                )
            }
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
            format!("hardware refused the guest state ({code:#x})"),
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
        fn backend(&self) -> &'static str {
            "fake"
        }
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
    }

    impl VcpuExt for FakeVcpu {
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
        fn interface_id(&self) -> u32 {
            1
        }
        fn emulate_control_register_access(&mut self) -> Result<(), &'static str> {
            Err("fake")
        }
    }

    #[derive(Default)]
    struct Host {
        ipis: Vec<(u32, u8)>,
        stop: bool,
        lvts: Vec<(u32, u64)>,
        xcr0: Option<u64>,
    }

    impl HypercallHost for Host {
        fn console_line(&mut self, _: &str, _: &str) {}
        fn send_ipi(&mut self, apic_id: u32, vector: u8) {
            self.ipis.push((apic_id, vector));
        }
    }

    impl ExitHost for Host {
        fn host_cpuid(&self, _: u32, _: u32) -> [u32; 4] {
            [0xffff_ffff; 4]
        }
        fn stop_requested(&self) -> bool {
            self.stop
        }
        fn write_lvt(&mut self, msr: u32, value: u64) {
            self.lvts.push((msr, value));
        }
        fn write_xcr0(&mut self, value: u64) {
            self.xcr0 = Some(value);
        }
    }

    fn partition() -> Partition {
        Partition {
            id: 1,
            name: "rogue".to_string(),
            cpu: 1,
            apic_id: 1,
            memory: 4096,
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

    #[test]
    fn cpuid_hides_virtualization_and_signs_flotilla() {
        let l1 = guest_cpuid(1, [0; 4], 1);
        assert_eq!(l1[2], 1 << 31);
        let all = guest_cpuid(1, [u32::MAX; 4], 1);
        assert_eq!(all[2] & (1 << 5), 0);
        assert_eq!(guest_cpuid(0x8000_0001, [u32::MAX; 4], 1)[2] & (1 << 2), 0);
        assert_eq!(guest_cpuid(0x8000_000a, [u32::MAX; 4], 1), [0; 4]);
        let sig = guest_cpuid(CPUID_HV_SIGNATURE, [0; 4], 1);
        let mut text = Vec::new();
        for r in &sig[1..] {
            text.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&text, b"FlotillaHV\0\0");
        assert_eq!(guest_cpuid(CPUID_HV_INTERFACE, [9; 4], 2), [2, 0, 0, 0]);
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

    #[test]
    fn xsetbv_loads_only_a_valid_xcr0() {
        // The fake host reports every component supported (all ones).
        let mut host = Host::default();
        let mut vcpu = FakeVcpu::default();
        assert_eq!(
            run(
                VmExit::Xsetbv {
                    xcr: 0,
                    value: 0b111
                },
                &mut vcpu,
                &mut host
            )
            .0,
            None
        );
        assert_eq!(host.xcr0, Some(0b111));
        for (xcr, value) in [(0, 0b110), (0, 0b101), (1, 0b11)] {
            let (end, _) = run(VmExit::Xsetbv { xcr, value }, &mut vcpu, &mut host);
            assert_eq!(kind(end), FaultKind::XsetbvDenied, "XCR{xcr} = {value:#b}");
        }
        assert!(xcr0_allowed(0b11, 0b111));
        assert!(!xcr0_allowed(0b1011, 0b111), "unsupported component");
        assert_eq!(host.xcr0, Some(0b111), "refused values are never loaded");
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
        let lint0 = |value| VmExit::MsrWrite { msr: 0x835, value };
        assert_eq!(
            run(lint0(0x1_0000), &mut vcpu, &mut host).0,
            None,
            "mask LINT0"
        );
        assert_eq!(host.lvts, vec![(0x835, 0x1_0000)]);
        let (end, _) = run(lint0(0x700), &mut vcpu, &mut host);
        assert_eq!(kind(end), FaultKind::LvtDenied, "ExtINT on LINT0");
        let (end, _) = run(
            VmExit::MsrWrite {
                msr: 0x833,
                value: 0x200,
            },
            &mut vcpu,
            &mut host,
        );
        assert_eq!(kind(end), FaultKind::LvtDenied, "SMI from the thermal LVT");
        assert_eq!(host.lvts.len(), 1, "denied writes never reach the APIC");
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
        assert_eq!(vcpu.regs[0], 1);
        assert_eq!(vcpu.skipped, 1);
    }
}
