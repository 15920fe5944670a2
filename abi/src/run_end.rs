//! How a run ends: the codes the hypervisor writes to QEMU's `isa-debug-exit`
//! device and the string it writes to the Bochs shutdown port.
//!
//! QEMU turns a value `v` written to the debug-exit port into the process exit
//! status `(v << 1) | 1`, so status 0 is impossible; Flotilla uses distinct
//! non-zero values for success and failure.

/// I/O port of QEMU's `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
pub const QEMU_DEBUG_EXIT_PORT: u16 = 0xf4;

/// Number of ports the `isa-debug-exit` device decodes from
/// [`QEMU_DEBUG_EXIT_PORT`] (its `iosize`).
pub const QEMU_DEBUG_EXIT_SIZE: u16 = 4;

/// Value written to the debug-exit port when the run succeeded.
pub const QEMU_SUCCESS_VALUE: u32 = 0x10;

/// Value written to the debug-exit port when the run failed.
pub const QEMU_FAILURE_VALUE: u32 = 0x11;

/// QEMU's process exit status for a value written to the debug-exit port.
pub const fn qemu_exit_status(value: u32) -> i32 {
    ((value << 1) | 1).cast_signed()
}

/// Bochs' shutdown port: writing [`BOCHS_SHUTDOWN_STRING`] to it ends the
/// emulator (with status 1 whatever happened, so judge by console markers).
pub const BOCHS_SHUTDOWN_PORT: u16 = 0x8900;

/// The string Bochs expects, byte by byte, on [`BOCHS_SHUTDOWN_PORT`].
pub const BOCHS_SHUTDOWN_STRING: &[u8] = b"Shutdown";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_statuses_are_distinct_and_non_zero() {
        let ok = qemu_exit_status(QEMU_SUCCESS_VALUE);
        let bad = qemu_exit_status(QEMU_FAILURE_VALUE);
        assert_eq!(ok, 33);
        assert_eq!(bad, 35);
        assert_ne!(ok, bad);
    }
}
