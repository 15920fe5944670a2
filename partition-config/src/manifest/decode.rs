//! The manifest decoder: validates a byte slice completely, then hands out
//! borrowed, typed views. No allocation, no panics, no unchecked indexing:
//! every offset, count and length comes from untrusted bytes and is checked
//! with `get` and checked arithmetic before use.

use core::fmt;
use core::mem::size_of;

use abi::ports::{first_platform_overlap, PlatformPort, PortRange};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use super::format::{
    fnv1a64, ChannelRecord, GroupLinkRecord, GroupRecord, Header, KernelRecord, PartitionRecord,
    PortRangeRecord, ARG_BOOL, ARG_INTEGER, ARG_STRING, CHECKSUM_START, COMPAT_LINUX, COMPAT_NONE,
    FORMAT_VERSION, KERNEL_BUILTIN, KERNEL_ELF, MAGIC, NOTIFY_IPI, NOTIFY_POLL, ON_FAULT_RESTART,
    ON_FAULT_STOP,
};
use crate::catalog::BUILTIN_KERNEL;
use crate::limits::{
    channel_region_size, is_valid_arg_key, is_valid_cmdline, is_valid_name, is_valid_slots,
    is_valid_workload_name, ARG_STRING_MAX_LEN, FIRMWARE_RESERVE, HYPERVISOR_RESERVE,
    KERNEL_PATH_MAX_LEN, MAX_ARGS, MAX_CHANNELS, MAX_CPUS, MAX_GROUPS, MAX_GROUPS_PER_PARTITION,
    MAX_GROUP_MEMBERS, MAX_MACHINE_MEMORY, MAX_PARTITIONS, MAX_PORT_RANGES_PER_PARTITION,
    MAX_RESTARTS, MAX_TIMEOUT_SECS, MIN_GROUP_MEMBERS, PAGE_SIZE, PARTITION_ALIGN,
};

/// Which region of host memory a [`DecodeError::Overlap`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    /// The RAM of partition `n`.
    Partition(u16),
    /// The region of channel `n`.
    Channel(u16),
}

impl fmt::Display for RegionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Partition(i) => write!(f, "partition {i}"),
            Self::Channel(i) => write!(f, "channel {i}"),
        }
    }
}

/// Why a byte slice is not a valid manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer is shorter than the header or than `total_len`.
    Truncated {
        /// Bytes the manifest needs.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// The first eight bytes are not `FLOTMANI`.
    BadMagic,
    /// A format version this decoder does not read.
    UnsupportedVersion(u16),
    /// The stored checksum does not match the bytes.
    ChecksumMismatch {
        /// Checksum in the header.
        stored: u64,
        /// Checksum of the bytes.
        computed: u64,
    },
    /// A header field is invalid.
    BadHeader(&'static str),
    /// The machine record is invalid.
    BadMachine(&'static str),
    /// A table is out of bounds, misplaced or too long.
    BadTable(&'static str),
    /// A partition record is invalid.
    BadPartition {
        /// Index of the record.
        index: u16,
        /// What is wrong.
        problem: &'static str,
    },
    /// A channel record is invalid.
    BadChannel {
        /// Index of the record.
        index: u16,
        /// What is wrong.
        problem: &'static str,
    },
    /// A kernel record is invalid.
    BadKernel {
        /// Index of the record.
        index: u16,
        /// What is wrong.
        problem: &'static str,
    },
    /// A group record or one of its links is invalid.
    BadGroup {
        /// Index of the group record.
        index: u16,
        /// What is wrong.
        problem: &'static str,
    },
    /// A port range record is invalid or shared.
    BadPortRange {
        /// Index of the record.
        index: u16,
        /// What is wrong.
        problem: &'static str,
    },
    /// A port range grants ports the platform owns
    /// (`abi::ports::PLATFORM_PORTS`).
    PlatformPort {
        /// Index of the port range record.
        index: u16,
        /// The range granted.
        range: PortRange,
        /// The platform entry it overlaps (the first one, in table order).
        owner: &'static PlatformPort,
    },
    /// Two memory regions overlap.
    Overlap {
        /// The earlier region.
        first: RegionKind,
        /// The later region.
        second: RegionKind,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => write!(
                f,
                "manifest truncated: needs {needed} bytes, {available} available"
            ),
            Self::BadMagic => f.write_str("not a Flotilla manifest (bad magic)"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "unsupported manifest version {v} (this decoder reads version {FORMAT_VERSION})"
            ),
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "manifest checksum mismatch: stored {stored:#018x}, computed {computed:#018x}"
            ),
            Self::BadHeader(what) => write!(f, "bad manifest header: {what}"),
            Self::BadMachine(what) => write!(f, "bad machine record: {what}"),
            Self::BadTable(what) => write!(f, "bad manifest table: {what}"),
            Self::BadPartition { index, problem } => write!(f, "bad partition {index}: {problem}"),
            Self::BadChannel { index, problem } => write!(f, "bad channel {index}: {problem}"),
            Self::BadKernel { index, problem } => write!(f, "bad kernel {index}: {problem}"),
            Self::BadGroup { index, problem } => write!(f, "bad group {index}: {problem}"),
            Self::BadPortRange { index, problem } => {
                write!(f, "bad port range {index}: {problem}")
            }
            Self::PlatformPort {
                index,
                range,
                owner,
            } => write!(
                f,
                "port range {index} grants {range}, which overlaps {} {} the platform owns ({})",
                owner.range, owner.name, owner.reason
            ),
            Self::Overlap { first, second } => {
                write!(f, "{first} overlaps {second} in host memory")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// The machine a manifest describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// Cores the layout needs.
    pub cpus: u16,
    /// Bytes of RAM.
    pub memory: u64,
    /// Run timeout, seconds.
    pub timeout_secs: u32,
}

/// How a channel's receiver learns of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// An IPI along the channel.
    Ipi,
    /// The receiver polls.
    Poll,
}

/// What happens to a partition that faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFault {
    /// It stays stopped.
    Stop,
    /// It is restarted, at most [`Partition::max_restarts`] times.
    Restart,
}

/// The platform a partition's kernel gets (`compat` in the layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compat {
    /// The strict Flotilla platform: hypercalls, no emulated devices; any
    /// port, MSR or address not given faults the partition.
    #[default]
    None,
    /// The platform of a stock Linux kernel (`compat = "linux"`,
    /// `docs/linux.md`): ACPI tables, a virtual UART, floating ports, `#GP`
    /// for unknown MSRs, a read-only RTC.
    Linux,
}

impl Compat {
    /// Every value, in manifest-byte order.
    pub const ALL: [Compat; 2] = [Compat::None, Compat::Linux];

    /// The name used in layouts (`none` is the default, never needed).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Linux => "linux",
        }
    }

    /// The value called `name` in a layout.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The manifest byte ([`PartitionRecord::compat`]).
    #[must_use]
    pub fn to_byte(self) -> u8 {
        match self {
            Self::None => COMPAT_NONE,
            Self::Linux => COMPAT_LINUX,
        }
    }

    /// The value of a manifest byte, if it is known.
    #[must_use]
    pub fn from_byte(byte: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.to_byte() == byte)
    }

    /// Whether this is a stock-kernel platform (anything but [`Compat::None`]).
    #[must_use]
    pub fn is_compat(self) -> bool {
        self != Self::None
    }
}

