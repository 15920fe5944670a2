//! The boot structures a partition finds at [`BOOT_INFO_GPA`] (guest boot
//! protocol v3, `docs/boot-protocol.md`): a PVH start info with a memory
//! map, its command line, and its modules: the initrd if it has one, then
//! the Flotilla block. Built as bytes by a pure
//! function so the layout is unit-tested on the host.

use crate::plan::{PartitionPlan, RunPlan};
use abi::boot::{
    name_field, ChannelInfo, FlotillaBlock, GroupInfo, HvmMemmapEntry, HvmModlistEntry,
    HvmStartInfo, BLOCK_MAGIC, BLOCK_MODULE_CMDLINE, BOOT_INFO_GPA, BOOT_INFO_SIZE,
    BOOT_PROTOCOL_VERSION, E820_RAM, E820_RESERVED, KERNEL_MIN_GPA, PVH_START_MAGIC,
    START_INFO_VERSION,
};
use abi::bundle::{Bundle, MODULE_ACPI, MODULE_INITRD};
use abi::compat::{ACPI_TABLES_MAX, LOW_RAM_END};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::mem::size_of;
use zerocopy::{Immutable, IntoBytes};

/// Offset of the module list (at most two modules).
const MODLIST_OFFSET: usize = 0x100;
/// Offset of the modules' command lines.
const MODULE_CMDLINE_OFFSET: usize = 0x180;
/// Offset of the memory map inside the boot area.
const MEMMAP_OFFSET: usize = 0x200;
/// Offset of the Flotilla block.
pub const BLOCK_OFFSET: usize = 0x1000;
/// Offset of the kernel command line (NUL-terminated, at most
/// [`CMDLINE_SPACE`] bytes with the NUL: Linux's x86 `COMMAND_LINE_SIZE`),
/// after the largest block (4496 bytes: all channel and group records, the
/// longest argument text).
const CMDLINE_OFFSET: usize = 0x3000;
const _: () = assert!(
    BLOCK_OFFSET
        + size_of::<FlotillaBlock>()
        + abi::boot::MAX_CHANNELS * size_of::<ChannelInfo>()
        + abi::boot::MAX_GROUPS * size_of::<GroupInfo>()
        + abi::boot::MAX_ARGS
        <= CMDLINE_OFFSET
);
/// Room for the kernel command line.
const CMDLINE_SPACE: usize = 2048;
/// Most memory-map entries (fits between the map and the block).
const MAX_MEMMAP: usize = (BLOCK_OFFSET - MEMMAP_OFFSET) / size_of::<HvmMemmapEntry>();
/// Command line of the initrd module.
const INITRD_MODULE_CMDLINE: &str = "initrd";

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

fn put_all<T: IntoBytes + Immutable>(buf: &mut [u8], at: usize, records: &[T]) {
    put(buf, at, records.as_bytes());
}

fn gpa(offset: usize) -> u64 {
    BOOT_INFO_GPA + offset as u64
}

/// What a partition gets beside its kernel (boot protocol v3): its initrd
/// (guest-physical address and length: PVH module 0, the block module 1)
/// and, for a compat partition, its ACPI tables' RSDP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootModules {
    /// Where its initrd was loaded, and its length.
    pub initrd: Option<(u64, u64)>,
    /// Guest-physical address of its RSDP (`hvm_start_info.rsdp_paddr`).
    pub rsdp: Option<u64>,
}

/// The kernel command line: the layout's (`flotilla` when it gave none),
/// then `flotilla-block=<gpa>`, then for a compat partition `noapic`
/// and `tsc_early_khz=<kHz>` (what a stock Linux needs on this platform).
fn cmdline(plan: &PartitionPlan, tsc_khz: u64) -> String {
    let mut line = String::from(if plan.cmdline.is_empty() {
        "flotilla"
    } else {
        plan.cmdline.as_str()
    });
    let _ = write!(line, " flotilla-block={:#x}", gpa(BLOCK_OFFSET));
    if plan.policy.compat {
        // The platform has no IOAPIC (without `noapic` Linux tears its
        // local APIC down through IA32_APIC_BASE) and no PIT to calibrate
        // the TSC with.
        let _ = write!(line, " noapic tsc_early_khz={tsc_khz}");
    }
    line
}

