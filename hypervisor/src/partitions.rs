//! Running partitions: the bootstrap core prepares the run from the boot
//! bundle (decode, re-check against the machine, claim memory, format the
//! channels); then every core loads its own partition, builds its nested
//! page tables, and runs it until it exits, faults or times out; a fault
//! under `on_fault = "restart"` with restarts left reloads it and enters
//! it again ([`Core::restart`]), ordered against the other members of its
//! replication groups by their status pages (`membership::restart`: death
//! epoch, acknowledgements, re-format, alive epoch). The last
//! core to finish prints the run report and ends the run; cores without a
//! partition (or whose partition ended) watch the run's timeout.
//!
//! The timeout is armed by the bootstrap core once every core is online
//! ([`arm_timeout`]): before that no core is stopped, so no NMI can reach a
//! core still in its bring-up (real mode, no IDT yet). A stop request is
//! the `STOP` flag, set before any stop NMI is sent; every core checks it
//! (and the deadline itself) before each VM entry, so a stop NMI absorbed
//! in root mode while the core handles an exit is never lost: the next
//! entry sees the flag, and a core that re-entered its guest in the few
//! instructions between the check and the entry gets the watcher's next
//! NMI ([`STOP_RESEND_US`]).
//!
//! Shared state is limited to what is inherently shared: the read-only plan
//! (`RUN`, written once before any AP starts), the results table (each
//! slot written once, by the core of that partition) and a few atomics.

use crate::arch::x86_64::common::apic::LocalApic;
use crate::arch::x86_64::common::frames::{alloc_status_page, HeapTables};
use crate::arch::x86_64::common::region::{self, PhysRegion};
use crate::arch::x86_64::common::{cpu, instr, time};
use crate::arch::x86_64::svm::Svm;
use crate::arch::x86_64::vmx::Vmx;
use crate::{console, println, run_end};
use abi::acpi::set_x2apic_id;
use abi::boot::initrd_gpa;
use abi::boot::{GroupInfo, BOOT_INFO_GPA, KERNEL_MIN_GPA, MEMBERSHIP_VECTOR};
use abi::bundle::{Bundle, Image, MODULE_ACPI, MODULE_INITRD};
use abi::compat::ACPI_TABLES_GPA;
use abi::console::PARTITION_DROPPING;
use abi::fault::FaultKind;
use abi::group::{StatusPage, STATUS_PAGE_SIZE};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use hypervisor::boot_image::{self, BootModules};
use hypervisor::console_queue::{GuestConsole, BURST_LINES, LINES_PER_SEC};
use hypervisor::exit_handler::{handle_exit, CpuRefused, ExitHost};
use hypervisor::hypercall::HypercallHost;
use hypervisor::membership;
use hypervisor::nested_paging::{Access, EntryFormat, Mapping, NestedPageTable};
use hypervisor::partition::{restarts_after, End, Fault, RunRecord};
use hypervisor::plan::{self, MachineView, PartitionPlan, RunPlan};
use hypervisor::platform::acpi::{CpuEntry, FadtPorts};
use hypervisor::platform::boot_info::BootInfo;
use hypervisor::report;
use hypervisor::vcpu::{GuestEntry, Vcpu, VirtBackend};
use hypervisor::virt_caps::VirtSupport;
use partition_config::manifest::Manifest;
use spin::{Mutex, Once};

/// Largest boot bundle accepted (it is read where the loader put it);
/// `flotilla check` refuses layouts over the same limit.
const MAX_BUNDLE: u64 = partition_config::limits::MAX_BUNDLE_LEN;

