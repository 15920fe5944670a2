//! The guest boot protocol, version 3 (`docs/boot-protocol.md`).
//!
//! A partition's kernel starts like a PVH guest: 32-bit protected mode,
//! paging off, flat 4 GiB code and data segments, interrupts off, `ebx` =
//! guest-physical address of an `hvm_start_info` (version 1, with a memory
//! map). Its first module (`modlist[0]`, command line `flotilla-block`) is
//! the [`FlotillaBlock`]: who the partition is and what it may talk to. A
//! kernel that ignores the module still boots as a plain PVH guest.
//!
//! Guest-physical layout of every partition:
//! - `0 .. memory`: the partition's RAM; the first 64 KiB hold the boot
//!   structures ([`BOOT_INFO_GPA`] ..) and are reported reserved;
//! - [`CHANNEL_WINDOW_GPA`] .. [`GROUP_STATUS_GPA`]: the partition's channel
//!   regions, each at the address its [`ChannelInfo`] gives;
//! - [`GROUP_STATUS_GPA`] ..: the status page of each replication group the
//!   partition is a member of (read-only), at its [`GroupInfo`]'s
//!   `status_gpa`;
//! - nothing else: any other access is a contained fault.
//!
//! The records here are the bytes themselves: `repr(C)` without padding,
//! derived with zerocopy, written with `as_bytes` by the hypervisor and read
//! with `read_from_prefix` (a copy, so any alignment works) by kernels. Their
//! fields are native integers, which is the documented little-endian layout
//! on x86_64, the only architecture that runs partitions; the compile-time
//! asserts below pin every size and offset to the tables of the doc.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Version of this protocol; bumped with any layout change.
pub const BOOT_PROTOCOL_VERSION: u32 = 3;

/// `hvm_start_info.magic` (Xen `arch-x86/hvm/start_info.h`).
pub const PVH_START_MAGIC: u32 = 0x336e_c578;
/// The `hvm_start_info` version the hypervisor writes (1: with a memory map).
pub const START_INFO_VERSION: u32 = 1;
/// Command line of module 0, the Flotilla block.
pub const BLOCK_MODULE_CMDLINE: &str = "flotilla-block";
/// Memory-map type of usable RAM (E820 numbering).
pub const E820_RAM: u32 = 1;
/// Memory-map type of reserved memory.
pub const E820_RESERVED: u32 = 2;

/// Guest-physical address of the boot structures (start info, memory map,
/// module list, command line, Flotilla block).
pub const BOOT_INFO_GPA: u64 = 0x1000;
/// Bytes reserved for the boot structures.
pub const BOOT_INFO_SIZE: u64 = 0xf000;
/// Lowest guest-physical address a kernel image may be loaded at.
pub const KERNEL_MIN_GPA: u64 = 0x10_0000;
/// Where a partition's initrd of `len` bytes goes in its `memory` bytes of
/// RAM: the highest 4 KiB-aligned address it fits at, as boot loaders put
/// it; `None` when it does not fit above [`KERNEL_MIN_GPA`]. The host tools
/// check a layout's initrd against the kernel's end with it, and the
/// hypervisor loads the initrd there.
#[must_use]
pub const fn initrd_gpa(memory: u64, len: u64) -> Option<u64> {
    match memory.checked_sub(len) {
        Some(top) if top & !0xfff >= KERNEL_MIN_GPA => Some(top & !0xfff),
        _ => None,
    }
}

/// Guest-physical base of the channel window (above any partition's RAM,
/// below the local APIC page).
pub const CHANNEL_WINDOW_GPA: u64 = 0xc000_0000;
/// Guest-physical address of the status pages of the partition's groups:
/// group record `k` of the block has its page at `GROUP_STATUS_GPA + k *
/// 4096`. It is also the end of the channel window (below the top 32 MiB
/// of the first 4 GiB, which kernels usually map uncached for MMIO).
pub const GROUP_STATUS_GPA: u64 = 0xfd00_0000;
/// Most groups a partition is a member of (group records in the block).
pub const MAX_GROUPS: usize = 4;
/// The vector the hypervisor notifies a group's members on after every
/// change of its status page: above the channel vectors (`0x40..=0xbf`),
/// below the spurious vector. Delivered to the member's IDT without a VM
/// exit, like a channel IPI; the member signals EOI as for any interrupt.
pub const MEMBERSHIP_VECTOR: u8 = 0xf0;

