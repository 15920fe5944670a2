//! The legacy 8259 PICs, bare mode only: firmware leaves them delivering
//! the PIT's IRQ 0 on vector 8, which would look like a double fault. They
//! are moved to [`LEGACY_VECTOR_BASE`]`..+16` (so a spurious IRQ 7/15 cannot
//! hit an exception vector) and fully masked. Under the hypervisor the
//! ports belong to no partition and are not touched.

use super::cpu::outb;

/// First vector of the remapped PICs (0xE0..0xF0, ignored by the IDT).
pub const LEGACY_VECTOR_BASE: u8 = 0xe0;

const PIC1_CMD: u16 = 0x20;
const PIC1_DATA: u16 = 0x21;
const PIC2_CMD: u16 = 0xa0;
const PIC2_DATA: u16 = 0xa1;

/// Remaps and masks both PICs. Bare mode only, interrupts off.
pub fn disable() {
    // SAFETY: bare mode: the PICs belong to this kernel; the standard
    // initialisation sequence (ICW1..ICW4) followed by a full mask only
    // changes which vectors they would use and silences them.
    unsafe {
        outb(PIC1_CMD, 0x11); // ICW1: init, ICW4 follows
        outb(PIC2_CMD, 0x11);
        outb(PIC1_DATA, LEGACY_VECTOR_BASE); // ICW2: vector base
        outb(PIC2_DATA, LEGACY_VECTOR_BASE + 8);
        outb(PIC1_DATA, 0x04); // ICW3: slave on IRQ 2
        outb(PIC2_DATA, 0x02);
        outb(PIC1_DATA, 0x01); // ICW4: 8086 mode
        outb(PIC2_DATA, 0x01);
        outb(PIC1_DATA, 0xff); // mask everything
        outb(PIC2_DATA, 0xff);
    }
}