/// Everything the cores share, fixed before the first AP starts.
struct Run {
    plan: RunPlan,
    bundle: Bundle<'static>,
    regions: Vec<Mutex<Option<PhysRegion>>>,
    /// The channels' regions, by channel index (re-formatted on a restart).
    channels: Vec<Mutex<PhysRegion>>,
    /// The groups' status pages (host-physical address, writer), by group.
    groups: Vec<(u64, StatusPage<'static>)>,
    apic_ids: Vec<u32>,
    tsc_khz: u64,
    /// The periodic APIC timer's floor, ticks at divide by 1
    /// (`timer_policy::floor_ticks`, measured on the bootstrap core; every
    /// core's timer runs from the same clock).
    timer_floor: u64,
    backend: Backend,
}

/// The virtualization backend, chosen once from the bootstrap core's CPUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// AMD SVM with nested paging.
    Svm {
        /// Next-RIP save is available.
        nrip_save: bool,
    },
    /// Intel VMX with EPT and unrestricted guest.
    Vmx,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Svm { .. } => Svm::NAME,
            Backend::Vmx => Vmx::NAME,
        }
    }
}

static RUN: Once<Run> = Once::new();
static RESULTS: Mutex<Vec<Option<(End, RunRecord)>>> = Mutex::new(Vec::new());
static ENDED: AtomicUsize = AtomicUsize::new(0);
static STOP: AtomicBool = AtomicBool::new(false);
/// The run's deadline (TSC microseconds), 0 until [`arm_timeout`].
static DEADLINE_US: AtomicU64 = AtomicU64::new(0);

/// Starts the run's timeout. The bootstrap core calls it once every core is
/// online; the layout's timeout counts from here.
pub fn arm_timeout() {
    if let Some(run) = RUN.get() {
        let timeout_us = u64::from(run.plan.timeout_secs).saturating_mul(1_000_000);
        let deadline = time::now_us().saturating_add(timeout_us).max(1);
        DEADLINE_US.store(deadline, Ordering::Release);
    }
}

/// The armed deadline, if any.
fn deadline_us() -> Option<u64> {
    let d = DEADLINE_US.load(Ordering::Acquire);
    (d != 0).then_some(d)
}

/// Whether partitions must stop now: a stop was requested, or the deadline
/// passed (then this core requests it for everyone, so the run also ends
/// when no core is free to watch and the partitions still exit now and
/// then).
fn stop_due() -> bool {
    if STOP.load(Ordering::Acquire) {
        return true;
    }
    if deadline_us().is_some_and(|d| time::now_us() > d) {
        STOP.store(true, Ordering::Release);
        return true;
    }
    false
}

struct Machine<'a> {
    boot: &'a BootInfo,
    cpus: &'a [CpuEntry],
    firmware: &'a FadtPorts,
}

impl MachineView for Machine<'_> {
    fn apic_id(&self, index: u32) -> Option<u32> {
        self.cpus.get(index as usize).map(|c| c.apic_id)
    }
    fn cpu_count(&self) -> u32 {
        u32::try_from(self.cpus.len()).unwrap_or(u32::MAX)
    }
    fn is_free_ram(&self, base: u64, len: u64) -> bool {
        region::is_free_ram(self.boot, base, len)
    }
    fn firmware_ports(&self) -> &FadtPorts {
        self.firmware
    }
}

/// Whether the boot carried a bundle (a partition run) at all.
pub fn has_bundle(boot: &BootInfo) -> bool {
    !boot.modules.is_empty()
}

