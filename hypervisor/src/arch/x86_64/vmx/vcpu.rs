//! The VMX implementation of the backend trait: a VMCS set up for a
//! PVH-style entry (unrestricted guest) behind EPT, with the same intercepts
//! as the SVM backend, and exit decoding into [`VmExit`].

use super::bitmaps::Bitmap;
use super::entry::{vmx_exit, vmx_run, GuestGprs};
use super::vmcs::{field as f, Vmcs, VmxFail};
use super::{read_cr0, read_cr3, read_cr4};
use crate::arch::x86_64::common::gdt::{KERNEL_CS, KERNEL_DS, TSS_SELECTOR};
use crate::arch::x86_64::common::instr;
use core::arch::asm;
use hypervisor::cpuid_policy::GuestFeatures;
use hypervisor::event::{decode_vmx_idt_vectoring, vmx_entry_fields};
use hypervisor::exit_handler::VcpuExt;
use hypervisor::msr_policy;
use hypervisor::timer_policy;
use hypervisor::vcpu::{Gpr, Vcpu, VmExit};
use hypervisor::virt_caps::{VmxControls, PROC2_INVPCID, PROC2_RDTSCP};

const IA32_VMX_CR0_FIXED0: u32 = 0x486;
const IA32_VMX_CR0_FIXED1: u32 = 0x487;
const IA32_VMX_CR4_FIXED0: u32 = 0x488;
const IA32_VMX_CR4_FIXED1: u32 = 0x489;
const IA32_EFER: u32 = 0xc000_0080;
const IA32_PAT: u32 = 0x277;
const IA32_FS_BASE: u32 = 0xc000_0100;
const IA32_GS_BASE: u32 = 0xc000_0101;

const CR0_PE: u64 = 1 << 0;
const CR0_PG: u64 = 1 << 31;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const ENTRY_IA32E_GUEST: u32 = 1 << 9;

// Basic exit reasons (Intel SDM Vol. 3 Appendix C).
const EXIT_EXCEPTION_NMI: u64 = 0;
const EXIT_TRIPLE_FAULT: u64 = 2;
const EXIT_INIT: u64 = 3;
const EXIT_CPUID: u64 = 10;
const EXIT_GETSEC: u64 = 11;
const EXIT_INVD: u64 = 13;
const EXIT_VMCALL: u64 = 18;
const EXIT_IO: u64 = 30;
const EXIT_RDMSR: u64 = 31;
const EXIT_WRMSR: u64 = 32;
const EXIT_INVALID_GUEST_STATE: u64 = 33;
const EXIT_MSR_LOADING: u64 = 34;
const EXIT_EPT_VIOLATION: u64 = 48;
const EXIT_EPT_MISCONFIG: u64 = 49;
const EXIT_INVEPT: u64 = 50;
const EXIT_INVVPID: u64 = 53;
const EXIT_CR_ACCESS: u64 = 28;
const EXIT_XSETBV: u64 = 55;

/// Where a partition starts.
#[derive(Clone, Copy, Debug)]
pub struct EntryState {
    /// Guest-physical entry point (32-bit protected mode).
    pub rip: u64,
    /// `rbx` at entry.
    pub rbx: u64,
    /// EPT root.
    pub ept_root: u64,
}

/// Why a VMX virtual CPU could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// Out of memory.
    OutOfMemory,
    /// VMPTRLD or a VMWRITE failed.
    VmcsWrite,
}

impl From<VmxFail> for SetupError {
    fn from(_: VmxFail) -> Self {
        SetupError::VmcsWrite
    }
}

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

#[repr(C, packed(2))]
#[derive(Default)]
struct TablePointer {
    limit: u16,
    base: u64,
}

fn gdt_idt() -> (u64, u64) {
    let mut gdt = TablePointer::default();
    let mut idt = TablePointer::default();
    // SAFETY: SGDT/SIDT only store the descriptor-table registers into the
    // given 10-byte buffers.
    unsafe {
        asm!("sgdt [{}]", in(reg) &mut gdt, options(nostack));
        asm!("sidt [{}]", in(reg) &mut idt, options(nostack));
    }
    (gdt.base, idt.base)
}