/// What a kernel image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// The built-in guest kernel.
    BuiltIn,
    /// A PVH-bootable ELF given by path (its image is in the boot bundle).
    Elf,
}

/// A kernel of the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel<'a> {
    /// Index in the kernel table.
    pub index: u16,
    /// Built-in or ELF.
    pub kind: KernelKind,
    /// The kernel as written in the layout (`guest-kernel` or a path).
    pub name: &'a str,
}

/// A workload argument value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgValue<'a> {
    /// An integer.
    Integer(i64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(&'a str),
}

/// One workload argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg<'a> {
    /// Its key.
    pub key: &'a str,
    /// Its value.
    pub value: ArgValue<'a>,
}

/// Iterator over a partition's workload arguments, in layout order.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Args<'a> {
    type Item = Arg<'a>;

    fn next(&mut self) -> Option<Arg<'a>> {
        // The blob was validated by `decode`, so an error cannot happen here;
        // if it did, iteration simply ends.
        match next_arg(self.rest) {
            Ok(Some((arg, rest))) => {
                self.rest = rest;
                Some(arg)
            }
            _ => {
                self.rest = &[];
                None
            }
        }
    }
}

/// A partition of the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition<'a> {
    /// Index (= id) in the partition table.
    pub index: u16,
    /// Its name.
    pub name: &'a str,
    /// Its workload's name.
    pub workload: &'a str,
    /// The core it owns.
    pub cpu: u16,
    /// Index of its kernel.
    pub kernel: u16,
    /// Host-physical base of its RAM.
    pub host_base: u64,
    /// Bytes of its RAM.
    pub memory_size: u64,
    /// What happens when it faults.
    pub on_fault: OnFault,
    /// Most restarts (0 under [`OnFault::Stop`]).
    pub max_restarts: u8,
    /// The platform its kernel gets.
    pub compat: Compat,
    /// The kernel command line the layout gives (`cmdline`), possibly
    /// empty: printable ASCII, at most
    /// [`CMDLINE_MAX_LEN`](crate::limits::CMDLINE_MAX_LEN) bytes.
    pub cmdline: &'a str,
    /// The initrd as written in the layout (`initrd`), if any; its bytes
    /// travel in the boot bundle.
    pub initrd: Option<&'a str>,
    ports: &'a [PortRangeRecord],
    args: &'a [u8],
}

impl<'a> Partition<'a> {
    /// Its workload arguments, defaults included, in layout order.
    #[must_use]
    pub fn args(&self) -> Args<'a> {
        Args { rest: self.args }
    }

    /// The argument called `key`.
    #[must_use]
    pub fn arg(&self, key: &str) -> Option<ArgValue<'a>> {
        self.args().find(|a| a.key == key).map(|a| a.value)
    }

    /// Its I/O port ranges, inclusive `(first, last)`.
    pub fn ports(&self) -> impl ExactSizeIterator<Item = (u16, u16)> + 'a {
        self.ports.iter().map(|r| (r.first.get(), r.last.get()))
    }

    /// Whether the partition was given `port`.
    #[must_use]
    pub fn owns_port(&self, port: u16) -> bool {
        self.ports()
            .any(|(first, last)| (first..=last).contains(&port))
    }
}

/// A channel of the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    /// Index (= id) in the channel table.
    pub index: u16,
    /// First endpoint.
    pub partition_a: u16,
    /// Second endpoint.
    pub partition_b: u16,
    /// Notification kind.
    pub notify: Notify,
    /// Slots per direction.
    pub slots: u32,
    /// Host-physical base of the region.
    pub host_base: u64,
    /// Bytes of the region.
    pub size: u64,
    /// Vector delivered to endpoint A.
    pub vector_a: u8,
    /// Vector delivered to endpoint B.
    pub vector_b: u8,
}