/// Prepares the run on the bootstrap core. `cpus` is in core-index order
/// (index 0 = the bootstrap core); `firmware` is what the ACPI FADT says
/// about the firmware's I/O ports (never granted).
pub fn prepare(
    boot: &BootInfo,
    cpus: &[CpuEntry],
    firmware: &FadtPorts,
    tsc_khz: u64,
    timer_floor: u64,
    virt: VirtSupport,
) -> Result<(), String> {
    virt.usable()
        .map_err(|e| format!("cannot run partitions: {e}"))?;
    let backend = match virt {
        VirtSupport::Svm(s) => Backend::Svm {
            nrip_save: s.nrip_save,
        },
        VirtSupport::Vmx(_) => Backend::Vmx,
        VirtSupport::None => return Err(String::from("no hardware virtualization on this core")),
    };
    let module = &boot.modules[0];
    if module.len > MAX_BUNDLE {
        return Err(format!(
            "the boot bundle is {} bytes; at most {MAX_BUNDLE} are supported",
            module.len
        ));
    }
    let bytes = region::claim_module(module.base, module.len).ok_or_else(|| {
        format!(
            "the boot bundle at {:#x}+{:#x} is not readable in place (above 4 GiB or over the hypervisor)",
            module.base, module.len
        )
    })?;
    let bundle = Bundle::parse(bytes).map_err(|e| e.to_string())?;
    let manifest =
        Manifest::decode(bundle.manifest()).map_err(|e| format!("manifest rejected: {e}"))?;
    let plan = plan::plan(
        &manifest,
        &Machine {
            boot,
            cpus,
            firmware,
        },
    )?;
    for p in &plan.partitions {
        if usize::from(p.kernel) >= bundle.image_count() {
            return Err(format!(
                "partition {} names kernel {} missing from the bundle",
                p.policy.name, p.kernel
            ));
        }
    }
    boot_image::check_modules(&plan, &bundle)?;
    let mut regions = Vec::new();
    for p in &plan.partitions {
        let r = PhysRegion::claim(boot, p.host_base, p.policy.memory).ok_or_else(|| {
            format!(
                "partition {}'s memory overlaps another region (the boot bundle is at {:#x}+{:#x})",
                p.policy.name, module.base, module.len
            )
        })?;
        regions.push(Mutex::new(Some(r)));
    }
    let mut channels = Vec::new();
    for (i, ch) in plan.channels.iter().enumerate() {
        let mut r = PhysRegion::claim(boot, ch.host_base, ch.size)
            .ok_or_else(|| format!("channel {i}'s memory overlaps another region"))?;
        format_channel(&mut r, ch.slots, false).map_err(|e| format!("channel {i} {e}"))?;
        channels.push(Mutex::new(r));
    }
    let mut groups = Vec::new();
    for (i, g) in plan.groups.iter().enumerate() {
        let (hpa, words) = alloc_status_page().ok_or("no memory for a status page")?;
        let page = StatusPage::new(words).ok_or("status page too small")?;
        let index = u32::try_from(i).map_err(|e| e.to_string())?;
        page.init(index, &g.partitions)
            .ok_or_else(|| format!("group {i} has a bad member count"))?;
        groups.push((hpa, page));
    }
    println!(
        "flotilla: layout: {} partition(s), {} channel(s), timeout {} s, backend {}",
        plan.partitions.len(),
        plan.channels.len(),
        plan.timeout_secs,
        backend.name()
    );
    for p in &plan.partitions {
        println!(
            "flotilla: partition {} on cpu {} (apic {}): {} MiB at {:#x}, workload {} {}",
            p.policy.name,
            p.policy.cpu,
            p.policy.apic_id,
            p.policy.memory >> 20,
            p.host_base,
            p.workload,
            p.args
        );
    }
    *RESULTS.lock() = alloc::vec![None; plan.partitions.len()];
    console::init_queues(cpus.len());
    RUN.call_once(|| Run {
        plan,
        bundle,
        regions,
        channels,
        groups,
        apic_ids: cpus.iter().map(|c| c.apic_id).collect(),
        tsc_khz,
        timer_floor,
        backend,
    });
    Ok(())
}

/// Formats a channel (channel layout v4): the channels crate writes the
/// identity page, which the guests see read-only (`ChannelView::mappings`),
/// with generation 0, or (`again`) the generation after the one it has.
fn format_channel(region: &mut PhysRegion, slots: u32, again: bool) -> Result<(), String> {
    // The generation it has: read through one view of the region, which is
    // dropped before the view that formats it is made.
    let old = region
        .channel_region()
        .and_then(channels::Channel::open)
        .map(|c| c.generation());
    let generation = if again { old.map_or(1, |g| g + 1) } else { 0 };
    region
        .channel_region()
        .and_then(|region| channels::Channel::format_generation(region, slots, generation))
        .map(drop)
        .map_err(|e| format!("cannot be formatted: {e}"))
}

