//! The boot flow. The bootstrap core ([`bsp_entry`]) reads the boot
//! information and the ACPI tables, brings itself up, starts every other core
//! ([`ap_entry`]), waits until all are online, and ends the run.

use crate::arch::x86_64::common::apic::LocalApic;
use crate::arch::x86_64::common::phys::IdentityMemory;
use crate::arch::x86_64::common::trampoline::{Trampoline, TRAMPOLINE_BASE};
use crate::arch::x86_64::common::{cpu, fixup, heap, instr, percpu, pic, time};
use crate::{console, partitions, println, run_end, smp};
use abi::cmdline::{self, ExitMethod, EXIT_KEY};
use abi::console::{CORES_ONLINE, CPU_ONLINE};
use hypervisor::exit_handler::CpuRefused;
use hypervisor::platform::acpi::{self, CpuEntry};
use hypervisor::platform::boot_info::{self, AcpiRoot, BootInfo};
use hypervisor::timer_policy;
use hypervisor::virt_caps::VirtSupport;

/// How long the APIC timer is measured against the TSC at boot.
const TIMER_CALIBRATION_US: u64 = 10_000;
/// Command-line key for self-tests of the hypervisor's own fault handling.
const SELFTEST_KEY: &str = "flotilla.selftest";
/// Prefix of the line a fixup self-test prints when it recovered.
const SELFTEST_RECOVERED: &str = "flotilla: selftest recovered ";

/// The bootstrap core's entry from `boot.rs`, in long mode on the boot
/// stack, with the loader's `eax` and `ebx`.
pub extern "C" fn bsp_entry(magic: u32, info: u32) -> ! {
    percpu::clear();
    pic::mask_all();
    heap::init();
    console::init();
    println!(
        "flotilla: hypervisor {} starting",
        env!("CARGO_PKG_VERSION")
    );

    let mem = IdentityMemory;
    let boot = match boot_info::parse(&mem, magic, info) {
        Ok(boot) => boot,
        Err(e) => run_end::fail(format_args!("{e}")),
    };
    apply_cmdline(&boot);

    let apic = LocalApic::this_core();
    let bsp_apic_id = apic.id();
    let bsp = percpu::init(0, bsp_apic_id);
    let tsc_khz = time::calibrate();
    let (timer_ticks, timer_us) = apic.measure_timer(TIMER_CALIBRATION_US);
    let timer_floor = timer_policy::floor_ticks(timer_ticks, timer_us);

    println!(
        "flotilla: booted via {:?}, {} MiB usable RAM in {} regions, {} module(s), TSC {} MHz, \
         APIC timer {} ticks in {timer_us} us (periodic floor {} us = {timer_floor} ticks)",
        boot.protocol,
        boot.usable_bytes() >> 20,
        boot.memory.len(),
        boot.modules.len(),
        tsc_khz / 1000,
        timer_ticks,
        timer_policy::MIN_PERIOD_US,
    );
    let cpus = match find_cpus(&mem, &boot) {
        Ok(cpus) => cpus,
        Err(e) => run_end::fail(format_args!("{e}")),
    };
    println!(
        "flotilla: {} core(s) in the ACPI MADT, APIC IDs {:?}",
        cpus.len(),
        cpus.iter()
            .map(|c| c.apic_id)
            .collect::<alloc::vec::Vec<_>>()
    );
    report_online(bsp.index, bsp.apic_id);
    selftest(&boot);

    // Core indices follow the MADT order with the bootstrap core first.
    let mut ordered = alloc::vec![CpuEntry {
        acpi_uid: 0,
        apic_id: bsp_apic_id
    }];
    ordered.extend(cpus.iter().copied().filter(|c| c.apic_id != bsp_apic_id));
    if partitions::has_bundle(&boot) {
        let virt = VirtSupport::decode(&cpu::read_virt_info());
        let firmware = match acpi_root(&mem, &boot) {
            Ok(root) => acpi::firmware_ports(&mem, root),
            Err(e) => acpi::FadtPorts::Unreadable(e),
        };
        if let Err(e) = partitions::prepare(&boot, &ordered, &firmware, tsc_khz, timer_floor, virt)
        {
            run_end::fail(format_args!("{e}"));
        }
    }

    let Some(mut trampoline) = Trampoline::claim(boot.is_usable(TRAMPOLINE_BASE, 0x1000)) else {
        run_end::fail(format_args!(
            "the AP trampoline page {TRAMPOLINE_BASE:#x} is not usable RAM in the memory map"
        ))
    };
    if let Err(e) =
        smp::start_application_processors(&mut trampoline, apic, &cpus, bsp_apic_id, ap_entry)
    {
        run_end::fail(format_args!("{e}"));
    }
    println!("{CORES_ONLINE}{}/{}", cpus.len(), cpus.len());
    partitions::arm_timeout();
    partitions::core_main(0, apic);
    run_end::succeed()
}

