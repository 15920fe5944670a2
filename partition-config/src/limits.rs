//! Limits of the layout format and the host-physical memory-map policy.
//!
//! These constants are the single source of truth shared by validation,
//! placement, the manifest decoder and the documentation (`docs/layout.md`,
//! `docs/manifest.md`). The hypervisor reads them through the `no_std` part
//! of this crate, so both sides always agree.

/// One KiB.
pub const KIB: u64 = 1 << 10;
/// One MiB.
pub const MIB: u64 = 1 << 20;
/// One GiB.
pub const GIB: u64 = 1 << 30;

/// Most partitions a layout may declare.
pub const MAX_PARTITIONS: usize = 64;
/// Most cores a layout may ask for (`machine.cpus` is in `1..=MAX_CPUS`).
pub const MAX_CPUS: u16 = 64;
/// Most channels a layout may declare: one IPI vector each, from
/// [`IPI_VECTOR_BASE`] up to `0xBF`.
pub const MAX_CHANNELS: usize = 128;
/// Most channels one partition may be an endpoint of (the guest boot
/// protocol's Flotilla block holds at most this many channel records;
/// `abi::boot::MAX_CHANNELS`).
pub const MAX_CHANNELS_PER_PARTITION: usize = 32;
/// Fewest slots per direction in a channel.
pub const MIN_SLOTS: u32 = 2;
/// Most slots per direction in a channel.
pub const MAX_SLOTS: u32 = 4096;
/// Longest partition name, in bytes (names are `[a-z][a-z0-9-]{0,31}`).
pub const NAME_MAX_LEN: usize = 32;
/// Longest workload name, in bytes (fixed field in the manifest).
pub const WORKLOAD_MAX_LEN: usize = 32;
/// Most workload arguments per partition.
pub const MAX_ARGS: usize = 16;
/// Longest argument key, in bytes.
pub const ARG_KEY_MAX_LEN: usize = 32;
/// Longest string argument value, in bytes.
pub const ARG_STRING_MAX_LEN: usize = 256;
/// Most I/O port ranges per partition.
pub const MAX_PORT_RANGES_PER_PARTITION: usize = 16;
/// Most replication groups (`[[group]]`) a layout may declare.
pub const MAX_GROUPS: usize = 16;
/// Most groups one partition may be a member of.
pub const MAX_GROUPS_PER_PARTITION: usize = 4;
/// Fewest members of a group: a group of one replicates nothing.
pub const MIN_GROUP_MEMBERS: usize = 2;
/// Most members of a group: the replication protocol's member sets are
/// 32-bit (`replication::MAX_MEMBERS`; a test checks they agree).
pub const MAX_GROUP_MEMBERS: usize = 32;
/// Default `max_restarts` of a partition with `on_fault = "restart"`.
pub const DEFAULT_MAX_RESTARTS: u8 = 1;
/// Largest `max_restarts`: restarts are bounded so a partition that faults
/// at once every time cannot keep its core busy for ever.
pub const MAX_RESTARTS: u8 = 16;
/// Longest kernel path, in bytes (also the longest `initrd` path).
pub const KERNEL_PATH_MAX_LEN: usize = 4096;
/// Longest `cmdline` a layout may give, in bytes. Linux's x86 command line
/// holds 2048 bytes (`COMMAND_LINE_SIZE`); the hypervisor appends its own
/// words (`flotilla-block=...`) to the layout's, within the rest.
pub const CMDLINE_MAX_LEN: usize = 1024;