fn tss_base(gdt: u64) -> u64 {
    let at = gdt as usize + usize::from(TSS_SELECTOR);
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
    /// `entry`, with the I/O ports in `ports` granted and the VM-execution,
    /// exit and entry `controls` computed for this core
    /// ([`hypervisor::virt_caps::VirtSupport::vmx_controls`]).
    pub fn new(
        entry: EntryState,
        ports: &[(u16, u16)],
        controls: &VmxControls,
    ) -> Result<VmxVcpu, SetupError> {
        let mut vmcs = Vmcs::new_current(super::revision()).ok_or(SetupError::OutOfMemory)?;
        let mut msr_bitmap = Bitmap::msr().ok_or(SetupError::OutOfMemory)?;
        let mut io_bitmaps = Bitmap::io().ok_or(SetupError::OutOfMemory)?;
        for &msr in msr_policy::PASSTHROUGH {
            msr_bitmap.allow_msr_read(msr);
            msr_bitmap.allow_msr_write(msr);
        }
        for &msr in msr_policy::READ_ONLY {
            msr_bitmap.allow_msr_read(msr);
        }
        for &(first, last) in ports {
            for port in first..=last {
                io_bitmaps.allow_port(port);
            }
        }

        // The controls were decided, from this core's capability MSRs, by
        // the one place that decides whether a core can host partitions.
        vmcs.write(f::PIN_BASED_CONTROLS, u64::from(controls.pin))?;
        vmcs.write(f::PRIMARY_PROC_CONTROLS, u64::from(controls.proc))?;
        vmcs.write(f::SECONDARY_PROC_CONTROLS, u64::from(controls.proc2))?;
        vmcs.write(f::EXIT_CONTROLS, u64::from(controls.exit))?;
        vmcs.write(f::ENTRY_CONTROLS, u64::from(controls.entry))?;
        // VMCLEAR leaves field contents undefined: every field the design
        // relies on is written, zeros included.
        vmcs.write(f::EXCEPTION_BITMAP, 0)?;
        vmcs.write(f::PF_ERROR_CODE_MASK, 0)?;
        vmcs.write(f::PF_ERROR_CODE_MATCH, 0)?;
        vmcs.write(f::CR3_TARGET_COUNT, 0)?;
        vmcs.write(f::ENTRY_EXCEPTION_ERROR_CODE, 0)?;
        vmcs.write(f::ENTRY_INSTRUCTION_LEN, 0)?;
        for pdpte in [
            f::GUEST_PDPTE0,
            f::GUEST_PDPTE1,
            f::GUEST_PDPTE2,
            f::GUEST_PDPTE3,
        ] {
            vmcs.write(pdpte, 0)?;
        }
        vmcs.write(f::EXIT_MSR_STORE_COUNT, 0)?;
        vmcs.write(f::EXIT_MSR_LOAD_COUNT, 0)?;
        vmcs.write(f::ENTRY_MSR_LOAD_COUNT, 0)?;
        vmcs.write(f::ENTRY_INTERRUPTION_INFO, 0)?;
        vmcs.write(f::IO_BITMAP_A, io_bitmaps.pa())?;
        vmcs.write(f::IO_BITMAP_B, io_bitmaps.second_page())?;
        vmcs.write(f::MSR_BITMAP, msr_bitmap.pa())?;
        // EPT: write-back, 4-level walk.
        vmcs.write(f::EPT_POINTER, entry.ept_root | (3 << 3) | 6)?;
        vmcs.write(f::VPID, 1)?;
        vmcs.write(f::VMCS_LINK_POINTER, u64::MAX)?;

        // CR0/CR4: the bits VMX forces on are owned by the hypervisor; the
        // guest reads its own view from the shadows.
        let cr0_fixed = rdmsr(IA32_VMX_CR0_FIXED0) & !(CR0_PE | CR0_PG);
        let cr0_guest = 0x11u64; // PE, ET
        vmcs.write(
            f::GUEST_CR0,
            (cr0_guest | cr0_fixed) & rdmsr(IA32_VMX_CR0_FIXED1),
        )?;
        vmcs.write(f::CR0_GUEST_HOST_MASK, cr0_fixed)?;
        vmcs.write(f::CR0_READ_SHADOW, cr0_guest)?;
        let cr4_fixed = rdmsr(IA32_VMX_CR4_FIXED0);
        vmcs.write(f::GUEST_CR4, cr4_fixed & rdmsr(IA32_VMX_CR4_FIXED1))?;
        vmcs.write(f::CR4_GUEST_HOST_MASK, cr4_fixed)?;
        vmcs.write(f::CR4_READ_SHADOW, 0)?;
        vmcs.write(f::GUEST_CR3, 0)?;

        // PVH entry: flat 32-bit protected mode.
        let segs = [
            (
                f::GUEST_CS_SELECTOR,
                f::GUEST_CS_BASE,
                f::GUEST_CS_LIMIT,
                f::GUEST_CS_AR,
                0x08,
                0xc09b,
            ),
            (
                f::GUEST_DS_SELECTOR,
                f::GUEST_DS_BASE,
                f::GUEST_DS_LIMIT,
                f::GUEST_DS_AR,
                0x10,
                0xc093,
            ),
            (
                f::GUEST_ES_SELECTOR,
                f::GUEST_ES_BASE,
                f::GUEST_ES_LIMIT,
                f::GUEST_ES_AR,
                0x10,
                0xc093,
            ),
            (
                f::GUEST_SS_SELECTOR,
                f::GUEST_SS_BASE,
                f::GUEST_SS_LIMIT,
                f::GUEST_SS_AR,
                0x10,
                0xc093,
            ),
            (
                f::GUEST_FS_SELECTOR,
                f::GUEST_FS_BASE,
                f::GUEST_FS_LIMIT,
                f::GUEST_FS_AR,
                0x10,
                0xc093,
            ),
            (
                f::GUEST_GS_SELECTOR,
                f::GUEST_GS_BASE,
                f::GUEST_GS_LIMIT,
                f::GUEST_GS_AR,
                0x10,
                0xc093,
            ),
        ];
        for (sel, base, limit, ar, s, a) in segs {
            vmcs.write(sel, s)?;
            vmcs.write(base, 0)?;
            vmcs.write(limit, 0xffff_ffff)?;
            vmcs.write(ar, a)?;
        }
        vmcs.write(f::GUEST_TR_SELECTOR, 0)?;
        vmcs.write(f::GUEST_TR_BASE, 0)?;
        vmcs.write(f::GUEST_TR_LIMIT, 0x67)?;
        vmcs.write(f::GUEST_TR_AR, 0x8b)?;
        vmcs.write(f::GUEST_LDTR_SELECTOR, 0)?;
        vmcs.write(f::GUEST_LDTR_BASE, 0)?;
        vmcs.write(f::GUEST_LDTR_LIMIT, 0)?;
        vmcs.write(f::GUEST_LDTR_AR, 1 << 16)?; // unusable
        vmcs.write(f::GUEST_GDTR_BASE, 0)?;
        vmcs.write(f::GUEST_GDTR_LIMIT, 0)?;
        vmcs.write(f::GUEST_IDTR_BASE, 0)?;
        vmcs.write(f::GUEST_IDTR_LIMIT, 0)?;
        // DR7 and IA32_DEBUGCTL are the guest's: loaded on entry, saved on
        // exit ("load/save debug controls"); a VM exit itself sets DR7 to
        // 0x400 and clears DEBUGCTL for the host (SDM Vol. 3C §28.5.1).
        // Reset values: no breakpoint enabled, no branch tracing.
        vmcs.write(f::GUEST_DR7, 0x400)?;
        vmcs.write(f::GUEST_IA32_DEBUGCTL, 0)?;
        vmcs.write(f::GUEST_RSP, 0)?;
        vmcs.write(f::GUEST_RIP, entry.rip)?;
        vmcs.write(f::GUEST_RFLAGS, 0x2)?;
        vmcs.write(f::GUEST_PENDING_DBG, 0)?;
        vmcs.write(f::GUEST_INTERRUPTIBILITY, 0)?;
        vmcs.write(f::GUEST_ACTIVITY_STATE, 0)?;
        vmcs.write(f::GUEST_SYSENTER_CS, 0)?;
        vmcs.write(f::GUEST_SYSENTER_ESP, 0)?;
        vmcs.write(f::GUEST_SYSENTER_EIP, 0)?;
        vmcs.write(f::GUEST_IA32_EFER, 0)?;
        vmcs.write(f::GUEST_IA32_PAT, 0x0007_0406_0007_0406)?;

        // Host state: this core as it is now.
        let (gdt, idt) = gdt_idt();
        vmcs.write(f::HOST_CR0, read_cr0())?;
        vmcs.write(f::HOST_CR3, read_cr3())?;
        vmcs.write(f::HOST_CR4, read_cr4())?;
        vmcs.write(f::HOST_CS_SELECTOR, u64::from(KERNEL_CS))?;
        for sel in [
            f::HOST_SS_SELECTOR,
            f::HOST_DS_SELECTOR,
            f::HOST_ES_SELECTOR,
        ] {
            vmcs.write(sel, u64::from(KERNEL_DS))?;
        }
        vmcs.write(f::HOST_FS_SELECTOR, 0)?;
        vmcs.write(f::HOST_GS_SELECTOR, 0)?;
        vmcs.write(f::HOST_TR_SELECTOR, u64::from(TSS_SELECTOR))?;
        vmcs.write(f::HOST_FS_BASE, rdmsr(IA32_FS_BASE))?;
        vmcs.write(f::HOST_GS_BASE, rdmsr(IA32_GS_BASE))?;
        vmcs.write(f::HOST_TR_BASE, tss_base(gdt))?;
        vmcs.write(f::HOST_GDTR_BASE, gdt)?;
        vmcs.write(f::HOST_IDTR_BASE, idt)?;
        vmcs.write(f::HOST_SYSENTER_CS, 0)?;
        vmcs.write(f::HOST_SYSENTER_ESP, 0)?;
        vmcs.write(f::HOST_SYSENTER_EIP, 0)?;
        vmcs.write(f::HOST_IA32_EFER, rdmsr(IA32_EFER))?;
        vmcs.write(f::HOST_IA32_PAT, rdmsr(IA32_PAT))?;
        vmcs.write(f::HOST_RIP, core::ptr::addr_of!(vmx_exit) as u64)?;

        let gprs = GuestGprs {
            rbx: entry.rbx,
            ..GuestGprs::default()
        };
        Ok(VmxVcpu {
            vmcs,
            gprs,
            launched: false,
            features: GuestFeatures {
                rdtscp: controls.proc2 & PROC2_RDTSCP != 0,
                invpcid: controls.proc2 & PROC2_INVPCID != 0,
                tsc_deadline: false,
            },
            msr_bitmap,
            _io_bitmaps: io_bitmaps,
        })
    }

    fn decode_exit(&self) -> VmExit {
        let raw = self.vmcs.read(f::EXIT_REASON);
        let reason = raw & 0xffff;
        let qualification = self.vmcs.read(f::EXIT_QUALIFICATION);
        if raw & (1 << 31) != 0 {
            return VmExit::InvalidState { code: raw };
        }
        match reason {
            EXIT_VMCALL => VmExit::Hypercall,
            EXIT_CPUID => VmExit::Cpuid,
            EXIT_RDMSR => VmExit::MsrRead {
                msr: self.gprs.rcx as u32,
            },
            EXIT_WRMSR => VmExit::MsrWrite {
                msr: self.gprs.rcx as u32,
                value: (self.gprs.rdx << 32) | (self.gprs.rax & 0xffff_ffff),
            },
            EXIT_IO => VmExit::Io {
                port: (qualification >> 16) as u16,
                size: ((qualification & 0b111) + 1) as u8,
                write: qualification & (1 << 3) == 0,
            },
            EXIT_XSETBV => VmExit::Xsetbv {
                xcr: self.gprs.rcx as u32,
                value: (self.gprs.rdx << 32) | (self.gprs.rax & 0xffff_ffff),
            },
            EXIT_CR_ACCESS => VmExit::ControlRegisterAccess,
            EXIT_EPT_VIOLATION => VmExit::NestedPageFault {
                gpa: self.vmcs.read(f::GUEST_PHYSICAL_ADDRESS),
                write: qualification & 0b10 != 0,
                fetch: qualification & 0b100 != 0,
            },
            EXIT_TRIPLE_FAULT => VmExit::TripleFault,
            EXIT_INIT => VmExit::Init,
            EXIT_EXCEPTION_NMI => {
                let info = self.vmcs.read(f::EXIT_INTERRUPTION_INFO);
                if (info >> 8) & 0b111 == 2 {
                    VmExit::Nmi
                } else {
                    VmExit::Other { code: reason }
                }
            }
            19 => VmExit::VirtualizationInstruction { name: "vmclear" },
            20 => VmExit::VirtualizationInstruction { name: "vmlaunch" },
            21 => VmExit::VirtualizationInstruction { name: "vmptrld" },
            22 => VmExit::VirtualizationInstruction { name: "vmptrst" },
            23 => VmExit::VirtualizationInstruction { name: "vmread" },
            24 => VmExit::VirtualizationInstruction { name: "vmresume" },
            25 => VmExit::VirtualizationInstruction { name: "vmwrite" },
            26 => VmExit::VirtualizationInstruction { name: "vmxoff" },
            27 => VmExit::VirtualizationInstruction { name: "vmxon" },
            EXIT_INVEPT => VmExit::VirtualizationInstruction { name: "invept" },
            EXIT_INVVPID => VmExit::VirtualizationInstruction { name: "invvpid" },
            EXIT_GETSEC => VmExit::VirtualizationInstruction { name: "getsec" },
            EXIT_INVD => VmExit::VirtualizationInstruction { name: "invd" },
            EXIT_INVALID_GUEST_STATE | EXIT_MSR_LOADING | EXIT_EPT_MISCONFIG => {
                VmExit::InvalidState { code: raw }
            }
            other => VmExit::Other { code: other },
        }
    }
}

