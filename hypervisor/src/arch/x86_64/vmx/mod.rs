//! Intel VMX with EPT: entering VMX operation on a core and the
//! [`vcpu::VmxVcpu`] backend.

pub mod entry;
pub mod vcpu;
pub mod vmcs;

use crate::arch::x86_64::common::frames::alloc_pages;
use crate::arch::x86_64::common::{cpu, instr};
use core::arch::asm;
use core::fmt;
use hypervisor::nested_paging::EptFormat;
use hypervisor::vcpu::{GuestEntry, VirtBackend};
use hypervisor::virt_caps::{VirtSupport, VmxControls};
use hypervisor::vmx::regs::{FEATURE_CONTROL_LOCK, FEATURE_CONTROL_VMX_OUTSIDE_SMX, REVISION_MASK};
use x86::controlregs::Cr4;
use x86::msr::{
    IA32_FEATURE_CONTROL, IA32_VMX_BASIC, IA32_VMX_CR0_FIXED0, IA32_VMX_CR0_FIXED1,
    IA32_VMX_CR4_FIXED0, IA32_VMX_CR4_FIXED1,
};

/// Why VMX could not be set up on a core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// This core's capability MSRs lack a control the backend needs.
    Controls(&'static str),
    /// Firmware locked IA32_FEATURE_CONTROL with VMX off.
    DisabledByFirmware,
    /// No frame for the named structure.
    OutOfMemory(&'static str),
    /// VMXON failed.
    VmxonFailed,
    /// VMCLEAR or VMPTRLD failed.
    VmcsLoad,
    /// A VMWRITE failed.
    VmcsWrite(vmcs::VmxFail),
    /// The initial CR0 or CR4 is not allowed in VMX operation.
    ControlRegister(&'static str),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Controls(why) => write!(f, "this core cannot host it: {why}"),
            SetupError::OutOfMemory(what) => write!(f, "out of memory for the {what}"),
            SetupError::ControlRegister(why) => write!(f, "initial state refused: {why}"),
            SetupError::VmcsWrite(e) => write!(
                f,
                "VMWRITE of field {:#x} failed (VM-instruction error {})",
                e.field,
                e.error.cast_signed()
            ),
            // DisabledByFirmware, VmxonFailed, VmcsLoad: as documented.
            other => write!(f, "{other:?}"),
        }
    }
}

/// The VMX backend of one core: the VM-execution, exit and entry controls
/// computed for it when it is enabled, and the last VPID it gave a vCPU.
#[derive(Debug, Default)]
pub struct Vmx {
    controls: Option<VmxControls>,
    vpid: u16,
}

impl VirtBackend for Vmx {
    const NAME: &'static str = "vmx";
    type Tables = EptFormat;
    type Vcpu = vcpu::VmxVcpu;
    type Error = SetupError;

    /// Enters VMX operation on the calling core: this core's own controls
    /// (decided by the same function as its boot line), feature control,
    /// the CR0/CR4 fixed bits, CR4.VMXE, and VMXON with a fresh region.
    fn enable(&mut self) -> Result<(), SetupError> {
        let virt = VirtSupport::decode(&cpu::read_virt_info());
        self.controls = Some(virt.vmx_controls().map_err(SetupError::Controls)?);
        // SAFETY: every MSR read here exists on CPUs with VMX; the writes
        // set the feature-control lock only when firmware left it unlocked
        // (as the SDM §24.7 prescribes) and adjust CR0/CR4 to the values VMX
        // operation requires (NE, VMXE), which the hypervisor itself is fine
        // with.
        unsafe {
            let fc = instr::rdmsr(IA32_FEATURE_CONTROL);
            if fc & FEATURE_CONTROL_LOCK == 0 {
                let unlocked = fc | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX;
                instr::wrmsr(IA32_FEATURE_CONTROL, unlocked);
            } else if fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX == 0 {
                return Err(SetupError::DisabledByFirmware);
            }
            let cr0 = (read_cr0() | instr::rdmsr(IA32_VMX_CR0_FIXED0))
                & instr::rdmsr(IA32_VMX_CR0_FIXED1);
            let vmxe = Cr4::CR4_ENABLE_VMX.bits() as u64;
            let cr4 = (read_cr4() | vmxe | instr::rdmsr(IA32_VMX_CR4_FIXED0))
                & instr::rdmsr(IA32_VMX_CR4_FIXED1);
            asm!("mov cr0, {}", in(reg) cr0, options(nostack));
            asm!("mov cr4, {}", in(reg) cr4, options(nostack));
        }
        let region = alloc_pages(1).ok_or(SetupError::OutOfMemory("VMXON region"))?;
        // SAFETY: the frame was just allocated for the VMXON region.
        unsafe { (region as *mut u32).write_volatile(revision()) };
        let failed: u8;
        // SAFETY: CR0/CR4 satisfy the fixed bits, feature control allows
        // VMX, and the operand holds the physical address of a 4 KiB-aligned
        // region with the revision identifier, owned by this core for the
        // whole run.
        unsafe {
            asm!("vmxon qword ptr [{}]", "setna {}", in(reg) &region, out(reg_byte) failed, options(nostack));
        }
        if failed != 0 {
            return Err(SetupError::VmxonFailed);
        }
        Ok(())
    }

    fn create(
        &mut self,
        entry: &GuestEntry,
        ept_root: u64,
        ports: &[(u16, u16)],
    ) -> Result<vcpu::VmxVcpu, SetupError> {
        let controls = self
            .controls
            .ok_or(SetupError::Controls("VMX not enabled"))?;
        // Each incarnation its own VPID (1, 2, ...), never reused on this
        // core: no translation cached for an earlier one can serve it, so
        // no INVVPID is needed (Intel SDM Vol. 3C §29.1).
        self.vpid = self
            .vpid
            .checked_add(1)
            .ok_or(SetupError::Controls("VPIDs used up"))?;
        vcpu::VmxVcpu::new(entry, ept_root, ports, &controls, self.vpid)
    }
}

/// The VMCS revision identifier of this CPU.
pub fn revision() -> u32 {
    // SAFETY: IA32_VMX_BASIC exists on every CPU with VMX (checked by the
    // caller before choosing this backend).
    (unsafe { instr::rdmsr(IA32_VMX_BASIC) } & REVISION_MASK) as u32
}

/// Reads CR0 (all of its bits are flags `x86::controlregs::Cr0` knows).
pub fn read_cr0() -> u64 {
    // SAFETY: reading CR0 has no side effects at CPL 0.
    unsafe { x86::controlregs::cr0() }.bits() as u64
}

/// Reads CR4. By hand: `x86::controlregs::cr4` drops the bits its `Cr4`
/// does not know (CET, PKS, ...), which would lose them in the VMCS host
/// state.
pub fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects at CPL 0.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}
