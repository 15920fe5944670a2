//! Validating the Flotilla block (boot protocol v3, `abi::boot`): the
//! partition's identity, channels, groups and workload, handed over as
//! module 0.
//!
//! The block is copied out of its bytes as abi's zerocopy records
//! ([`FlotillaBlock`], [`ChannelInfo`]; no references into guest memory
//! and no alignment assumed), and everything is checked: magic,
//! version, sizes, offsets, UTF-8 of names and arguments, and each channel
//! record (page-aligned region inside the channel window, known side and
//! notification kind, usable vectors) and each group record (its status
//! page where the protocol puts it, a consistent member set). A bad block is
//! reported, not used.

use abi::boot::{
    ChannelInfo, FlotillaBlock, GroupInfo, Notify, BLOCK_MAGIC, BOOT_PROTOCOL_VERSION,
    CHANNEL_WINDOW_GPA, GROUP_STATUS_GPA, MAX_ARGS, MAX_CHANNELS, MAX_GROUPS, MEMBERSHIP_VECTOR,
    NAME_LEN,
};
use abi::group::{MAX_MEMBERS, STATUS_PAGE_SIZE};
use core::fmt;
use core::mem::{offset_of, size_of};
use zerocopy::FromBytes;

/// Size of the fixed part of the block.
pub const HEADER_SIZE: usize = size_of::<FlotillaBlock>();
/// Size of one channel record.
pub const CHANNEL_RECORD_SIZE: usize = size_of::<ChannelInfo>();
/// Size of one group record.
pub const GROUP_RECORD_SIZE: usize = size_of::<GroupInfo>();
/// End of the channel window: the channel regions must lie below the group
/// status pages.
pub const CHANNEL_WINDOW_END: u64 = GROUP_STATUS_GPA;
/// Vectors the kernel keeps for itself (and the membership notification's)
/// that a channel may not use.
pub const RESERVED_VECTORS: [u32; 3] = [
    TIMER_VECTOR as u32,
    SPURIOUS_VECTOR as u32,
    MEMBERSHIP_VECTOR as u32,
];
/// The local APIC timer's vector.
pub const TIMER_VECTOR: u8 = 0x20;
/// The spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// Why a block was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// Fewer bytes than the fixed header.
    TooShort(usize),
    /// Wrong magic.
    BadMagic,
    /// Unsupported protocol version.
    BadVersion(u32),
    /// `size` is smaller than the header or larger than the module.
    BadSize {
        /// The block's `size` field.
        size: u32,
        /// The length of the module the block was read from, in bytes.
        module: usize,
    },
    /// A name field is not UTF-8.
    BadName(&'static str),
    /// More channels than [`MAX_CHANNELS`].
    TooManyChannels(u32),
    /// The channel records do not fit in the block.
    ChannelsOutOfBounds,
    /// The argument text does not fit, is too long, or is not UTF-8.
    BadArgs,
    /// A channel record is malformed.
    BadChannel {
        /// The record's position in the block's channel table (from 0).
        index: usize,
        /// What is wrong with it.
        why: &'static str,
    },
    /// More groups than [`MAX_GROUPS`], or their records do not fit.
    GroupsOutOfBounds,
    /// A group record is malformed.
    BadGroup {
        /// The record's position in the block's group table (from 0).
        index: usize,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BlockError::TooShort(n) => write!(f, "only {n} bytes, header needs {HEADER_SIZE}"),
            BlockError::BadMagic => write!(f, "bad magic (expected \"FLOTBLK1\")"),
            BlockError::BadVersion(v) => {
                write!(f, "version {v}, this kernel speaks {BOOT_PROTOCOL_VERSION}")
            }
            BlockError::BadSize { size, module } => {
                write!(f, "size {size} does not fit the module ({module} bytes)")
            }
            BlockError::BadName(which) => write!(f, "{which} is not UTF-8"),
            BlockError::TooManyChannels(n) => {
                write!(f, "{n} channels, at most {MAX_CHANNELS}")
            }
            BlockError::ChannelsOutOfBounds => write!(f, "channel records outside the block"),
            BlockError::BadArgs => write!(f, "argument text out of bounds, too long or not UTF-8"),
            BlockError::BadChannel { index, why } => write!(f, "channel record {index}: {why}"),
            BlockError::GroupsOutOfBounds => {
                write!(
                    f,
                    "more than {MAX_GROUPS} group records, or outside the block"
                )
            }
            BlockError::BadGroup { index, why } => write!(f, "group record {index}: {why}"),
        }
    }
}