/// An application processor's entry from the trampoline, in long mode on
/// its own stack, with its core index.
pub extern "C" fn ap_entry(index: u64) -> ! {
    smp::mark_started(index);
    let apic = LocalApic::this_core();
    let this = u32::try_from(index).expect("the BSP passes an index < MAX_CPUS");
    let this = percpu::init(this, apic.id());
    report_online(this.index, this.apic_id);
    partitions::core_main(this.index, apic);
    instr::halt_forever()
}

fn report_online(index: u32, apic_id: u32) {
    let virt = VirtSupport::decode(&cpu::read_virt_info());
    let usable = match virt.usable() {
        Ok(()) => "",
        Err(_) => " (cannot host partitions)",
    };
    println!("{CPU_ONLINE}{index} apic {apic_id} online {virt}{usable}");
    smp::mark_online(index);
}

fn apply_cmdline(boot: &BootInfo) {
    match cmdline::find(&boot.cmdline, EXIT_KEY) {
        None => {}
        Some(value) => match ExitMethod::parse(value) {
            Some(method) => run_end::set_method(method),
            None => println!(
                "flotilla: warning: unknown {EXIT_KEY}={value} (expected qemu, bochs or halt); halting at the end"
            ),
        },
    }
}

/// The ACPI root the loader gave, or the RSDP found in the BIOS areas.
fn acpi_root(mem: &IdentityMemory, boot: &BootInfo) -> Result<AcpiRoot, acpi::AcpiError> {
    match boot.acpi {
        Some(root) => Ok(root),
        None => Ok(AcpiRoot::RsdpAddress(
            acpi::scan_for_rsdp(mem).ok_or(acpi::AcpiError::NoRsdp)?,
        )),
    }
}

fn find_cpus(
    mem: &IdentityMemory,
    boot: &BootInfo,
) -> Result<alloc::vec::Vec<CpuEntry>, acpi::AcpiError> {
    acpi::cpus(mem, acpi_root(mem, boot)?)
}

/// `flotilla.selftest=ud2|page-fault`: provoke a fault in the hypervisor so
/// the tests can check that it is reported instead of resetting the machine.
/// `flotilla.selftest=xsetbv-fixup|wrmsr-fixup`: execute a value the CPU
/// refuses through the checked (exception-fixup) path, print that it was
/// recovered, and boot on.
fn selftest(boot: &BootInfo) {
    match cmdline::find(&boot.cmdline, SELFTEST_KEY) {
        Some("ud2") => instr::undefined_instruction(),
        Some("page-fault") => instr::touch_unmapped(),
        Some("xsetbv-fixup") => {
            // XCR0 without x87 (bit 0) is refused by every CPU (#GP; #UD
            // where XSAVE is off), so this only exercises the recovery.
            match cpu::write_xcr0(0) {
                Err(CpuRefused) => println!(
                    "{SELFTEST_RECOVERED}xsetbv-fixup: the CPU refused XCR0 = 0 and the hypervisor resumed"
                ),
                Ok(()) => run_end::fail(format_args!("selftest xsetbv-fixup: XCR0 = 0 was accepted")),
            }
        }
        Some("wrmsr-fixup") => match fixup::selftest_wrmsr(LocalApic::this_core()) {
            Some(Err(CpuRefused)) => println!(
                "{SELFTEST_RECOVERED}wrmsr-fixup: the CPU refused an x2APIC write in xAPIC mode and the hypervisor resumed"
            ),
            Some(Ok(())) => run_end::fail(format_args!(
                "selftest wrmsr-fixup: an x2APIC write in xAPIC mode was accepted"
            )),
            None => println!(
                "flotilla: warning: selftest wrmsr-fixup needs the firmware to leave xAPIC mode; skipped"
            ),
        },
        Some(other) => println!("flotilla: warning: unknown {SELFTEST_KEY}={other}"),
        None => {}
    }
}
