//! What happens when the hypervisor itself breaks: a CPU exception or a
//! panic is reported on the console with everything needed to debug it, and
//! the run ends with a failure status (never a silent triple fault).

use crate::arch::x86_64::common::percpu;
use crate::console;
use crate::run_end;
use abi::console::EXCEPTION;
use core::sync::atomic::{AtomicBool, Ordering};
use hypervisor::exception::ExceptionReport;

/// Set by the first fatal event; a second one (say, a fault while
/// reporting) only halts its core.
static DYING: AtomicBool = AtomicBool::new(false);

/// Reports an exception taken by the hypervisor and ends the run.
pub fn exception(report: &ExceptionReport) -> ! {
    console::write_line_emergency(format_args!("{EXCEPTION}{report}"));
    die("exception in the hypervisor")
}

/// Ends the run after a fatal event has been reported.
fn die(reason: &str) -> ! {
    if DYING.swap(true, Ordering::AcqRel) {
        crate::arch::x86_64::common::instr::halt_forever();
    }
    run_end::fail(format_args!("{reason}"))
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let cpu = percpu::try_current_index();
    match cpu {
        Some(cpu) => {
            console::write_line_emergency(format_args!("flotilla: panic on cpu {cpu}: {info}"))
        }
        None => {
            console::write_line_emergency(format_args!("flotilla: panic during bring-up: {info}"))
        }
    }
    die("panic in the hypervisor")
}