/// A validated block.
#[derive(Clone, Copy, Debug)]
pub struct Block<'a> {
    /// Partition index.
    pub partition_id: u32,
    /// Core index.
    pub cpu: u32,
    /// The core's x2APIC ID.
    pub apic_id: u32,
    /// Partitions in the layout.
    pub partition_count: u32,
    /// RAM size in bytes.
    pub memory: u64,
    /// TSC frequency in kHz.
    pub tsc_khz: u64,
    /// 0 at the first boot, +1 per restart by the hypervisor.
    pub incarnation: u32,
    /// Partition name.
    pub name: &'a str,
    /// Workload name.
    pub workload: &'a str,
    /// Argument text.
    pub args: &'a str,
    /// The channel records (validated).
    records: &'a [u8],
    /// The group records (validated).
    group_records: &'a [u8],
}

/// The NUL-padded name field at `at` of the block `b` (kept in place:
/// [`Block`] borrows the module's bytes).
fn name_at<'a>(b: &'a [u8], at: usize, what: &'static str) -> Result<&'a str, BlockError> {
    let field = b.get(at..at + NAME_LEN).ok_or(BlockError::BadName(what))?;
    let end = field.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
    core::str::from_utf8(&field[..end]).map_err(|_| BlockError::BadName(what))
}

/// Decodes one 80-byte channel record (no validation); `None` if `r` is
/// not exactly one record long.
pub fn decode_channel(r: &[u8]) -> Option<ChannelInfo> {
    ChannelInfo::read_from_bytes(r).ok()
}

fn check_channel(c: &ChannelInfo) -> Result<(), &'static str> {
    let end = c.gpa.checked_add(c.size).ok_or("region wraps around")?;
    if !c.gpa.is_multiple_of(4096) || c.size == 0 {
        return Err("region not page-aligned or empty");
    }
    if c.gpa < CHANNEL_WINDOW_GPA || end > CHANNEL_WINDOW_END {
        return Err("region outside the channel window");
    }
    if c.side > 1 {
        return Err("side is neither 0 nor 1");
    }
    if c.notify != Notify::Poll as u32 && c.notify != Notify::Ipi as u32 {
        return Err("unknown notify kind");
    }
    for v in [c.vector, c.peer_vector] {
        if !(0x21..=0xfe).contains(&v) || RESERVED_VECTORS.contains(&v) {
            return Err("vector not in 0x21..=0xfe or reserved by the kernel");
        }
    }
    Ok(())
}

