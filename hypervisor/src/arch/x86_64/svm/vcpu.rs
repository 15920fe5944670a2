//! The SVM implementation of the backend trait: a VMCB set up for a
//! PVH-style entry behind nested paging, the intercepts of
//! `docs/threat-model.md`, and exit decoding into [`VmExit`].

use super::bitmaps::Bitmap;
use super::entry::{svm_run, GuestGprs};
use super::vmcb::{control, state, Vmcb};
use crate::arch::x86_64::common::frames::alloc_pages;
use crate::arch::x86_64::common::region::RamReader;
use hypervisor::cpuid_policy::GuestFeatures;
use hypervisor::event::{decode_svm_exitintinfo, svm_eventinj};
use hypervisor::exit_handler::VcpuExt;
use hypervisor::guest_paging::PagingState;
use hypervisor::instruction_length::{instruction_length, CodeLocation, Opcode};
use hypervisor::msr_policy;
use hypervisor::timer_policy;
use hypervisor::vcpu::{Gpr, Vcpu, VmExit};

const EFER_SVME: u64 = 1 << 12;
const EFER_LMA: u64 = 1 << 10;

// Intercept vector 3 (VMCB 0x00C).
const INTERCEPT_NMI: u32 = 1 << 1;
const INTERCEPT_INIT: u32 = 1 << 3;
const INTERCEPT_CPUID: u32 = 1 << 18;
const INTERCEPT_INVD: u32 = 1 << 22;
const INTERCEPT_INVLPGA: u32 = 1 << 26;
const INTERCEPT_IOIO: u32 = 1 << 27;
const INTERCEPT_MSR: u32 = 1 << 28;
const INTERCEPT_SHUTDOWN: u32 = 1 << 31;
// Intercept vector 4 (VMCB 0x010): VMRUN, VMMCALL, VMLOAD, VMSAVE, STGI, CLGI, SKINIT.
const INTERCEPT_SVM_INSTRUCTIONS: u32 = 0x7f;
// Intercept vector 4: XSETBV (validated like on VMX, where it always exits).
const INTERCEPT_XSETBV: u32 = 1 << 13;

// Exit codes (AMD APM Vol. 2 Appendix C).
const EXIT_NMI: u64 = 0x61;
const EXIT_INIT: u64 = 0x63;
const EXIT_CPUID: u64 = 0x72;
const EXIT_INVD: u64 = 0x76;
const EXIT_INVLPGA: u64 = 0x7a;
const EXIT_IOIO: u64 = 0x7b;
const EXIT_MSR: u64 = 0x7c;
const EXIT_SHUTDOWN: u64 = 0x7f;
const EXIT_VMRUN: u64 = 0x80;
const EXIT_VMMCALL: u64 = 0x81;
const EXIT_VMLOAD: u64 = 0x82;
const EXIT_VMSAVE: u64 = 0x83;
const EXIT_STGI: u64 = 0x84;
const EXIT_CLGI: u64 = 0x85;
const EXIT_SKINIT: u64 = 0x86;
const EXIT_XSETBV: u64 = 0x8d;
const EXIT_NPF: u64 = 0x400;
const EXIT_INVALID: u64 = u64::MAX;

/// Where a partition starts and what it may touch.
#[derive(Clone, Copy, Debug)]
pub struct EntryState {
    /// Guest-physical entry point (32-bit protected mode).
    pub rip: u64,
    /// Value of `rbx` at entry (the start info's address).
    pub rbx: u64,
    /// Root of the partition's nested page tables.
    pub npt_root: u64,
}

/// Why an SVM virtual CPU could not be set up (whether the core can host
/// partitions at all was decided before, by
/// [`hypervisor::virt_caps::VirtSupport::usable`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// No frames for the VMCB, the host save area or the permission maps.
    OutOfMemory,
}

/// A partition's virtual CPU on SVM.
#[derive(Debug)]
pub struct SvmVcpu {
    vmcb: Vmcb,
    host_state: u64,
    gprs: GuestGprs,
    nrip_save: bool,
    /// The partition's RAM, for decoding instruction lengths without nRIP.
    ram: RamReader,
    /// Length of the instruction behind the last exit, when known.
    exit_instruction_len: u64,
    /// RIP after the instruction behind the last I/O exit (EXITINFO2).
    io_next_rip: Option<u64>,
    msrpm: Bitmap,
    _iopm: Bitmap,
}

