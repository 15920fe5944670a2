//! The VMX implementation of the backend trait: a VMCS set up for a
//! PVH-style entry (unrestricted guest) behind EPT, with the same intercepts
//! as the SVM backend, and exit decoding into [`VmExit`]
//! ([`hypervisor::vmx::decode_exit`]).

use super::entry::{vmx_exit, vmx_run, GuestGprs};
use super::vmcs::Vmcs;
use super::{read_cr0, read_cr4, SetupError};
use crate::arch::x86_64::bitmaps::Bitmap;
use crate::arch::x86_64::common::gdt::{KERNEL_CS, KERNEL_DS, TSS_SELECTOR};
use crate::arch::x86_64::common::instr;
use abi::regs::efer::{LMA as EFER_LMA, LME as EFER_LME};
use abi::regs::half::low32;
use hypervisor::cpuid_policy::GuestFeatures;
use hypervisor::event::{decode_vmx_idt_vectoring, vmx_entry_fields, PendingEvent};
use hypervisor::vcpu::{Gpr, GuestEntry, Vcpu, VmExit};
use hypervisor::virt_caps::VmxControls;
use hypervisor::vmx::regs::{AR_UNUSABLE, EPTP_WB_4_LEVEL};
use hypervisor::vmx::{decode_exit, CrAccess, ExitFields, MSR_BITMAP};
use x86::controlregs::Cr0;
use x86::dtables::{sgdt, sidt, DescriptorTablePointer};
use x86::msr::{
    IA32_EFER, IA32_FS_BASE, IA32_GS_BASE, IA32_PAT, IA32_VMX_CR0_FIXED0, IA32_VMX_CR0_FIXED1,
    IA32_VMX_CR4_FIXED0, IA32_VMX_CR4_FIXED1,
};
use x86::vmx::vmcs::control::{EntryControls, SecondaryControls};
use x86::vmx::vmcs::{control as c, guest as g, host as h, ro};

/// CR0.PE and CR0.PG: the bits of IA32_VMX_CR0_FIXED0 an unrestricted guest
/// may clear (SDM Vol. 3C §24.8).
const CR0_PE_PG: u64 = (Cr0::CR0_PROTECTED_MODE.bits() | Cr0::CR0_ENABLE_PAGING.bits()) as u64;

/// A partition's virtual CPU on VMX.
#[derive(Debug)]
pub struct VmxVcpu {
    vmcs: Vmcs,
    gprs: GuestGprs,
    launched: bool,
    features: GuestFeatures,
    msr_bitmap: Bitmap,
    _io_bitmaps: Bitmap,
}

fn rdmsr(msr: u32) -> u64 {
    // SAFETY: only the CR0/CR4 fixed-bit capability MSRs and architectural
    // MSRs (EFER, PAT, FS/GS base) are read, which exist on every CPU with
    // VMX (Intel SDM Vol. 3D Appendix A.7, A.8).
    unsafe { instr::rdmsr(msr) }
}

fn gdt_idt() -> (u64, u64) {
    let mut gdt = DescriptorTablePointer::<u64>::default();
    let mut idt = DescriptorTablePointer::<u64>::default();
    // SAFETY: SGDT/SIDT only store the descriptor-table registers into the
    // given 10-byte buffers.
    unsafe {
        sgdt(&mut gdt);
        sidt(&mut idt);
    }
    (gdt.base as u64, idt.base as u64)
}

fn tss_base(gdt: u64) -> u64 {
    let at = gdt + u64::from(TSS_SELECTOR);
    // SAFETY: this core's GDT (loaded by `gdt::CpuTables::load`) has a
    // 16-byte TSS descriptor at TSS_SELECTOR.
    let (low, high) = unsafe {
        (
            (at as *const u64).read_volatile(),
            ((at + 8) as *const u64).read_volatile(),
        )
    };
    ((low >> 16) & 0xff_ffff) | (((low >> 56) & 0xff) << 24) | ((high & 0xffff_ffff) << 32)
}

