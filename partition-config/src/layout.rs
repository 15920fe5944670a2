//! The validated layout: what the front end produces once every check has
//! passed, placement included. Tools read it directly (`explain`, building
//! the boot bundle); the hypervisor gets it through the manifest.

use std::path::PathBuf;

/// A whole validated layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The machine.
    pub machine: Machine,
    /// Distinct kernels, in order of first use; partitions refer to them by index.
    pub kernels: Vec<Kernel>,
    /// Partitions in declaration order; the index is the partition id.
    pub partitions: Vec<Partition>,
    /// Channels in declaration order; the index is the channel id.
    pub channels: Vec<Channel>,
    /// Replication groups in declaration order; the index is the group id.
    pub groups: Vec<Group>,
}

/// The `[machine]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// Cores the layout needs.
    pub cpus: u16,
    /// Bytes of RAM of the machine.
    pub memory: u64,
    /// Run timeout, seconds.
    pub timeout_secs: u32,
}

/// A guest kernel image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kernel {
    /// The built-in guest kernel (`guest-kernel`).
    BuiltIn,
    /// A PVH-bootable ELF.
    Elf {
        /// The path as written in the layout (goes into the manifest).
        written: String,
        /// The path resolved against the layout file's directory.
        path: PathBuf,
    },
    /// A workload crate (`kernel = { crate = "PATH" }`), which `flotilla`
    /// builds for `x86_64-unknown-none` into a PVH-bootable ELF.
    Crate {
        /// The directory as written in the layout.
        written: String,
        /// The directory resolved against the layout file's directory
        /// (it holds the crate's `Cargo.toml`).
        dir: PathBuf,
    },
}

impl Kernel {
    /// The kernel as written in the layout.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::BuiltIn => crate::catalog::BUILTIN_KERNEL,
            Self::Elf { written, .. } | Self::Crate { written, .. } => written,
        }
    }
}

/// A workload argument value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgValue {
    /// An integer.
    Integer(i64),
    /// A boolean.
    Bool(bool),
    /// A string.
    String(String),
}

impl std::fmt::Display for ArgValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Integer(v) => write!(f, "{v}"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::String(v) => write!(f, "{v:?}"),
        }
    }
}

/// An inclusive range of I/O ports: the type the platform-port table
/// (`abi::ports`) is written in, so validation and the table agree.
pub use abi::ports::PortRange;

/// A region of host-physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Bytes.
    pub size: u64,
}

impl Region {
    /// One past the last byte.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether the two regions share a byte.
    #[must_use]
    pub fn overlaps(&self, other: &Self) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

/// A partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Its unique name.
    pub name: String,
    /// The core it owns.
    pub cpu: u16,
    /// Index into [`Layout::kernels`].
    pub kernel: usize,
    /// Workload name.
    pub workload: String,
    /// Workload arguments in layout order; for the built-in kernel, every
    /// declared argument, defaults filled in.
    pub args: Vec<(String, ArgValue)>,
    /// I/O port ranges given to this partition alone.
    pub ports: Vec<PortRange>,
    /// Where its RAM is in host-physical memory.
    pub region: Region,
    /// Whether `base` was given in the layout.
    pub explicit_base: bool,
    /// What the hypervisor does when the partition faults.
    pub on_fault: OnFault,
    /// Most restarts under [`OnFault::Restart`] (`1..=MAX_RESTARTS`); 0 under
    /// [`OnFault::Stop`].
    pub max_restarts: u8,
    /// The platform its kernel gets (`compat`; [`Compat::None`] unless the
    /// layout opts in).
    pub compat: Compat,
    /// The kernel command line (`cmdline`), empty when not given.
    pub cmdline: String,
    /// The initrd (`initrd`), if any.
    pub initrd: Option<Initrd>,
}

/// The platform a partition's kernel gets: the manifest's own type.
pub use crate::manifest::Compat;

/// An initrd given by path (`initrd = "PATH"`): loaded into the partition
/// and handed to its kernel as PVH module 0 (`docs/boot-protocol.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initrd {
    /// The path as written in the layout (goes into the manifest).
    pub written: String,
    /// The path resolved against the layout file's directory.
    pub path: PathBuf,
    /// Its size in bytes when the layout was checked.
    pub len: u64,
}

/// What happens to a partition that faults (`on_fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFault {
    /// It stays stopped; the others run on (the default).
    #[default]
    Stop,
    /// Its RAM is zeroed, its image reloaded and it runs again, at most
    /// `max_restarts` times.
    Restart,
}

impl OnFault {
    /// The name used in layouts.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Restart => "restart",
        }
    }
}

/// A replication group (`[[group]]`): partitions that replicate state over
/// the channels among them (`docs/replication.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Its unique name.
    pub name: String,
    /// Member partitions (indices into [`Layout::partitions`]) in increasing
    /// order: member `i` of the group is `members[i]`, whatever order the
    /// layout listed them in.
    pub members: Vec<usize>,
    /// Every channel between two members, in channel order.
    pub links: Vec<GroupLink>,
}

/// A channel between two members of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLink {
    /// The channel (index into [`Layout::channels`]).
    pub channel: usize,
    /// The lower member id (index into [`Group::members`]).
    pub a: u8,
    /// The higher member id.
    pub b: u8,
}

/// How a channel's receiver learns of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// An IPI along the channel.
    Ipi,
    /// The receiver polls.
    Poll,
}

impl Notify {
    /// The name used in layouts.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipi => "ipi",
            Self::Poll => "poll",
        }
    }
}

/// A channel between two partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    /// First endpoint, index into [`Layout::partitions`].
    pub a: usize,
    /// Second endpoint.
    pub b: usize,
    /// Slots per direction.
    pub slots: u32,
    /// Notification kind.
    pub notify: Notify,
    /// Where its region is in host-physical memory.
    pub region: Region,
    /// IPI vector delivered at both endpoints (`0x40 + index`).
    pub vector: u8,
}

impl Layout {
    /// The partition called `name`.
    #[must_use]
    pub fn partition(&self, name: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.name == name)
    }

    /// The group called `name`.
    #[must_use]
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The kernel of `partition`.
    #[must_use]
    pub fn kernel_of(&self, partition: &Partition) -> Option<&Kernel> {
        self.kernels.get(partition.kernel)
    }

    /// Lowers the layout to the binary manifest (`docs/manifest.md`).
    #[must_use]
    pub fn encode_manifest(&self) -> Vec<u8> {
        crate::manifest::encode::encode(self)
    }

    /// A human-readable description: memory map and who may message or
    /// interrupt whom.
    #[must_use]
    pub fn explain(&self) -> String {
        crate::explain::explain(self)
    }

    /// The default four-partition layout ([`crate::DEFAULT_LAYOUT`]), parsed.
    ///
    /// # Errors
    /// Never in a released build (a test checks it); returned rather than
    /// panicking all the same.
    pub fn default_layout() -> Result<Self, crate::Diagnostics> {
        crate::parse_str(crate::DEFAULT_LAYOUT, "examples/default.toml")
    }
}