impl SvmVcpu {
    /// Sets up a virtual CPU that enters at `entry` PVH-style (32-bit
    /// protected mode, paging off) with ports in `ports` granted.
    pub fn new(
        entry: EntryState,
        ports: &[(u16, u16)],
        nrip_save: bool,
        ram: RamReader,
    ) -> Result<SvmVcpu, SetupError> {
        let oom = SetupError::OutOfMemory;
        let mut vmcb = Vmcb::new().ok_or(oom)?;
        let host_state = alloc_pages(1).ok_or(oom)?;
        let mut msrpm = Bitmap::msrpm().ok_or(oom)?;
        let mut iopm = Bitmap::iopm().ok_or(oom)?;
        for &msr in msr_policy::PASSTHROUGH {
            msrpm.allow_msr_read(msr);
            msrpm.allow_msr_write(msr);
        }
        for &msr in msr_policy::READ_ONLY {
            msrpm.allow_msr_read(msr);
        }
        for &(first, last) in ports {
            for port in first..=last {
                iopm.allow_port(port);
            }
        }

        vmcb.write32(
            control::INTERCEPT_MISC1,
            INTERCEPT_NMI
                | INTERCEPT_INIT
                | INTERCEPT_CPUID
                | INTERCEPT_INVD
                | INTERCEPT_INVLPGA
                | INTERCEPT_IOIO
                | INTERCEPT_MSR
                | INTERCEPT_SHUTDOWN,
        );
        vmcb.write32(
            control::INTERCEPT_MISC2,
            INTERCEPT_SVM_INSTRUCTIONS | INTERCEPT_XSETBV,
        );
        vmcb.write64(control::IOPM_BASE_PA, iopm.pa());
        vmcb.write64(control::MSRPM_BASE_PA, msrpm.pa());
        vmcb.write32(control::GUEST_ASID, 1);
        vmcb.write8(control::TLB_CONTROL, 1);
        vmcb.write64(control::V_INTR, 0); // no V_INTR_MASKING: interrupts go to the guest
        vmcb.write64(control::NP_ENABLE, 1);
        vmcb.write64(control::N_CR3, entry.npt_root);
        vmcb.write64(control::CLEAN_BITS, 0);

        // PVH entry state: flat 32-bit segments, protected mode, no paging.
        const CODE32: u16 = 0xc9b; // present, DPL 0, execute/read, accessed, D, G
        const DATA32: u16 = 0xc93; // present, DPL 0, read/write, accessed, B, G
        vmcb.write_segment(state::CS, 0x08, CODE32, 0xffff_ffff, 0);
        for seg in [state::DS, state::ES, state::SS, state::FS, state::GS] {
            vmcb.write_segment(seg, 0x10, DATA32, 0xffff_ffff, 0);
        }
        vmcb.write_segment(state::TR, 0, 0x8b, 0x67, 0); // busy 32-bit TSS
        vmcb.write_segment(state::LDTR, 0, 0x82, 0xffff, 0);
        vmcb.write_segment(state::GDTR, 0, 0, 0, 0);
        vmcb.write_segment(state::IDTR, 0, 0, 0, 0);
        vmcb.write8(state::CPL, 0);
        vmcb.write64(state::EFER, EFER_SVME);
        vmcb.write64(state::CR0, 0x11); // PE, ET
        vmcb.write64(state::CR3, 0);
        vmcb.write64(state::CR4, 0);
        vmcb.write64(state::DR6, 0xffff_0ff0);
        vmcb.write64(state::DR7, 0x400);
        // Architectural reset values (APM Vol. 2 §13.1.1.5, §13.1.3): no
        // breakpoint enabled. DBGCTL is loaded only with LBR virtualization,
        // which stays off; the guest cannot write IA32_DEBUGCTL (the MSR
        // permission map intercepts it).
        vmcb.write64(state::DBGCTL, 0);
        vmcb.write64(control::EVENT_INJ, 0);
        vmcb.write64(state::RFLAGS, 0x2);
        vmcb.write64(state::RIP, entry.rip);
        vmcb.write64(state::RSP, 0);
        vmcb.write64(state::RAX, 0);
        vmcb.write64(state::G_PAT, 0x0007_0406_0007_0406);

        let gprs = GuestGprs {
            rbx: entry.rbx,
            ..GuestGprs::default()
        };
        Ok(SvmVcpu {
            vmcb,
            host_state,
            gprs,
            nrip_save,
            ram,
            exit_instruction_len: 0,
            io_next_rip: None,
            msrpm,
            _iopm: iopm,
        })
    }