impl VmxVcpu {
    /// Sets up the current VMCS of this core for a partition entering at
    /// `entry` behind the EPT at `ept_root`, with the I/O ports in `ports`
    /// granted and the VM-execution, exit and entry `controls` computed for
    /// this core ([`hypervisor::virt_caps::VirtSupport::vmx_controls`]).
    pub fn new(
        entry: &GuestEntry,
        ept_root: u64,
        ports: &[(u16, u16)],
        controls: &VmxControls,
        vpid: u16,
    ) -> Result<VmxVcpu, SetupError> {
        let mut vmcs = Vmcs::new_current(super::revision())?;
        let oom = SetupError::OutOfMemory;
        let msr_bitmap = Bitmap::msrs(&MSR_BITMAP, 4096).ok_or(oom("MSR bitmap"))?;
        let io_bitmaps = Bitmap::ports(2 * 4096, ports).ok_or(oom("I/O bitmaps"))?;
        write_controls(
            &mut vmcs,
            controls,
            (ept_root, vpid),
            &msr_bitmap,
            &io_bitmaps,
        )?;
        write_guest_state(&mut vmcs, entry)?;
        write_host_state(&mut vmcs)?;
        let gprs = GuestGprs {
            rbx: entry.rbx,
            ..GuestGprs::default()
        };
        let proc2 = SecondaryControls::from_bits_truncate(controls.proc2);
        let mut vcpu = VmxVcpu {
            vmcs,
            gprs,
            launched: false,
            features: GuestFeatures {
                rdtscp: proc2.contains(SecondaryControls::ENABLE_RDTSCP),
                invpcid: proc2.contains(SecondaryControls::ENABLE_INVPCID),
                tsc_deadline: false,
            },
            msr_bitmap,
            _io_bitmaps: io_bitmaps,
        };
        let cr = vcpu.load_cr0(entry.cr0).and(vcpu.load_cr4(entry.cr4));
        cr.map_err(SetupError::ControlRegister)?;
        vcpu.vmcs.write_all(&[])?; // a failed write in load_cr0/load_cr4
        Ok(vcpu)
    }

    fn decode_exit(&self) -> VmExit {
        decode_exit(&ExitFields {
            reason: self.vmcs.read(ro::EXIT_REASON),
            qualification: self.vmcs.read(ro::EXIT_QUALIFICATION),
            gpa: self.vmcs.read(ro::GUEST_PHYSICAL_ADDR_FULL),
            interruption: self.vmcs.read(ro::VMEXIT_INTERRUPTION_INFO),
            rax: self.gprs.rax,
            rcx: self.gprs.rcx,
            rdx: self.gprs.rdx,
        })
    }
}

/// The VM-execution, exit and entry controls and the structures they point
/// at. The controls were decided, from this core's capability MSRs, by the
/// one place that decides whether a core can host partitions. VMCLEAR
/// leaves field contents undefined: every field the design relies on is
/// written, zeros included.
fn write_controls(
    vmcs: &mut Vmcs,
    controls: &VmxControls,
    (ept_root, vpid): (u64, u16),
    msr_bitmap: &Bitmap,
    io_bitmaps: &Bitmap,
) -> Result<(), SetupError> {
    let fields = [
        (c::PINBASED_EXEC_CONTROLS, u64::from(controls.pin)),
        (c::PRIMARY_PROCBASED_EXEC_CONTROLS, u64::from(controls.proc)),
        (
            c::SECONDARY_PROCBASED_EXEC_CONTROLS,
            u64::from(controls.proc2),
        ),
        (c::VMEXIT_CONTROLS, u64::from(controls.exit)),
        (c::VMENTRY_CONTROLS, u64::from(controls.entry)),
        (c::EXCEPTION_BITMAP, 0),
        (c::PAGE_FAULT_ERR_CODE_MASK, 0),
        (c::PAGE_FAULT_ERR_CODE_MATCH, 0),
        (c::CR3_TARGET_COUNT, 0),
        (c::VMENTRY_EXCEPTION_ERR_CODE, 0),
        (c::VMENTRY_INSTRUCTION_LEN, 0),
        (c::VMEXIT_MSR_STORE_COUNT, 0),
        (c::VMEXIT_MSR_LOAD_COUNT, 0),
        (c::VMENTRY_MSR_LOAD_COUNT, 0),
        (c::VMENTRY_INTERRUPTION_INFO_FIELD, 0),
        (c::IO_BITMAP_A_ADDR_FULL, io_bitmaps.pa()),
        (c::IO_BITMAP_B_ADDR_FULL, io_bitmaps.pa() + 4096),
        (c::MSR_BITMAPS_ADDR_FULL, msr_bitmap.pa()),
        (c::EPTP_FULL, ept_root | EPTP_WB_4_LEVEL),
        (c::VPID, u64::from(vpid)),
        (g::LINK_PTR_FULL, u64::MAX),
    ];
    vmcs.write_all(&fields)
}