impl VmxVcpu {
    /// Arranges for the event the last exit interrupted (IDT-vectoring
    /// information) to be injected on the next VM entry. The exit cleared
    /// the entry field's valid bit (SDM Vol. 3C §28.2.4), so nothing else
    /// is injected otherwise.
    fn reinject_interrupted_event(&mut self) {
        let info = self.vmcs.read(f::IDT_VECTORING_INFO) as u32;
        let Some(event) = decode_vmx_idt_vectoring(
            info,
            self.vmcs.read(f::IDT_VECTORING_ERROR_CODE) as u32,
            self.vmcs.read(f::EXIT_INSTRUCTION_LEN) as u32,
        ) else {
            return;
        };
        if let Some((info, error_code, len)) = vmx_entry_fields(&event) {
            // A failed write leaves the entry field invalid: the event is
            // lost as before, nothing worse.
            let _ = self
                .vmcs
                .write(f::ENTRY_EXCEPTION_ERROR_CODE, u64::from(error_code));
            let _ = self.vmcs.write(f::ENTRY_INSTRUCTION_LEN, u64::from(len));
            let _ = self.vmcs.write(f::ENTRY_INTERRUPTION_INFO, u64::from(info));
        }
    }

    /// General-purpose register `index` in the encoding of exit
    /// qualifications (0 = rax, 1 = rcx, 2 = rdx, 3 = rbx, 4 = rsp, ...).
    fn gpr_by_index(&self, index: u64) -> u64 {
        let g = &self.gprs;
        match index {
            0 => g.rax,
            1 => g.rcx,
            2 => g.rdx,
            3 => g.rbx,
            4 => self.vmcs.read(f::GUEST_RSP),
            5 => g.rbp,
            6 => g.rsi,
            7 => g.rdi,
            n => g.r[(n as usize - 8) & 7],
        }
    }