/// Magic at the start of the Flotilla block.
pub const BLOCK_MAGIC: [u8; 8] = *b"FLOTBLK1";
/// Fixed size of names in the block (NUL-padded UTF-8).
pub const NAME_LEN: usize = 32;
/// Most channels a partition may have.
pub const MAX_CHANNELS: usize = 32;
/// Most bytes of workload arguments.
pub const MAX_ARGS: usize = 1024;

/// How a channel endpoint is told about new messages.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// The receiver polls.
    Poll = 0,
    /// The sender raises an IPI (when the receiver said it waits).
    Ipi = 1,
}

/// One channel as one of its endpoints sees it (80 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ChannelInfo {
    /// Guest-physical address of the channel region (page-aligned).
    pub gpa: u64,
    /// Size of the region in bytes.
    pub size: u64,
    /// Channel index in the layout.
    pub channel_id: u32,
    /// Slots per direction.
    pub slots: u32,
    /// 0: this partition is endpoint A (first in `between`), 1: B.
    pub side: u32,
    /// [`Notify`] as a number.
    pub notify: u32,
    /// Vector this partition receives the channel's IPIs on.
    pub vector: u32,
    /// Vector to send to the peer.
    pub peer_vector: u32,
    /// The peer's x2APIC ID.
    pub peer_apic_id: u32,
    /// The peer's partition index.
    pub peer_partition: u32,
    /// The peer's name (NUL-padded).
    pub peer_name: [u8; NAME_LEN],
}

/// One replication group the partition is a member of, as the block
/// describes it (192 bytes). Its status page (`crate::group`) is mapped
/// read-only at `status_gpa`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct GroupInfo {
    /// The group's index in the layout (the argument of `MEMBERSHIP_ACK`).
    pub group: u32,
    /// This partition's member id in the group (its rank by partition
    /// index among the members).
    pub member_id: u32,
    /// Members in the group (2..=32).
    pub member_count: u32,
    /// [`MEMBERSHIP_VECTOR`]: the vector the group's notifications come on.
    pub vector: u32,
    /// Bit `p` set for each member partition `p` (member `i` is the `i`-th
    /// set bit).
    pub members: u64,
    /// Guest-physical address of the group's status page (4 KiB,
    /// read-only).
    pub status_gpa: u64,
    /// The group's name (NUL-padded).
    pub name: [u8; NAME_LEN],
    /// The group's links, from the layout: bit `j` of `adjacency[i]` set
    /// when members `i` and `j` share a channel (symmetric, no bit `i` in
    /// `adjacency[i]`, entries from `member_count` on zero). Every member
    /// gets the same table, so all compute the same tree from it.
    pub adjacency: [u32; 32],
}

/// The Flotilla block: the partition's identity, its channels, its groups
/// and its workload. Followed in memory by `channel_count` [`ChannelInfo`]
/// records at `channels_offset`, `group_count` [`GroupInfo`] records at
/// `groups_offset` and the argument text at `args_offset` (all offsets from
/// the block's start). The fixed part is 144 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct FlotillaBlock {
    /// [`BLOCK_MAGIC`].
    pub magic: [u8; 8],
    /// [`BOOT_PROTOCOL_VERSION`].
    pub version: u32,
    /// Total size in bytes, records and argument text included.
    pub size: u32,
    /// Partition index in the layout.
    pub partition_id: u32,
    /// Core index the partition runs on.
    pub cpu: u32,
    /// The core's x2APIC ID.
    pub apic_id: u32,
    /// Number of partitions in the layout.
    pub partition_count: u32,
    /// RAM size in bytes (guest-physical `0..memory`).
    pub memory: u64,
    /// TSC frequency measured by the hypervisor, in kHz.
    pub tsc_khz: u64,
    /// Partition name (NUL-padded).
    pub name: [u8; NAME_LEN],
    /// Workload name (NUL-padded).
    pub workload: [u8; NAME_LEN],
    /// Number of [`ChannelInfo`] records.
    pub channel_count: u32,
    /// Offset of the first record.
    pub channels_offset: u32,
    /// Offset of the argument text: `key=value` words separated by spaces
    /// (values: decimal integers, `true`/`false`, or strings without spaces).
    pub args_offset: u32,
    /// Length of the argument text.
    pub args_len: u32,
    /// Which incarnation of the partition this is: 0 at its first boot, +1
    /// per restart (`on_fault = "restart"`).
    pub incarnation: u32,
    /// Number of [`GroupInfo`] records (at most [`MAX_GROUPS`]).
    pub group_count: u32,
    /// Offset of the first group record.
    pub groups_offset: u32,
    /// Zero.
    pub reserved: u32,
}

