//! Manifest records, exactly as laid out in the bytes (`docs/manifest.md`).
//!
//! Every multi-byte field is little-endian and every record is `Unaligned`,
//! so the decoder can view any byte slice as records without copying and
//! without alignment concerns. Reserved fields are written as zero and the
//! decoder rejects anything else, so they can be given meaning later under a
//! new version.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// First eight bytes of every manifest.
pub const MAGIC: [u8; 8] = *b"FLOTMANI";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 3;
/// Offset of the first byte covered by [`Header::checksum`]: everything after
/// the checksum field, up to `total_len`.
pub const CHECKSUM_START: usize = 24;

/// Partition name and workload name field size.
pub const NAME_FIELD_LEN: usize = 32;

/// [`KernelRecord::kind`]: the built-in guest kernel.
pub const KERNEL_BUILTIN: u8 = 0;
/// [`KernelRecord::kind`]: a PVH-bootable ELF given by path.
pub const KERNEL_ELF: u8 = 1;

/// [`ChannelRecord::notify`]: the receiver is interrupted by an IPI.
pub const NOTIFY_IPI: u8 = 0;
/// [`ChannelRecord::notify`]: the receiver polls.
pub const NOTIFY_POLL: u8 = 1;

/// [`PartitionRecord::on_fault`]: a faulted partition stays stopped.
pub const ON_FAULT_STOP: u8 = 0;
/// [`PartitionRecord::on_fault`]: a faulted partition is restarted, at most
/// `max_restarts` times.
pub const ON_FAULT_RESTART: u8 = 1;

/// [`PartitionRecord::compat`]: the strict Flotilla platform (the default).
pub const COMPAT_NONE: u8 = 0;
/// [`PartitionRecord::compat`]: the platform of a stock Linux kernel
/// (`compat = "linux"`, `docs/linux.md`).
pub const COMPAT_LINUX: u8 = 1;

/// Argument blob tag: `i64` little-endian, 8 bytes.
pub const ARG_INTEGER: u8 = 0;
/// Argument blob tag: one byte, 0 or 1.
pub const ARG_BOOL: u8 = 1;
/// Argument blob tag: `u16` little-endian length, then UTF-8 bytes.
pub const ARG_STRING: u8 = 2;

/// The machine the layout runs on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct MachineRecord {
    /// Cores the layout needs (1..=64).
    pub cpus: U16,
    /// Zero.
    pub reserved0: U16,
    /// Run timeout in seconds.
    pub timeout_secs: U32,
    /// Bytes of RAM of the machine.
    pub memory: U64,
}

/// The manifest header at offset 0 (96 bytes).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`FORMAT_VERSION`].
    pub version: U16,
    /// `size_of::<Header>()` (96).
    pub header_size: U16,
    /// Zero (no flags are defined).
    pub flags: U32,
    /// FNV-1a-64 of bytes `CHECKSUM_START..total_len`.
    pub checksum: U64,
    /// Bytes of the whole manifest, header included.
    pub total_len: U32,
    /// Entries in the partition table.
    pub partition_count: U16,
    /// Entries in the channel table.
    pub channel_count: U16,
    /// Entries in the kernel table.
    pub kernel_count: U16,
    /// Entries in the port-range table.
    pub port_range_count: U16,
    /// Byte offset of the partition table.
    pub partitions_offset: U32,
    /// Byte offset of the channel table.
    pub channels_offset: U32,
    /// Byte offset of the kernel table.
    pub kernels_offset: U32,
    /// Byte offset of the port-range table.
    pub ports_offset: U32,
    /// Byte offset of the string table.
    pub strings_offset: U32,
    /// Bytes of the string table.
    pub strings_len: U32,
    /// Entries in the group table.
    pub group_count: U16,
    /// Entries in the group-link table.
    pub group_link_count: U16,
    /// The machine.
    pub machine: MachineRecord,
    /// Byte offset of the group table.
    pub groups_offset: U32,
    /// Byte offset of the group-link table.
    pub group_links_offset: U32,
    /// Zero.
    pub reserved0: [u8; 8],
}