impl Channel {
    /// The other endpoint, if `partition` is one of the two.
    #[must_use]
    pub fn peer_of(&self, partition: u16) -> Option<u16> {
        if partition == self.partition_a {
            Some(self.partition_b)
        } else if partition == self.partition_b {
            Some(self.partition_a)
        } else {
            None
        }
    }

    /// The vector delivered to `partition` when its peer notifies it.
    #[must_use]
    pub fn vector_for(&self, partition: u16) -> Option<u8> {
        if partition == self.partition_a {
            Some(self.vector_a)
        } else if partition == self.partition_b {
            Some(self.vector_b)
        } else {
            None
        }
    }
}

/// A channel between two members of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLink {
    /// The channel's index.
    pub channel: u16,
    /// The lower member id.
    pub a: u8,
    /// The higher member id.
    pub b: u8,
}

/// A replication group of the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group<'a> {
    /// Index (= id) in the group table.
    pub index: u16,
    /// Its name.
    pub name: &'a str,
    /// Bit `p` set for each member partition `p`.
    pub member_set: u64,
    links: &'a [GroupLinkRecord],
}

impl<'a> Group<'a> {
    /// Number of members.
    #[must_use]
    pub fn member_count(&self) -> usize {
        self.member_set.count_ones() as usize
    }

    /// Member partitions, in member-id order (increasing partition index).
    pub fn members(&self) -> impl Iterator<Item = u16> + 'a {
        let mut bits = self.member_set;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let p = bits.trailing_zeros();
            bits &= bits - 1;
            u16::try_from(p).ok()
        })
    }

    /// The partition that is member `id`.
    #[must_use]
    pub fn member(&self, id: u8) -> Option<u16> {
        self.members().nth(usize::from(id))
    }

    /// The member id of `partition`, if it is a member.
    #[must_use]
    pub fn member_id_of(&self, partition: u16) -> Option<u8> {
        if partition >= 64 || self.member_set & (1u64 << partition) == 0 {
            return None;
        }
        // Members below it: a count of at most 63 fits a u8.
        let below = self.member_set & ((1u64 << partition) - 1);
        u8::try_from(below.count_ones()).ok()
    }

    /// Every channel between two members, in channel order.
    pub fn links(&self) -> impl ExactSizeIterator<Item = GroupLink> + 'a {
        self.links.iter().map(|l| GroupLink {
            channel: l.channel.get(),
            a: l.member_a,
            b: l.member_b,
        })
    }
}

/// A validated manifest, borrowing the bytes it was decoded from.
#[derive(Debug, Clone, Copy)]
pub struct Manifest<'a> {
    header: &'a Header,
    partitions: &'a [PartitionRecord],
    channels: &'a [ChannelRecord],
    kernels: &'a [KernelRecord],
    ports: &'a [PortRangeRecord],
    groups: &'a [GroupRecord],
    group_links: &'a [GroupLinkRecord],
    strings: &'a [u8],
}

const HEADER_SIZE: usize = size_of::<Header>();