/// `hvm_start_info`, version 1 (56 bytes), at `ebx` on entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct HvmStartInfo {
    /// [`PVH_START_MAGIC`].
    pub magic: u32,
    /// [`START_INFO_VERSION`]; version 0 has no memory-map fields.
    pub version: u32,
    /// Zero.
    pub flags: u32,
    /// Entries in the module list.
    pub nr_modules: u32,
    /// Address of the module list ([`HvmModlistEntry`] records).
    pub modlist_paddr: u64,
    /// Address of the NUL-terminated command line, or 0.
    pub cmdline_paddr: u64,
    /// Address of the ACPI RSDP, or 0 (not part of the partition contract).
    pub rsdp_paddr: u64,
    /// Address of the memory map ([`HvmMemmapEntry`] records).
    pub memmap_paddr: u64,
    /// Entries in the memory map.
    pub memmap_entries: u32,
    /// Zero.
    pub reserved: u32,
}

/// `hvm_modlist_entry` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct HvmModlistEntry {
    /// Address of the module's bytes.
    pub paddr: u64,
    /// Its length in bytes.
    pub size: u64,
    /// Address of its NUL-terminated command line, or 0.
    pub cmdline_paddr: u64,
    /// Zero.
    pub reserved: u64,
}

/// `hvm_memmap_table_entry` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct HvmMemmapEntry {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// E820 type ([`E820_RAM`], [`E820_RESERVED`], ...).
    pub kind: u32,
    /// Zero.
    pub reserved: u32,
}

/// Checks a record's size and each field's offset against the doc's table.
macro_rules! layout {
    ($t:ty, $size:expr, { $($field:ident: $at:expr),* $(,)? }) => {
        const _: () = assert!(core::mem::size_of::<$t>() == $size);
        $(const _: () = assert!(core::mem::offset_of!($t, $field) == $at);)*
    };
}

layout!(HvmStartInfo, 56, {
    magic: 0, version: 4, flags: 8, nr_modules: 12, modlist_paddr: 16,
    cmdline_paddr: 24, rsdp_paddr: 32, memmap_paddr: 40, memmap_entries: 48, reserved: 52,
});
layout!(HvmModlistEntry, 32, { paddr: 0, size: 8, cmdline_paddr: 16, reserved: 24 });
layout!(HvmMemmapEntry, 24, { addr: 0, size: 8, kind: 16, reserved: 20 });
layout!(FlotillaBlock, 144, {
    magic: 0, version: 8, size: 12, partition_id: 16, cpu: 20, apic_id: 24,
    partition_count: 28, memory: 32, tsc_khz: 40, name: 48, workload: 80,
    channel_count: 112, channels_offset: 116, args_offset: 120, args_len: 124,
    incarnation: 128, group_count: 132, groups_offset: 136, reserved: 140,
});
layout!(GroupInfo, 192, {
    group: 0, member_id: 4, member_count: 8, vector: 12, members: 16, status_gpa: 24,
    name: 32, adjacency: 64,
});
layout!(ChannelInfo, 80, {
    gpa: 0, size: 8, channel_id: 16, slots: 20, side: 24, notify: 28, vector: 32,
    peer_vector: 36, peer_apic_id: 40, peer_partition: 44, peer_name: 48,
});

/// The name stored in a NUL-padded field, up to the first NUL.
pub fn name_str(field: &[u8; NAME_LEN]) -> &str {
    let end = field.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    core::str::from_utf8(&field[..end]).unwrap_or("")
}