/// The group record `g` at position `index` of the block of partition
/// `partition`: its status page at `GROUP_STATUS_GPA + index * 4096`, 2..=32
/// members of which this partition is member `member_id`, the membership
/// vector, a UTF-8 name.
fn check_group(g: &GroupInfo, index: usize, partition: u32) -> Result<(), &'static str> {
    let page = index
        .checked_mul(STATUS_PAGE_SIZE)
        .and_then(|off| GROUP_STATUS_GPA.checked_add(u64::try_from(off).ok()?));
    if page != Some(g.status_gpa) {
        return Err("status page not at GROUP_STATUS_GPA + 4096 * index");
    }
    if g.member_count < 2 || g.member_count as usize > MAX_MEMBERS {
        return Err("member count not in 2..=32");
    }
    if g.members.count_ones() != g.member_count {
        return Err("member set and member count disagree");
    }
    if partition >= 64 || g.members & (1 << partition) == 0 {
        return Err("this partition is not a member");
    }
    let below = g.members & ((1 << partition) - 1);
    if below.count_ones() != g.member_id {
        return Err("member id is not this partition's rank");
    }
    if g.vector != u32::from(MEMBERSHIP_VECTOR) {
        return Err("vector is not MEMBERSHIP_VECTOR");
    }
    let end = g.name.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
    if core::str::from_utf8(&g.name[..end]).is_err() {
        return Err("name is not UTF-8");
    }
    let n = g.member_count as usize;
    for (i, &row) in g.adjacency.iter().enumerate() {
        let beyond = i >= n || (n < 32 && row >> n != 0);
        let asymmetric = (0..n).any(|j| (row >> j) & 1 != (g.adjacency[j] >> i) & 1);
        if (beyond && row != 0) || row & (1 << i) != 0 || asymmetric {
            return Err("adjacency not symmetric, looped or beyond the members");
        }
    }
    Ok(())
}

impl<'a> Block<'a> {
    /// Validates the block in `module` (the whole module's bytes).
    pub fn parse(module: &'a [u8]) -> Result<Self, BlockError> {
        let Ok((h, _)) = FlotillaBlock::read_from_prefix(module) else {
            return Err(BlockError::TooShort(module.len()));
        };
        if h.magic != BLOCK_MAGIC {
            return Err(BlockError::BadMagic);
        }
        if h.version != BOOT_PROTOCOL_VERSION {
            return Err(BlockError::BadVersion(h.version));
        }
        let size = h.size;
        if (size as usize) < HEADER_SIZE || size as usize > module.len() {
            return Err(BlockError::BadSize {
                size,
                module: module.len(),
            });
        }
        let b = &module[..size as usize];
        let channel_count = h.channel_count;
        let channels_offset = h.channels_offset as usize;
        let args_offset = h.args_offset as usize;
        let args_len = h.args_len as usize;

        if channel_count as usize > MAX_CHANNELS {
            return Err(BlockError::TooManyChannels(channel_count));
        }
        let records_len = channel_count as usize * CHANNEL_RECORD_SIZE;
        let records = channels_offset
            .checked_add(records_len)
            .and_then(|end| b.get(channels_offset..end))
            .filter(|_| channel_count == 0 || channels_offset >= HEADER_SIZE)
            .ok_or(BlockError::ChannelsOutOfBounds)?;
        if args_len > MAX_ARGS {
            return Err(BlockError::BadArgs);
        }
        let args = args_offset
            .checked_add(args_len)
            .and_then(|end| b.get(args_offset..end))
            .filter(|_| args_len == 0 || args_offset >= HEADER_SIZE)
            .and_then(|a| core::str::from_utf8(a).ok())
            .ok_or(BlockError::BadArgs)?;

        for (index, r) in records.chunks_exact(CHANNEL_RECORD_SIZE).enumerate() {
            let c = decode_channel(r).ok_or(BlockError::ChannelsOutOfBounds)?;
            check_channel(&c).map_err(|why| BlockError::BadChannel { index, why })?;
        }
        let group_count = h.group_count as usize;
        let groups_offset = h.groups_offset as usize;
        if group_count > MAX_GROUPS {
            return Err(BlockError::GroupsOutOfBounds);
        }
        let group_records = groups_offset
            .checked_add(group_count * GROUP_RECORD_SIZE)
            .and_then(|end| b.get(groups_offset..end))
            .filter(|_| group_count == 0 || groups_offset >= HEADER_SIZE)
            .ok_or(BlockError::GroupsOutOfBounds)?;
        for (index, r) in group_records.chunks_exact(GROUP_RECORD_SIZE).enumerate() {
            let g = GroupInfo::read_from_bytes(r).map_err(|_| BlockError::GroupsOutOfBounds)?;
            check_group(&g, index, h.partition_id)
                .map_err(|why| BlockError::BadGroup { index, why })?;
        }
        Ok(Block {
            partition_id: h.partition_id,
            cpu: h.cpu,
            apic_id: h.apic_id,
            partition_count: h.partition_count,
            memory: h.memory,
            tsc_khz: h.tsc_khz,
            incarnation: h.incarnation,
            name: name_at(b, offset_of!(FlotillaBlock, name), "partition name")?,
            workload: name_at(b, offset_of!(FlotillaBlock, workload), "workload name")?,
            args,
            records,
            group_records,
        })
    }