/// Encodes the initial guest state in the VMCS (CR0 and CR4 follow, by
/// [`VmxVcpu::load_cr0`] and [`VmxVcpu::load_cr4`]): the bits VMX forces on
/// in them are owned by the hypervisor (the guest/host masks), the guest
/// reads its own view from the shadows.
fn write_guest_state(vmcs: &mut Vmcs, entry: &GuestEntry) -> Result<(), SetupError> {
    let (cs, data, tr) = (entry.cs, entry.data, entry.tr);
    #[rustfmt::skip]
    let segments = [
        (g::CS_SELECTOR, g::CS_BASE, g::CS_LIMIT, g::CS_ACCESS_RIGHTS, cs),
        (g::DS_SELECTOR, g::DS_BASE, g::DS_LIMIT, g::DS_ACCESS_RIGHTS, data),
        (g::ES_SELECTOR, g::ES_BASE, g::ES_LIMIT, g::ES_ACCESS_RIGHTS, data),
        (g::SS_SELECTOR, g::SS_BASE, g::SS_LIMIT, g::SS_ACCESS_RIGHTS, data),
        (g::FS_SELECTOR, g::FS_BASE, g::FS_LIMIT, g::FS_ACCESS_RIGHTS, data),
        (g::GS_SELECTOR, g::GS_BASE, g::GS_LIMIT, g::GS_ACCESS_RIGHTS, data),
        (g::TR_SELECTOR, g::TR_BASE, g::TR_LIMIT, g::TR_ACCESS_RIGHTS, tr),
    ];
    for (selector, base, limit, access, seg) in segments {
        vmcs.write(selector, u64::from(seg.selector));
        vmcs.write(base, 0);
        vmcs.write(limit, u64::from(seg.limit));
        vmcs.write(access, u64::from(seg.access));
    }
    let fields = [
        (
            c::CR0_GUEST_HOST_MASK,
            rdmsr(IA32_VMX_CR0_FIXED0) & !CR0_PE_PG,
        ),
        (c::CR4_GUEST_HOST_MASK, rdmsr(IA32_VMX_CR4_FIXED0)),
        (g::CR3, 0),
        (g::PDPTE0_FULL, 0),
        (g::PDPTE1_FULL, 0),
        (g::PDPTE2_FULL, 0),
        (g::PDPTE3_FULL, 0),
        // No LDT: the unusable bit.
        (g::LDTR_SELECTOR, 0),
        (g::LDTR_BASE, 0),
        (g::LDTR_LIMIT, 0),
        (g::LDTR_ACCESS_RIGHTS, AR_UNUSABLE),
        (g::GDTR_BASE, 0),
        (g::GDTR_LIMIT, 0),
        (g::IDTR_BASE, 0),
        (g::IDTR_LIMIT, 0),
        // DR7 and IA32_DEBUGCTL are the guest's: loaded on entry, saved on
        // exit ("load/save debug controls"); a VM exit itself sets DR7 to
        // 0x400 and clears DEBUGCTL for the host (SDM Vol. 3C §28.5.1).
        // Reset values: no breakpoint enabled, no branch tracing.
        (g::DR7, entry.dr7),
        (g::IA32_DEBUGCTL_FULL, 0),
        (g::RSP, 0),
        (g::RIP, entry.rip),
        (g::RFLAGS, entry.rflags),
        (g::PENDING_DBG_EXCEPTIONS, 0),
        (g::INTERRUPTIBILITY_STATE, 0),
        (g::ACTIVITY_STATE, 0),
        (g::IA32_SYSENTER_CS, 0),
        (g::IA32_SYSENTER_ESP, 0),
        (g::IA32_SYSENTER_EIP, 0),
        (g::IA32_EFER_FULL, entry.efer),
        (g::IA32_PAT_FULL, entry.pat),
    ];
    vmcs.write_all(&fields)
}

