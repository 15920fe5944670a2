//! The boot structures a partition finds at [`BOOT_INFO_GPA`] (guest boot
//! protocol v2, `docs/boot-protocol.md`): a PVH start info with a memory
//! map and one module, the Flotilla block. Built as bytes by a pure
//! function so the layout is unit-tested on the host.

use crate::plan::PartitionPlan;
use abi::boot::{
    name_field, ChannelInfo, FlotillaBlock, HvmMemmapEntry, HvmModlistEntry, HvmStartInfo,
    BLOCK_MAGIC, BLOCK_MODULE_CMDLINE, BOOT_INFO_GPA, BOOT_INFO_SIZE, BOOT_PROTOCOL_VERSION,
    E820_RAM, E820_RESERVED, KERNEL_MIN_GPA, PVH_START_MAGIC, START_INFO_VERSION,
};
use alloc::vec::Vec;
use core::mem::size_of;
use zerocopy::{Immutable, IntoBytes};

/// Offset of the memory map inside the boot area.
const MEMMAP_OFFSET: usize = 0x400;
/// Offset of the module list.
const MODLIST_OFFSET: usize = 0x100;
/// Offset of the kernel command line.
const CMDLINE_OFFSET: usize = 0x200;
/// Offset of the module's command line.
const MODULE_CMDLINE_OFFSET: usize = 0x300;
/// Offset of the Flotilla block.
pub const BLOCK_OFFSET: usize = 0x1000;
/// Most memory-map entries (fits between the map and the block).
const MAX_MEMMAP: usize = (BLOCK_OFFSET - MEMMAP_OFFSET) / size_of::<HvmMemmapEntry>();

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

fn put_all<T: IntoBytes + Immutable>(buf: &mut [u8], at: usize, records: &[T]) {
    put(buf, at, records.as_bytes());
}

fn gpa(offset: usize) -> u64 {
    BOOT_INFO_GPA + offset as u64
}

/// Builds the boot area of `plan` (to be copied to guest-physical
/// [`BOOT_INFO_GPA`]). `partition_count`, `tsc_khz` and `incarnation` (0
/// at the first boot, +1 per restart) go into the block.
pub fn build(
    plan: &PartitionPlan,
    partition_count: usize,
    tsc_khz: u64,
    incarnation: u32,
) -> Result<Vec<u8>, &'static str> {
    let mut buf = alloc::vec![0u8; usize::try_from(BOOT_INFO_SIZE).map_err(|_| "no boot area")?];
    let u32_of = |n: usize| u32::try_from(n).map_err(|_| "Flotilla block too large");
    let entry = |addr, size, kind| HvmMemmapEntry {
        addr,
        size,
        kind,
        reserved: 0,
    };
    // Memory map: the boot area's page range reserved, RAM, channels reserved.
    let mut map = alloc::vec![
        entry(0, KERNEL_MIN_GPA.min(plan.policy.memory), E820_RESERVED),
        entry(
            KERNEL_MIN_GPA,
            plan.policy.memory.saturating_sub(KERNEL_MIN_GPA),
            E820_RAM
        ),
    ];
    map.extend(
        plan.channels
            .iter()
            .map(|c| entry(c.info.gpa, c.info.size, E820_RESERVED)),
    );
    if map.len() > MAX_MEMMAP {
        return Err("too many memory-map entries");
    }
    put_all(&mut buf, MEMMAP_OFFSET, &map);

    // Block, channel records, argument text.
    let channels_offset = size_of::<FlotillaBlock>();
    let args_offset = channels_offset + plan.channels.len() * size_of::<ChannelInfo>();
    let block_size = args_offset + plan.args.len();
    if BLOCK_OFFSET + block_size > buf.len() {
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
        reserved: 0,
    };
    put_all(&mut buf, BLOCK_OFFSET, &[block]);
    let infos: Vec<ChannelInfo> = plan.channels.iter().map(|c| c.info).collect();
    put_all(&mut buf, BLOCK_OFFSET + channels_offset, &infos);
    put(&mut buf, BLOCK_OFFSET + args_offset, plan.args.as_bytes());

    // Module list: one module, the block; then the command lines.
    let module = HvmModlistEntry {
        paddr: gpa(BLOCK_OFFSET),
        size: block_size as u64,
        cmdline_paddr: gpa(MODULE_CMDLINE_OFFSET),
        reserved: 0,
    };
    put_all(&mut buf, MODLIST_OFFSET, &[module]);
    // Both strings are NUL-terminated (the PVH start info's C strings).
    let module_cmdline = BLOCK_MODULE_CMDLINE.as_bytes();
    put(&mut buf, MODULE_CMDLINE_OFFSET, module_cmdline);
    put(&mut buf, MODULE_CMDLINE_OFFSET + module_cmdline.len(), &[0]);
    put(&mut buf, CMDLINE_OFFSET, b"flotilla\0");

    // The PVH start info itself (partitions see no ACPI: rsdp 0).
    let start = HvmStartInfo {
        magic: PVH_START_MAGIC,
        version: START_INFO_VERSION,
        flags: 0,
        nr_modules: 1,
        modlist_paddr: gpa(MODLIST_OFFSET),
        cmdline_paddr: gpa(CMDLINE_OFFSET),
        rsdp_paddr: 0,
        memmap_paddr: gpa(MEMMAP_OFFSET),
        memmap_entries: u32_of(map.len())?,
        reserved: 0,
    };
    put_all(&mut buf, 0, &[start]);
    Ok(buf)
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
        }
    }

    #[test]
    fn start_info_parses_back_with_the_hypervisors_own_pvh_parser() {
        let bytes = build(&sample(), 4, 2_000_000, 0).expect("fits");
        let mut mem = FakeMemory::new(BOOT_INFO_GPA, bytes.len());
        mem.write(BOOT_INFO_GPA, &bytes);
        let info = boot_info::parse_pvh(&mem, BOOT_INFO_GPA).expect("valid PVH start info");
        assert_eq!(info.cmdline, "flotilla");
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
        let bytes = build(&sample(), 4, 2_000_000, 7).expect("fits");
        let block = &bytes[BLOCK_OFFSET..];
        assert_eq!(&block[..8], b"FLOTBLK1");
        let u32_at = |o: usize| u32::from_le_bytes(block[o..o + 4].try_into().expect("4 bytes"));
        assert_eq!(u32_at(8), 2, "boot protocol version");
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
}