/// Builds the boot area of `plan` (to be copied to guest-physical
/// [`BOOT_INFO_GPA`]). `partition_count`, `tsc_khz` and `incarnation` (0
/// at the first boot, +1 per restart) go into the block; `modules` says
/// what else was loaded.
pub fn build(
    plan: &PartitionPlan,
    partition_count: usize,
    tsc_khz: u64,
    incarnation: u32,
    modules: BootModules,
) -> Result<Vec<u8>, &'static str> {
    let mut buf = alloc::vec![0u8; usize::try_from(BOOT_INFO_SIZE).map_err(|_| "no boot area")?];
    let u32_of = |n: usize| u32::try_from(n).map_err(|_| "Flotilla block too large");
    let entry = |addr, size, kind| HvmMemmapEntry {
        addr,
        size,
        kind,
        reserved: 0,
    };
    // Memory map: the boot area's page range reserved (for a compat
    // partition only up to the low RAM its kernel's real-mode trampoline
    // needs, and from there to 1 MiB: the ACPI tables), RAM, channels
    // reserved.
    let low = KERNEL_MIN_GPA.min(plan.policy.memory);
    // Low RAM starts where the boot area ends (`abi::compat::LOW_RAM_END`).
    const LOW_RAM_START: u64 = BOOT_INFO_GPA + BOOT_INFO_SIZE;
    let mut map = if plan.policy.compat {
        alloc::vec![
            entry(0, LOW_RAM_START, E820_RESERVED),
            entry(LOW_RAM_START, LOW_RAM_END - LOW_RAM_START, E820_RAM),
            entry(LOW_RAM_END, low.saturating_sub(LOW_RAM_END), E820_RESERVED),
        ]
    } else {
        alloc::vec![entry(0, low, E820_RESERVED)]
    };
    map.push(entry(
        KERNEL_MIN_GPA,
        plan.policy.memory.saturating_sub(KERNEL_MIN_GPA),
        E820_RAM,
    ));
    map.extend(
        plan.channels
            .iter()
            .map(|c| entry(c.info.gpa, c.info.size, E820_RESERVED)),
    );
    if map.len() > MAX_MEMMAP {
        return Err("too many memory-map entries");
    }
    put_all(&mut buf, MEMMAP_OFFSET, &map);

    // Block, channel records, group records, argument text.
    let channels_offset = size_of::<FlotillaBlock>();
    let groups_offset = channels_offset + plan.channels.len() * size_of::<ChannelInfo>();
    let args_offset = groups_offset + plan.groups.len() * size_of::<GroupInfo>();
    let block_size = args_offset + plan.args.len();
    if BLOCK_OFFSET + block_size > CMDLINE_OFFSET {
        return Err("Flotilla block too large");
    }
    let block = FlotillaBlock {
        magic: BLOCK_MAGIC,
        version: BOOT_PROTOCOL_VERSION,
        size: u32_of(block_size)?,
        partition_id: plan.policy.id,
        cpu: plan.policy.cpu,
        apic_id: plan.policy.apic_id,
        partition_count: u32_of(partition_count)?,
        memory: plan.policy.memory,
        tsc_khz,
        name: name_field(&plan.policy.name).ok_or("name too long")?,
        workload: name_field(&plan.workload).ok_or("workload name too long")?,
        channel_count: u32_of(plan.channels.len())?,
        channels_offset: u32_of(channels_offset)?,
        args_offset: u32_of(args_offset)?,
        args_len: u32_of(plan.args.len())?,
        incarnation,
        group_count: u32_of(plan.groups.len())?,
        groups_offset: u32_of(groups_offset)?,
        reserved: 0,
    };
    put_all(&mut buf, BLOCK_OFFSET, &[block]);
    let infos: Vec<ChannelInfo> = plan.channels.iter().map(|c| c.info).collect();
    put_all(&mut buf, BLOCK_OFFSET + channels_offset, &infos);
    put_all(&mut buf, BLOCK_OFFSET + groups_offset, &plan.groups);
    put(&mut buf, BLOCK_OFFSET + args_offset, plan.args.as_bytes());

    // Module list: the initrd (if any), then the block; the command lines
    // NUL-terminated (the PVH start info's C strings) after it.
    let block_cmdline = MODULE_CMDLINE_OFFSET + INITRD_MODULE_CMDLINE.len() + 1;
    // A compat partition always has module 0, empty without an initrd:
    // Linux takes module 0 as its initrd, and must not take the block.
    let mut list = Vec::new();
    if modules.initrd.is_some() || plan.policy.compat {
        let (paddr, size) = modules.initrd.unwrap_or((0, 0));
        list.push(HvmModlistEntry {
            paddr,
            size,
            cmdline_paddr: gpa(MODULE_CMDLINE_OFFSET),
            reserved: 0,
        });
    }
    list.push(HvmModlistEntry {
        paddr: gpa(BLOCK_OFFSET),
        size: block_size as u64,
        cmdline_paddr: gpa(block_cmdline),
        reserved: 0,
    });
    put_all(&mut buf, MODLIST_OFFSET, &list);
    put(
        &mut buf,
        MODULE_CMDLINE_OFFSET,
        INITRD_MODULE_CMDLINE.as_bytes(),
    );
    put(&mut buf, block_cmdline, BLOCK_MODULE_CMDLINE.as_bytes());
    let line = cmdline(plan, tsc_khz);
    if line.len() >= CMDLINE_SPACE {
        return Err("command line too long");
    }
    put(&mut buf, CMDLINE_OFFSET, line.as_bytes());

    // The PVH start info itself (rsdp 0 but for a compat partition).
    let start = HvmStartInfo {
        magic: PVH_START_MAGIC,
        version: START_INFO_VERSION,
        flags: 0,
        nr_modules: u32_of(list.len())?,
        modlist_paddr: gpa(MODLIST_OFFSET),
        cmdline_paddr: gpa(CMDLINE_OFFSET),
        rsdp_paddr: modules.rsdp.unwrap_or(0),
        memmap_paddr: gpa(MEMMAP_OFFSET),
        memmap_entries: u32_of(map.len())?,
        reserved: 0,
    };
    put_all(&mut buf, 0, &[start]);
    Ok(buf)
}