/// The status pages of `plan`'s groups with its member id in each.
fn pages(run: &Run, plan: &PartitionPlan) -> Vec<(StatusPage<'static>, usize)> {
    let page = |g: &GroupInfo| run.groups.get(g.group as usize).map(|&(_, page)| page);
    let pages = plan
        .groups
        .iter()
        .filter_map(|g| Some((page(g)?, g.member_id as usize)));
    pages.collect()
}

/// Sends the membership notification to partition `p`'s core.
fn notify(run: &Run, apic: LocalApic, p: u32) {
    if let Some(target) = run.plan.partitions.get(p as usize) {
        apic.send_fixed(target.policy.apic_id, MEMBERSHIP_VECTOR);
    }
}

/// What a core does once it is up: run its partition if it has one, then
/// watch the run. Returns only when there is no partition run at all.
pub fn core_main(index: u32, apic: LocalApic) {
    let Some(run) = RUN.get() else { return };
    if let Some(plan) = run.plan.partition_on(index) {
        let mut left_guest_us = 0;
        let (end, record) = run_partition(run, plan, apic, &mut left_guest_us);
        finish(run, plan, end, record, left_guest_us);
    }
    watch(run)
}

struct CoreHost<'a> {
    /// The partition's group records and the run's status pages.
    groups: &'a [GroupInfo],
    pages: &'a [(u64, StatusPage<'static>)],
    apic: LocalApic,
    /// The run's periodic timer floor.
    timer_floor: u64,
    /// This core's index (its console queue).
    core: u32,
    /// The partition's console budget.
    console: GuestConsole,
    /// Its emulated devices (compat partitions only).
    platform: hypervisor::compat::Platform,
}

impl HypercallHost for CoreHost<'_> {
    fn membership_ack(&mut self, group: u64, epoch: u64) -> Result<u64, abi::hypercall::Error> {
        let page_of = |g: u32| self.pages.get(g as usize).map(|&(_, page)| page);
        membership::ack(self.groups, page_of, group, epoch)
    }
    fn console_line(&mut self, partition: &str, line: &str) -> bool {
        let queued =
            self.console.admit(instr::rdtsc()) && console::guest_line(self.core, partition, line);
        if !queued {
            if self.console.dropped() {
                console::notice(
                    self.core,
                    &format!(
                        "flotilla: partition {partition} {PARTITION_DROPPING}: over its budget \
                         ({BURST_LINES} at once, {LINES_PER_SEC}/s) or its queue is full; \
                         the report counts them"
                    ),
                );
            }
            // A dropped call still writes a round of the others' lines.
            console::pump();
        }
        queued
    }
    fn send_ipi(&mut self, apic_id: u32, vector: u8) {
        self.apic.send_fixed(apic_id, vector);
    }
}

impl ExitHost for CoreHost<'_> {
    fn host_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        cpu::host_cpuid(leaf, subleaf)
    }
    fn stop_requested(&self) -> bool {
        stop_due()
    }
    fn apic_max_lvt(&self) -> u8 {
        self.apic.max_lvt_entry()
    }
    fn write_lvt(&mut self, msr: u32, value: u32) -> Result<(), CpuRefused> {
        self.apic.write_lvt(msr, value)
    }
    fn write_xcr0(&mut self, value: u64) -> Result<(), CpuRefused> {
        cpu::write_xcr0(value)
    }
    fn timer_floor(&self) -> u64 {
        self.timer_floor
    }
    fn read_timer(&self, msr: u32) -> u32 {
        self.apic.read_timer(msr)
    }
    fn write_timer(&mut self, msr: u32, value: u32) -> Result<(), CpuRefused> {
        self.apic.write_timer(msr, value)
    }
    fn notice(&mut self, line: &str) {
        console::notice(self.core, line);
    }
    fn platform(&mut self) -> &mut hypervisor::compat::Platform {
        &mut self.platform
    }
    fn tsc(&self) -> u64 {
        instr::rdtsc()
    }
}

