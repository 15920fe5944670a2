//! The legacy 8259 interrupt controllers. Firmware leaves them routing the
//! PIT's IRQ 0 to the bootstrap core on vector 8 (the double-fault vector),
//! which would land in whatever partition runs there. Nothing in Flotilla
//! uses them, so they are masked for good at boot.

use super::instr;

/// Masks every IRQ line of both PICs.
pub fn mask_all() {
    // SAFETY: ports 0x21 and 0xa1 are the data ports of the master and
    // slave 8259 on every PC; writing 0xff there (with no initialisation
    // sequence in progress) only sets the interrupt mask registers.
    unsafe {
        instr::outb(0x21, 0xff);
        instr::outb(0xa1, 0xff);
    }
}