/// The host state: this core as it is now, resuming at `vmx_exit`.
fn write_host_state(vmcs: &mut Vmcs) -> Result<(), SetupError> {
    let (gdt, idt) = gdt_idt();
    // SAFETY: reading CR3 has no side effects at CPL 0 (and, unlike the
    // crate's CR0/CR4 readers, returns the register unchanged).
    let cr3 = unsafe { x86::controlregs::cr3() };
    let fields = [
        (h::CR0, read_cr0()),
        (h::CR3, cr3),
        (h::CR4, read_cr4()),
        (h::CS_SELECTOR, u64::from(KERNEL_CS)),
        (h::SS_SELECTOR, u64::from(KERNEL_DS)),
        (h::DS_SELECTOR, u64::from(KERNEL_DS)),
        (h::ES_SELECTOR, u64::from(KERNEL_DS)),
        (h::FS_SELECTOR, 0),
        (h::GS_SELECTOR, 0),
        (h::TR_SELECTOR, u64::from(TSS_SELECTOR)),
        (h::FS_BASE, rdmsr(IA32_FS_BASE)),
        (h::GS_BASE, rdmsr(IA32_GS_BASE)),
        (h::TR_BASE, tss_base(gdt)),
        (h::GDTR_BASE, gdt),
        (h::IDTR_BASE, idt),
        (h::IA32_SYSENTER_CS, 0),
        (h::IA32_SYSENTER_ESP, 0),
        (h::IA32_SYSENTER_EIP, 0),
        (h::IA32_EFER_FULL, rdmsr(IA32_EFER)),
        (h::IA32_PAT_FULL, rdmsr(IA32_PAT)),
        (h::RIP, core::ptr::addr_of!(vmx_exit) as u64),
    ];
    vmcs.write_all(&fields)
}

impl VmxVcpu {
    /// Arranges for the event the last exit interrupted (IDT-vectoring
    /// information) to be injected on the next VM entry. The exit cleared
    /// the entry field's valid bit (SDM Vol. 3C §28.2.4), so nothing else
    /// is injected otherwise.
    fn reinject_interrupted_event(&mut self) {
        let field = |f| low32(self.vmcs.read(f)); // 32-bit fields
        let Some(event) = decode_vmx_idt_vectoring(
            field(ro::IDT_VECTORING_INFO),
            field(ro::IDT_VECTORING_ERR_CODE),
            field(ro::VMEXIT_INSTRUCTION_LEN),
        ) else {
            return;
        };
        self.inject(&event);
    }

    /// Writes the VM-entry fields that inject `event` on the next entry.
    fn inject(&mut self, event: &PendingEvent) {
        if let Some((info, error_code, len)) = vmx_entry_fields(event) {
            // A failed write surfaces on the next run (`Vmcs::failure_code`).
            self.vmcs
                .write(c::VMENTRY_EXCEPTION_ERR_CODE, u64::from(error_code));
            self.vmcs.write(c::VMENTRY_INSTRUCTION_LEN, u64::from(len));
            self.vmcs
                .write(c::VMENTRY_INTERRUPTION_INFO_FIELD, u64::from(info));
        }
    }

