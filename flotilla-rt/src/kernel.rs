//! The boot sequence after the machine layer is up: read the start info,
//! establish who this partition is (the Flotilla block, or the command line
//! when bare), set up the heap and the x2APIC timer, run the workload's
//! entry function ([`crate::entry!`]), report its result and exit.

use crate::arch::{self, apic, heap, hv, idt, mem::IdentityMap, Mode};
use crate::args::Args;
use crate::block::Block;
use crate::bootinfo::StartInfo;
use crate::exit_code::BAD_BOOT as BAD_BOOT_EXIT_CODE;
use crate::{Context, Entry, Report};
use abi::boot::CHANNEL_WINDOW_GPA;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

/// The program's name, set from its [`Entry`] first thing at boot.
static PROGRAM: spin::Once<&'static str> = spin::Once::new();

/// The program's name (its package name, from [`crate::entry!`]): the
/// prefix of the runtime's console lines.
pub fn program() -> &'static str {
    PROGRAM.get().copied().unwrap_or("flotilla-rt")
}
/// APIC timer initial count (divide by 16). Under QEMU (1 GHz APIC clock)
/// this is a tick every millisecond.
pub const TIMER_INITIAL_COUNT: u32 = 62_500;

/// Prints why booting cannot go on and exits with [`BAD_BOOT_EXIT_CODE`].
fn refuse(args: core::fmt::Arguments<'_>) -> ! {
    println!("{}: cannot boot: {args}", program());
    crate::console::flush();
    arch::exit(BAD_BOOT_EXIT_CODE)
}

/// Who this partition is and what it runs.
struct Identity {
    name: &'static str,
    partition_id: u32,
    cpu: u32,
    apic_id: u32,
    partition_count: u32,
    memory: u64,
    tsc_khz: u64,
    incarnation: u32,
    workload: &'static str,
    args: Args<'static>,
    block: Option<Block<'static>>,
}

fn identity(mode: Mode, si: &StartInfo<'static>) -> Identity {
    let (image_start, _) = arch::image_range();
    // Bare with a Flotilla block as module 0 (`-initrd block.bin`): use it,
    // so the block path can be tested without the hypervisor.
    let block_in_bare = si
        .module0
        .is_some_and(|m| m.bytes.starts_with(&abi::boot::BLOCK_MAGIC));
    if mode == Mode::Bare && !block_in_bare {
        let args = Args::new(si.cmdline);
        let Some(memory) = si.ram_end_containing(image_start) else {
            refuse(format_args!(
                "no RAM range holds the image at {image_start:#x} in the memory map"
            ))
        };
        return Identity {
            name: "bare",
            partition_id: 0,
            cpu: 0,
            apic_id: apic::apic_id(),
            partition_count: 1,
            memory: memory.min(CHANNEL_WINDOW_GPA),
            tsc_khz: 0,
            incarnation: 0,
            workload: args.str_or("workload", "hello"),
            args,
            block: None,
        };
    }
    let Some(module) = si.module0 else {
        refuse(format_args!("no Flotilla block (module 0 is missing)"))
    };
    let block = match Block::parse(module.bytes) {
        Ok(b) => b,
        Err(e) => refuse(format_args!("bad Flotilla block: {e}")),
    };
    if block.memory <= image_start || block.memory > CHANNEL_WINDOW_GPA {
        refuse(format_args!(
            "bad Flotilla block: memory size {:#x} does not hold the image",
            block.memory
        ));
    }
    Identity {
        name: block.name,
        partition_id: block.partition_id,
        cpu: block.cpu,
        apic_id: block.apic_id,
        partition_count: block.partition_count,
        memory: block.memory,
        tsc_khz: block.tsc_khz,
        incarnation: block.incarnation,
        workload: block.workload,
        args: Args::new(block.args),
        block: Some(block),
    }
}

/// The kernel proper, entered from `arch::start` with interrupts off.
pub fn main(entry: Entry, start_info_gpa: u64) -> ! {
    let program = *PROGRAM.call_once(|| entry.program);
    let mode = hv::mode();
    let si = match StartInfo::parse(&IdentityMap, start_info_gpa) {
        Ok(si) => si,
        Err(e) => refuse(format_args!("{e}")),
    };
    if let Err(e) = apic::ensure_x2apic(mode == Mode::Bare) {
        refuse(format_args!("x2APIC unavailable: {e:?}"));
    }
    let id = identity(mode, &si);

    let (image_start, image_end) = arch::image_range();
    let Some((heap_start, heap_end)) = heap::init(id.memory, &si.occupied()) else {
        refuse(format_args!(
            "memory {:#x} leaves no room for a heap after the image ({image_end:#x})",
            id.memory
        ))
    };

    crate::time::TSC_KHZ.store(id.tsc_khz, Ordering::Relaxed);
    apic::start_timer(TIMER_INITIAL_COUNT);
    arch::cpu::enable_interrupts();

    println!(
        "{program}: {} (partition {}) on core {} apic {}, {} MiB, {}, workload {}",
        id.name,
        id.partition_id,
        id.cpu,
        id.apic_id,
        id.memory >> 20,
        mode.describe(),
        id.workload
    );
    println!(
        "{program}: image {image_start:#x}..{image_end:#x} (stack {} KiB {}, #DF and #PF stacks {} KiB), heap {heap_start:#x}..{heap_end:#x}",
        arch::STACK_SIZE / 1024,
        if arch::stack_guarded() {
            "with a guard page"
        } else {
            "WITHOUT a guard page"
        },
        arch::FAULT_STACK_SIZE / 1024
    );

    let channels: Vec<_> = id.block.map(|b| b.channels().collect()).unwrap_or_default();
    let mut groups = Vec::new();
    for (index, info) in id.block.iter().flat_map(|b| b.groups()).enumerate() {
        match crate::context::Group::new(index, info) {
            Some(g) => groups.push(g),
            None => refuse(format_args!("group record {index}: status page misplaced")),
        }
    }
    let mut ctx = Context {
        name: id.name,
        partition_id: id.partition_id,
        cpu: id.cpu,
        apic_id: id.apic_id,
        partition_count: id.partition_count,
        memory: id.memory,
        tsc_khz: id.tsc_khz,
        incarnation: id.incarnation,
        mode,
        workload: id.workload,
        args: id.args,
        channels,
        groups,
        taken: 0,
    };
    let code = match (entry.main)(&mut ctx) {
        Ok(outcome) => {
            if let Some(result) = outcome.report {
                report(mode, &result);
            }
            outcome.code
        }
        Err(failure) => {
            println!("{}", failure.message);
            failure.code
        }
    };
    println!(
        "{program}: exit {code} (ticks {}, ipis {})",
        idt::TICKS.load(Ordering::Relaxed),
        idt::IPIS.load(Ordering::Relaxed)
    );
    crate::console::flush();
    // Under a hypervisor the timer is stopped for the partition when it
    // ends, and a write to a periodic timer's count exits (the minimum
    // period, `hypervisor/src/timer_policy.rs`): stopping it here would
    // cost an exit outside the budget. Bare metal stops it itself.
    if mode == Mode::Bare {
        apic::stop_timer();
    }
    arch::exit(code)
}

/// Reports `result`: `REPORT_RESULT` under the hypervisor, a `result:`
/// line when bare.
fn report(mode: Mode, result: &Report) {
    if mode == Mode::Bare {
        println!("result: {result}");
    } else if let Err(e) = hv::report_result(&result.render()) {
        println!("{}: REPORT_RESULT failed: {e:?}", program());
    }
}
