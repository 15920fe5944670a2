//! The SVM implementation of the backend trait: a VMCB set up for a
//! PVH-style entry behind nested paging, the intercepts of
//! `docs/threat-model.md`, and exit decoding into [`VmExit`]
//! ([`hypervisor::svm::decode_exit`]).

use super::entry::{svm_run, GuestGprs};
use super::vmcb::Vmcb;
use super::SetupError;
use crate::arch::x86_64::bitmaps::Bitmap;
use crate::arch::x86_64::common::frames::alloc_pages;
use crate::arch::x86_64::common::region::RamReader;
use abi::regs::efer::{LMA as EFER_LMA, SVME as EFER_SVME};
use hypervisor::cpuid_policy::GuestFeatures;
use hypervisor::event::{decode_svm_exitintinfo, svm_eventinj, PendingEvent};
use hypervisor::guest_paging::PagingState;
use hypervisor::instruction_length::{instruction_length, CodeLocation};
use hypervisor::svm::regs::{control, intercept3 as i3, intercept4 as i4, state};
use hypervisor::svm::{attributes, decode_exit, ExitFields, IOPM_SIZE, MSRPM, MSRPM_SIZE};
use hypervisor::vcpu::{Gpr, GuestEntry, Vcpu, VmExit};

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
    tsc_deadline: bool,
}

impl SvmVcpu {
    /// Sets up a virtual CPU that enters at `entry` behind the nested page
    /// tables at `npt_root`, with ports in `ports` granted.
    pub fn new(
        entry: &GuestEntry,
        npt_root: u64,
        ports: &[(u16, u16)],
        nrip_save: bool,
        ram: RamReader,
    ) -> Result<SvmVcpu, SetupError> {
        let oom = SetupError::OutOfMemory;
        let mut vmcb = Vmcb::new().ok_or(oom("VMCB"))?;
        let host_state = alloc_pages(1).ok_or(oom("host state"))?;
        let msrpm = Bitmap::msrs(&MSRPM, MSRPM_SIZE).ok_or(oom("MSR permission map"))?;
        let iopm = Bitmap::ports(IOPM_SIZE, ports).ok_or(oom("I/O permission map"))?;

        let misc1 = i3::NMI | i3::INIT | i3::CPUID | i3::INVD | i3::INVLPGA;
        let misc1 = misc1 | i3::IOIO | i3::MSR | i3::SHUTDOWN;
        vmcb.write::<u32>(control::INTERCEPT_MISC1, misc1);
        vmcb.write::<u32>(control::INTERCEPT_MISC2, i4::SVM_INSTRUCTIONS | i4::XSETBV);
        vmcb.write::<u64>(control::IOPM_BASE_PA, iopm.pa());
        vmcb.write::<u64>(control::MSRPM_BASE_PA, msrpm.pa());
        vmcb.write::<u32>(control::GUEST_ASID, 1);
        vmcb.write::<u8>(control::TLB_CONTROL, 1);
        vmcb.write::<u64>(control::V_INTR, 0); // no V_INTR_MASKING: interrupts go to the guest
        vmcb.write::<u64>(control::NP_ENABLE, 1);
        vmcb.write::<u64>(control::N_CR3, npt_root);
        vmcb.write::<u64>(control::CLEAN_BITS, 0);
        vmcb.write::<u64>(control::EVENT_INJ, 0);
        write_guest_state(&mut vmcb, entry);

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
            tsc_deadline: false,
        })
    }

    /// Where the guest executes now (for decoding its instruction).
    fn code_location(&self) -> CodeLocation {
        let cs = self.vmcb.read::<u64>(state::CS);
        let attrib = (cs >> 16) & 0xffff;
        CodeLocation {
            paging: PagingState {
                cr0: self.vmcb.read::<u64>(state::CR0),
                cr3: self.vmcb.read::<u64>(state::CR3),
                cr4: self.vmcb.read::<u64>(state::CR4),
                efer: self.vmcb.read::<u64>(state::EFER),
            },
            cs_base: self.vmcb.read::<u64>(state::CS + 8),
            // VMCB segment attributes, compressed format: bit 9 is CS.L
            // (APM Vol. 2 §15.5.1 / Appendix B).
            cs_long: attrib & (1 << 9) != 0,
            rip: self.vmcb.read::<u64>(state::RIP),
        }
    }

    /// Decodes the exit from the VMCB. Without next-RIP save, an
    /// instruction exit's length is decoded from the guest's bytes; another
    /// instruction than the one it names is [`VmExit::DecodeFailed`].
    fn decode_exit(&mut self) -> VmExit {
        let fields = ExitFields {
            code: self.vmcb.read::<u64>(control::EXIT_CODE),
            info1: self.vmcb.read::<u64>(control::EXIT_INFO1),
            info2: self.vmcb.read::<u64>(control::EXIT_INFO2),
            rax: self.vmcb.read::<u64>(state::RAX),
            rcx: self.gprs.rcx,
            rdx: self.gprs.rdx,
        };
        let (exit, opcode) = decode_exit(&fields);
        self.exit_instruction_len = 0;
        self.io_next_rip = matches!(exit, VmExit::Io { .. }).then_some(fields.info2);
        let Some(opcode) = opcode.filter(|_| !self.nrip_save) else {
            return exit;
        };
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
}

