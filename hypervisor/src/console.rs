//! The hypervisor's console: COM1 behind one lock, so that each line is
//! written whole even when every core prints at once.

use crate::arch::x86_64::common::serial::Serial;
use core::fmt::{self, Write};
use spin::Mutex;

static CONSOLE: Mutex<Option<Serial>> = Mutex::new(None);

/// Initialises the UART. Called once, by the bootstrap core, first thing.
pub fn init() {
    *CONSOLE.lock() = Some(Serial::com1());
}

/// Writes one formatted line (the newline is added).
pub fn write_line(args: fmt::Arguments<'_>) {
    let mut guard = CONSOLE.lock();
    if let Some(serial) = guard.as_mut() {
        // Writing to the UART cannot fail.
        let _ = serial.write_fmt(args);
        let _ = serial.write_str("\n");
    }
}

/// Writes a line from a context that may have interrupted a holder of the
/// console lock (an exception or a panic): waits a bounded time for the
/// lock, then writes through a second handle to the UART rather than
/// deadlock. Interleaved bytes beat a silent hang.
pub fn write_line_emergency(args: fmt::Arguments<'_>) {
    for _ in 0..10_000_000u32 {
        if let Some(mut guard) = CONSOLE.try_lock() {
            if let Some(serial) = guard.as_mut() {
                let _ = serial.write_fmt(args);
                let _ = serial.write_str("\n");
                return;
            }
            break;
        }
        core::hint::spin_loop();
    }
    let mut serial = Serial::com1_uninitialised();
    let _ = serial.write_fmt(args);
    let _ = serial.write_str("\n");
}

/// Waits until the UART has sent everything (before the machine stops).
pub fn flush() {
    for _ in 0..10_000_000u32 {
        if let Some(mut guard) = CONSOLE.try_lock() {
            if let Some(serial) = guard.as_mut() {
                serial.flush();
            }
            return;
        }
        core::hint::spin_loop();
    }
}

/// Prints a line on the hypervisor console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::write_line(format_args!($($arg)*))
    };
}
