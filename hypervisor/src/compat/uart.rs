//! The virtual UART at COM1 ([`abi::compat::VIRT_UART`]): the registers of
//! a 16450 (no FIFO) as Linux's 8250 driver probes and drives them. Output
//! is instant (LSR always "transmitter empty"), nothing is received, no
//! interrupt is raised (IIR shows THRE pending while enabled, like the
//! chip). Bytes become console lines without control characters.

use alloc::string::String;
use alloc::vec::Vec;

use abi::regs::uart::*;

/// The longest console line (the `CONSOLE_WRITE` hypercall's); a longer
/// one is cut there.
use abi::hypercall::MAX_CONSOLE_LINE;

/// The UART's registers and the line being written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uart {
    ier: u8,
    lcr: u8,
    mcr: u8,
    scratch: u8,
    divisor: [u8; 2],
    /// A transmitter-empty interrupt is pending (cleared by reading IIR).
    thri_pending: bool,
    line: Vec<u8>,
}

impl Uart {
    /// A read of register `offset` (0–7).
    pub fn read(&mut self, offset: u16) -> u8 {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            DATA if dlab => self.divisor[0],
            IER if dlab => self.divisor[1],
            DATA => 0,
            IER => self.ier,
            IIR if self.ier & IER_THRI != 0 && self.thri_pending => {
                self.thri_pending = false;
                IIR_THRI
            }
            IIR => IIR_NONE,
            LCR => self.lcr,
            MCR => self.mcr,
            LSR => LSR_TEMT_THRE,
            MSR if self.mcr & MCR_LOOP != 0 => loopback_status(self.mcr),
            MSR => MSR_DCD_DSR_CTS,
            _ => self.scratch,
        }
    }

    /// A write of `value` to register `offset` (0–7); returns a finished
    /// console line, if the write ended one.
    pub fn write(&mut self, offset: u16, value: u8) -> Option<String> {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            DATA if dlab => self.divisor[0] = value,
            IER if dlab => self.divisor[1] = value,
            DATA => {
                self.thri_pending = true;
                // In loopback the byte goes to the (absent) receiver only.
                return (self.mcr & MCR_LOOP == 0).then(|| self.push(value))?;
            }
            IER => {
                self.thri_pending |= value & IER_THRI != 0 && self.ier & IER_THRI == 0;
                self.ier = value & 0x0f;
            }
            LCR => self.lcr = value,
            MCR => self.mcr = value & 0x1f,
            SCR => self.scratch = value,
            _ => {} // FCR (no FIFO), LSR and MSR are read-only
        }
        None
    }

    /// Adds a transmitted byte to the line.
    fn push(&mut self, byte: u8) -> Option<String> {
        match byte {
            b'\n' => return Some(self.take_line()),
            b'\t' | 0x20..=0x7e | 0x80.. => self.line.push(byte),
            _ => {} // other control characters (CR, escapes) are left out
        }
        (u64::try_from(self.line.len()).unwrap_or(u64::MAX) >= MAX_CONSOLE_LINE)
            .then(|| self.take_line())
    }

    /// The line written so far (lossy UTF-8), now emptied.
    pub fn take_line(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        line
    }
}

/// The modem status in loopback: DTR → DSR, RTS → CTS, OUT1 → RI,
/// OUT2 → DCD (data sheet, MCR bit 4).
fn loopback_status(mcr: u8) -> u8 {
    let bit = |m: u8, s: u8| if mcr & m != 0 { s } else { 0 };
    bit(0x01, 0x20) | bit(0x02, 0x10) | bit(0x04, 0x40) | bit(0x08, 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;
    const MAX_LINE: usize = 256;

    fn write_str(uart: &mut Uart, s: &[u8]) -> Vec<String> {
        s.iter().filter_map(|b| uart.write(0, *b)).collect()
    }

    #[test]
    fn linux_8250_probe_finds_a_16450() {
        let mut u = Uart::default();
        // Scratch register test.
        u.write(7, 0xa5);
        assert_eq!(u.read(7), 0xa5);
        // IER test: writes 0, reads 0; writes 0x0f, reads 0x0f.
        u.write(1, 0);
        assert_eq!(u.read(1) & 0x0f, 0);
        u.write(1, 0x0f);
        assert_eq!(u.read(1) & 0x0f, 0x0f);
        u.write(1, 0);
        // Loopback test: MCR = LOOP | RTS | OUT2 -> MSR status CTS | DCD.
        u.write(4, 0x1a);
        assert_eq!(u.read(6) & 0xf0, 0x90);
        u.write(4, 0x03);
        assert_eq!(u.read(6), 0xb0, "connected outside loopback");
        // No FIFO: the FIFO-enable bits of IIR stay clear.
        u.write(2, 0xc7);
        assert_eq!(u.read(2), 0x01);
        // Divisor latch behind DLAB, data registers unaffected.
        u.write(3, 0x80);
        u.write(0, 0x01);
        u.write(1, 0x00);
        assert_eq!((u.read(0), u.read(1)), (0x01, 0x00));
        u.write(3, 0x03);
        assert_eq!((u.read(3), u.read(1)), (0x03, 0));
        assert_eq!(u.read(5), 0x60, "always ready to transmit");
        assert_eq!(u.read(0), 0, "nothing received");
    }

    #[test]
    fn thre_interrupt_identification_follows_the_chip() {
        let mut u = Uart::default();
        assert_eq!(u.read(2), 0x01, "no interrupt enabled");
        u.write(1, 0x02);
        assert_eq!(u.read(2), 0x02, "enabling THRI with THR empty raises it");
        assert_eq!(u.read(2), 0x01, "reading IIR cleared it");
        u.write(1, 0);
        u.write(1, 0x02);
        assert_eq!(u.read(2), 0x02, "re-asserted after re-enabling");
        u.write(0, b'x');
        assert_eq!(u.read(2), 0x02, "a transmitted byte empties THR again");
        u.write(1, 0);
        assert_eq!(u.read(2), 0x01);
    }

    #[test]
    fn bytes_become_lines_without_control_characters() {
        assert_eq!(MAX_CONSOLE_LINE, 256);
        let mut u = Uart::default();
        assert_eq!(
            write_str(&mut u, b"[    0.000000] Linux\r\n\x1b[1mbold\x1b[0m\tx\n"),
            vec!["[    0.000000] Linux", "[1mbold[0m\tx"]
        );
        write_str(&mut u, b"tail");
        assert_eq!(u.take_line(), "tail");
        // A long line is cut at the limit.
        let lines = write_str(&mut u, &[b'a'; MAX_LINE + 3]);
        assert_eq!(lines, vec!["a".repeat(MAX_LINE)]);
        assert_eq!(u.take_line(), "aaa");
        // Invalid UTF-8 is replaced, never passed on.
        assert_eq!(write_str(&mut u, b"\xff\n"), vec!["\u{fffd}"]);
        // Loopback bytes are not printed.
        u.write(4, 0x10);
        assert!(write_str(&mut u, b"x\n").is_empty());
        assert_eq!(u.take_line(), "");
    }
}