/// Whether `bundle`'s modules are exactly what `plan` needs: an initrd for
/// each partition whose layout gives one, ACPI tables (at most
/// `ACPI_TABLES_MAX` bytes) for each compat partition, nothing else.
pub fn check_modules(plan: &RunPlan, bundle: &Bundle<'_>) -> Result<(), String> {
    let mut expected = 0;
    for p in &plan.partitions {
        let id = u16::try_from(p.policy.id).unwrap_or(u16::MAX);
        let initrd = bundle.module(id, MODULE_INITRD).is_some();
        let acpi = bundle.module(id, MODULE_ACPI);
        if initrd != p.initrd || acpi.is_some() != p.policy.compat {
            return Err(format!(
                "partition {}'s initrd or ACPI tables in the bundle disagree with the manifest",
                p.policy.name
            ));
        }
        if acpi.is_some_and(|t| t.len() as u64 > ACPI_TABLES_MAX) {
            return Err(format!(
                "partition {}'s ACPI tables are too large",
                p.policy.name
            ));
        }
        expected += usize::from(p.initrd) + usize::from(p.policy.compat);
    }
    if bundle.module_count() != expected {
        return Err(String::from("the bundle has modules for no partition"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Partition;
    use crate::plan::ChannelView;
    use crate::platform::boot_info::{self, RegionKind};
    use crate::platform::memory::FakeMemory;
    use alloc::string::ToString;
    use alloc::vec;
    use zerocopy::FromZeros;

    fn sample() -> PartitionPlan {
        PartitionPlan {
            policy: Partition {
                id: 2,
                name: "pong".to_string(),
                cpu: 3,
                apic_id: 3,
                memory: 32 << 20,
                compat: false,
                channels: vec![],
            },
            host_base: 0x800_0000,
            kernel: 0,
            workload: "pingpong".to_string(),
            args: "rounds=100".to_string(),
            ports: vec![],
            channels: vec![ChannelView {
                info: ChannelInfo {
                    gpa: abi::boot::CHANNEL_WINDOW_GPA,
                    size: 0x3000,
                    channel_id: 0,
                    slots: 64,
                    side: 1,
                    notify: 1,
                    vector: 0x41,
                    peer_vector: 0x40,
                    peer_apic_id: 1,
                    peer_partition: 0,
                    peer_name: name_field("ping").expect("short"),
                },
                host_base: 0x1000_0000,
            }],
            on_fault: partition_config::manifest::OnFault::Stop,
            max_restarts: 0,
            cmdline: String::new(),
            initrd: false,
            groups: vec![],
        }
    }

    /// `sample` as a compat partition with a command line and an initrd.
    fn compat_sample() -> (PartitionPlan, BootModules) {
        let mut plan = sample();
        plan.policy.compat = true;
        plan.cmdline = "console=ttyS0 quiet".to_string();
        plan.initrd = true;
        let modules = BootModules {
            initrd: Some((0x1f0_0000, 0x1_2345)),
            rsdp: Some(abi::compat::ACPI_TABLES_GPA),
        };
        (plan, modules)
    }

    #[test]
    fn a_compat_partition_gets_low_ram_its_initrd_first_acpi_and_its_cmdline() {
        let (plan, modules) = compat_sample();
        let bytes = build(&plan, 4, 2_000_000, 0, modules).expect("fits");
        let mut mem = FakeMemory::new(BOOT_INFO_GPA, bytes.len());
        mem.write(BOOT_INFO_GPA, &bytes);
        let info = boot_info::parse_pvh(&mem, BOOT_INFO_GPA).expect("valid PVH start info");
        assert_eq!(
            info.cmdline,
            "console=ttyS0 quiet flotilla-block=0x2000 noapic tsc_early_khz=2000000"
        );
        assert_eq!(info.modules.len(), 2);
        assert_eq!(
            (info.modules[0].base, info.modules[0].len),
            (0x1f0_0000, 0x1_2345)
        );
        assert_eq!(info.modules[0].cmdline, "initrd");
        assert_eq!(info.modules[1].base, 0x2000);
        assert_eq!(info.modules[1].cmdline, "flotilla-block");
        let kinds: Vec<(u64, u64, RegionKind)> = info
            .memory
            .iter()
            .map(|r| (r.base, r.end(), r.kind))
            .collect();
        assert_eq!(
            kinds[..4],
            [
                (0, 0x1_0000, RegionKind::Reserved),
                (0x1_0000, abi::compat::LOW_RAM_END, RegionKind::Usable),
                (abi::compat::LOW_RAM_END, 0x10_0000, RegionKind::Reserved),
                (0x10_0000, 32 << 20, RegionKind::Usable),
            ]
        );
        let rsdp = u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes"));
        assert_eq!(rsdp, abi::compat::ACPI_TABLES_GPA);
        // The block is where the command line says, and parses as one.
        assert_eq!(&bytes[BLOCK_OFFSET..BLOCK_OFFSET + 8], b"FLOTBLK1");
    }

    #[test]
    fn a_compat_partition_without_initrd_gets_an_empty_module_0() {
        let (mut plan, _) = compat_sample();
        plan.initrd = false;
        let bytes = build(&plan, 4, 2_000_000, 0, BootModules::default()).expect("fits");
        let nr_modules = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
        assert_eq!(nr_modules, 2);
        let module0 = &bytes[MODLIST_OFFSET..MODLIST_OFFSET + 16];
        assert!(module0.iter().all(|&b| b == 0), "paddr and size 0");
        let block = u64::from_le_bytes(bytes[MODLIST_OFFSET + 32..][..8].try_into().expect("8"));
        assert_eq!(block, 0x2000);
    }

    #[test]
    fn the_bundles_modules_must_match_the_plan() {
        use abi::bundle::build::{encode_with_modules, ModuleSpec};
        let (compat, _) = compat_sample();
        let mut plain = sample();
        plain.policy.id = 3;
        let plan = |partitions| RunPlan {
            partitions,
            groups: vec![],
            channels: vec![],
            timeout_secs: 1,
        };
        let spec = |kind, partition| ModuleSpec {
            kind,
            partition,
            blob: 0,
        };
        let check = |plan: &RunPlan, modules: &[ModuleSpec], blob: &[u8]| {
            let bytes = encode_with_modules(b"m", &[], modules, &[blob]);
            check_modules(plan, &Bundle::parse(&bytes).expect("bundle"))
        };
        let both = [spec(MODULE_INITRD, 2), spec(MODULE_ACPI, 2)];
        let run = plan(vec![compat.clone(), plain.clone()]);
        assert_eq!(check(&run, &both, b"x"), Ok(()));
        // Missing ACPI tables; an extra initrd for the plain partition; a
        // module for a partition that is not there; tables too large.
        assert!(check(&run, &both[..1], b"x").is_err());
        let extra = [both[0], both[1], spec(MODULE_INITRD, 3)];
        assert!(check(&run, &extra, b"x").is_err());
        let stray = [both[0], both[1], spec(MODULE_INITRD, 9)];
        assert!(check(&run, &stray, b"x").is_err());
        let huge = vec![0u8; usize::try_from(ACPI_TABLES_MAX).expect("64 KiB") + 1];
        assert!(check(&run, &both, &huge).is_err());
        assert_eq!(check(&plan(vec![plain]), &[], b""), Ok(()));
    }

    #[test]
    fn a_command_line_too_long_for_linux_is_refused() {
        let (mut plan, modules) = compat_sample();
        plan.cmdline = "x".repeat(2040);
        assert_eq!(
            build(&plan, 4, 2_000_000, 0, modules),
            Err("command line too long")
        );
        plan.cmdline = "x".repeat(1024);
        assert!(build(&plan, 4, 2_000_000, 0, modules).is_ok());
    }

    #[test]
    fn start_info_parses_back_with_the_hypervisors_own_pvh_parser() {
        let bytes = build(&sample(), 4, 2_000_000, 0, BootModules::default()).expect("fits");
        let mut mem = FakeMemory::new(BOOT_INFO_GPA, bytes.len());
        mem.write(BOOT_INFO_GPA, &bytes);
        let info = boot_info::parse_pvh(&mem, BOOT_INFO_GPA).expect("valid PVH start info");
        assert_eq!(info.cmdline, "flotilla flotilla-block=0x2000");
        assert_eq!(info.modules.len(), 1);
        assert_eq!(info.modules[0].base, BOOT_INFO_GPA + BLOCK_OFFSET as u64);
        assert_eq!(info.modules[0].cmdline, "flotilla-block");
        assert_eq!(info.memory.len(), 3);
        assert_eq!(info.memory[1].base, 0x10_0000);
        assert_eq!(info.memory[1].end(), 32 << 20);
        assert_eq!(info.memory[1].kind, RegionKind::Usable);
        assert_eq!(info.memory[2].kind, RegionKind::Reserved);
    }

    #[test]
    fn block_fields_are_where_the_protocol_says() {
        // Offsets from docs/boot-protocol.md section 4.
        let bytes = build(&sample(), 4, 2_000_000, 7, BootModules::default()).expect("fits");
        let block = &bytes[BLOCK_OFFSET..];
        assert_eq!(&block[..8], b"FLOTBLK1");
        let u32_at = |o: usize| u32::from_le_bytes(block[o..o + 4].try_into().expect("4 bytes"));
        assert_eq!(u32_at(8), 3, "boot protocol version");
        assert_eq!(u32_at(16), 2);
        assert_eq!(u32_at(112), 1);
        assert_eq!(u32_at(128), 7, "incarnation");
        let args_at = u32_at(120) as usize;
        let args_len = u32_at(124) as usize;
        assert_eq!(&block[args_at..args_at + args_len], b"rounds=100");
        let ch = u32_at(116) as usize;
        assert_eq!(u32_at(ch + 32), 0x41);
        assert_eq!(&block[ch + 48..][..4], b"ping");
        assert_eq!(u32_at(12) as usize, args_at + args_len);
    }

    #[test]
    fn the_largest_block_and_a_compat_command_line_fit_together() {
        let (mut plan, modules) = compat_sample();
        let view = plan.channels[0].clone();
        plan.channels = vec![view; abi::boot::MAX_CHANNELS];
        plan.groups = vec![GroupInfo::new_zeroed(); abi::boot::MAX_GROUPS];
        plan.args = "a".repeat(abi::boot::MAX_ARGS);
        plan.cmdline = "x".repeat(1024);
        let bytes = build(&plan, 4, 2_000_000, 0, modules).expect("fits");
        let block = &bytes[BLOCK_OFFSET..];
        let size = u32::from_le_bytes(block[12..16].try_into().expect("4 bytes")) as usize;
        assert_eq!(size, 4496);
        assert_eq!(&block[size - 1..size], b"a");
        assert_eq!(&bytes[CMDLINE_OFFSET..CMDLINE_OFFSET + 4], b"xxxx");
    }
}