    /// The groups this partition is a member of, in block order (record
    /// `k`'s status page is at `GROUP_STATUS_GPA + k * 4096`).
    pub fn groups(&self) -> impl Iterator<Item = GroupInfo> + 'a {
        self.group_records
            .chunks_exact(GROUP_RECORD_SIZE)
            .filter_map(|r| GroupInfo::read_from_bytes(r).ok())
    }

    /// The channels, in block order.
    pub fn channels(&self) -> impl Iterator<Item = ChannelInfo> + 'a {
        self.records
            .chunks_exact(CHANNEL_RECORD_SIZE)
            .filter_map(decode_channel)
    }
}

/// The x2APIC ID the `rogue` workload aims an IPI at: the first ID in
/// `0..max(partition_count, own + 2)` that is neither its own nor one of its
/// channel peers (APIC IDs are assumed to be `0..partition_count`; any
/// non-peer destination is one the hypervisor must refuse).
pub fn non_peer_apic_id(own: u32, peers: &[u32], partition_count: u32) -> u32 {
    let limit = partition_count.max(own.saturating_add(2));
    (0..limit)
        .find(|id| *id != own && !peers.contains(id))
        .unwrap_or(limit)
}

/// Test helpers shared with other modules' tests: an encoder for blocks.
#[cfg(test)]
pub mod testing {
    use super::*;
    use zerocopy::IntoBytes;

    /// Encodes a block with `channels` and `args` (records right after the
    /// header, then the argument text).
    pub fn encode(name: &str, workload: &str, channels: &[ChannelInfo], args: &str) -> Vec<u8> {
        encode_with_groups(name, workload, channels, &[], args)
    }

    /// Encodes a block with `channels`, `groups` and `args` (channel
    /// records, group records, argument text after the header).
    pub fn encode_with_groups(
        name: &str,
        workload: &str,
        channels: &[ChannelInfo],
        groups: &[GroupInfo],
        args: &str,
    ) -> Vec<u8> {
        let channels_offset = HEADER_SIZE;
        let groups_offset = channels_offset + channels.len() * CHANNEL_RECORD_SIZE;
        let args_offset = groups_offset + groups.len() * GROUP_RECORD_SIZE;
        let size = args_offset + args.len();
        let block = FlotillaBlock {
            magic: BLOCK_MAGIC,
            version: BOOT_PROTOCOL_VERSION,
            size: u32::try_from(size).expect("test block under 4 GiB"),
            partition_id: 2,
            cpu: 3,
            apic_id: 5,
            partition_count: 4,
            memory: 16 << 20,
            tsc_khz: 2_000_000,
            name: abi::boot::name_field(name).expect("short name"),
            workload: abi::boot::name_field(workload).expect("short name"),
            channel_count: u32::try_from(channels.len()).expect("test channel count"),
            channels_offset: u32::try_from(channels_offset).expect("test offset"),
            args_offset: u32::try_from(args_offset).expect("test offset"),
            args_len: u32::try_from(args.len()).expect("test argument length"),
            incarnation: 1,
            group_count: u32::try_from(groups.len()).expect("test group count"),
            groups_offset: u32::try_from(groups_offset).expect("test offset"),
            reserved: 0,
        };
        let mut v = block.as_bytes().to_vec();
        v.extend(channels.as_bytes());
        v.extend(groups.as_bytes());
        v.extend(args.as_bytes());
        v
    }