    /// Where the guest executes now (for decoding its instruction).
    fn code_location(&self) -> CodeLocation {
        let cs = self.vmcb.read64(state::CS);
        let attrib = (cs >> 16) & 0xffff;
        CodeLocation {
            paging: PagingState {
                cr0: self.vmcb.read64(state::CR0),
                cr3: self.vmcb.read64(state::CR3),
                cr4: self.vmcb.read64(state::CR4),
                efer: self.vmcb.read64(state::EFER),
            },
            cs_base: self.vmcb.read64(state::CS + 8),
            // VMCB segment attributes, compressed format: bit 9 is CS.L
            // (APM Vol. 2 §15.5.1 / Appendix B).
            cs_long: attrib & (1 << 9) != 0,
            rip: self.vmcb.read64(state::RIP),
        }
    }

    /// Completes the decoding of an instruction exit: with next-RIP save
    /// the hardware knows where the instruction ends; without it, its
    /// length is decoded from the guest's bytes, and an instruction that is
    /// not `opcode` becomes [`VmExit::DecodeFailed`].
    fn instruction_exit(&mut self, opcode: Opcode, exit: VmExit) -> VmExit {
        if self.nrip_save {
            return exit;
        }
        match instruction_length(&self.code_location(), opcode, &self.ram) {
            Ok(len) => {
                self.exit_instruction_len = len;
                exit
            }
            Err(failure) => VmExit::DecodeFailed {
                exit: exit.reason(),
                bytes: failure.bytes,
                len: failure.len,
            },
        }
    }

    fn decode_exit(&mut self) -> VmExit {
        let code = self.vmcb.read64(control::EXIT_CODE);
        let info1 = self.vmcb.read64(control::EXIT_INFO1);
        let info2 = self.vmcb.read64(control::EXIT_INFO2);
        self.exit_instruction_len = 0;
        self.io_next_rip = None;
        match code {
            EXIT_VMMCALL => self.instruction_exit(Opcode::Vmmcall, VmExit::Hypercall),
            EXIT_CPUID => self.instruction_exit(Opcode::Cpuid, VmExit::Cpuid),
            EXIT_MSR => {
                let msr = self.gprs.rcx as u32;
                if info1 == 0 {
                    self.instruction_exit(Opcode::Rdmsr, VmExit::MsrRead { msr })
                } else {
                    let value =
                        (self.gprs.rdx << 32) | (self.vmcb.read64(state::RAX) & 0xffff_ffff);
                    self.instruction_exit(Opcode::Wrmsr, VmExit::MsrWrite { msr, value })
                }
            }
            EXIT_IOIO => {
                self.io_next_rip = Some(info2);
                let size = ((info1 >> 4) & 0b111) as u8;
                VmExit::Io {
                    port: (info1 >> 16) as u16,
                    size: match size {
                        0b001 => 1,
                        0b010 => 2,
                        _ => 4,
                    },
                    write: info1 & 1 == 0,
                }
            }
            EXIT_NPF => VmExit::NestedPageFault {
                gpa: info2,
                write: info1 & 0b10 != 0,
                fetch: info1 & 0b1_0000 != 0,
            },
            EXIT_XSETBV => {
                let exit = VmExit::Xsetbv {
                    xcr: self.gprs.rcx as u32,
                    value: (self.gprs.rdx << 32) | (self.vmcb.read64(state::RAX) & 0xffff_ffff),
                };
                self.instruction_exit(Opcode::Xsetbv, exit)
            }
            EXIT_SHUTDOWN => VmExit::TripleFault,
            EXIT_INIT => VmExit::Init,
            EXIT_NMI => VmExit::Nmi,
            EXIT_VMRUN => VmExit::VirtualizationInstruction { name: "vmrun" },
            EXIT_VMLOAD => VmExit::VirtualizationInstruction { name: "vmload" },
            EXIT_VMSAVE => VmExit::VirtualizationInstruction { name: "vmsave" },
            EXIT_STGI => VmExit::VirtualizationInstruction { name: "stgi" },
            EXIT_CLGI => VmExit::VirtualizationInstruction { name: "clgi" },
            EXIT_SKINIT => VmExit::VirtualizationInstruction { name: "skinit" },
            EXIT_INVD => VmExit::VirtualizationInstruction { name: "invd" },
            EXIT_INVLPGA => VmExit::VirtualizationInstruction { name: "invlpga" },
            EXIT_INVALID => VmExit::InvalidState { code },
            other => VmExit::Other { code: other },
        }
    }
}

