//! The kernel console: `print!`/`println!` collect text into lines
//! ([`LineBuf`]) and each complete line goes out as one `CONSOLE_WRITE`
//! hypercall (COM1 when bare).
//!
//! One lock guards the pending line. Interrupt handlers never print; the
//! exception path uses [`emergency`], which takes no lock, so a fault in
//! the middle of a `println!` is still reported.

use crate::arch::hv;
use crate::linebuf::LineBuf;
use core::fmt::{self, Write};
use spin::Mutex;

static CONSOLE: Mutex<LineBuf> = Mutex::new(LineBuf::new());

struct Writer<'a>(&'a mut LineBuf);

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.push_str(s, &mut hv::console_line);
        Ok(())
    }
}

/// Formats `args` onto the console (used by the macros).
pub fn print(args: fmt::Arguments<'_>) {
    let mut buf = CONSOLE.lock();
    let _ = Writer(&mut buf).write_fmt(args);
}

/// Sends out a pending partial line.
pub fn flush() {
    CONSOLE.lock().flush(&mut hv::console_line);
}

/// Prints one message without taking the console lock (exception and panic
/// paths). A partial line pending in the console is sent first if the lock
/// is free.
pub fn emergency(args: fmt::Arguments<'_>) {
    if let Some(mut pending) = CONSOLE.try_lock() {
        pending.flush(&mut hv::console_line);
    }
    let mut buf = LineBuf::new();
    let _ = Writer(&mut buf).write_fmt(args);
    buf.flush(&mut hv::console_line);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => {{
        $crate::console::print(format_args!($($arg)*));
        $crate::console::print(format_args!("\n"));
    }};
}