fn setup_fault(kind: FaultKind, detail: String) -> End {
    End::Faulted(Fault {
        kind,
        rip: 0,
        gpa: None,
        detail,
    })
}

/// Zeroes the partition's RAM, then copies the image and the boot area
/// (of `incarnation`) into it; returns the entry point.
fn load(run: &Run, plan: &PartitionPlan, ram: &PhysRegion, incarnation: u32) -> Result<u64, End> {
    let image = run
        .bundle
        .image(usize::from(plan.kernel))
        .ok_or_else(|| setup_fault(FaultKind::LoadFailed, String::from("kernel image missing")))?;
    // All of the partition's RAM starts zeroed: nothing of the firmware,
    // the boot loader or an earlier use of the frames is visible to it.
    ram.zero(0, ram.len());
    let modules = load_modules(run, plan, ram, &image)?;
    let boot = boot_image::build(
        plan,
        run.plan.partitions.len(),
        run.tsc_khz,
        incarnation,
        modules,
    )
    .map_err(|e| setup_fault(FaultKind::LoadFailed, String::from(e)))?;
    if !ram.write(BOOT_INFO_GPA, &boot) {
        return Err(setup_fault(
            FaultKind::LoadFailed,
            String::from("memory too small for the boot area"),
        ));
    }
    for seg in image.segments() {
        let fits = seg.gpa >= KERNEL_MIN_GPA
            && seg
                .gpa
                .checked_add(seg.mem_len)
                .is_some_and(|e| e <= ram.len());
        if !fits {
            return Err(setup_fault(
                FaultKind::LoadFailed,
                format!(
                    "segment {:#x}+{:#x} does not fit in {} MiB of RAM",
                    seg.gpa,
                    seg.mem_len,
                    ram.len() >> 20
                ),
            ));
        }
        // The rest of the segment (its .bss) is already zero.
        ram.write(seg.gpa, seg.data);
    }
    Ok(image.entry)
}

/// Copies the partition's initrd (to the top of its RAM, above its
/// kernel: `abi::boot::initrd_gpa`) and, for a compat partition, its ACPI
/// tables (to `ACPI_TABLES_GPA`, with this core's x2APIC ID written into
/// the MADT) from the bundle; says where they went.
fn load_modules(
    run: &Run,
    plan: &PartitionPlan,
    ram: &PhysRegion,
    image: &Image<'_>,
) -> Result<BootModules, End> {
    let fault = |why: String| setup_fault(FaultKind::LoadFailed, why);
    let id = u16::try_from(plan.policy.id).unwrap_or(u16::MAX);
    let mut modules = BootModules::default();
    if let Some(initrd) = run.bundle.module(id, MODULE_INITRD) {
        let len = initrd.len() as u64;
        let kernel_end = image
            .segments()
            .map(|s| s.gpa.saturating_add(s.mem_len))
            .max()
            .unwrap_or(KERNEL_MIN_GPA);
        let at = initrd_gpa(ram.len(), len).filter(|&at| at >= kernel_end);
        let at = at.ok_or_else(|| {
            fault(format!(
                "initrd of {len} bytes does not fit above the kernel"
            ))
        })?;
        if !ram.write(at, initrd) {
            return Err(fault(String::from("initrd outside the partition's RAM")));
        }
        modules.initrd = Some((at, len));
    }
    if let Some(tables) = run.bundle.module(id, MODULE_ACPI) {
        let mut tables = tables.to_vec();
        set_x2apic_id(&mut tables, ACPI_TABLES_GPA, plan.policy.apic_id)
            .map_err(|e| fault(e.to_string()))?;
        if !ram.write(ACPI_TABLES_GPA, &tables) {
            return Err(fault(String::from(
                "ACPI tables outside the partition's RAM",
            )));
        }
        modules.rsdp = Some(ACPI_TABLES_GPA);
    }
    Ok(modules)
}