/// One partition (128 bytes). Its index in the table is its id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct PartitionRecord {
    /// Name, UTF-8, NUL-padded.
    pub name: [u8; NAME_FIELD_LEN],
    /// Workload name, UTF-8, NUL-padded.
    pub workload: [u8; NAME_FIELD_LEN],
    /// Equal to the record's index.
    pub id: U16,
    /// The core this partition owns.
    pub cpu: U16,
    /// Index into the kernel table.
    pub kernel: U16,
    /// Number of workload arguments in the blob.
    pub arg_count: U16,
    /// Host-physical base of the partition's RAM (2 MiB aligned).
    pub host_base: U64,
    /// Bytes of the partition's RAM (a multiple of 2 MiB).
    pub memory_size: U64,
    /// Offset of the argument blob in the string table.
    pub args_offset: U32,
    /// Bytes of the argument blob.
    pub args_len: U32,
    /// Index of this partition's first port range.
    pub ports_first: U16,
    /// Number of port ranges.
    pub ports_count: U16,
    /// [`ON_FAULT_STOP`] or [`ON_FAULT_RESTART`].
    pub on_fault: u8,
    /// Most restarts: 0 under stop, `1..=MAX_RESTARTS` under restart.
    pub max_restarts: u8,
    /// [`COMPAT_NONE`] or [`COMPAT_LINUX`].
    pub compat: u8,
    /// Zero.
    pub reserved0: u8,
    /// Offset of the kernel command line in the string table.
    pub cmdline_offset: U32,
    /// Bytes of the command line (0: none).
    pub cmdline_len: U32,
    /// Offset of the initrd's name (as written in the layout) in the string table.
    pub initrd_offset: U32,
    /// Bytes of the initrd's name (0: no initrd).
    pub initrd_len: U32,
    /// Zero.
    pub reserved: [u8; 8],
}

/// One channel (32 bytes). Its index in the table is its id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ChannelRecord {
    /// Equal to the record's index.
    pub id: U16,
    /// First endpoint (partition index); owns ring A→B.
    pub partition_a: U16,
    /// Second endpoint (partition index); owns ring B→A.
    pub partition_b: U16,
    /// [`NOTIFY_IPI`] or [`NOTIFY_POLL`].
    pub notify: u8,
    /// IPI vector delivered to endpoint A.
    pub vector_a: u8,
    /// Slots per direction.
    pub slots: U32,
    /// IPI vector delivered to endpoint B.
    pub vector_b: u8,
    /// Zero.
    pub reserved: [u8; 3],
    /// Host-physical base of the channel region (4 KiB aligned).
    pub host_base: U64,
    /// Bytes of the region: `channel_region_size(slots)`.
    pub size: U64,
}

/// One replication group (64 bytes). Its index in the table is its id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct GroupRecord {
    /// Name, UTF-8, NUL-padded.
    pub name: [u8; NAME_FIELD_LEN],
    /// Equal to the record's index.
    pub id: U16,
    /// Number of members: the number of bits set in `members`.
    pub member_count: U16,
    /// Index of the group's first link in the group-link table.
    pub links_first: U16,
    /// Number of links.
    pub links_count: U16,
    /// Bit `p` set for each member partition `p`; member `i` of the group is
    /// the `i`-th set bit from the lowest.
    pub members: U64,
    /// Zero.
    pub reserved: [u8; 16],
}

/// A channel between two members of a group (4 bytes).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct GroupLinkRecord {
    /// The channel (index into the channel table).
    pub channel: U16,
    /// The lower member id (in the group).
    pub member_a: u8,
    /// The higher member id.
    pub member_b: u8,
}

/// One kernel image (16 bytes).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct KernelRecord {
    /// [`KERNEL_BUILTIN`] or [`KERNEL_ELF`].
    pub kind: u8,
    /// Zero.
    pub reserved0: [u8; 3],
    /// Offset of the kernel's name (as written in the layout) in the string table.
    pub name_offset: U32,
    /// Bytes of the name.
    pub name_len: U32,
    /// Zero.
    pub reserved1: U32,
}

/// One I/O port range, inclusive (4 bytes).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct PortRangeRecord {
    /// First port.
    pub first: U16,
    /// Last port (inclusive, `>= first`).
    pub last: U16,
}

/// FNV-1a, 64-bit, over `bytes`: the manifest checksum.
#[must_use]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(PRIME)
    })
}

const _: () = {
    assert!(core::mem::size_of::<Header>() == 96);
    assert!(core::mem::size_of::<GroupRecord>() == 64);
    assert!(core::mem::size_of::<GroupLinkRecord>() == 4);
    assert!(core::mem::size_of::<MachineRecord>() == 16);
    assert!(core::mem::size_of::<PartitionRecord>() == 128);
    assert!(core::mem::offset_of!(PartitionRecord, compat) == 102);
    assert!(core::mem::offset_of!(PartitionRecord, cmdline_offset) == 104);
    assert!(core::mem::offset_of!(PartitionRecord, reserved) == 120);
    assert!(core::mem::size_of::<ChannelRecord>() == 32);
    assert!(core::mem::size_of::<KernelRecord>() == 16);
    assert!(core::mem::size_of::<PortRangeRecord>() == 4);
    assert!(core::mem::offset_of!(Header, total_len) == CHECKSUM_START);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a-64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