impl<'a> Manifest<'a> {
    /// Validates `bytes` as a manifest (everything listed in
    /// `docs/manifest.md`, "What the decoder checks") and returns a view of
    /// it. Bytes after `total_len` are ignored.
    ///
    /// # Errors
    /// The first problem found.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let (header, _) = Header::ref_from_prefix(bytes).map_err(|_| DecodeError::Truncated {
            needed: HEADER_SIZE,
            available: bytes.len(),
        })?;
        if header.magic != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if header.version.get() != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(header.version.get()));
        }
        if usize::from(header.header_size.get()) != HEADER_SIZE {
            return Err(DecodeError::BadHeader("header_size is not 96"));
        }
        let total = to_usize(header.total_len.get());
        if total < HEADER_SIZE {
            return Err(DecodeError::BadHeader(
                "total_len is smaller than the header",
            ));
        }
        let bytes = bytes.get(..total).ok_or(DecodeError::Truncated {
            needed: total,
            available: bytes.len(),
        })?;
        let covered = bytes.get(CHECKSUM_START..).ok_or(DecodeError::BadHeader(
            "total_len is smaller than the header",
        ))?;
        let computed = fnv1a64(covered);
        if computed != header.checksum.get() {
            return Err(DecodeError::ChecksumMismatch {
                stored: header.checksum.get(),
                computed,
            });
        }
        if header.flags.get() != 0 || header.reserved0 != [0; 8] {
            return Err(DecodeError::BadHeader("flags or reserved field not zero"));
        }

        let manifest = Self::tables(header, bytes)?;
        manifest.check_machine()?;
        manifest.check_kernels()?;
        manifest.check_partitions()?;
        manifest.check_channels()?;
        manifest.check_ports()?;
        manifest.check_groups()?;
        manifest.check_overlaps()?;
        Ok(manifest)
    }

    fn tables(header: &'a Header, bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let partition_count = header.partition_count.get();
        if partition_count == 0 || usize::from(partition_count) > MAX_PARTITIONS {
            return Err(DecodeError::BadTable("partition count not in 1..=64"));
        }
        if usize::from(header.channel_count.get()) > MAX_CHANNELS {
            return Err(DecodeError::BadTable("more than 128 channels"));
        }
        let kernel_count = header.kernel_count.get();
        if kernel_count == 0 || kernel_count > partition_count {
            return Err(DecodeError::BadTable(
                "kernel count not in 1..=partition count",
            ));
        }
        if usize::from(header.port_range_count.get())
            > MAX_PARTITIONS * MAX_PORT_RANGES_PER_PARTITION
        {
            return Err(DecodeError::BadTable("too many port ranges"));
        }
        if usize::from(header.group_count.get()) > MAX_GROUPS {
            return Err(DecodeError::BadTable("more than 16 groups"));
        }
        if usize::from(header.group_link_count.get()) > MAX_GROUPS * MAX_CHANNELS {
            return Err(DecodeError::BadTable("too many group links"));
        }

        // Tables come in this order, without overlap, after the header; the
        // string table ends the manifest exactly.
        let mut cursor = HEADER_SIZE;
        let (partitions, end) = table::<PartitionRecord>(
            bytes,
            cursor,
            header.partitions_offset.get(),
            partition_count,
            "partition table out of bounds or out of order",
        )?;
        cursor = end;
        let (channels, end) = table::<ChannelRecord>(
            bytes,
            cursor,
            header.channels_offset.get(),
            header.channel_count.get(),
            "channel table out of bounds or out of order",
        )?;
        cursor = end;
        let (kernels, end) = table::<KernelRecord>(
            bytes,
            cursor,
            header.kernels_offset.get(),
            kernel_count,
            "kernel table out of bounds or out of order",
        )?;
        cursor = end;
        let (ports, end) = table::<PortRangeRecord>(
            bytes,
            cursor,
            header.ports_offset.get(),
            header.port_range_count.get(),
            "port range table out of bounds or out of order",
        )?;
        cursor = end;
        let (groups, end) = table::<GroupRecord>(
            bytes,
            cursor,
            header.groups_offset.get(),
            header.group_count.get(),
            "group table out of bounds or out of order",
        )?;
        cursor = end;
        let (group_links, end) = table::<GroupLinkRecord>(
            bytes,
            cursor,
            header.group_links_offset.get(),
            header.group_link_count.get(),
            "group-link table out of bounds or out of order",
        )?;
        cursor = end;
        let strings_start = to_usize(header.strings_offset.get());
        let strings_end = strings_start
            .checked_add(to_usize(header.strings_len.get()))
            .ok_or(DecodeError::BadTable("string table out of bounds"))?;
        if strings_start < cursor || strings_end != bytes.len() {
            return Err(DecodeError::BadTable(
                "string table out of order or not ending the manifest",
            ));
        }
        let strings = bytes
            .get(strings_start..strings_end)
            .ok_or(DecodeError::BadTable("string table out of bounds"))?;
        Ok(Self {
            header,
            partitions,
            channels,
            kernels,
            ports,
            groups,
            group_links,
            strings,
        })
    }

    fn check_machine(&self) -> Result<(), DecodeError> {
        let m = self.machine();
        if m.cpus == 0 || m.cpus > MAX_CPUS {
            return Err(DecodeError::BadMachine("cpus not in 1..=64"));
        }
        if m.memory > MAX_MACHINE_MEMORY || !m.memory.is_multiple_of(PARTITION_ALIGN) {
            return Err(DecodeError::BadMachine(
                "memory above 3 GiB or not a multiple of 2 MiB",
            ));
        }
        if m.memory <= HYPERVISOR_RESERVE + FIRMWARE_RESERVE {
            return Err(DecodeError::BadMachine(
                "memory leaves no room beside the reserved areas",
            ));
        }
        if m.timeout_secs == 0 || m.timeout_secs > MAX_TIMEOUT_SECS {
            return Err(DecodeError::BadMachine("timeout not in 1..=86400 seconds"));
        }
        if self.header.machine.reserved0.get() != 0 {
            return Err(DecodeError::BadMachine("reserved field not zero"));
        }
        Ok(())
    }

    fn check_kernels(&self) -> Result<(), DecodeError> {
        for (index, k) in (0u16..).zip(self.kernels) {
            let bad = |problem| DecodeError::BadKernel { index, problem };
            if k.reserved0 != [0; 3] || k.reserved1.get() != 0 {
                return Err(bad("reserved field not zero"));
            }
            let name = self
                .string(k.name_offset.get(), k.name_len.get())
                .ok_or(bad("name out of bounds or not UTF-8"))?;
            if name.is_empty() || name.len() > KERNEL_PATH_MAX_LEN {
                return Err(bad("name empty or too long"));
            }
            match k.kind {
                KERNEL_BUILTIN if name != BUILTIN_KERNEL => {
                    return Err(bad("built-in kernel not named guest-kernel"))
                }
                KERNEL_BUILTIN | KERNEL_ELF => {}
                _ => return Err(bad("unknown kind")),
            }
        }
        Ok(())
    }

    fn check_partitions(&self) -> Result<(), DecodeError> {
        let machine = self.machine();
        let usable_end = machine.memory - FIRMWARE_RESERVE;
        let mut cpus_seen: u64 = 0;
        let mut next_port = 0usize;
        for (index, p) in (0u16..).zip(self.partitions) {
            let bad = |problem| DecodeError::BadPartition { index, problem };
            if p.id.get() != index {
                return Err(bad("id differs from its index"));
            }
            if p.reserved != [0; 8] || p.reserved0 != 0 {
                return Err(bad("reserved field not zero"));
            }
            let compat = Compat::from_byte(p.compat).ok_or(bad("unknown compat platform"))?;
            let cmdline = self
                .string(p.cmdline_offset.get(), p.cmdline_len.get())
                .ok_or(bad("command line out of bounds or not UTF-8"))?;
            if !is_valid_cmdline(cmdline) {
                return Err(bad("command line too long or not printable ASCII"));
            }
            let initrd = self
                .string(p.initrd_offset.get(), p.initrd_len.get())
                .ok_or(bad("initrd name out of bounds or not UTF-8"))?;
            if initrd.len() > KERNEL_PATH_MAX_LEN {
                return Err(bad("initrd name too long"));
            }
            let builtin = self
                .kernels
                .get(usize::from(p.kernel.get()))
                .is_some_and(|k| k.kind == KERNEL_BUILTIN);
            if builtin && (compat.is_compat() || !cmdline.is_empty() || !initrd.is_empty()) {
                return Err(bad(
                    "compat, cmdline or initrd given to the built-in kernel",
                ));
            }
            match (p.on_fault, p.max_restarts) {
                (ON_FAULT_STOP, 0) => {}
                (ON_FAULT_STOP, _) => return Err(bad("max_restarts not zero under stop")),
                (ON_FAULT_RESTART, 1..=MAX_RESTARTS) => {}
                (ON_FAULT_RESTART, _) => return Err(bad("max_restarts not in 1..=16")),
                _ => return Err(bad("unknown on_fault policy")),
            }
            let name = fixed_str(&p.name).ok_or(bad("name not NUL-padded UTF-8"))?;
            if !is_valid_name(name) {
                return Err(bad("name not of the form [a-z][a-z0-9-]{0,31}"));
            }
            let workload = fixed_str(&p.workload).ok_or(bad("workload not NUL-padded UTF-8"))?;
            if !is_valid_workload_name(workload) {
                return Err(bad("workload name empty or not printable ASCII"));
            }
            let cpu = p.cpu.get();
            if cpu >= machine.cpus {
                return Err(bad("cpu not below machine cpus"));
            }
            let bit = 1u64 << cpu; // cpu < cpus <= 64
            if cpus_seen & bit != 0 {
                return Err(bad("cpu already owned by another partition"));
            }
            cpus_seen |= bit;
            if p.kernel.get() >= self.header.kernel_count.get() {
                return Err(bad("kernel index out of range"));
            }
            let base = p.host_base.get();
            let size = p.memory_size.get();
            if size == 0 || size % PARTITION_ALIGN != 0 || base % PARTITION_ALIGN != 0 {
                return Err(bad("memory base or size not a non-zero multiple of 2 MiB"));
            }
            let end = base
                .checked_add(size)
                .ok_or(bad("memory region overflows"))?;
            if base < HYPERVISOR_RESERVE || end > usable_end {
                return Err(bad("memory outside the partitions' part of RAM"));
            }
            let args = self
                .bytes(p.args_offset.get(), p.args_len.get())
                .ok_or(bad("argument blob out of bounds"))?;
            check_args(args, p.arg_count.get()).map_err(bad)?;
            if usize::from(p.ports_first.get()) != next_port {
                return Err(bad("port ranges not in partition order"));
            }
            let count = usize::from(p.ports_count.get());
            if count > MAX_PORT_RANGES_PER_PARTITION {
                return Err(bad("more than 16 port ranges"));
            }
            next_port += count;
            if next_port > self.ports.len() {
                return Err(bad("port ranges out of bounds"));
            }
            for earlier in self.partitions.iter().take(usize::from(index)) {
                if earlier.name == p.name {
                    return Err(bad("name used by an earlier partition"));
                }
            }
        }
        if next_port != self.ports.len() {
            return Err(DecodeError::BadTable(
                "port ranges not owned by any partition",
            ));
        }
        Ok(())
    }

    fn check_channels(&self) -> Result<(), DecodeError> {
        let usable_end = self.machine().memory - FIRMWARE_RESERVE;
        let count = self.header.partition_count.get();
        for (index, c) in (0u16..).zip(self.channels) {
            let bad = |problem| DecodeError::BadChannel { index, problem };
            if c.id.get() != index {
                return Err(bad("id differs from its index"));
            }
            if c.reserved != [0; 3] {
                return Err(bad("reserved field not zero"));
            }
            let (a, b) = (c.partition_a.get(), c.partition_b.get());
            if a >= count || b >= count {
                return Err(bad("endpoint is not a partition"));
            }
            if a == b {
                return Err(bad("both endpoints are the same partition"));
            }
            if !is_valid_slots(c.slots.get()) {
                return Err(bad("slots not a power of two in 2..=4096"));
            }
            if c.notify != NOTIFY_IPI && c.notify != NOTIFY_POLL {
                return Err(bad("unknown notify kind"));
            }
            for v in [c.vector_a, c.vector_b] {
                if !(0x20..=0xFE).contains(&v) {
                    return Err(bad("IPI vector not in 0x20..=0xFE"));
                }
            }
            let base = c.host_base.get();
            let size = c.size.get();
            if size != channel_region_size(c.slots.get()) {
                return Err(bad("size does not match the slot count"));
            }
            if base % PAGE_SIZE != 0 {
                return Err(bad("base not 4 KiB aligned"));
            }
            let end = base.checked_add(size).ok_or(bad("region overflows"))?;
            if base < HYPERVISOR_RESERVE || end > usable_end {
                return Err(bad("region outside the partitions' part of RAM"));
            }
            for earlier in self.channels.iter().take(usize::from(index)) {
                let (ea, eb) = (earlier.partition_a.get(), earlier.partition_b.get());
                if (ea, eb) == (a, b) || (ea, eb) == (b, a) {
                    return Err(bad("same pair as an earlier channel"));
                }
            }
        }
        Ok(())
    }

    fn check_ports(&self) -> Result<(), DecodeError> {
        for (index, r) in (0u16..).zip(self.ports) {
            let bad = |problem| DecodeError::BadPortRange { index, problem };
            let (first, last) = (r.first.get(), r.last.get());
            if first > last {
                return Err(bad("first port after last port"));
            }
            let range = PortRange::new(first, last);
            if let Some(owner) = first_platform_overlap(range) {
                return Err(DecodeError::PlatformPort {
                    index,
                    range,
                    owner,
                });
            }
            for earlier in self.ports.iter().take(usize::from(index)) {
                if first <= earlier.last.get() && earlier.first.get() <= last {
                    return Err(bad("overlaps an earlier port range"));
                }
            }
        }
        Ok(())
    }

    fn check_groups(&self) -> Result<(), DecodeError> {
        let partition_count = self.partitions.len();
        // Partition counts are at most 64 (checked in `tables`).
        let all_partitions = u64::MAX >> (64 - partition_count);
        let mut next_link = 0usize;
        let mut memberships = [0u8; MAX_PARTITIONS];
        for (index, g) in (0u16..).zip(self.groups) {
            let bad = |problem| DecodeError::BadGroup { index, problem };
            if g.id.get() != index {
                return Err(bad("id differs from its index"));
            }
            if g.reserved != [0; 16] {
                return Err(bad("reserved field not zero"));
            }
            let name = fixed_str(&g.name).ok_or(bad("name not NUL-padded UTF-8"))?;
            if !is_valid_name(name) {
                return Err(bad("name not of the form [a-z][a-z0-9-]{0,31}"));
            }
            for earlier in self.groups.iter().take(usize::from(index)) {
                if earlier.name == g.name {
                    return Err(bad("name used by an earlier group"));
                }
            }
            let members = g.members.get();
            if members & !all_partitions != 0 {
                return Err(bad("member is not a partition"));
            }
            let n = members.count_ones() as usize;
            if n != usize::from(g.member_count.get()) {
                return Err(bad("member_count differs from the member set"));
            }
            if !(MIN_GROUP_MEMBERS..=MAX_GROUP_MEMBERS).contains(&n) {
                return Err(bad("member count not in 2..=32"));
            }
            for (p, slot) in memberships.iter_mut().enumerate() {
                if p < 64 && members & (1u64 << p) != 0 {
                    *slot = slot.saturating_add(1);
                    if usize::from(*slot) > MAX_GROUPS_PER_PARTITION {
                        return Err(bad("a member is in more than 4 groups"));
                    }
                }
            }
            if usize::from(g.links_first.get()) != next_link {
                return Err(bad("links not in group order"));
            }
            let count = usize::from(g.links_count.get());
            let end = next_link
                .checked_add(count)
                .ok_or(bad("links out of bounds"))?;
            let links = self
                .group_links
                .get(next_link..end)
                .ok_or(bad("links out of bounds"))?;
            next_link = end;
            let view = Group {
                index,
                name,
                member_set: members,
                links,
            };
            // Each link: a channel between the two members it names, in
            // increasing channel order (so none is listed twice).
            let mut previous: Option<u16> = None;
            let mut adjacency = [0u32; MAX_GROUP_MEMBERS];
            for l in links {
                let channel = l.channel.get();
                if previous.is_some_and(|p| channel <= p) {
                    return Err(bad("links not in increasing channel order"));
                }
                previous = Some(channel);
                let c = self
                    .channels
                    .get(usize::from(channel))
                    .ok_or(bad("link names no channel"))?;
                let (a, b) = (l.member_a, l.member_b);
                if a >= b || usize::from(b) >= n {
                    return Err(bad("link members not two members in increasing order"));
                }
                let (pa, pb) = (
                    view.member(a).ok_or(bad("link member out of range"))?,
                    view.member(b).ok_or(bad("link member out of range"))?,
                );
                let (ca, cb) = (c.partition_a.get(), c.partition_b.get());
                if (ca, cb) != (pa, pb) && (ca, cb) != (pb, pa) {
                    return Err(bad("link's channel does not connect its members"));
                }
                // a < b < n <= 32, so both shifts are in range.
                if let Some(row) = adjacency.get_mut(usize::from(a)) {
                    *row |= 1u32 << b;
                }
                if let Some(row) = adjacency.get_mut(usize::from(b)) {
                    *row |= 1u32 << a;
                }
            }
            // Complete: every channel between two members is a link.
            let inside = |p: u16| p < 64 && members & (1u64 << p) != 0;
            let between = self
                .channels
                .iter()
                .filter(|c| inside(c.partition_a.get()) && inside(c.partition_b.get()))
                .count();
            if between != count {
                return Err(bad("links are not exactly the channels between members"));
            }
            // Connected: a breadth-first sweep from member 0 reaches all.
            let everyone = u32::MAX >> (32 - n);
            let mut reached = 1u32;
            loop {
                let mut next = reached;
                for (m, adj) in adjacency.iter().enumerate().take(n) {
                    if reached & (1u32 << m) != 0 {
                        next |= adj;
                    }
                }
                if next == reached {
                    break;
                }
                reached = next;
            }
            if reached != everyone {
                return Err(bad("members not connected by their links"));
            }
        }
        if next_link != self.group_links.len() {
            return Err(DecodeError::BadTable("group links not owned by any group"));
        }
        Ok(())
    }

    fn region(&self, i: usize) -> Option<(RegionKind, u64, u64)> {
        let np = self.partitions.len();
        if let Some(p) = self.partitions.get(i) {
            let index = u16::try_from(i).ok()?;
            return Some((
                RegionKind::Partition(index),
                p.host_base.get(),
                p.memory_size.get(),
            ));
        }
        let ci = i.checked_sub(np)?;
        let c = self.channels.get(ci)?;
        let index = u16::try_from(ci).ok()?;
        Some((RegionKind::Channel(index), c.host_base.get(), c.size.get()))
    }

    fn check_overlaps(&self) -> Result<(), DecodeError> {
        // At most 64 + 128 regions: the quadratic scan is cheap and needs no
        // allocation. Ends were checked for overflow above.
        let n = self.partitions.len() + self.channels.len();
        for i in 0..n {
            let Some((first, base_i, size_i)) = self.region(i) else {
                continue;
            };
            for j in (i + 1)..n {
                let Some((second, base_j, size_j)) = self.region(j) else {
                    continue;
                };
                if base_i < base_j.saturating_add(size_j) && base_j < base_i.saturating_add(size_i)
                {
                    return Err(DecodeError::Overlap { first, second });
                }
            }
        }
        Ok(())
    }

    fn bytes(&self, offset: u32, len: u32) -> Option<&'a [u8]> {
        let start = to_usize(offset);
        let end = start.checked_add(to_usize(len))?;
        self.strings.get(start..end)
    }

    fn string(&self, offset: u32, len: u32) -> Option<&'a str> {
        core::str::from_utf8(self.bytes(offset, len)?).ok()
    }

    /// The format version.
    #[must_use]
    pub fn version(&self) -> u16 {
        self.header.version.get()
    }

    /// Bytes of the manifest (`total_len`).
    #[must_use]
    pub fn len(&self) -> usize {
        to_usize(self.header.total_len.get())
    }

    /// Always false: a valid manifest has a header and at least one partition.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The stored checksum.
    #[must_use]
    pub fn checksum(&self) -> u64 {
        self.header.checksum.get()
    }

    /// The machine.
    #[must_use]
    pub fn machine(&self) -> Machine {
        let m = &self.header.machine;
        Machine {
            cpus: m.cpus.get(),
            memory: m.memory.get(),
            timeout_secs: m.timeout_secs.get(),
        }
    }

    /// Number of partitions.
    #[must_use]
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Number of channels.
    #[must_use]
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Number of kernels.
    #[must_use]
    pub fn kernel_count(&self) -> usize {
        self.kernels.len()
    }

    /// Partition `index`.
    #[must_use]
    pub fn partition(&self, index: usize) -> Option<Partition<'a>> {
        let p = self.partitions.get(index)?;
        let first = usize::from(p.ports_first.get());
        let ports = self
            .ports
            .get(first..first.checked_add(usize::from(p.ports_count.get()))?)?;
        Some(Partition {
            index: p.id.get(),
            name: fixed_str(&p.name).unwrap_or_default(),
            workload: fixed_str(&p.workload).unwrap_or_default(),
            cpu: p.cpu.get(),
            kernel: p.kernel.get(),
            host_base: p.host_base.get(),
            memory_size: p.memory_size.get(),
            on_fault: if p.on_fault == ON_FAULT_RESTART {
                OnFault::Restart
            } else {
                OnFault::Stop
            },
            max_restarts: p.max_restarts,
            compat: Compat::from_byte(p.compat).unwrap_or_default(),
            cmdline: self
                .string(p.cmdline_offset.get(), p.cmdline_len.get())
                .unwrap_or_default(),
            initrd: self
                .string(p.initrd_offset.get(), p.initrd_len.get())
                .filter(|name| !name.is_empty()),
            ports,
            args: self.bytes(p.args_offset.get(), p.args_len.get())?,
        })
    }

    /// All partitions, in layout order.
    pub fn partitions(&self) -> impl Iterator<Item = Partition<'a>> + '_ {
        (0..self.partitions.len()).filter_map(|i| self.partition(i))
    }

    /// The partition that owns core `cpu`.
    #[must_use]
    pub fn partition_on_cpu(&self, cpu: u16) -> Option<Partition<'a>> {
        self.partitions().find(|p| p.cpu == cpu)
    }

    /// The partition called `name`.
    #[must_use]
    pub fn partition_by_name(&self, name: &str) -> Option<Partition<'a>> {
        self.partitions().find(|p| p.name == name)
    }

    /// Channel `index`.
    #[must_use]
    pub fn channel(&self, index: usize) -> Option<Channel> {
        let c = self.channels.get(index)?;
        Some(Channel {
            index: c.id.get(),
            partition_a: c.partition_a.get(),
            partition_b: c.partition_b.get(),
            notify: if c.notify == NOTIFY_IPI {
                Notify::Ipi
            } else {
                Notify::Poll
            },
            slots: c.slots.get(),
            host_base: c.host_base.get(),
            size: c.size.get(),
            vector_a: c.vector_a,
            vector_b: c.vector_b,
        })
    }

    /// All channels, in layout order.
    pub fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        (0..self.channels.len()).filter_map(|i| self.channel(i))
    }

    /// The channels `partition` is an endpoint of.
    pub fn channels_of(&self, partition: u16) -> impl Iterator<Item = Channel> + '_ {
        self.channels()
            .filter(move |c| c.partition_a == partition || c.partition_b == partition)
    }

    /// The channel between partitions `a` and `b`, either way round.
    #[must_use]
    pub fn channel_between(&self, a: u16, b: u16) -> Option<Channel> {
        self.channels().find(|c| c.peer_of(a) == Some(b))
    }

    /// Number of groups.
    #[must_use]
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Group `index`.
    #[must_use]
    pub fn group(&self, index: usize) -> Option<Group<'a>> {
        let g = self.groups.get(index)?;
        let first = usize::from(g.links_first.get());
        let links = self
            .group_links
            .get(first..first.checked_add(usize::from(g.links_count.get()))?)?;
        Some(Group {
            index: g.id.get(),
            name: fixed_str(&g.name).unwrap_or_default(),
            member_set: g.members.get(),
            links,
        })
    }

    /// All groups, in layout order.
    pub fn groups(&self) -> impl Iterator<Item = Group<'a>> + '_ {
        (0..self.groups.len()).filter_map(|i| self.group(i))
    }

    /// The groups `partition` is a member of.
    pub fn groups_of(&self, partition: u16) -> impl Iterator<Item = Group<'a>> + '_ {
        self.groups()
            .filter(move |g| g.member_id_of(partition).is_some())
    }

    /// Kernel `index`.
    #[must_use]
    pub fn kernel(&self, index: usize) -> Option<Kernel<'a>> {
        let k = self.kernels.get(index)?;
        Some(Kernel {
            index: u16::try_from(index).ok()?,
            kind: if k.kind == KERNEL_BUILTIN {
                KernelKind::BuiltIn
            } else {
                KernelKind::Elf
            },
            name: self.string(k.name_offset.get(), k.name_len.get())?,
        })
    }

    /// All kernels.
    pub fn kernels(&self) -> impl Iterator<Item = Kernel<'a>> + '_ {
        (0..self.kernels.len()).filter_map(|i| self.kernel(i))
    }
}

