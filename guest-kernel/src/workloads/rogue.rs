//! `rogue`: a hostile guest. Performs the one forbidden action chosen by
//! `attack`; the hypervisor must stop the partition there. If it is still
//! running afterwards (bare mode, or containment failed), it says so and
//! exits with [`NOT_STOPPED_EXIT_CODE`].

use super::{Context, Failure, Outcome, BAD_ARGS_EXIT_CODE};
use crate::arch::apic::{self, Delivery};
use crate::arch::{attack, cpu, Mode};
use crate::block::non_peer_apic_id;
use alloc::format;
use alloc::vec::Vec;

/// Exit code when the attack was not stopped.
pub const NOT_STOPPED_EXIT_CODE: u64 = 3;
/// The xAPIC MMIO page, which no partition is granted.
const XAPIC_MMIO: u64 = 0xfee0_0000;
/// Offset of the task-priority register in it (a harmless target).
const XAPIC_TPR: u64 = 0x80;
/// Far beyond any machine's RAM this runs on (the map ends at 8 GiB).
const FAR_ABOVE: u64 = 6 << 30;
/// The hypervisor's UART.
const HYPERVISOR_UART: u16 = 0x3f8;
/// x2APIC timer and error LVT MSRs.
const X2APIC_LVT_TIMER: u32 = 0x832;
const X2APIC_LVT_ERROR: u32 = 0x837;
/// Vector of the non-peer fixed IPI.
const IPI_VECTOR: u8 = 0x40;

pub fn run(ctx: &Context<'_>) -> Result<Outcome, Failure> {
    let attack = ctx.args.str_or("attack", "");
    let peers: Vec<u32> = ctx.channels.iter().map(|c| c.peer_apic_id).collect();
    let target = non_peer_apic_id(ctx.apic_id, &peers, ctx.partition_count);
    println!("rogue: attack {attack}");
    crate::console::flush();
    match attack {
        "write-outside" => {
            attack::write_beyond(ctx.memory, ctx.memory, 0x0bad_c0de);
        }
        "read-outside" => {
            if let Some(v) = attack::read_beyond(FAR_ABOVE, ctx.memory) {
                println!("rogue: read {v:#x} at {FAR_ABOVE:#x}");
            }
        }
        "write-apic-mmio" => {
            attack::write_beyond(XAPIC_MMIO + XAPIC_TPR, ctx.memory, 0);
        }
        "ipi-non-peer" => {
            println!("rogue: fixed IPI to apic {target}");
            apic::send_ipi(target, Delivery::Fixed(IPI_VECTOR));
        }
        "init-non-peer" => {
            println!("rogue: INIT to apic {target}");
            apic::send_ipi(target, Delivery::Init);
        }
        "port-denied" => attack::port_write(HYPERVISOR_UART, b'!'),
        "apic-base" => attack::rewrite_apic_base(),
        "vmrun" => {
            let amd = match ctx.mode {
                Mode::Svm => true,
                Mode::Vmx => false,
                Mode::Bare => cpu::is_amd(),
            };
            let (image_start, _) = crate::arch::image_range();
            attack::virtualization_instruction(amd, image_start);
        }
        "triple-fault" => attack::triple_fault(),
        // x87 + SSE + MPX BNDREGS without BNDCSR (QEMU's XSETBV refuses it).
        "xsetbv-mpx-split" => attack::xsetbv(0b0_1011),
        // x87 + SSE + AVX + opmask only: AVX-512 not all-or-none (Bochs).
        "xsetbv-avx512-partial" => attack::xsetbv(0b10_0111),
        // The timer LVT with SMI delivery-mode bits (reserved there).
        "lvt-timer-smi" => attack::write_lvt(X2APIC_LVT_TIMER, 0x220),
        // The error LVT with reserved bit 20 set.
        "lvt-reserved" => attack::write_lvt(X2APIC_LVT_ERROR, (1 << 20) | 0xfe),
        other => {
            return Err(Failure {
                code: BAD_ARGS_EXIT_CODE,
                message: format!("unknown attack {other:?} (see the layout's rogue attacks)"),
            })
        }
    }
    println!("rogue: attack {attack} was not stopped");
    Ok(Outcome {
        code: NOT_STOPPED_EXIT_CODE,
        result: Some(format!("attack={attack} stopped=false")),
    })
}
