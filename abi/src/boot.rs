//! The guest boot protocol, version 1 (`docs/boot-protocol.md`).
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
//! - [`CHANNEL_WINDOW_GPA`] ..: the partition's channel regions, each at the
//!   address its [`ChannelInfo`] gives;
//! - nothing else: any other access is a contained fault.

/// Version of this protocol; bumped with any layout change.
pub const BOOT_PROTOCOL_VERSION: u32 = 1;

/// `hvm_start_info.magic`.
pub const PVH_START_MAGIC: u32 = 0x336e_c578;

/// Guest-physical address of the boot structures (start info, memory map,
/// module list, command line, Flotilla block).
pub const BOOT_INFO_GPA: u64 = 0x1000;
/// Bytes reserved for the boot structures.
pub const BOOT_INFO_SIZE: u64 = 0xf000;
/// Lowest guest-physical address a kernel image may be loaded at.
pub const KERNEL_MIN_GPA: u64 = 0x10_0000;
/// Guest-physical base of the channel window (above any partition's RAM,
/// below the local APIC page).
pub const CHANNEL_WINDOW_GPA: u64 = 0xc000_0000;

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

/// One channel as one of its endpoints sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// The Flotilla block: the partition's identity, its channels and its
/// workload. Followed in memory by `channel_count` [`ChannelInfo`] records
/// at `channels_offset` and the argument text at `args_offset` (both
/// offsets from the block's start).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

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
    fn names_round_trip_and_too_long_is_refused() {
        let f = name_field("ping").expect("short name");
        assert_eq!(name_str(&f), "ping");
        assert!(name_field(&"x".repeat(33)).is_none());
        assert_eq!(
            name_str(&name_field(&"y".repeat(32)).expect("32 fits")),
            "y".repeat(32)
        );
    }

    #[test]
    fn layouts_are_stable() {
        assert_eq!(core::mem::size_of::<ChannelInfo>(), 80);
        assert_eq!(core::mem::size_of::<FlotillaBlock>(), 128);
    }
}