fn to_usize(v: u32) -> usize {
    // usize is at least 32 bits on every target this crate builds for.
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// The table of `count` records of `T` at `offset`, which must not start
/// before `cursor`; returns it and the offset just past it.
fn table<'a, T: FromBytes + KnownLayout + Immutable + Unaligned>(
    bytes: &'a [u8],
    cursor: usize,
    offset: u32,
    count: u16,
    problem: &'static str,
) -> Result<(&'a [T], usize), DecodeError> {
    let err = DecodeError::BadTable(problem);
    let start = to_usize(offset);
    if start < cursor {
        return Err(err);
    }
    let len = usize::from(count).checked_mul(size_of::<T>()).ok_or(err)?;
    let end = start.checked_add(len).ok_or(err)?;
    let slice = bytes.get(start..end).ok_or(err)?;
    let records = <[T]>::ref_from_bytes(slice).map_err(|_| err)?;
    Ok((records, end))
}

/// The string in a NUL-padded fixed field: UTF-8 up to the first NUL, and
/// only NULs after it.
fn fixed_str(field: &[u8]) -> Option<&str> {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let (text, padding) = field.split_at_checked(len)?;
    if padding.iter().any(|&b| b != 0) {
        return None;
    }
    core::str::from_utf8(text).ok()
}