/// Whether `text` is a usable kernel command line (`cmdline`): at most
/// [`CMDLINE_MAX_LEN`] bytes of printable ASCII (spaces included), so it
/// can be passed NUL-terminated and printed as it is.
#[must_use]
pub fn is_valid_cmdline(text: &str) -> bool {
    text.len() <= CMDLINE_MAX_LEN && text.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Largest `machine.memory`: QEMU splits guest RAM above 3 GiB around the PCI
/// hole, which the placement does not model yet.
pub const MAX_MACHINE_MEMORY: u64 = 3 * GIB;
/// Host-physical memory below this belongs to the hypervisor (its image,
/// heap, page tables).
pub const HYPERVISOR_RESERVE: u64 = 64 * MIB;
/// The top of RAM this large is left to the firmware (ACPI tables, UEFI
/// runtime).
pub const FIRMWARE_RESERVE: u64 = 16 * MIB;
/// Alignment and granularity of partition memory (one large page).
pub const PARTITION_ALIGN: u64 = 2 * MIB;
/// Alignment and granularity of channel regions.
pub const PAGE_SIZE: u64 = 4 * KIB;

/// Largest boot bundle the hypervisor accepts, in bytes: it reads the
/// bundle where the boot loader put it (no copy), so the limit only bounds
/// what a layout may make the loader place: a distribution kernel and its
/// initrd of 64 MiB and more fit. `flotilla check` refuses a layout whose
/// kernels and initrds make a larger bundle, and the hypervisor refuses the
/// bundle itself (both read this constant).
pub const MAX_BUNDLE_LEN: u64 = 128 * MIB;

/// Default `machine.timeout`, seconds.
pub const DEFAULT_TIMEOUT_SECS: u32 = 120;
/// Largest `machine.timeout`, seconds (one day).
pub const MAX_TIMEOUT_SECS: u32 = 86_400;

/// Bytes in one channel slot (one cache line).
pub const SLOT_SIZE: u64 = 64;
/// Bytes of a channel's identity page (channel layout v4, `docs/channels.md`).
pub const CHANNEL_IDENTITY_SIZE: u64 = PAGE_SIZE;
/// Bytes of each endpoint's control page (channel layout v4).
pub const CHANNEL_CONTROL_SIZE: u64 = PAGE_SIZE;
/// IPI vector of channel 0; channel `i` uses `IPI_VECTOR_BASE + i` at both
/// endpoints.
pub const IPI_VECTOR_BASE: u8 = 0x40;

/// Rounds `value` up to a multiple of `align` (a power of two), or `None` on
/// overflow.
#[must_use]
pub const fn align_up(value: u64, align: u64) -> Option<u64> {
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Bytes of one ring (one direction) of a channel with `slots` slots:
/// `slots * SLOT_SIZE` rounded up to a whole page.
#[must_use]
pub const fn ring_size(slots: u32) -> u64 {
    let bytes = slots as u64 * SLOT_SIZE;
    // `slots` is a u32, so `bytes` is below 2^38 and rounding cannot overflow.
    (bytes + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// Bytes of a whole channel region (channel layout v4): the identity page,
/// then for each endpoint its control page and the ring it sends on.
/// `channel_region_size(64)` is 20 KiB. The `channels` crate computes the
/// same (`channels::region_size`; a hypervisor test checks they agree).
#[must_use]
pub const fn channel_region_size(slots: u32) -> u64 {
    CHANNEL_IDENTITY_SIZE + 2 * (CHANNEL_CONTROL_SIZE + ring_size(slots))
}

/// Whether `slots` is an allowed channel size (a power of two in
/// `MIN_SLOTS..=MAX_SLOTS`).
#[must_use]
pub const fn is_valid_slots(slots: u32) -> bool {
    slots.is_power_of_two() && slots >= MIN_SLOTS && slots <= MAX_SLOTS
}

/// IPI vector for channel `index`, or `None` past [`MAX_CHANNELS`].
#[must_use]
pub const fn channel_vector(index: usize) -> Option<u8> {
    if index < MAX_CHANNELS {
        // Not lossy: `index < MAX_CHANNELS` (128) fits in a `u8`, and the
        // vector stays below 0xc0 (`u8::try_from` is not `const`).
        #[allow(clippy::cast_possible_truncation)]
        let offset = index as u8;
        Some(IPI_VECTOR_BASE + offset)
    } else {
        None
    }
}

/// Whether `name` is a valid partition name: `[a-z][a-z0-9-]{0,31}`.
#[must_use]
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(first) if first.is_ascii_lowercase() => {}
        _ => return false,
    }
    bytes.len() <= NAME_MAX_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Whether `key` is a valid workload argument key: `[a-z_][a-z0-9_-]*`, at
/// most [`ARG_KEY_MAX_LEN`] bytes.
#[must_use]
pub fn is_valid_arg_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    match bytes.first() {
        Some(first) if first.is_ascii_lowercase() || *first == b'_' => {}
        _ => return false,
    }
    bytes.len() <= ARG_KEY_MAX_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

/// Whether `name` is a valid workload name: printable ASCII without spaces,
/// 1..=[`WORKLOAD_MAX_LEN`] bytes.
#[must_use]
pub fn is_valid_workload_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= WORKLOAD_MAX_LEN && name.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_region_sizes() {
        assert_eq!(ring_size(2), PAGE_SIZE);
        assert_eq!(ring_size(64), PAGE_SIZE);
        assert_eq!(ring_size(128), 2 * PAGE_SIZE);
        assert_eq!(channel_region_size(64), 20 * KIB);
        assert_eq!(
            channel_region_size(4096),
            4 * KIB + 2 * (4 * KIB + 256 * KIB)
        );
    }

    #[test]
    fn slots_limits() {
        assert!(is_valid_slots(2));
        assert!(is_valid_slots(4096));
        assert!(!is_valid_slots(1));
        assert!(!is_valid_slots(48));
        assert!(!is_valid_slots(8192));
    }

    #[test]
    fn names() {
        assert!(is_valid_name("ping"));
        assert!(is_valid_name("a-1"));
        assert!(is_valid_name(&"a".repeat(32)));
        assert!(!is_valid_name(&"a".repeat(33)));
        assert!(!is_valid_name("1a"));
        assert!(!is_valid_name("Ping"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a_b"));
    }

    #[test]
    fn vectors() {
        assert_eq!(channel_vector(0), Some(0x40));
        assert_eq!(channel_vector(127), Some(0xBF));
        assert_eq!(channel_vector(128), None);
    }
}