    /// Loads a guest CR0 written through an exit: the bits VMX forces on
    /// stay on in the real CR0, the guest keeps reading its own value, and
    /// entering or leaving paging with EFER.LME moves the guest in or out of
    /// IA-32e mode (a write through the VMCS does not do it by itself).
    fn load_cr0(&mut self, value: u64) -> Result<(), &'static str> {
        if value & CR0_PG != 0 && value & CR0_PE == 0 {
            return Err("CR0.PG without CR0.PE");
        }
        let forced = rdmsr(IA32_VMX_CR0_FIXED0) & !(CR0_PE | CR0_PG);
        let allowed = rdmsr(IA32_VMX_CR0_FIXED1);
        let err = |_| "VMCS write failed";
        self.vmcs
            .write(f::GUEST_CR0, (value | forced) & allowed)
            .map_err(err)?;
        self.vmcs.write(f::CR0_READ_SHADOW, value).map_err(err)?;
        let mut efer = self.vmcs.read(f::GUEST_IA32_EFER);
        let mut entry = self.vmcs.read(f::ENTRY_CONTROLS);
        if value & CR0_PG != 0 && efer & EFER_LME != 0 {
            efer |= EFER_LMA;
            entry |= u64::from(ENTRY_IA32E_GUEST);
        } else if value & CR0_PG == 0 {
            efer &= !EFER_LMA;
            entry &= !u64::from(ENTRY_IA32E_GUEST);
        }
        self.vmcs.write(f::GUEST_IA32_EFER, efer).map_err(err)?;
        self.vmcs.write(f::ENTRY_CONTROLS, entry).map_err(err)
    }

    /// Loads a guest CR4 written through an exit (VMXE stays on underneath).
    fn load_cr4(&mut self, value: u64) -> Result<(), &'static str> {
        let forced = rdmsr(IA32_VMX_CR4_FIXED0);
        let allowed = rdmsr(IA32_VMX_CR4_FIXED1);
        if value & !allowed != 0 {
            return Err("CR4 bit this processor does not allow in VMX operation");
        }
        let err = |_| "VMCS write failed";
        self.vmcs.write(f::GUEST_CR4, value | forced).map_err(err)?;
        self.vmcs.write(f::CR4_READ_SHADOW, value).map_err(err)
    }
}

