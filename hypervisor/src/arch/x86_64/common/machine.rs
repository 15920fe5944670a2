//! Ending a run: the emulators' exit devices, or halting on hardware.

use super::instr;
use abi::run_end::{BOCHS_SHUTDOWN_PORT, BOCHS_SHUTDOWN_STRING, QEMU_DEBUG_EXIT_PORT};

/// Writes `value` to QEMU's `isa-debug-exit` port; QEMU exits at once.
pub fn qemu_debug_exit(value: u32) {
    // SAFETY: the tools start QEMU with isa-debug-exit at this port and say
    // so on the command line (`flotilla.exit=qemu`); the write ends the VM.
    unsafe { instr::outl(QEMU_DEBUG_EXIT_PORT, value) };
}

/// Writes the shutdown string to the Bochs port; Bochs exits.
pub fn bochs_shutdown() {
    for &b in BOCHS_SHUTDOWN_STRING {
        // SAFETY: the tools start Bochs and say so on the command line
        // (`flotilla.exit=bochs`); this port is Bochs' shutdown port.
        unsafe { instr::outb(BOCHS_SHUTDOWN_PORT, b) };
    }
}