/// Splits `n` bytes off the front of `bytes`.
fn take(bytes: &[u8], n: usize) -> Result<(&[u8], &[u8]), &'static str> {
    bytes.split_at_checked(n).ok_or("argument blob truncated")
}

/// Reads the next argument of a blob: `key_len: u8, key, tag: u8, value`.
fn next_arg(blob: &[u8]) -> Result<Option<(Arg<'_>, &[u8])>, &'static str> {
    let Some((&key_len, rest)) = blob.split_first() else {
        return Ok(None);
    };
    let (key, rest) = take(rest, usize::from(key_len))?;
    let key = core::str::from_utf8(key).map_err(|_| "argument key not UTF-8")?;
    if !is_valid_arg_key(key) {
        return Err("argument key not of the form [a-z_][a-z0-9_-]*");
    }
    let (&tag, rest) = rest.split_first().ok_or("argument blob truncated")?;
    let (value, rest) = match tag {
        ARG_INTEGER => {
            let (v, rest) = take(rest, 8)?;
            let v: [u8; 8] = v.try_into().map_err(|_| "argument blob truncated")?;
            (ArgValue::Integer(i64::from_le_bytes(v)), rest)
        }
        ARG_BOOL => match rest.split_first() {
            Some((0, rest)) => (ArgValue::Bool(false), rest),
            Some((1, rest)) => (ArgValue::Bool(true), rest),
            Some(_) => return Err("boolean argument not 0 or 1"),
            None => return Err("argument blob truncated"),
        },
        ARG_STRING => {
            let (len, rest) = take(rest, 2)?;
            let len: [u8; 2] = len.try_into().map_err(|_| "argument blob truncated")?;
            let len = u16::from_le_bytes(len);
            if usize::from(len) > ARG_STRING_MAX_LEN {
                return Err("string argument longer than 256 bytes");
            }
            let (s, rest) = take(rest, usize::from(len))?;
            let s = core::str::from_utf8(s).map_err(|_| "string argument not UTF-8")?;
            (ArgValue::Str(s), rest)
        }
        _ => return Err("unknown argument type tag"),
    };
    Ok(Some((Arg { key, value }, rest)))
}

/// Checks a whole argument blob: well-formed, exactly `count` arguments,
/// keys unique, at most [`MAX_ARGS`].
fn check_args(blob: &[u8], count: u16) -> Result<(), &'static str> {
    if usize::from(count) > MAX_ARGS {
        return Err("more than 16 arguments");
    }
    let mut rest = blob;
    let mut seen = 0usize;
    let mut keys: [&str; MAX_ARGS] = [""; MAX_ARGS];
    while let Some((arg, tail)) = next_arg(rest)? {
        if keys.iter().take(seen).any(|k| *k == arg.key) {
            return Err("argument key repeated");
        }
        let slot = keys.get_mut(seen).ok_or("more arguments than arg_count")?;
        *slot = arg.key;
        seen += 1;
        rest = tail;
    }
    if seen != usize::from(count) {
        return Err("argument count differs from arg_count");
    }
    Ok(())
}