impl Vcpu for VmxVcpu {
    fn backend(&self) -> &'static str {
        "vmx"
    }

    fn run(&mut self) -> VmExit {
        // SAFETY: VMX operation is on for this core (`super::enable`), this
        // vCPU's VMCS is current and complete (`new`), HOST_RIP points at
        // `vmx_exit`, `launched` tracks VMLAUNCH, and the hypervisor runs
        // with interrupts disabled.
        let failed = unsafe { vmx_run(&mut self.gprs, u64::from(self.launched)) };
        if failed != 0 {
            return VmExit::InvalidState {
                code: self.vmcs.read(f::VM_INSTRUCTION_ERROR),
            };
        }
        self.launched = true;
        self.reinject_interrupted_event();
        self.decode_exit()
    }

    fn gpr(&self, reg: Gpr) -> u64 {
        match reg {
            Gpr::Rax => self.gprs.rax,
            Gpr::Rbx => self.gprs.rbx,
            Gpr::Rcx => self.gprs.rcx,
            Gpr::Rdx => self.gprs.rdx,
            Gpr::Rsi => self.gprs.rsi,
            Gpr::Rdi => self.gprs.rdi,
        }
    }

    fn set_gpr(&mut self, reg: Gpr, value: u64) {
        match reg {
            Gpr::Rax => self.gprs.rax = value,
            Gpr::Rbx => self.gprs.rbx = value,
            Gpr::Rcx => self.gprs.rcx = value,
            Gpr::Rdx => self.gprs.rdx = value,
            Gpr::Rsi => self.gprs.rsi = value,
            Gpr::Rdi => self.gprs.rdi = value,
        }
    }

    fn rip(&self) -> u64 {
        self.vmcs.read(f::GUEST_RIP)
    }

    fn cpl(&self) -> u8 {
        // SS access rights bits 6:5 (DPL), which always equal the CPL
        // (Intel SDM Vol. 3C §25.4.1).
        ((self.vmcs.read(f::GUEST_SS_AR) >> 5) & 0b11) as u8
    }

    fn skip_instruction(&mut self) {
        let next = self
            .rip()
            .wrapping_add(self.vmcs.read(f::EXIT_INSTRUCTION_LEN));
        // A failed write leaves RIP unchanged; the guest would repeat the
        // instruction and exit again, which the exit counts would show.
        let _ = self.vmcs.write(f::GUEST_RIP, next);
    }
}

