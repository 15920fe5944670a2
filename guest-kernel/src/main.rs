//! Flotilla's minimal per-core guest kernel.
//!
//! It boots as a PVH guest (`docs/boot-protocol.md`), builds its own page
//! tables, GDT and IDT, reads its identity and workload from the Flotilla
//! block (or, bare under QEMU, from the command line), talks to the
//! hypervisor by hypercalls (`docs/hypercalls.md`), ticks its x2APIC timer,
//! runs one workload and exits with its code.
//!
//! Module map. Pure, host-tested: [`args`] (workload arguments),
//! [`block`] (Flotilla block validation), [`bootinfo`] (PVH start info),
//! [`linebuf`] (console lines), [`primes`] (the `compute` workload's
//! sieve), [`exchange`] (the channel workloads' message loops, over the
//! `channels` crate), [`stats`] (percentiles). Bare metal only: `arch` (the only `unsafe`: boot, tables,
//! interrupts, APIC, hypercalls, heap), `console`, `kernel` (the boot
//! sequence), `workloads`.
//!
//! Exit codes: 0 success, 2 bad arguments, 3 a rogue attack was not
//! stopped, 4 unknown workload, 5 a channel workload had no channel left
//! to do its job on (none given, or every one failed to open or broke; a
//! workload with some broken channels and some good ones exits 0 and says
//! `broken_channels=<k>` in its result), 253 panic, 254 bad boot
//! information, 255 unexpected exception.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]
// On the host only the pure modules' tests are built; the rest is unused.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

extern crate alloc;

mod args;
mod block;
mod bootinfo;
mod exchange;
mod linebuf;
mod primes;
mod stats;

#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod arch;
#[cfg(target_os = "none")]
#[macro_use]
mod console;
#[cfg(target_os = "none")]
mod kernel;
#[cfg(target_os = "none")]
mod workloads;

/// Exit code of a panic.
#[cfg(target_os = "none")]
const PANIC_EXIT_CODE: u64 = 253;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::emergency(format_args!("guest-kernel: panic: {info}"));
    arch::exit(PANIC_EXIT_CODE)
}

#[cfg(not(target_os = "none"))]
fn main() {}