/// Encodes the initial guest state in the VMCB's state-save area.
fn write_guest_state(vmcb: &mut Vmcb, entry: &GuestEntry) {
    let cs = entry.cs;
    vmcb.write_segment(state::CS, cs.selector, attributes(cs.access), cs.limit);
    let data = entry.data;
    for seg in [state::DS, state::ES, state::SS, state::FS, state::GS] {
        vmcb.write_segment(seg, data.selector, attributes(data.access), data.limit);
    }
    let tr = entry.tr;
    vmcb.write_segment(state::TR, tr.selector, attributes(tr.access), tr.limit);
    // No LDT: SVM has no unusable bit, a null LDT descriptor stands for it.
    vmcb.write_segment(state::LDTR, 0, 0x82, 0xffff);
    vmcb.write_segment(state::GDTR, 0, 0, 0);
    vmcb.write_segment(state::IDTR, 0, 0, 0);
    vmcb.write::<u8>(state::CPL, 0);
    vmcb.write::<u64>(state::EFER, entry.efer | EFER_SVME);
    vmcb.write::<u64>(state::CR0, entry.cr0);
    vmcb.write::<u64>(state::CR3, 0);
    vmcb.write::<u64>(state::CR4, entry.cr4);
    vmcb.write::<u64>(state::DR6, 0xffff_0ff0);
    vmcb.write::<u64>(state::DR7, entry.dr7);
    // Architectural reset values (APM Vol. 2 §13.1.1.5, §13.1.3): no
    // breakpoint enabled. DBGCTL is loaded only with LBR virtualization,
    // which stays off; the guest cannot write IA32_DEBUGCTL (the MSR
    // permission map intercepts it).
    vmcb.write::<u64>(state::DBGCTL, 0);
    vmcb.write::<u64>(state::RFLAGS, entry.rflags);
    vmcb.write::<u64>(state::RIP, entry.rip);
    vmcb.write::<u64>(state::RSP, 0);
    vmcb.write::<u64>(state::RAX, 0);
    vmcb.write::<u64>(state::G_PAT, entry.pat);
}

impl Vcpu for SvmVcpu {
    fn run(&mut self) -> VmExit {
        // SAFETY: SVM was enabled on this core before any SvmVcpu runs
        // (`Svm::enable`), the VMCB was fully initialised in `new` and
        // belongs to this core's partition, `host_state` is this vCPU's own
        // frame, and the hypervisor runs with interrupts disabled.
        unsafe { svm_run(&mut self.gprs, self.vmcb.pa(), self.host_state) };
        // After the first run the TLB needs no further flushing (one ASID
        // per core, one partition per core).
        self.vmcb.write::<u8>(control::TLB_CONTROL, 0);
        // An event the exit interrupted is delivered on the next VMRUN
        // (a software interrupt re-runs its instruction instead).
        let interrupted = decode_svm_exitintinfo(self.vmcb.read::<u64>(control::EXIT_INT_INFO));
        let inject = interrupted.as_ref().and_then(svm_eventinj).unwrap_or(0);
        self.vmcb.write::<u64>(control::EVENT_INJ, inject);
        self.decode_exit()
    }

