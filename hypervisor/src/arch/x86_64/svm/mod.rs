//! AMD SVM with nested paging: enabling SVM on a core and the
//! [`vcpu::SvmVcpu`] backend.

pub mod entry;
pub mod vcpu;
pub mod vmcb;

use crate::arch::x86_64::common::frames::alloc_pages;
use crate::arch::x86_64::common::instr;
use crate::arch::x86_64::common::region::RamReader;
use abi::regs::amd_msr::VM_HSAVE_PA;
use abi::regs::efer::{NXE as EFER_NXE, SVME as EFER_SVME};
use core::fmt;
use hypervisor::nested_paging::NptFormat;
use hypervisor::vcpu::{GuestEntry, VirtBackend};
use x86::msr::IA32_EFER;

/// Why SVM could not be set up on a core (whether the core can host
/// partitions at all was decided before, by
/// [`hypervisor::virt_caps::VirtSupport::usable`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// No frame for the named structure.
    OutOfMemory(&'static str),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SetupError::OutOfMemory(what) = self;
        write!(f, "out of memory for the {what}")
    }
}

/// The SVM backend of one core.
#[derive(Debug)]
pub struct Svm {
    /// Next-RIP save is available.
    pub nrip_save: bool,
    /// The partition's RAM, for decoding instruction lengths without nRIP.
    pub ram: RamReader,
}

impl VirtBackend for Svm {
    const NAME: &'static str = "svm";
    type Tables = NptFormat;
    type Vcpu = vcpu::SvmVcpu;
    type Error = SetupError;

    /// Enables SVM on the calling core: EFER.SVME, EFER.NXE (the nested
    /// page tables use the NX bit, which is reserved — a fault — without
    /// it) and a host save area.
    fn enable(&mut self) -> Result<(), SetupError> {
        let hsave = alloc_pages(1).ok_or(SetupError::OutOfMemory("host save area"))?;
        // SAFETY: the caller checked CPUID for SVM (and that firmware did
        // not disable it) before choosing this backend; EFER.SVME only
        // enables the SVM instructions, EFER.NXE only gives the NX bit
        // meaning (every CPU with SVM has NX), and VM_HSAVE_PA gets a frame
        // owned by this core for the rest of the run.
        unsafe {
            instr::wrmsr(IA32_EFER, instr::rdmsr(IA32_EFER) | EFER_SVME | EFER_NXE);
            instr::wrmsr(VM_HSAVE_PA, hsave);
        }
        Ok(())
    }

    fn create(
        &mut self,
        entry: &GuestEntry,
        npt_root: u64,
        ports: &[(u16, u16)],
    ) -> Result<vcpu::SvmVcpu, SetupError> {
        vcpu::SvmVcpu::new(entry, npt_root, ports, self.nrip_save, self.ram)
    }
}