impl VcpuExt for VmxVcpu {
    fn write_efer(&mut self, value: u64) {
        // LMA is the processor's to set (with CR0.PG and LME); keep it.
        let lma = self.vmcs.read(f::GUEST_IA32_EFER) & EFER_LMA;
        let _ = self
            .vmcs
            .write(f::GUEST_IA32_EFER, (value & !EFER_LMA) | lma);
    }

    fn read_pat(&self) -> u64 {
        self.vmcs.read(f::GUEST_IA32_PAT)
    }

    fn write_pat(&mut self, value: u64) {
        // A failed write leaves the old PAT, which the next read shows.
        let _ = self.vmcs.write(f::GUEST_IA32_PAT, value);
    }

    fn read_efer(&self) -> u64 {
        self.vmcs.read(f::GUEST_IA32_EFER)
    }

    fn interface_id(&self) -> u32 {
        abi::cpuid::Backend::Vmx.id()
    }

    fn emulate_control_register_access(&mut self) -> Result<(), &'static str> {
        // Exit qualification (Intel SDM Vol. 3 Table 28-3): bits 3:0 the
        // register, 5:4 the access type (0 = MOV to CR), 11:8 the GPR.
        let q = self.vmcs.read(f::EXIT_QUALIFICATION);
        if (q >> 4) & 0b11 != 0 {
            return Err("only MOV to CR0/CR4 is emulated (CLTS, LMSW, reads are not)");
        }
        let value = self.gpr_by_index((q >> 8) & 0xf);
        match q & 0xf {
            0 => self.load_cr0(value),
            4 => self.load_cr4(value),
            _ => Err("unexpected control-register exit"),
        }
    }

    fn guest_cr4(&self) -> u64 {
        // Bits the hypervisor owns (the guest/host mask) read from the
        // shadow, the rest from the real guest CR4.
        let mask = self.vmcs.read(f::CR4_GUEST_HOST_MASK);
        (self.vmcs.read(f::GUEST_CR4) & !mask) | (self.vmcs.read(f::CR4_READ_SHADOW) & mask)
    }

    fn guest_features(&self) -> GuestFeatures {
        self.features
    }

    fn intercept_timer_writes(&mut self, intercept: bool) {
        for msr in [
            timer_policy::MSR_TIMER_INITIAL,
            timer_policy::MSR_TIMER_DIVIDE,
        ] {
            if intercept {
                self.msr_bitmap.intercept_msr_write(msr);
            } else {
                self.msr_bitmap.allow_msr_write(msr);
            }
        }
    }
}
