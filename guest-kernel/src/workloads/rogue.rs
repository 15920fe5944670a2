//! `rogue`: a hostile guest. Performs the one attack chosen by `attack`
//! (one of [`ATTACKS`]; the matrix in `docs/threat-model.md` says what
//! each must end in):
//! - a forbidden action the hypervisor must stop there. If the partition
//!   is still running afterwards (bare mode, or containment failed), it
//!   says so and exits with [`NOT_STOPPED_EXIT_CODE`];
//! - a harmless but hostile request (a bad hypercall, an IPI flood to its
//!   peer): the rogue checks the answer itself and exits 0 with
//!   `answer=WORD` in its result (`ok`, `unknown`, `fault`, `too-long`,
//!   `invalid`, `denied`, or what it observed);
//! - hostile result text: reported as is (`answer=invalid` replaces it when
//!   the hypervisor refuses it), exit 0;
//! - a loop that never ends: the run timeout must stop it.
//!
//! With `only_first = true` it attacks only in its first incarnation: once
//! the hypervisor has restarted it (`on_fault = "restart"`), it reports
//! `attack=NAME incarnation=K` and exits 0.
//!
//! Each attack is a small function over [`Target`]; the machine-level part
//! of each is a safe function of the runtime's `flotilla_rt::hostile::attack`.

use super::BAD_ARGS_EXIT_CODE;
use abi::boot::ChannelInfo;
use abi::hypercall;
use abi::regs::{amd_msr, efer, IA32_SPEC_CTRL};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use channels::Side;
use core::sync::atomic::Ordering;
use flotilla_rt::hostile::attack::{self, VirtInstruction as Vi, Width};
use flotilla_rt::hostile::hv::{self, HypercallError};
use flotilla_rt::hostile::{apic, idt, non_peer_apic_id};
use flotilla_rt::{Context, Failure, Mode, Outcome, Report};
use x86::msr;

/// Exit code when the attack was not stopped.
pub const NOT_STOPPED_EXIT_CODE: u64 = 3;
/// The code the ring-3 `EXIT` asks for (a hypervisor honouring a
/// hypercall from CPL 3 ends the partition with it).
const RING3_EXIT_CODE: u64 = 0x33;
/// The xAPIC MMIO page, which no partition is granted.
const XAPIC_MMIO: u64 = 0xfee0_0000;
/// Offset of the task-priority register in it (a harmless target).
const XAPIC_TPR: u64 = x86::apic::xapic::XAPIC_TPR as u64;
/// The IOAPIC's register window (its index register).
const IOAPIC_MMIO: u64 = 0xfec0_0000;
/// The HPET's registers (its capabilities register).
const HPET_MMIO: u64 = 0xfed0_0000;
/// Far beyond any machine's RAM this runs on (the map ends at 8 GiB).
const FAR_ABOVE: u64 = 6 << 30;
/// The hypervisor's UART.
const COM1: u16 = abi::ports::HYPERVISOR_UART.first;
/// Vector of the fixed IPIs the rogue aims at others.
const IPI_VECTOR: u8 = 0x40;
/// Vector of the rogue's own self-IPI (any vector the kernel counts as a
/// channel IPI).
const SELF_IPI_VECTOR: u8 = 0x41;
/// IPIs of the flood to the channel peer.
const IPI_FLOOD: u32 = 20_000;
/// Lines of the console flood.
const CONSOLE_FLOOD: u32 = 3_000;
/// An address the hypervisor's console must refuse (beyond RAM).
const WILD_POINTER: u64 = 6 << 30;

