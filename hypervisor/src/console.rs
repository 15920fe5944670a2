//! The hypervisor's console (`docs/console.md`): COM1 behind a fair (ticket)
//! lock, fed by one line queue per core.
//!
//! - A partition's line ([`guest_line`]) goes into its own core's queue,
//!   which needs no lock, then that core writes one round (one line of each
//!   core's queue, round-robin) if the UART lock is free, and returns at once
//!   if it is not: no core ever waits for another's output inside a VM exit.
//!   The per-partition budget is applied by the caller (`partitions.rs`,
//!   `hypervisor::console_queue::GuestConsole`).
//! - The hypervisor's own lines ([`write_line`], `println!`) wait for the
//!   lock (the ticket lock serves waiters in order, and a waiting core makes
//!   every `try_lock` fail, so the queues' drain cannot starve them), write
//!   the calling core's queued lines first (its partition's lines stay in
//!   order with its end line), then the line itself. They are never dropped.
//! - [`drain_everything`] empties every queue (before the report);
//!   [`write_line_emergency`] bypasses all of it for exceptions and panics.

use crate::arch::x86_64::common::percpu;
use crate::arch::x86_64::common::serial::Serial;
use core::fmt::{self, Write};
use hypervisor::console_queue::{Drain, LineQueue, Priority, QUEUE_SLOTS};
use spin::mutex::TicketMutex;
use spin::Once;

/// The UART and the drain's round-robin state.
struct Uart {
    serial: Serial,
    drain: Drain,
}

static UART: TicketMutex<Option<Uart>> = TicketMutex::new(None);
static QUEUES: Once<alloc::vec::Vec<LineQueue>> = Once::new();

/// Initialises the UART. Called once, by the bootstrap core, first thing.
pub fn init() {
    *UART.lock() = Some(Uart {
        serial: Serial::com1(),
        drain: Drain::default(),
    });
}

/// Creates one line queue per core (`cores` of them), before any partition
/// runs. Until then every line is written directly.
pub fn init_queues(cores: usize) {
    QUEUES.call_once(|| (0..cores).map(|_| LineQueue::new(QUEUE_SLOTS)).collect());
}

fn queues() -> &'static [LineQueue] {
    QUEUES.get().map_or(&[], |q| q.as_slice())
}

fn queue_of(core: u32) -> Option<&'static LineQueue> {
    queues().get(core as usize)
}

/// Writes one of the hypervisor's own lines (the newline is added): waits
/// its turn for the UART, writes this core's queued lines, then the line.
pub fn write_line(args: fmt::Arguments<'_>) {
    let mut guard = UART.lock();
    if let Some(uart) = guard.as_mut() {
        if let Some(q) = percpu::try_current_index().and_then(queue_of) {
            let Uart { serial, drain } = uart;
            drain.all_of(q, |bytes| write_raw(serial, bytes));
        }
        // Writing to the UART cannot fail.
        let _ = uart.serial.write_fmt(args);
        let _ = uart.serial.write_str("\n");
    }
}

/// Queues a partition's line, `[name] text`, on `core`'s queue and writes a
/// round if the UART is free. `false` if the queue is full (the line is
/// dropped; the caller counts it). Never waits.
pub fn guest_line(core: u32, name: &str, text: &str) -> bool {
    let Some(q) = queue_of(core) else {
        write_line(format_args!("[{name}] {text}"));
        return true;
    };
    let queued = q.push(&["[", name, "] ", text], Priority::Guest);
    pump();
    queued
}

/// Queues one of the hypervisor's own lines from inside a VM exit on
/// `core`: it takes the queue's reserved slot, so it always fits (else it
/// is written directly, waiting for the UART).
pub fn notice(core: u32, text: &str) {
    match queue_of(core) {
        Some(q) if q.push(&[text], Priority::Hypervisor) => pump(),
        _ => write_line(format_args!("{text}")),
    }
}

/// Writes one round of queued lines if the UART lock is free; returns at
/// once otherwise (whoever holds it writes).
pub fn pump() {
    let qs = queues();
    if qs.iter().all(LineQueue::is_empty) {
        return;
    }
    if let Some(mut guard) = UART.try_lock() {
        if let Some(uart) = guard.as_mut() {
            let Uart { serial, drain } = uart;
            drain.round(qs, |bytes| write_raw(serial, bytes));
        }
    }
}

/// Writes one queued line and its line end.
fn write_raw(serial: &mut Serial, bytes: &[u8]) {
    for &b in bytes {
        serial.send(b);
    }
    serial.send(b'\r');
    serial.send(b'\n');
}

/// Writes every queued line of every core (waiting for the UART). Called
/// when no partition runs any more, before the report.
pub fn drain_everything() {
    let mut guard = UART.lock();
    if let Some(uart) = guard.as_mut() {
        let qs = queues();
        let Uart { serial, drain } = uart;
        drain.everything(qs, 2 * QUEUE_SLOTS, |bytes| write_raw(serial, bytes));
    }
}

/// Writes a line from a context that may have interrupted a holder of the
/// console lock (an exception or a panic): waits a bounded time for the
/// lock, then writes through a second handle to the UART rather than
/// deadlock. Interleaved bytes beat a silent hang. Queued lines stay queued.
pub fn write_line_emergency(args: fmt::Arguments<'_>) {
    for _ in 0..10_000_000u32 {
        if let Some(mut guard) = UART.try_lock() {
            if let Some(uart) = guard.as_mut() {
                let _ = uart.serial.write_fmt(args);
                let _ = uart.serial.write_str("\n");
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

/// Writes what is queued and waits until the UART has sent everything
/// (before the machine stops). Gives up after a bounded wait for the lock.
pub fn flush() {
    for _ in 0..10_000_000u32 {
        if let Some(mut guard) = UART.try_lock() {
            if let Some(uart) = guard.as_mut() {
                let Uart { serial, drain } = uart;
                drain.everything(queues(), 2 * QUEUE_SLOTS, |bytes| write_raw(serial, bytes));
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
