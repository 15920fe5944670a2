//! Ending the run: the final console marker, then the exit device the boot
//! command line names (`flotilla.exit=qemu|bochs|halt`).

use crate::arch::x86_64::common::{instr, machine};
use crate::console;
use abi::cmdline::ExitMethod;
use abi::console::{RUN_FAILED, RUN_SUCCEEDED};
use abi::run_end::{QEMU_FAILURE_VALUE, QEMU_SUCCESS_VALUE};
use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

const HALT: u8 = 0;
const QEMU: u8 = 1;
const BOCHS: u8 = 2;

/// The exit method, set once from the command line (halt until then).
static METHOD: AtomicU8 = AtomicU8::new(HALT);

/// Records how the run must end.
pub fn set_method(method: ExitMethod) {
    let value = match method {
        ExitMethod::Halt => HALT,
        ExitMethod::Qemu => QEMU,
        ExitMethod::Bochs => BOCHS,
    };
    METHOD.store(value, Ordering::Release);
}

fn stop(success: bool) -> ! {
    console::flush();
    match METHOD.load(Ordering::Acquire) {
        QEMU => machine::qemu_debug_exit(if success {
            QEMU_SUCCESS_VALUE
        } else {
            QEMU_FAILURE_VALUE
        }),
        BOCHS => machine::bochs_shutdown(),
        _ => {}
    }
    instr::halt_forever()
}

/// Ends a successful run.
pub fn succeed() -> ! {
    console::write_line(format_args!("{RUN_SUCCEEDED}"));
    stop(true)
}

/// Ends a failed run, saying why.
pub fn fail(reason: fmt::Arguments<'_>) -> ! {
    console::write_line_emergency(format_args!("{RUN_FAILED}{reason}"));
    stop(false)
}