    fn gpr(&self, reg: Gpr) -> u64 {
        match reg {
            Gpr::Rax => self.vmcb.read::<u64>(state::RAX),
            Gpr::Rbx => self.gprs.rbx,
            Gpr::Rcx => self.gprs.rcx,
            Gpr::Rdx => self.gprs.rdx,
            Gpr::Rsi => self.gprs.rsi,
            Gpr::Rdi => self.gprs.rdi,
        }
    }

    fn set_gpr(&mut self, reg: Gpr, value: u64) {
        match reg {
            Gpr::Rax => self.vmcb.write::<u64>(state::RAX, value),
            Gpr::Rbx => self.gprs.rbx = value,
            Gpr::Rcx => self.gprs.rcx = value,
            Gpr::Rdx => self.gprs.rdx = value,
            Gpr::Rsi => self.gprs.rsi = value,
            Gpr::Rdi => self.gprs.rdi = value,
        }
    }

    fn rip(&self) -> u64 {
        self.vmcb.read::<u64>(state::RIP)
    }

    fn cpl(&self) -> u8 {
        // The VMCB save area's CPL byte (AMD APM Vol. 2 §15.5.1, Table B-2).
        self.vmcb.read::<u8>(state::CPL) & 0b11
    }

    fn skip_instruction(&mut self) {
        let next = if let Some(next) = self.io_next_rip {
            next
        } else if self.nrip_save {
            self.vmcb.read::<u64>(control::NEXT_RIP)
        } else {
            self.rip().wrapping_add(self.exit_instruction_len)
        };
        self.vmcb.write::<u64>(state::RIP, next);
    }

    fn write_efer(&mut self, value: u64) {
        // The guest may switch long mode and NX on; LMA is the processor's,
        // and SVME must stay set or the next VMRUN fails its checks.
        let lma = self.vmcb.read::<u64>(state::EFER) & EFER_LMA;
        let efer = (value & !EFER_LMA) | lma | EFER_SVME;
        self.vmcb.write::<u64>(state::EFER, efer);
    }

    fn read_pat(&self) -> u64 {
        self.vmcb.read::<u64>(state::G_PAT)
    }

    fn write_pat(&mut self, value: u64) {
        self.vmcb.write::<u64>(state::G_PAT, value);
    }

    fn read_efer(&self) -> u64 {
        // SVME is the hypervisor's business: the guest sees it clear, as
        // CPUID says it has no SVM.
        self.vmcb.read::<u64>(state::EFER) & !EFER_SVME
    }

    fn backend(&self) -> abi::cpuid::Backend {
        abi::cpuid::Backend::Svm
    }

    fn emulate_control_register_access(&mut self) -> Result<(), &'static str> {
        // No control-register intercept is set on SVM: the guest owns its
        // CR0/CR3/CR4 (in the VMCB) outright.
        Err("unexpected control-register exit on SVM")
    }

    fn guest_cr4(&self) -> u64 {
        // The guest owns CR4 outright on SVM: the VMCB holds its value.
        self.vmcb.read::<u64>(state::CR4)
    }

    fn guest_features(&self) -> GuestFeatures {
        // Neither RDTSCP nor INVPCID is intercepted: both run natively.
        GuestFeatures {
            rdtscp: true,
            invpcid: true,
            tsc_deadline: self.tsc_deadline,
        }
    }

    fn intercept_timer_writes(&mut self, intercept: bool) {
        self.msrpm.intercept_timer_writes(&MSRPM, intercept);
    }

    fn inject_exception(&mut self, event: &PendingEvent) {
        // An instruction exit interrupted no event delivery: EVENTINJ is free.
        let inject = svm_eventinj(event).unwrap_or(0);
        self.vmcb.write::<u64>(control::EVENT_INJ, inject);
    }

    fn pass_tsc_deadline(&mut self) {
        self.msrpm.pass_tsc_deadline(&MSRPM);
        self.tsc_deadline = true;
    }
}