impl Vcpu for SvmVcpu {
    fn backend(&self) -> &'static str {
        "svm"
    }

    fn run(&mut self) -> VmExit {
        // SAFETY: SVM was enabled on this core before any SvmVcpu runs
        // (`super::enable`), the VMCB was fully initialised in `new` and
        // belongs to this core's partition, `host_state` is this vCPU's own
        // frame, and the hypervisor runs with interrupts disabled.
        unsafe { svm_run(&mut self.gprs, self.vmcb.pa(), self.host_state) };
        // After the first run the TLB needs no further flushing (one ASID
        // per core, one partition per core).
        self.vmcb.write8(control::TLB_CONTROL, 0);
        // An event the exit interrupted is delivered on the next VMRUN
        // (a software interrupt re-runs its instruction instead).
        let interrupted = decode_svm_exitintinfo(self.vmcb.read64(control::EXIT_INT_INFO));
        let inject = interrupted.as_ref().and_then(svm_eventinj).unwrap_or(0);
        self.vmcb.write64(control::EVENT_INJ, inject);
        self.decode_exit()
    }

    fn gpr(&self, reg: Gpr) -> u64 {
        match reg {
            Gpr::Rax => self.vmcb.read64(state::RAX),
            Gpr::Rbx => self.gprs.rbx,
            Gpr::Rcx => self.gprs.rcx,
            Gpr::Rdx => self.gprs.rdx,
            Gpr::Rsi => self.gprs.rsi,
            Gpr::Rdi => self.gprs.rdi,
        }
    }

    fn set_gpr(&mut self, reg: Gpr, value: u64) {
        match reg {
            Gpr::Rax => self.vmcb.write64(state::RAX, value),
            Gpr::Rbx => self.gprs.rbx = value,
            Gpr::Rcx => self.gprs.rcx = value,
            Gpr::Rdx => self.gprs.rdx = value,
            Gpr::Rsi => self.gprs.rsi = value,
            Gpr::Rdi => self.gprs.rdi = value,
        }
    }

    fn rip(&self) -> u64 {
        self.vmcb.read64(state::RIP)
    }

    fn cpl(&self) -> u8 {
        // The VMCB save area's CPL byte (AMD APM Vol. 2 §15.5.1, Table B-2).
        self.vmcb.read8(state::CPL) & 0b11
    }

    fn skip_instruction(&mut self) {
        let next = if let Some(next) = self.io_next_rip {
            next
        } else if self.nrip_save {
            self.vmcb.read64(control::NEXT_RIP)
        } else {
            self.rip().wrapping_add(self.exit_instruction_len)
        };
        self.vmcb.write64(state::RIP, next);
    }
}

impl VcpuExt for SvmVcpu {
    fn write_efer(&mut self, value: u64) {
        // The guest may switch long mode and NX on; LMA is the processor's,
        // and SVME must stay set or the next VMRUN fails its checks.
        let lma = self.vmcb.read64(state::EFER) & EFER_LMA;
        self.vmcb
            .write64(state::EFER, (value & !EFER_LMA) | lma | EFER_SVME);
    }

    fn read_pat(&self) -> u64 {
        self.vmcb.read64(state::G_PAT)
    }

    fn write_pat(&mut self, value: u64) {
        self.vmcb.write64(state::G_PAT, value);
    }

    fn read_efer(&self) -> u64 {
        // SVME is the hypervisor's business: the guest sees it clear, as
        // CPUID says it has no SVM.
        self.vmcb.read64(state::EFER) & !EFER_SVME
    }

    fn interface_id(&self) -> u32 {
        abi::cpuid::Backend::Svm.id()
    }

    fn emulate_control_register_access(&mut self) -> Result<(), &'static str> {
        // No control-register intercept is set on SVM: the guest owns its
        // CR0/CR3/CR4 (in the VMCB) outright.
        Err("unexpected control-register exit on SVM")
    }

    fn guest_cr4(&self) -> u64 {
        // The guest owns CR4 outright on SVM: the VMCB holds its value.
        self.vmcb.read64(state::CR4)
    }

    fn guest_features(&self) -> GuestFeatures {
        // Neither RDTSCP nor INVPCID is intercepted: both run natively.
        GuestFeatures {
            rdtscp: true,
            invpcid: true,
            tsc_deadline: false,
        }
    }

    fn intercept_timer_writes(&mut self, intercept: bool) {
        for msr in [
            timer_policy::MSR_TIMER_INITIAL,
            timer_policy::MSR_TIMER_DIVIDE,
        ] {
            if intercept {
                self.msrpm.intercept_msr_write(msr);
            } else {
                self.msrpm.allow_msr_write(msr);
            }
        }
    }
}