fn nested_tables<F: EntryFormat>(
    run: &Run,
    plan: &PartitionPlan,
    ram: &PhysRegion,
) -> Result<u64, End> {
    let mut mem = HeapTables;
    let err =
        |e: hypervisor::nested_paging::MapError| setup_fault(FaultKind::LoadFailed, e.to_string());
    let mut npt = NestedPageTable::<F>::new(&mut mem).map_err(err)?;
    npt.map(
        &mut mem,
        Mapping {
            gpa: 0,
            hpa: ram.base(),
            len: ram.len(),
            access: Access::RWX,
        },
    )
    .map_err(err)?;
    for ch in &plan.channels {
        for mapping in ch.mappings() {
            npt.map(&mut mem, mapping).map_err(err)?;
        }
    }
    // Each group's status page, read-only: only the hypervisor writes it.
    for g in &plan.groups {
        let &(hpa, _) = run.groups.get(g.group as usize).ok_or_else(|| {
            setup_fault(FaultKind::LoadFailed, String::from("missing status page"))
        })?;
        let (gpa, len, access) = (g.status_gpa, STATUS_PAGE_SIZE as u64, Access::RO);
        npt.map(
            &mut mem,
            Mapping {
                gpa,
                hpa,
                len,
                access,
            },
        )
        .map_err(err)?;
    }
    Ok(npt.root())
}

/// Loads and runs the partition of this core; `left_guest_us` gets the
/// time its guest was left for good (for the stop latency).
fn run_partition(
    run: &Run,
    plan: &PartitionPlan,
    apic: LocalApic,
    left_guest_us: &mut u64,
) -> (End, RunRecord) {
    let mut record = RunRecord::default();
    let end = load_and_run(run, plan, apic, &mut record, left_guest_us);
    (end.unwrap_or_else(|end| end), record)
}

fn load_and_run(
    run: &Run,
    plan: &PartitionPlan,
    apic: LocalApic,
    record: &mut RunRecord,
    left_guest_us: &mut u64,
) -> Result<End, End> {
    let fault = |why: &str| setup_fault(FaultKind::LoadFailed, String::from(why));
    let region = run.regions.get(plan.policy.id as usize);
    let ram = region.and_then(|r| r.lock().take());
    let ram = ram.ok_or_else(|| fault("no memory region"))?;
    let entry = GuestEntry::pvh(load(run, plan, &ram, 0)?, BOOT_INFO_GPA);
    let apic = apic
        .enable_x2apic()
        .ok_or_else(|| fault("this CPU has no x2APIC"))?;
    let core = Core {
        run,
        plan,
        ram: &ram,
        apic,
    };
    let end = match run.backend {
        Backend::Svm { nrip_save } => {
            let ram = ram.reader();
            core.run(Svm { nrip_save, ram }, &entry, record)
        }
        Backend::Vmx => core.run(Vmx::default(), &entry, record),
    };
    // Measured here, before the (possibly slow) console output.
    *left_guest_us = time::now_us();
    apic.stop_timer();
    end
}

/// A partition on its core, ready to run.
struct Core<'a> {
    run: &'a Run,
    plan: &'a PartitionPlan,
    ram: &'a PhysRegion,
    apic: LocalApic,
}