/// What an attack found out, if it came back.
#[derive(Debug)]
pub enum Reply {
    /// The forbidden action returned: nothing stopped it.
    NotStopped,
    /// A harmless request: the answer, reported as `answer=WORD`.
    Answer(&'static str),
    /// Result text to report as is (hostile result text).
    Result(String),
    /// The attack needs something this partition or CPU lacks (exit code
    /// [`BAD_ARGS_EXIT_CODE`]: the layout chose an attack it cannot run).
    Cannot(&'static str),
}

/// Everything an attack may aim at.
#[derive(Debug)]
pub struct Target {
    /// Under which hypervisor.
    pub mode: Mode,
    /// End of the partition's RAM.
    pub memory: u64,
    /// Own x2APIC ID.
    pub apic_id: u32,
    /// An x2APIC ID that is neither its own nor a channel peer's.
    pub non_peer: u32,
    /// Its first channel, if any.
    pub channel: Option<ChannelInfo>,
}

/// One attack of the matrix.
#[derive(Debug)]
pub struct Attack {
    /// Name (the layout's `attack` argument).
    pub name: &'static str,
    /// Performs it.
    pub run: fn(&Target) -> Reply,
}

const fn attack(name: &'static str, run: fn(&Target) -> Reply) -> Attack {
    Attack { name, run }
}

/// Every attack, by name: the same list as the layout catalog's
/// `ROGUE_ATTACKS` (the end-to-end tests check each one runs).
pub const ATTACKS: &[Attack] = &[
    // Memory.
    attack("write-outside", |t| {
        attack::write_beyond(t.memory, t.memory, 0x0bad_c0de);
        Reply::NotStopped
    }),
    attack("read-outside", |t| {
        if let Some(v) = attack::read_beyond(FAR_ABOVE, t.memory) {
            println!("rogue: read {v:#x} at {FAR_ABOVE:#x}");
        }
        Reply::NotStopped
    }),
    attack("fetch-outside", |t| {
        if !attack::fetch_beyond(t.memory + 0x1000, t.memory, t.mode != Mode::Bare) {
            return Reply::Cannot("fetching outside RAM is only tried under the hypervisor");
        }
        Reply::NotStopped
    }),
    attack("write-apic-mmio", |t| {
        attack::write_beyond(XAPIC_MMIO + XAPIC_TPR, t.memory, 0);
        Reply::NotStopped
    }),
    attack("read-ioapic", |t| {
        if let Some(v) = attack::read_mmio32(IOAPIC_MMIO, t.memory) {
            println!("rogue: IOAPIC index register reads {v:#x}");
        }
        Reply::NotStopped
    }),
    attack("read-hpet", |t| {
        if let Some(v) = attack::read_mmio32(HPET_MMIO, t.memory) {
            println!("rogue: HPET capabilities read {v:#x}");
        }
        Reply::NotStopped
    }),
    attack("write-channel-identity", |t| {
        channel_write(t, |_, _| channels::layout::IDENTITY_OFFSET)
    }),
    attack("write-peer-control", |t| {
        channel_write(t, |own, slots| {
            channels::layout::control_offset(own.peer(), slots)
        })
    }),
    attack("write-receive-ring", |t| {
        // The ring it receives on is the one its peer sends on.
        channel_write(t, |own, slots| {
            channels::layout::ring_offset(own.peer(), slots)
        })
    }),
    attack("page-1g-beyond-ram", |t| {
        if !attack::has_1g_pages() {
            return Reply::Cannot("the CPU has no 1 GiB pages");
        }
        // The last word of the 1 GiB page, far beyond the partition's RAM.
        match attack::touch_through_1g_page((1 << 30) - 8, t.memory) {
            Some(v) => println!("rogue: read {v:#x} through the 1 GiB page"),
            None => return Reply::Cannot("the 1 GiB page does not map the partition's RAM"),
        }
        Reply::NotStopped
    }),
    // Ports (values harmless for the device, see `flotilla_rt::hostile::attack`).
    attack("port-com1", |_| {
        port_out(COM1, Width::Byte, u32::from(b'!'))
    }),
    attack("port-debug-exit", |_| {
        port_out(abi::run_end::QEMU_DEBUG_EXIT_PORT, Width::Dword, 0)
    }),
    attack("port-bochs-shutdown", |_| {
        port_out(0x8900, Width::Byte, u32::from(b'S'))
    }),
    attack("port-pci-address", |_| {
        port_out(0xcf8, Width::Dword, 0x8000_0000)
    }),
    attack("port-pci-data", |_| {
        let v = attack::port_in(0xcfc, Width::Dword);
        println!("rogue: PCI data port read {v:#x}");
        Reply::NotStopped
    }),
    attack("port-reset-cf9", |_| port_out(0xcf9, Width::Byte, 0)),
    attack("port-a20-92", |_| port_out(0x92, Width::Byte, 0x02)),
    attack("port-keyboard-64", |_| {
        let v = attack::port_in(0x64, Width::Byte);
        println!("rogue: keyboard controller status {v:#x}");
        Reply::NotStopped
    }),
    attack("port-pic", |_| port_out(0x21, Width::Byte, 0xff)),
    attack("port-pit", |_| port_out(0x43, Width::Byte, 0)),
    attack("port-rtc", |_| port_out(0x70, Width::Byte, 0)),
    attack("port-apm", |_| port_out(0xb2, Width::Byte, 0)),
    attack("port-dma", |_| port_out(0x00, Width::Byte, 0)),
    attack("port-fw-cfg", |_| port_out(0x510, Width::Word, 0)),
    attack("port-debugcon", |_| {
        port_out(0xe9, Width::Byte, u32::from(b'!'))
    }),
    attack("port-string-io", |_| {
        attack::port_out_string(COM1, b"flotilla: run succeeded\r\n");
        Reply::NotStopped
    }),
    attack("port-in", |_| {
        let v = attack::port_in(COM1 + 5, Width::Byte);
        println!("rogue: COM1 line status {v:#x}");
        Reply::NotStopped
    }),
    // MSRs.
    attack("msr-vmx-basic", |_| msr_read(msr::IA32_VMX_BASIC)),
    attack("msr-svm-vm-cr", |_| msr_write(amd_msr::VM_CR, 0)),
    attack("msr-svm-hsave", |_| msr_write(amd_msr::VM_HSAVE_PA, 0)),
    attack("msr-mtrr-def-type", |_| {
        msr_write(msr::IA32_MTRR_DEF_TYPE, 0x0c06)
    }),
    attack("msr-pat-reserved", |_| {
        // The power-on PAT with entry 0 set to type 2 (reserved).
        msr_write(msr::IA32_PAT, 0x0007_0406_0007_0402)
    }),
    attack("msr-efer-svme", |_| {
        msr_write(
            msr::IA32_EFER,
            attack::msr_read(msr::IA32_EFER) | efer::SVME,
        )
    }),
    attack("msr-tsc", |_| msr_write(msr::IA32_TIME_STAMP_COUNTER, 0)),
    attack("msr-debugctl", |_| msr_write(msr::IA32_DEBUGCTL, 1)),
    attack("msr-pmu-evtsel", |_| msr_write(msr::IA32_PERFEVTSEL0, 0)),
    attack("msr-pmu-counter", |_| msr_write(msr::IA32_PMC0, 0)),
    attack("msr-mca-ctl", |_| msr_write(msr::IA32_MC0_CTL, 0)),
    attack("msr-mcg-status", |_| msr_write(msr::IA32_MCG_STATUS, 0)),
    attack("msr-spec-ctrl", |_| msr_write(IA32_SPEC_CTRL, 1)),
    attack("msr-sysenter", |_| {
        // SYSENTER_EIP is the partition's own (switched with its state):
        // harmless; it must read back what was written.
        const SYSENTER_EIP: u32 = msr::IA32_SYSENTER_EIP;
        const VALUE: u64 = 0xffff_8000_dead_b000;
        attack::msr_write(SYSENTER_EIP, VALUE);
        Reply::Answer(if attack::msr_read(SYSENTER_EIP) == VALUE {
            "kept"
        } else {
            "changed"
        })
    }),
    attack("apic-base", |_| {
        attack::rewrite_apic_base();
        Reply::NotStopped
    }),
    // x2APIC: the ICR with every delivery mode, shorthand and logical
    // destination, the LVTs, the self-IPI register.
    attack("ipi-non-peer", |t| icr(t.non_peer, u64::from(IPI_VECTOR))),
    attack("icr-lowest-priority", |t| {
        icr(t.non_peer, (0b001 << 8) | u64::from(IPI_VECTOR))
    }),
    attack("icr-smi", |t| icr(t.non_peer, 0b010 << 8)),
    attack("icr-nmi", |t| icr(t.non_peer, 0b100 << 8)),
    attack("init-non-peer", |t| {
        icr(t.non_peer, (0b101 << 8) | (1 << 14))
    }),
    attack("icr-sipi", |t| icr(t.non_peer, (0b110 << 8) | 0x10)),
    attack("icr-self-shorthand", |t| {
        icr(t.apic_id, (0b01 << 18) | u64::from(SELF_IPI_VECTOR))
    }),
    attack("icr-all-including", |_| {
        icr(0, (0b10 << 18) | u64::from(IPI_VECTOR))
    }),
    attack("icr-all-excluding", |_| {
        icr(0, (0b11 << 18) | u64::from(IPI_VECTOR))
    }),
    attack("icr-logical", |_| {
        // Logical destination: cluster 0, every member.
        icr(0xffff, (1 << 11) | u64::from(IPI_VECTOR))
    }),
    attack("ipi-nmi-peer", |t| match t.channel {
        Some(c) => icr(c.peer_apic_id, 0b100 << 8),
        None => Reply::Cannot("needs a channel to a peer"),
    }),
    attack("ipi-flood-peer", |t| {
        let Some(c) = t.channel else {
            return Reply::Cannot("needs a channel to a peer");
        };
        for _ in 0..IPI_FLOOD {
            if let Err(e) = hv::send_channel_ipi(c.channel_id) {
                return Reply::Answer(answer(Err(e)));
            }
        }
        Reply::Answer("ok")
    }),
    attack("lvt-timer-smi", |_| {
        msr_write(apic::X2APIC_LVT_TIMER, (1 << 17) | (0b010 << 8))
    }),
    attack("lvt-timer-reserved", |_| {
        // Masked, vector 0x20, reserved bit 19.
        msr_write(apic::X2APIC_LVT_TIMER, (1 << 19) | (1 << 16) | 0x20)
    }),
    attack("lvt-error-reserved", |_| {
        // Masked, vector 0xfe, reserved bit 20.
        msr_write(apic::X2APIC_LVT_ERROR, (1 << 20) | (1 << 16) | 0xfe)
    }),
    attack("lvt-lint0-extint", |_| {
        msr_write(apic::X2APIC_LVT_LINT0, 0b111 << 8)
    }),
    attack("lvt-thermal-nmi", |_| {
        msr_write(apic::X2APIC_LVT_THERMAL, 0b100 << 8)
    }),
    attack("self-ipi", |_| {
        // The self-IPI register is the partition's own: the interrupt
        // must arrive, on this core only.
        let before = idt::IPIS.load(Ordering::Acquire);
        attack::msr_write(apic::X2APIC_SELF_IPI, u64::from(SELF_IPI_VECTOR));
        for _ in 0..1_000_000 {
            if idt::IPIS.load(Ordering::Acquire) != before {
                return Reply::Answer("delivered");
            }
            core::hint::spin_loop();
        }
        Reply::Answer("lost")
    }),
    // Instructions.
    attack("vmrun", |_| virt(Vi::Vmrun)),
    attack("vmload", |_| virt(Vi::Vmload)),
    attack("vmsave", |_| virt(Vi::Vmsave)),
    attack("stgi", |_| virt(Vi::Stgi)),
    attack("clgi", |_| virt(Vi::Clgi)),
    attack("skinit", |_| virt(Vi::Skinit)),
    attack("invlpga", |_| virt(Vi::Invlpga)),
    attack("vmxon", |_| virt(Vi::Vmxon)),
    attack("vmptrld", |_| virt(Vi::Vmptrld)),
    attack("vmclear", |_| virt(Vi::Vmclear)),
    attack("vmread", |_| virt(Vi::Vmread)),
    attack("invept", |_| virt(Vi::Invept)),
    attack("wrong-hypercall", |t| match t.mode {
        Mode::Svm => virt(Vi::Vmcall),
        Mode::Vmx => virt(Vi::Vmmcall),
        Mode::Bare => Reply::Cannot("needs the hypervisor"),
    }),
    attack("invd", |t| match t.mode {
        Mode::Bare => Reply::Cannot("INVD is only tried under the hypervisor"),
        _ => virt(Vi::Invd),
    }),
    attack("xsetbv-x87-cleared", |_| xsetbv(0, 0b010)),
    attack("xsetbv-avx-without-sse", |_| xsetbv(0, 0b101)),
    attack("xsetbv-reserved-bit", |_| xsetbv(0, 0b011 | (1 << 62))),
    attack("xsetbv-avx512-partial", |_| {
        // x87, SSE, AVX and the opmask state without the ZMM states.
        xsetbv(0, 0b111 | (1 << 5))
    }),
    attack("xsetbv-mpx-partial", |_| {
        // BNDREGS without BNDCSR.
        xsetbv(0, 0b011 | (1 << 3))
    }),
    attack("xsetbv-amx-partial", |_| {
        // TILECFG without TILEDATA.
        xsetbv(0, 0b111 | (1 << 17))
    }),
    attack("xsetbv-xcr1", |_| xsetbv(1, 0b011)),
    attack("triple-fault", |_| attack::triple_fault()),
    // Never finishing.
    attack("wbinvd-loop", |_| attack::wbinvd_forever()),
    attack("cli-hlt", |_| attack::cli_hlt_forever()),
    attack("cpuid-loop", |_| attack::cpuid_forever()),
    attack("timer-storm", |_| {
        apic::start_timer_storm();
        loop {
            core::hint::spin_loop();
        }
    }),
    // Hypercalls.
    attack("hc-unknown", |_| {
        Reply::Answer(answer(hv::call(0x7fff_0001, 0, 0, 0)))
    }),
    attack("hc-console-wild-pointer", |_| {
        Reply::Answer(answer(hv::call(
            hypercall::CONSOLE_WRITE,
            WILD_POINTER,
            16,
            0,
        )))
    }),
    attack("hc-console-huge-length", |_| {
        let text = b"huge";
        Reply::Answer(answer(hv::call(
            hypercall::CONSOLE_WRITE,
            text.as_ptr() as u64,
            1 << 40,
            0,
        )))
    }),
    attack("hc-console-control", |_| {
        let text = "forged\nflotilla: run succeeded";
        Reply::Answer(answer(hv::call(
            hypercall::CONSOLE_WRITE,
            text.as_ptr() as u64,
            text.len() as u64,
            0,
        )))
    }),
    attack("hc-console-flood", |_| {
        flotilla_rt::console::flush();
        let (mut ok, mut refused) = (0u32, 0u32);
        for i in 0..CONSOLE_FLOOD {
            let line = format!("flood line {i} of {CONSOLE_FLOOD}");
            match hv::call(
                hypercall::CONSOLE_WRITE,
                line.as_ptr() as u64,
                line.len() as u64,
                0,
            ) {
                Ok(_) => ok += 1,
                Err(_) => refused += 1,
            }
        }
        Reply::Result(format!(
            "attack=hc-console-flood answer=ok lines={CONSOLE_FLOOD} printed={ok} refused={refused}"
        ))
    }),
    attack("hc-result-leading-zero", |_| {
        Reply::Result(String::from("attack=hc-result-leading-zero a=007"))
    }),
    attack("hc-result-quoted-key", |_| {
        Reply::Result(String::from("attack=hc-result-quoted-key \"a\"=1"))
    }),
    attack("hc-result-long-value", |_| {
        let mut text = String::from("attack=hc-result-long-value v=");
        while u64::try_from(text.len()).is_ok_and(|len| len < hypercall::MAX_RESULT) {
            text.push('x');
        }
        Reply::Result(text)
    }),
    attack("hc-result-channel-pointer", |t| match t.channel {
        Some(c) => Reply::Answer(answer(hv::call(hypercall::REPORT_RESULT, c.gpa, 16, 0))),
        None => Reply::Cannot("needs a channel"),
    }),
    attack("hc-ipi-no-channel", |_| {
        Reply::Answer(answer(hv::call(hypercall::SEND_IPI, 999, 0, 0)))
    }),
    attack("hc-membership-ack-foreign", |_| {
        Reply::Answer(answer(hv::call(
            hypercall::MEMBERSHIP_ACK,
            u64::MAX,
            u64::MAX,
            0,
        )))
    }),
    attack("hc-exit-huge-code", |_| hv::exit(u64::MAX)),
    attack("hc-from-ring3", |t| match t.mode {
        Mode::Bare => Reply::Cannot("needs the hypervisor"),
        mode => attack::hypercall_from_ring3(mode == Mode::Svm, RING3_EXIT_CODE),
    }),
];

/// The names of [`ATTACKS`], for the error message.
fn names() -> String {
    let names: Vec<&str> = ATTACKS.iter().map(|a| a.name).collect();
    names.join(", ")
}

fn port_out(port: u16, width: Width, value: u32) -> Reply {
    attack::port_out(port, width, value);
    Reply::NotStopped
}

fn msr_read(msr: u32) -> Reply {
    let v = attack::msr_read(msr);
    println!("rogue: MSR {msr:#x} reads {v:#x}");
    Reply::NotStopped
}

fn msr_write(msr: u32, value: u64) -> Reply {
    attack::msr_write(msr, value);
    Reply::NotStopped
}

fn icr(dest: u32, low: u64) -> Reply {
    let value = (u64::from(dest) << 32) | low;
    println!("rogue: ICR {value:#x}");
    flotilla_rt::console::flush();
    apic::write_icr(value);
    Reply::NotStopped
}

fn virt(insn: Vi) -> Reply {
    let (image_start, _) = flotilla_rt::hostile::image_range();
    attack::virtualization_instruction(insn, image_start);
    Reply::NotStopped
}

fn xsetbv(xcr: u32, value: u64) -> Reply {
    if attack::xsetbv(xcr, value) {
        Reply::NotStopped
    } else {
        Reply::Cannot("the CPU has no XSAVE")
    }
}

/// Writes a word at `offset(own side, slots)` of the first channel's
/// region (offsets from `channels::layout`, so the attack follows the
/// layout version).
fn channel_write(t: &Target, offset: fn(Side, u32) -> usize) -> Reply {
    let Some(c) = t.channel else {
        return Reply::Cannot("needs a channel to a peer");
    };
    let own = if c.side == 0 { Side::A } else { Side::B };
    let gpa = c.gpa + offset(own, c.slots) as u64;
    println!("rogue: writing channel {} at {gpa:#x}", c.channel_id);
    flotilla_rt::console::flush();
    attack::write_beyond(gpa, t.memory, 0x0bad_c0de_0bad_c0de);
    Reply::NotStopped
}

/// A hypercall's answer as one word.
fn answer(result: Result<u64, HypercallError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(HypercallError::NoHypervisor) => "bare",
        Err(HypercallError::Refused(e)) => match e {
            hypercall::Error::Unknown => "unknown",
            hypercall::Error::Fault => "fault",
            hypercall::Error::TooLong => "too-long",
            hypercall::Error::Invalid => "invalid",
            hypercall::Error::Denied => "denied",
        },
        Err(HypercallError::Other(_)) => "other",
    }
}

pub fn run(ctx: &mut Context) -> Result<Outcome, Failure> {
    let name = ctx.args().str_or("attack", "");
    let Some(attack) = ATTACKS.iter().find(|a| a.name == name) else {
        return Err(Failure {
            code: BAD_ARGS_EXIT_CODE,
            message: format!("unknown attack {name:?}; the attacks are: {}", names()),
        });
    };
    if ctx.args().bool_or("only_first", false)? && ctx.incarnation() > 0 {
        println!("rogue: incarnation {}: no attack", ctx.incarnation());
        return Ok(Outcome::ok(
            Report::new()
                .with("attack", name)
                .with("incarnation", u64::from(ctx.incarnation())),
        ));
    }
    let peers: Vec<u32> = ctx.channel_infos().iter().map(|c| c.peer_apic_id).collect();
    let target = Target {
        mode: ctx.mode(),
        memory: ctx.memory(),
        apic_id: ctx.apic_id(),
        non_peer: non_peer_apic_id(ctx.apic_id(), &peers, ctx.partition_count()),
        channel: ctx.channel_infos().first().copied(),
    };
    println!("rogue: attack {name}");
    flotilla_rt::console::flush();
    let reply = (attack.run)(&target);
    match reply {
        Reply::NotStopped => {
            println!("rogue: attack {name} was not stopped");
            Ok(Outcome::with_code(
                NOT_STOPPED_EXIT_CODE,
                Report::new().with("attack", name).with("stopped", false),
            ))
        }
        Reply::Answer(word) => {
            println!("rogue: attack {name} answered {word}");
            Ok(Outcome::ok(
                Report::new().with("attack", name).with("answer", word),
            ))
        }
        Reply::Result(text) => {
            if let Err(e) = hv::report_result(&text) {
                println!("rogue: result text refused ({e:?})");
                let word = answer(Err(e));
                let fallback = format!("attack={name} answer={word}");
                let _ = hv::report_result(&fallback);
            }
            // Reported raw above (the attack is the text itself).
            Ok(Outcome::silent(0))
        }
        Reply::Cannot(why) => {
            println!("rogue: cannot try {name}: {why}");
            Ok(Outcome::with_code(
                BAD_ARGS_EXIT_CODE,
                Report::new().with("attack", name).with("cannot", true),
            ))
        }
    }
}