/// `name` as a NUL-padded field; `None` if longer than [`NAME_LEN`].
pub fn name_field(name: &str) -> Option<[u8; NAME_LEN]> {
    let bytes = name.as_bytes();
    if bytes.len() > NAME_LEN {
        return None;
    }
    let mut field = [0u8; NAME_LEN];
    field[..bytes.len()].copy_from_slice(bytes);
    Some(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initrd_goes_at_the_top_of_ram_page_aligned() {
        assert_eq!(initrd_gpa(64 << 20, 0x1000), Some((64 << 20) - 0x1000));
        assert_eq!(initrd_gpa(64 << 20, 0x1001), Some((64 << 20) - 0x2000));
        assert_eq!(initrd_gpa(64 << 20, (63 << 20) + 1), None);
        assert_eq!(initrd_gpa(64 << 20, 63 << 20), Some(KERNEL_MIN_GPA));
        assert_eq!(initrd_gpa(1 << 20, 1 << 30), None);
    }

    #[test]
    fn names_round_trip_and_too_long_is_refused() {
        let f = name_field("ping").expect("short name");
        assert_eq!(name_str(&f), "ping");
        assert!(name_field(&"x".repeat(33)).is_none());
        assert_eq!(
            name_str(&name_field(&"y".repeat(32)).expect("32 fits")),
            "y".repeat(32)
        );
    }

    /// Little-endian bytes of `v` at `at` in `b` (the doc's offsets).
    fn put(b: &mut [u8], at: usize, v: &[u8]) {
        b[at..at + v.len()].copy_from_slice(v);
    }

    #[test]
    fn start_info_records_sit_at_the_documented_offsets() {
        let mut raw = [0u8; 56];
        put(&mut raw, 0, &PVH_START_MAGIC.to_le_bytes());
        put(&mut raw, 4, &1u32.to_le_bytes());
        put(&mut raw, 12, &3u32.to_le_bytes());
        put(&mut raw, 16, &0x1100u64.to_le_bytes());
        put(&mut raw, 24, &0x1200u64.to_le_bytes());
        put(&mut raw, 32, &0xf_5000u64.to_le_bytes());
        put(&mut raw, 40, &0x1400u64.to_le_bytes());
        put(&mut raw, 48, &7u32.to_le_bytes());
        let si = HvmStartInfo::read_from_bytes(&raw[..]).expect("56 bytes");
        assert_eq!(
            (si.magic, si.version, si.flags, si.nr_modules),
            (PVH_START_MAGIC, 1, 0, 3)
        );
        assert_eq!(
            (si.modlist_paddr, si.cmdline_paddr, si.rsdp_paddr),
            (0x1100, 0x1200, 0xf_5000)
        );
        assert_eq!((si.memmap_paddr, si.memmap_entries), (0x1400, 7));
        assert_eq!(si.as_bytes(), &raw[..]);
        assert!(HvmStartInfo::read_from_bytes(&raw[..55]).is_err());

        let mut raw = [0u8; 32];
        put(&mut raw, 0, &0x1000u64.to_le_bytes());
        put(&mut raw, 8, &0x2a0u64.to_le_bytes());
        put(&mut raw, 16, &0x1300u64.to_le_bytes());
        let m = HvmModlistEntry::read_from_bytes(&raw[..]).expect("32 bytes");
        assert_eq!((m.paddr, m.size, m.cmdline_paddr), (0x1000, 0x2a0, 0x1300));
        assert_eq!(m.as_bytes(), &raw[..]);

        let mut raw = [0u8; 24];
        put(&mut raw, 0, &0x10_0000u64.to_le_bytes());
        put(&mut raw, 8, &0x1f0_0000u64.to_le_bytes());
        put(&mut raw, 16, &E820_RAM.to_le_bytes());
        let e = HvmMemmapEntry::read_from_bytes(&raw[..]).expect("24 bytes");
        assert_eq!((e.addr, e.size, e.kind), (0x10_0000, 0x1f0_0000, 1));
        assert_eq!(e.as_bytes(), &raw[..]);
    }

    #[test]
    fn block_and_channel_records_sit_at_the_documented_offsets() {
        let mut raw = [0u8; 144];
        put(&mut raw, 0, b"FLOTBLK1");
        for (at, v) in [(8, 3u32), (12, 300), (16, 2), (20, 3), (24, 5), (28, 4)] {
            put(&mut raw, at, &v.to_le_bytes());
        }
        put(&mut raw, 32, &(16u64 << 20).to_le_bytes());
        put(&mut raw, 40, &2_000_000u64.to_le_bytes());
        put(&mut raw, 48, b"ping");
        put(&mut raw, 80, b"pingpong");
        for (at, v) in [
            (112, 1u32),
            (116, 144),
            (120, 288),
            (124, 84),
            (128, 3),
            (132, 1),
            (136, 224),
        ] {
            put(&mut raw, at, &v.to_le_bytes());
        }
        let b = FlotillaBlock::read_from_bytes(&raw[..]).expect("144 bytes");
        assert_eq!((b.magic, b.version, b.size), (BLOCK_MAGIC, 3, 300));
        assert_eq!(
            (b.partition_id, b.cpu, b.apic_id, b.partition_count),
            (2, 3, 5, 4)
        );
        assert_eq!((b.memory, b.tsc_khz), (16 << 20, 2_000_000));
        assert_eq!(
            (name_str(&b.name), name_str(&b.workload)),
            ("ping", "pingpong")
        );
        assert_eq!(
            (
                b.channel_count,
                b.channels_offset,
                b.args_offset,
                b.args_len
            ),
            (1, 144, 288, 84)
        );
        assert_eq!((b.incarnation, b.group_count, b.groups_offset), (3, 1, 224));
        assert_eq!(b.reserved, 0);
        assert_eq!(b.as_bytes(), &raw[..]);

        let mut raw = [0u8; 80];
        put(&mut raw, 0, &CHANNEL_WINDOW_GPA.to_le_bytes());
        put(&mut raw, 8, &0x5000u64.to_le_bytes());
        for (i, v) in [7u32, 64, 1, Notify::Ipi as u32, 0x41, 0x40, 9, 6]
            .iter()
            .enumerate()
        {
            put(&mut raw, 16 + 4 * i, &v.to_le_bytes());
        }
        put(&mut raw, 48, b"pong");
        let c = ChannelInfo::read_from_bytes(&raw[..]).expect("80 bytes");
        assert_eq!(
            (c.gpa, c.size, c.channel_id, c.slots),
            (CHANNEL_WINDOW_GPA, 0x5000, 7, 64)
        );
        assert_eq!(
            (c.side, c.notify, c.vector, c.peer_vector),
            (1, 1, 0x41, 0x40)
        );
        assert_eq!((c.peer_apic_id, c.peer_partition), (9, 6));
        assert_eq!(name_str(&c.peer_name), "pong");
        assert_eq!(c.as_bytes(), &raw[..]);
        assert!(ChannelInfo::read_from_bytes(&raw[..79]).is_err());

        let mut raw = [0u8; 192];
        for (at, v) in [
            (0, 2u32),
            (4, 1),
            (8, 3),
            (12, u32::from(MEMBERSHIP_VECTOR)),
            (64, 0b110),
            (68, 0b001),
            (72, 0b001),
        ] {
            put(&mut raw, at, &v.to_le_bytes());
        }
        put(&mut raw, 16, &0b1011u64.to_le_bytes());
        put(&mut raw, 24, &(GROUP_STATUS_GPA + 0x1000).to_le_bytes());
        put(&mut raw, 32, b"state");
        let g = GroupInfo::read_from_bytes(&raw[..]).expect("192 bytes");
        assert_eq!(g.adjacency[..4], [0b110, 0b001, 0b001, 0]);
        assert_eq!(
            (g.group, g.member_id, g.member_count, g.vector),
            (2, 1, 3, 0xf0)
        );
        assert_eq!((g.members, g.status_gpa), (0b1011, 0xfd00_1000));
        assert_eq!(name_str(&g.name), "state");
        assert_eq!(g.as_bytes(), &raw[..]);
    }
}
