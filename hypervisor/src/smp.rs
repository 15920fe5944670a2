//! Starting the application processors: INIT-SIPI-SIPI to each APIC ID the
//! MADT lists, one at a time through the real-mode trampoline, with bounded
//! waits. Each AP signals once it runs Rust code ([`mark_started`]) and once
//! it is fully up ([`mark_online`]).

use crate::arch::x86_64::common::apic::LocalApic;
use crate::arch::x86_64::common::trampoline::{Trampoline, TrampolineParams};
use crate::arch::x86_64::common::{boot, time};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use hypervisor::platform::acpi::CpuEntry;

/// Most cores Flotilla drives.
pub const MAX_CPUS: usize = 64;
/// Stack size of each application processor.
const AP_STACK_SIZE: usize = 64 * 1024;
/// How long an AP may take to reach Rust code after its SIPIs.
const START_TIMEOUT_US: u64 = 1_000_000;
/// How long all APs together may take to come online.
const ONLINE_TIMEOUT_US: u64 = 5_000_000;

static STARTED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static ONLINE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Called by an AP as soon as it runs Rust code (its trampoline may be reused).
pub fn mark_started(index: u64) {
    if let Some(flag) = usize::try_from(index).ok().and_then(|i| STARTED.get(i)) {
        flag.store(true, Ordering::Release);
    }
}

/// Called by a core once it is fully up.
pub fn mark_online(index: u32) {
    if let Some(flag) = ONLINE.get(index as usize) {
        flag.store(true, Ordering::Release);
    }
}

fn wait_for(flags: &[AtomicBool; MAX_CPUS], index: usize, timeout_us: u64) -> bool {
    let deadline = time::now_us() + timeout_us;
    while !flags.get(index).is_some_and(|f| f.load(Ordering::Acquire)) {
        if time::now_us() > deadline {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// Why bring-up failed.
#[derive(Debug)]
pub enum SmpError {
    /// More cores than [`MAX_CPUS`].
    TooManyCpus(usize),
    /// An AP never reached Rust code.
    DidNotStart(CpuEntry),
    /// An AP started but did not finish its bring-up in time.
    NotOnline(CpuEntry),
}

impl core::fmt::Display for SmpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SmpError::TooManyCpus(n) => {
                write!(f, "{n} cores found; at most {MAX_CPUS} are supported")
            }
            SmpError::DidNotStart(c) => {
                write!(f, "the core with APIC ID {} did not start", c.apic_id)
            }
            SmpError::NotOnline(c) => {
                write!(f, "the core with APIC ID {} did not come online", c.apic_id)
            }
        }
    }
}

/// Starts every core in `cpus` except the caller (`bsp_apic_id`), giving
/// them indices 1.. in MADT order, and waits until all are online.
pub fn start_application_processors(
    trampoline: &mut Trampoline,
    apic: LocalApic,
    cpus: &[CpuEntry],
    bsp_apic_id: u32,
    entry: extern "C" fn(u64) -> !,
) -> Result<(), SmpError> {
    let aps: Vec<CpuEntry> = cpus
        .iter()
        .copied()
        .filter(|c| c.apic_id != bsp_apic_id)
        .collect();
    if aps.len() + 1 > MAX_CPUS {
        return Err(SmpError::TooManyCpus(aps.len() + 1));
    }
    for (i, cpu) in aps.iter().enumerate() {
        let index = i + 1;
        let stack: &'static mut [u8] = alloc::vec![0u8; AP_STACK_SIZE].leak();
        let stack_top = (stack.as_ptr() as u64 + AP_STACK_SIZE as u64) & !0xf;
        let params = TrampolineParams {
            cr3: boot::boot_page_table_root(),
            stack_top,
            entry: entry as usize as u64,
            arg: index as u64,
        };
        if !trampoline.start_ap(
            apic,
            cpu.apic_id,
            &params,
            &STARTED[index],
            START_TIMEOUT_US,
        ) {
            return Err(SmpError::DidNotStart(*cpu));
        }
    }
    for (i, cpu) in aps.iter().enumerate() {
        if !wait_for(&ONLINE, i + 1, ONLINE_TIMEOUT_US) {
            return Err(SmpError::NotOnline(*cpu));
        }
    }
    Ok(())
}