    /// General-purpose register `index` in the encoding of exit
    /// qualifications (0 = rax, 1 = rcx, 2 = rdx, 3 = rbx, 4 = rsp, ...).
    fn gpr_by_index(&self, index: u8) -> u64 {
        let r = &self.gprs;
        match index {
            0 => r.rax,
            1 => r.rcx,
            2 => r.rdx,
            3 => r.rbx,
            4 => self.vmcs.read(g::RSP),
            5 => r.rbp,
            6 => r.rsi,
            7 => r.rdi,
            n => r.r[usize::from(n - 8) & 7],
        }
    }

    /// Loads a guest CR0 written through an exit: the bits VMX forces on
    /// stay on in the real CR0, the guest keeps reading its own value, and
    /// entering or leaving paging with EFER.LME moves the guest in or out of
    /// IA-32e mode (a write through the VMCS does not do it by itself).
    fn load_cr0(&mut self, value: u64) -> Result<(), &'static str> {
        let paging = value & Cr0::CR0_ENABLE_PAGING.bits() as u64 != 0;
        if paging && value & Cr0::CR0_PROTECTED_MODE.bits() as u64 == 0 {
            return Err("CR0.PG without CR0.PE");
        }
        let forced = rdmsr(IA32_VMX_CR0_FIXED0) & !CR0_PE_PG;
        let allowed = rdmsr(IA32_VMX_CR0_FIXED1);
        // A failed write surfaces on the next run (`Vmcs::failure_code`).
        self.vmcs.write(g::CR0, (value | forced) & allowed);
        self.vmcs.write(c::CR0_READ_SHADOW, value);
        let mut efer = self.vmcs.read(g::IA32_EFER_FULL);
        let mut entry = self.vmcs.read(c::VMENTRY_CONTROLS);
        let ia32e = u64::from(EntryControls::IA32E_MODE_GUEST.bits());
        if paging && efer & EFER_LME != 0 {
            efer |= EFER_LMA;
            entry |= ia32e;
        } else if !paging {
            efer &= !EFER_LMA;
            entry &= !ia32e;
        }
        self.vmcs.write(g::IA32_EFER_FULL, efer);
        self.vmcs.write(c::VMENTRY_CONTROLS, entry);
        Ok(())
    }

    /// Loads a guest CR4 written through an exit (VMXE stays on underneath).
    fn load_cr4(&mut self, value: u64) -> Result<(), &'static str> {
        let forced = rdmsr(IA32_VMX_CR4_FIXED0);
        let allowed = rdmsr(IA32_VMX_CR4_FIXED1);
        if value & !allowed != 0 {
            return Err("CR4 bit this processor does not allow in VMX operation");
        }
        self.vmcs.write(g::CR4, value | forced);
        self.vmcs.write(c::CR4_READ_SHADOW, value);
        Ok(())
    }
}

/// Where `reg` is kept while the guest does not run.
fn slot(gprs: &mut GuestGprs, reg: Gpr) -> &mut u64 {
    match reg {
        Gpr::Rax => &mut gprs.rax,
        Gpr::Rbx => &mut gprs.rbx,
        Gpr::Rcx => &mut gprs.rcx,
        Gpr::Rdx => &mut gprs.rdx,
        Gpr::Rsi => &mut gprs.rsi,
        Gpr::Rdi => &mut gprs.rdi,
    }
}

impl Vcpu for VmxVcpu {
    fn run(&mut self) -> VmExit {
        // A VMREAD or VMWRITE that failed since the last exit (a hypervisor
        // bug) ends the partition before the guest runs on a VMCS it may not
        // expect.
        if let Some(code) = self.vmcs.failure_code() {
            return VmExit::InvalidState { code };
        }
        // SAFETY: VMX operation is on for this core (`super::enable`), this
        // vCPU's VMCS is current and complete (`new`), HOST_RIP points at
        // `vmx_exit`, `launched` tracks VMLAUNCH, and the hypervisor runs
        // with interrupts disabled.
        let failed = unsafe { vmx_run(&mut self.gprs, u64::from(self.launched)) };
        if failed != 0 {
            return VmExit::InvalidState {
                code: self.vmcs.read(ro::VM_INSTRUCTION_ERROR),
            };
        }
        self.launched = true;
        self.reinject_interrupted_event();
        let exit = self.decode_exit();
        let failed = self.vmcs.failure_code();
        failed.map_or(exit, |code| VmExit::InvalidState { code })
    }