impl Core<'_> {
    /// Sets up the partition's vCPU on `backend` (enable, nested tables,
    /// create) and runs it until its end; after a fault its policy restarts
    /// (`restarts_after`), runs a new vCPU on a reloaded partition.
    fn run<B: VirtBackend>(
        &self,
        mut backend: B,
        entry: &GuestEntry,
        record: &mut RunRecord,
    ) -> Result<End, End> {
        let failed = |e| {
            setup_fault(
                FaultKind::LoadFailed,
                format!("{} setup failed: {e}", B::NAME),
            )
        };
        // Tables first: a core whose tables fail never enters VMX/SVM.
        let root = nested_tables::<B::Tables>(self.run, self.plan, self.ram)?;
        backend.enable().map_err(failed)?;
        let mut entry = *entry;
        loop {
            // A new vCPU per incarnation (a fresh VMCS or VMCB, in its reset
            // state); the old one is never run again. The nested tables stay:
            // the partition's memory and channels are the same.
            let mut vcpu = backend
                .create(&entry, root, &self.plan.ports)
                .map_err(failed)?;
            let deadline = cpu::host_cpuid(1, 0)[2] & abi::regs::cpuid::leaf1_ecx::TSC_DEADLINE;
            if self.plan.policy.compat && deadline != 0 {
                vcpu.pass_tsc_deadline();
            }
            let end = run_loop(self, &mut vcpu, record);
            drop(vcpu);
            let p = self.plan;
            if !restarts_after(&end, p.on_fault, p.max_restarts, record.restarts()) {
                return Ok(end);
            }
            let End::Faulted(fault) = end else {
                return Ok(end);
            };
            let kind = fault.kind;
            record.restarted(fault);
            // Death epoch, the live members' acknowledgements, re-format and
            // reload, alive epoch (docs/replication.md, "Restart, in order").
            let (run, apic, incarnation) = (self.run, LocalApic::this_core(), record.restarts());
            let deadline = time::now_us().saturating_add(membership::ACK_WAIT_US);
            let (loaded, wait) = membership::restart(
                &pages(run, p),
                p.policy.id,
                kind,
                |q| notify(run, apic, q),
                membership::bounded_wait(time::now_us, deadline, stop_due),
                || self.restart(incarnation),
            );
            if wait == membership::AckWait::TimedOut {
                record.ack_timeouts = record.ack_timeouts.saturating_add(1);
            }
            let Some(loaded) = loaded else {
                // Stopping, or a status page stayed locked: end the run.
                STOP.store(true, Ordering::Release);
                return Ok(End::TimedOut);
            };
            entry = loaded?;
            println!(
                "flotilla: partition {} restarted (incarnation {}) after {kind}",
                p.policy.name,
                record.restarts()
            );
        }
    }

    /// Prepares incarnation `incarnation` of the stopped partition: its
    /// channels re-formatted (nothing a peer or the old incarnation left
    /// reaches the new one; a running peer sees empty rings), its RAM
    /// zeroed and its image and boot area loaded again.
    fn restart(&self, incarnation: u32) -> Result<GuestEntry, End> {
        for ch in &self.plan.channels {
            let id = ch.info.channel_id;
            let fault = |e: String| setup_fault(FaultKind::LoadFailed, format!("channel {id} {e}"));
            let region = self.run.channels.get(id as usize);
            let region = region.ok_or_else(|| fault(String::from("missing")))?;
            format_channel(&mut region.lock(), ch.info.slots, true).map_err(fault)?;
        }
        let rip = load(self.run, self.plan, self.ram, incarnation)?;
        self.apic.clear_in_service();
        Ok(GuestEntry::pvh(rip, BOOT_INFO_GPA))
    }
}

/// Runs a partition's vCPU until its end, whatever the backend.
fn run_loop(core: &Core<'_>, vcpu: &mut impl Vcpu, record: &mut RunRecord) -> End {
    let (run, plan, apic) = (core.run, core.plan, core.apic);
    // The timer starts masked, one-shot and stopped, which is what the
    // passed-through count and divide registers of a new vCPU assume
    // (`timer_policy`): whatever the firmware left, nothing periodic runs
    // without the hypervisor having seen its LVT write.
    apic.stop_timer();
    let mut host = CoreHost {
        groups: &plan.groups,
        pages: &run.groups,
        apic,
        timer_floor: run.timer_floor,
        core: plan.policy.cpu,
        console: GuestConsole::new(run.tsc_khz.saturating_mul(1000), instr::rdtsc()),
        platform: hypervisor::compat::Platform::new(run.tsc_khz, instr::rdtsc()),
    };
    loop {
        if stop_due() {
            return End::TimedOut;
        }
        let exit = vcpu.run();
        if let Some(end) = handle_exit(exit, vcpu, &plan.policy, record, core.ram, &mut host) {
            return end;
        }
    }
}

