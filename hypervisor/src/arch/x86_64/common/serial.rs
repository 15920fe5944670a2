//! The COM1 UART (16550) used as the hypervisor's console.

use super::instr;
use uart_16550::SerialPort;

/// COM1's base I/O port: the first of the platform-owned UART ports.
pub const COM1: u16 = abi::ports::HYPERVISOR_UART.first;

/// The console UART. Owned by the console lock in `crate::console`.
#[derive(Debug)]
pub struct Serial(SerialPort);

impl Serial {
    /// Initialises COM1 (115200 8N1, FIFOs on).
    pub fn com1() -> Serial {
        // SAFETY: COM1 is the standard UART at 0x3F8 on every PC platform
        // Flotilla supports; the console lock makes this its only user.
        let mut port = unsafe { SerialPort::new(COM1) };
        port.init();
        Serial(port)
    }

    /// A second handle to COM1 that skips initialisation, for emergency
    /// output while the console lock is held by an interrupted context.
    pub fn com1_uninitialised() -> Serial {
        // SAFETY: COM1 was initialised by `com1` at boot; writing bytes
        // through a second handle can only interleave output.
        Serial(unsafe { SerialPort::new(COM1) })
    }

    /// Writes one byte.
    pub fn send(&mut self, byte: u8) {
        self.0.send(byte);
    }

    /// Waits until the transmitter has sent every byte (line status bit 6),
    /// so a shutdown right after does not lose the end of the console.
    pub fn flush(&mut self) {
        for _ in 0..1_000_000 {
            // SAFETY: reading the line status register has no side effect.
            if unsafe { instr::inb(COM1 + 5) } & 0x40 != 0 {
                return;
            }
            core::hint::spin_loop();
        }
    }
}

impl core::fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.send(b'\r');
            }
            self.send(byte);
        }
        Ok(())
    }
}