    fn gpr(&self, reg: Gpr) -> u64 {
        let mut gprs = self.gprs;
        *slot(&mut gprs, reg)
    }

    fn set_gpr(&mut self, reg: Gpr, value: u64) {
        *slot(&mut self.gprs, reg) = value;
    }

    fn rip(&self) -> u64 {
        self.vmcs.read(g::RIP)
    }

    fn cpl(&self) -> u8 {
        // SS access rights bits 6:5 (DPL), which always equal the CPL
        // (Intel SDM Vol. 3C §25.4.1). A failed read counts as ring 3, so
        // it cannot let a hypercall through.
        ((self.vmcs.read_or(g::SS_ACCESS_RIGHTS, 3 << 5) >> 5) & 0b11) as u8
    }

    fn skip_instruction(&mut self) {
        let next = self
            .rip()
            .wrapping_add(self.vmcs.read(ro::VMEXIT_INSTRUCTION_LEN));
        // A failed write surfaces on the next run (`Vmcs::failure_code`).
        self.vmcs.write(g::RIP, next);
    }

    fn write_efer(&mut self, value: u64) {
        // LMA is the processor's to set (with CR0.PG and LME); keep it. A
        // failed write surfaces on the next run (`Vmcs::failure_code`).
        let lma = self.vmcs.read(g::IA32_EFER_FULL) & EFER_LMA;
        self.vmcs
            .write(g::IA32_EFER_FULL, (value & !EFER_LMA) | lma);
    }

    fn read_pat(&self) -> u64 {
        self.vmcs.read(g::IA32_PAT_FULL)
    }

    fn write_pat(&mut self, value: u64) {
        // A failed write surfaces on the next run (`Vmcs::failure_code`).
        self.vmcs.write(g::IA32_PAT_FULL, value);
    }

    fn read_efer(&self) -> u64 {
        self.vmcs.read(g::IA32_EFER_FULL)
    }

    fn backend(&self) -> abi::cpuid::Backend {
        abi::cpuid::Backend::Vmx
    }

    fn emulate_control_register_access(&mut self) -> Result<(), &'static str> {
        let access = CrAccess::decode(self.vmcs.read(ro::EXIT_QUALIFICATION));
        if !access.mov_to {
            return Err("only MOV to CR0/CR4 is emulated (CLTS, LMSW, reads are not)");
        }
        let value = self.gpr_by_index(access.gpr);
        match access.cr {
            0 => self.load_cr0(value),
            4 => self.load_cr4(value),
            _ => Err("unexpected control-register exit"),
        }
    }

    fn guest_cr4(&self) -> u64 {
        // Bits the hypervisor owns (the guest/host mask) read from the
        // shadow, the rest from the real guest CR4.
        let mask = self.vmcs.read(c::CR4_GUEST_HOST_MASK);
        (self.vmcs.read(g::CR4) & !mask) | (self.vmcs.read(c::CR4_READ_SHADOW) & mask)
    }

    fn guest_features(&self) -> GuestFeatures {
        self.features
    }

    fn intercept_timer_writes(&mut self, intercept: bool) {
        self.msr_bitmap
            .intercept_timer_writes(&MSR_BITMAP, intercept);
    }

    fn inject_exception(&mut self, event: &PendingEvent) {
        self.inject(event);
    }

    fn pass_tsc_deadline(&mut self) {
        self.msr_bitmap.pass_tsc_deadline(&MSR_BITMAP);
        self.features.tsc_deadline = true;
    }
}