fn finish(run: &Run, plan: &PartitionPlan, end: End, record: RunRecord, left_guest_us: u64) {
    let summary = match &end {
        End::Exited(code) => format!("exited with code {code}"),
        End::Faulted(f) => format!("faulted: {} at rip {:#x}: {}", f.kind, f.rip, f.detail),
        End::TimedOut => String::from("timed out"),
    };
    println!("flotilla: partition {} {summary}", plan.policy.name);
    if let Some((state, fault)) = membership::final_state(&end) {
        let apic = LocalApic::this_core();
        let change = |page: StatusPage<'static>, m| page.member_ended(m, state, fault);
        let published = membership::publish(&pages(run, plan), plan.policy.id, change, |q| {
            notify(run, apic, q);
        });
        if published.is_err() {
            STOP.store(true, Ordering::Release);
        }
    }
    if let (End::TimedOut, Some(deadline)) = (&end, deadline_us()) {
        println!(
            "flotilla: partition {} left its guest {} us after the run's deadline",
            plan.policy.name,
            left_guest_us.saturating_sub(deadline)
        );
    }
    if let Some(slot) = RESULTS.lock().get_mut(plan.policy.id as usize) {
        *slot = Some((end, record));
    }
    let ended = ENDED.fetch_add(1, Ordering::AcqRel) + 1;
    if ended == run.plan.partitions.len() {
        report_and_end(run);
    }
}

fn report_and_end(run: &Run) -> ! {
    // No partition runs any more: whatever they queued comes before the report.
    console::drain_everything();
    let results = RESULTS.lock();
    println!(
        "flotilla: report-begin {{\"version\":{},\"backend\":\"{}\",\"partitions\":{}}}",
        report::REPORT_VERSION,
        run.backend.name(),
        run.plan.partitions.len()
    );
    let mut failed = 0;
    for (plan, result) in run.plan.partitions.iter().zip(results.iter()) {
        let (end, record) = match result {
            Some((end, record)) => (end.clone(), record.clone()),
            None => (End::TimedOut, RunRecord::default()),
        };
        if end != End::Exited(0) {
            failed += 1;
        }
        println!(
            "flotilla: report {}",
            report::partition_json(&plan.policy.name, plan.policy.cpu, &end, &record)
        );
    }
    println!("flotilla: report-end");
    drop(results);
    if failed == 0 {
        run_end::succeed()
    } else {
        run_end::fail(format_args!(
            "{failed} partition(s) did not exit with code 0"
        ))
    }
}

/// How often a watching core re-sends the stop NMI after the deadline: an
/// NMI that lands while its target is between exits (in the hypervisor, not
/// the guest) is absorbed there, so one NMI is not enough.
const STOP_RESEND_US: u64 = 10_000;

/// Waits for the run to end; from the deadline on, asks every core still
/// running a partition to stop (flag + NMI, re-sent until it has ended).
fn watch(run: &Run) -> ! {
    // This core's partition (if it had one) switched the APIC to x2APIC
    // mode, and the guest may have software-disabled it: take the APIC as
    // it is now (re-enabled) rather than a handle from before.
    let apic = LocalApic::this_core();
    let mut next_stop_us = None;
    loop {
        if ENDED.load(Ordering::Acquire) >= run.plan.partitions.len() {
            console::flush();
            instr::halt_forever();
        }
        // Keep the partitions' queued lines flowing while this core is idle.
        console::pump();
        // Unarmed (cores still coming up): nothing to stop yet.
        let Some(deadline) = deadline_us() else {
            core::hint::spin_loop();
            continue;
        };
        let next = *next_stop_us.get_or_insert(deadline);
        if time::now_us() > next {
            STOP.store(true, Ordering::Release);
            next_stop_us = Some(time::now_us() + STOP_RESEND_US);
            let results = RESULTS.lock();
            for (plan, result) in run.plan.partitions.iter().zip(results.iter()) {
                if result.is_none() {
                    if let Some(&apic_id) = run.apic_ids.get(plan.policy.cpu as usize) {
                        apic.send_nmi(apic_id);
                    }
                }
            }
        }
        core::hint::spin_loop();
    }
}