    /// A valid group record for the test block's partition 2, at position
    /// `index`: members {0, 2, 5}, so member id 1.
    pub fn group(index: usize) -> GroupInfo {
        GroupInfo {
            group: 3,
            member_id: 1,
            member_count: 3,
            vector: u32::from(MEMBERSHIP_VECTOR),
            members: 0b10_0101,
            status_gpa: GROUP_STATUS_GPA + (index * STATUS_PAGE_SIZE) as u64,
            name: abi::boot::name_field("state").expect("short"),
            adjacency: {
                let mut a = [0; 32];
                a[..3].copy_from_slice(&[0b110, 0b001, 0b001]);
                a
            },
        }
    }

    /// A valid channel record.
    pub fn channel(id: u32) -> ChannelInfo {
        ChannelInfo {
            gpa: CHANNEL_WINDOW_GPA + u64::from(id) * 0x10000,
            size: 0x10000,
            channel_id: id,
            slots: 64,
            side: 0,
            notify: 1,
            vector: 0x40 + id,
            peer_vector: 0x40 + id,
            peer_apic_id: 1,
            peer_partition: 1,
            peer_name: abi::boot::name_field("pong").expect("short"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn valid_block_round_trips() {
        let bytes = encode("ping", "pingpong", &[channel(0), channel(1)], "rounds=10");
        let b = Block::parse(&bytes).expect("valid");
        assert_eq!(
            (b.partition_id, b.cpu, b.apic_id, b.partition_count),
            (2, 3, 5, 4)
        );
        assert_eq!((b.memory, b.tsc_khz), (16 << 20, 2_000_000));
        assert_eq!(b.incarnation, 1);
        assert_eq!(
            (b.name, b.workload, b.args),
            ("ping", "pingpong", "rounds=10")
        );
        let cs: Vec<_> = b.channels().collect();
        assert_eq!(cs, [channel(0), channel(1)]);
        // A module longer than the block is fine.
        let mut longer = bytes.clone();
        longer.extend([0xaa; 100]);
        assert!(Block::parse(&longer).is_ok());
    }

    #[test]
    fn header_errors() {
        let good = encode("p", "hello", &[], "");
        assert_eq!(
            Block::parse(&good[..100]).unwrap_err(),
            BlockError::TooShort(100)
        );
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Block::parse(&bad).unwrap_err(), BlockError::BadMagic);
        let mut bad = good.clone();
        bad[8] = 2;
        assert_eq!(
            Block::parse(&bad).unwrap_err(),
            BlockError::BadVersion(2),
            "a version 2 block (no groups) is refused"
        );
        let mut bad = good.clone();
        bad[12..16].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(
            Block::parse(&bad),
            Err(BlockError::BadSize { size: 1000, .. })
        ));
        let mut bad = good.clone();
        bad[48] = 0xff;
        assert_eq!(
            Block::parse(&bad).unwrap_err(),
            BlockError::BadName("partition name")
        );
    }

    #[test]
    fn offsets_and_counts_are_bounded() {
        let good = encode("p", "stream", &[channel(0)], "messages=5");
        let mut bad = good.clone();
        bad[112..116].copy_from_slice(&33u32.to_le_bytes());
        assert_eq!(
            Block::parse(&bad).unwrap_err(),
            BlockError::TooManyChannels(33)
        );
        let mut bad = good.clone();
        bad[112..116].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(
            Block::parse(&bad).unwrap_err(),
            BlockError::ChannelsOutOfBounds
        );
        let mut bad = good.clone();
        bad[116..120].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Block::parse(&bad).unwrap_err(),
            BlockError::ChannelsOutOfBounds
        );
        let mut bad = good.clone();
        bad[124..128].copy_from_slice(&11u32.to_le_bytes());
        assert_eq!(Block::parse(&bad).unwrap_err(), BlockError::BadArgs);
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 1] = 0xff;
        assert_eq!(Block::parse(&bad).unwrap_err(), BlockError::BadArgs);
    }

    #[test]
    fn a_huge_group_index_is_an_error_not_an_overflow() {
        let g = group(0);
        assert_eq!(check_group(&g, 0, 2), Ok(()));
        assert!(check_group(&g, usize::MAX, 2).is_err());
        assert!(check_group(&g, usize::MAX / STATUS_PAGE_SIZE + 1, 2).is_err());
    }

    #[test]
    fn group_records_are_parsed_and_checked() {
        let bytes = encode_with_groups("p", "watch", &[channel(0)], &[group(0), group(1)], "x=1");
        let b = Block::parse(&bytes).expect("valid");
        assert_eq!(b.groups().collect::<Vec<_>>(), [group(0), group(1)]);
        assert_eq!(b.args, "x=1");
        type Mutation = fn(&mut GroupInfo);
        let adjacency = "adjacency not symmetric, looped or beyond the members";
        let cases: [(Mutation, &str); 10] = [
            (|g| g.adjacency[1] = 0b011, adjacency),
            (|g| g.adjacency[0] = 0b010, adjacency),
            (|g| g.adjacency[3] = 0b001, adjacency),
            (
                |g| g.status_gpa += 4096,
                "status page not at GROUP_STATUS_GPA + 4096 * index",
            ),
            (|g| g.member_count = 1, "member count not in 2..=32"),
            (
                |g| g.member_count = 4,
                "member set and member count disagree",
            ),
            (|g| g.members = 0b11_0001, "this partition is not a member"),
            (
                |g| g.member_id = 0,
                "member id is not this partition's rank",
            ),
            (|g| g.vector = 0x41, "vector is not MEMBERSHIP_VECTOR"),
            (|g| g.name[0] = 0xff, "name is not UTF-8"),
        ];
        for (mutate, why) in cases {
            let mut g = group(1);
            mutate(&mut g);
            let bytes = encode_with_groups("p", "watch", &[], &[group(0), g], "");
            assert_eq!(
                Block::parse(&bytes).unwrap_err(),
                BlockError::BadGroup { index: 1, why }
            );
        }
        let five = [group(0), group(1), group(2), group(3), group(3)];
        let bytes = encode_with_groups("p", "watch", &[], &five, "");
        assert_eq!(
            Block::parse(&bytes).unwrap_err(),
            BlockError::GroupsOutOfBounds
        );
        let mut bad = encode_with_groups("p", "watch", &[], &[group(0)], "");
        bad[132..136].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(
            Block::parse(&bad).unwrap_err(),
            BlockError::GroupsOutOfBounds
        );
    }

    #[test]
    fn non_peer_target() {
        assert_eq!(non_peer_apic_id(0, &[], 1), 1);
        assert_eq!(non_peer_apic_id(0, &[1], 4), 2);
        assert_eq!(non_peer_apic_id(2, &[0, 1], 4), 3);
        assert_eq!(non_peer_apic_id(3, &[0, 1, 2], 4), 4);
        assert_eq!(non_peer_apic_id(1, &[0], 2), 2);
    }

    #[test]
    fn channel_records_are_checked() {
        type Mutation = fn(&mut ChannelInfo);
        let cases: [(Mutation, &str); 6] = [
            (|c| c.gpa += 8, "region not page-aligned or empty"),
            (|c| c.gpa = 0x10_0000, "region outside the channel window"),
            (|c| c.size = u64::MAX, "region wraps around"),
            (|c| c.side = 2, "side is neither 0 nor 1"),
            (|c| c.notify = 7, "unknown notify kind"),
            (
                |c| c.vector = 0x20,
                "vector not in 0x21..=0xfe or reserved by the kernel",
            ),
        ];
        for (mutate, why) in cases {
            let mut c = channel(0);
            mutate(&mut c);
            let bytes = encode("p", "stream", &[channel(1), c], "");
            assert_eq!(
                Block::parse(&bytes).unwrap_err(),
                BlockError::BadChannel { index: 1, why }
            );
        }
    }
}
