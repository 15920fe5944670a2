//! The hypervisor interface: detection through the CPUID leaves of
//! `abi::cpuid`, hypercalls (the backend's `abi::hypercall::Instruction`:
//! `vmmcall` on SVM, `vmcall` on VMX), and the console and exit paths of
//! bare mode (COM1 and QEMU's debug-exit).

use super::cpu::{self, inb, outb, outl};
use abi::cpuid::{self, Backend};
use abi::hypercall;
use abi::run_end::{QEMU_DEBUG_EXIT_PORT, QEMU_FAILURE_VALUE, QEMU_SUCCESS_VALUE};
use core::arch::asm;

/// How the kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Under Flotilla on AMD SVM: hypercalls with `vmmcall`.
    Svm,
    /// Under Flotilla on Intel VMX: hypercalls with `vmcall`.
    Vmx,
    /// No Flotilla hypervisor (debugging under QEMU): COM1 and debug-exit.
    Bare,
}

impl Mode {
    /// A word for the console.
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Svm => "flotilla/svm",
            Mode::Vmx => "flotilla/vmx",
            Mode::Bare => "bare",
        }
    }
}

static MODE: spin::Once<Mode> = spin::Once::new();

/// Detects the mode (once).
pub fn detect() -> Mode {
    *MODE.call_once(|| {
        let [max, b, c, d] = cpu::cpuid(cpuid::LEAF_SIGNATURE, 0);
        if !cpuid::is_signature([b, c, d]) || max < cpuid::LEAF_INTERFACE {
            return Mode::Bare;
        }
        match Backend::from_id(cpu::cpuid(cpuid::LEAF_INTERFACE, 0)[0]) {
            Some(Backend::Svm) => Mode::Svm,
            Some(Backend::Vmx) => Mode::Vmx,
            None => Mode::Bare,
        }
    })
}

/// The detected mode ([`Mode::Bare`] before detection).
pub fn mode() -> Mode {
    MODE.get().copied().unwrap_or(Mode::Bare)
}

/// Why a hypercall did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HypercallError {
    /// Bare mode: there is no hypervisor.
    NoHypervisor,
    /// The hypervisor's error.
    Refused(hypercall::Error),
    /// A negative value this kernel does not know.
    Other(i64),
}

/// Emits `backend`'s hypercall instruction from its bytes in `abi` (so the
/// opcode is written once) with the register convention of
/// `docs/hypercalls.md`; evaluates to `rax`.
macro_rules! hypercall_asm {
    ($backend:expr, $nr:expr, $a0:expr, $a1:expr, $a2:expr) => {{
        const BYTES: &[u8; 3] = $backend.hypercall().bytes();
        let ret: u64;
        asm!(
            ".byte {b0}, {b1}, {b2}",
            b0 = const BYTES[0], b1 = const BYTES[1], b2 = const BYTES[2],
            inlateout("rax") $nr => ret,
            inlateout("rdi") $a0 => _,
            inlateout("rsi") $a1 => _,
            inlateout("rdx") $a2 => _,
            lateout("rcx") _, lateout("r8") _, lateout("r9") _,
            lateout("r10") _, lateout("r11") _,
            options(nostack),
        );
        ret
    }};
}

/// Executes hypercall `nr` with up to three arguments.
pub fn call(nr: u64, a0: u64, a1: u64, a2: u64) -> Result<u64, HypercallError> {
    let ret = match mode() {
        Mode::Bare => return Err(HypercallError::NoHypervisor),
        // SAFETY: under Flotilla on SVM, VMMCALL exits to the hypervisor,
        // which only reads the caller's memory at the given pointers and
        // returns a value in rax. The registers the ABI does not promise
        // to keep are declared clobbered.
        Mode::Svm => unsafe { hypercall_asm!(Backend::Svm, nr, a0, a1, a2) },
        // SAFETY: as above, with VMCALL on VMX.
        Mode::Vmx => unsafe { hypercall_asm!(Backend::Vmx, nr, a0, a1, a2) },
    };
    if ret.cast_signed() < 0 {
        Err(hypercall::Error::from_rax(ret).map_or(
            HypercallError::Other(ret.cast_signed()),
            HypercallError::Refused,
        ))
    } else {
        Ok(ret)
    }
}

const COM1: u16 = abi::ports::HYPERVISOR_UART.first;
const LSR_THR_EMPTY: u8 = 1 << 5;

fn serial_byte(b: u8) {
    // SAFETY: bare mode only: COM1 belongs to this kernel; polling the line
    // status register and writing the data register only emit the byte.
    unsafe {
        for _ in 0..100_000 {
            if inb(COM1 + 5) & LSR_THR_EMPTY != 0 {
                break;
            }
        }
        outb(COM1, b);
    }
}

/// Prints one console line (no newline in `line`, at most 256 bytes):
/// `CONSOLE_WRITE` under the hypervisor, COM1 when bare.
pub fn console_line(line: &str) {
    match mode() {
        Mode::Bare => {
            for &b in line.as_bytes() {
                serial_byte(b);
            }
            serial_byte(b'\r');
            serial_byte(b'\n');
        }
        Mode::Svm | Mode::Vmx => {
            // Identity mapping: the virtual address is the guest-physical one.
            let _ = call(
                hypercall::CONSOLE_WRITE,
                line.as_ptr() as u64,
                line.len() as u64,
                0,
            );
        }
    }
}

/// Reports the workload's result (`key=value` words, cut at 512 bytes).
pub fn report_result(text: &str) -> Result<(), HypercallError> {
    // A limit beyond the address space cuts nothing.
    let len = text
        .len()
        .min(usize::try_from(hypercall::MAX_RESULT).unwrap_or(usize::MAX));
    call(
        hypercall::REPORT_RESULT,
        text.as_ptr() as u64,
        len as u64,
        0,
    )
    .map(|_| ())
}

/// Raises the IPI of channel `channel_id` at its peer.
pub fn send_channel_ipi(channel_id: u32) -> Result<(), HypercallError> {
    call(hypercall::SEND_IPI, u64::from(channel_id), 0, 0).map(|_| ())
}

/// Acknowledges `epoch` of group `group` (its layout index):
/// `MEMBERSHIP_ACK`; returns the group's current epoch.
pub fn membership_ack(group: u32, epoch: u64) -> Result<u64, HypercallError> {
    call(hypercall::MEMBERSHIP_ACK, u64::from(group), epoch, 0)
}

/// Ends the partition with `code`: `EXIT` under the hypervisor; bare, QEMU's
/// debug-exit device gets 0x10 for code 0 and 0x11 otherwise.
pub fn exit(code: u64) -> ! {
    cpu::disable_interrupts();
    match mode() {
        Mode::Svm | Mode::Vmx => {
            let _ = call(hypercall::EXIT, code, 0, 0);
        }
        Mode::Bare => {
            let value = if code == 0 {
                QEMU_SUCCESS_VALUE
            } else {
                QEMU_FAILURE_VALUE
            };
            // SAFETY: bare mode: the debug-exit port ends QEMU; elsewhere
            // an unclaimed port write does nothing.
            unsafe { outl(QEMU_DEBUG_EXIT_PORT, value) };
        }
    }
    cpu::halt_forever()
}
