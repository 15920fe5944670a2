//! From a decoded manifest to the run plan: which partition runs on which
//! core, where its RAM and channels are in host and guest-physical memory,
//! and what it may do — after re-checking the layout against the machine the
//! hypervisor actually booted on (cores found, RAM in the memory map, the
//! hypervisor's own memory, the I/O ports the platform and its firmware
//! own).

use crate::nested_paging::{Access, Mapping};
use crate::partition::{ChannelGrant, Partition};
use crate::platform::acpi::FadtPorts;
use abi::boot::{
    ChannelInfo, GroupInfo, Notify as BootNotify, CHANNEL_WINDOW_GPA, GROUP_STATUS_GPA, MAX_ARGS,
    MAX_CHANNELS, MAX_GROUPS, MEMBERSHIP_VECTOR,
};
use abi::group::{MAX_MEMBERS, STATUS_PAGE_SIZE};
use abi::ports::{first_platform_overlap, PortRange};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use channels::layout::{area_offset, area_size, IDENTITY_OFFSET, IDENTITY_SIZE};
use channels::Side;
use partition_config::manifest::{ArgValue, Manifest, Notify, OnFault};

/// One channel as one endpoint sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelView {
    /// What the guest is told (boot protocol record).
    pub info: ChannelInfo,
    /// Host-physical base of the region.
    pub host_base: u64,
}

/// Everything needed to start one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionPlan {
    /// Identity and permissions.
    pub policy: Partition,
    /// Host-physical base of its RAM.
    pub host_base: u64,
    /// Kernel image index in the bundle.
    pub kernel: u16,
    /// Workload name.
    pub workload: String,
    /// Arguments as `key=value` words.
    pub args: String,
    /// Granted I/O port ranges (inclusive).
    pub ports: Vec<(u16, u16)>,
    /// Its channels, in layout order.
    pub channels: Vec<ChannelView>,
    /// What a fault does to it (docs/layout.md, "Faults").
    pub on_fault: OnFault,
    /// Most restarts under [`OnFault::Restart`] (0 under stop).
    pub max_restarts: u8,
    /// The layout's kernel command line (`cmdline`, possibly empty).
    pub cmdline: String,
    /// Whether the layout gives it an initrd (its bytes are in the bundle).
    pub initrd: bool,
    /// The records of the replication groups it is a member of (boot
    /// protocol v3), in layout order.
    pub groups: Vec<GroupInfo>,
}

impl ChannelView {
    /// The nested-paging mappings of this endpoint's view of the channel
    /// (channel layout v4, `docs/channels.md`), which enforce one writer per
    /// page: the identity page read-only (the hypervisor formatted it), this
    /// endpoint's area (its control page and the ring it sends on)
    /// read-write, and the peer's area read-only. A buggy or hostile guest
    /// that writes the identity line or the peer's lines takes a nested page
    /// fault and is stopped; it can garble only its own area, which its peer
    /// validates. Nothing is executable.
    pub fn mappings(&self) -> [Mapping; 3] {
        let slots = self.info.slots;
        let (own, peer) = if self.info.side == 0 {
            (Side::A, Side::B)
        } else {
            (Side::B, Side::A)
        };
        let at = |offset: usize, len: usize, access: Access| Mapping {
            gpa: self.info.gpa + offset as u64,
            hpa: self.host_base + offset as u64,
            len: len as u64,
            access,
        };
        let area = area_size(slots);
        [
            at(IDENTITY_OFFSET, IDENTITY_SIZE, Access::RO),
            at(area_offset(own, slots), area, Access::RW),
            at(area_offset(peer, slots), area, Access::RO),
        ]
    }
}

/// A channel region to format before any partition starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelRegion {
    /// Host-physical base.
    pub host_base: u64,
    /// Size in bytes.
    pub size: u64,
    /// Slots per direction.
    pub slots: u32,
}

/// A replication group: its status page's members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPlan {
    /// The member partitions, in member-id order.
    pub partitions: Vec<u32>,
}

impl GroupPlan {
    /// The member id of `partition`.
    pub fn member_of(&self, partition: u32) -> Option<usize> {
        self.partitions.iter().position(|&p| p == partition)
    }
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPlan {
    /// Partitions, indexed by partition id.
    pub partitions: Vec<PartitionPlan>,
    /// Replication groups, indexed by group index.
    pub groups: Vec<GroupPlan>,
    /// Channel regions.
    pub channels: Vec<ChannelRegion>,
    /// Run timeout in seconds.
    pub timeout_secs: u32,
}

impl RunPlan {
    /// The partition that runs on core `cpu`, if any.
    pub fn partition_on(&self, cpu: u32) -> Option<&PartitionPlan> {
        self.partitions.iter().find(|p| p.policy.cpu == cpu)
    }
}

/// What the machine offers, as the hypervisor found it.
pub trait MachineView {
    /// x2APIC ID of core `index` (MADT order), if it exists.
    fn apic_id(&self, index: u32) -> Option<u32>;
    /// Number of cores.
    fn cpu_count(&self) -> u32;
    /// Whether `base..base+len` is usable RAM nobody else (hypervisor,
    /// firmware) uses.
    fn is_free_ram(&self, base: u64, len: u64) -> bool;
    /// The I/O ports the machine's ACPI FADT declares.
    fn firmware_ports(&self) -> &FadtPorts;
}

/// Refuses port ranges granted to partition `name` that the platform owns:
/// the `abi::ports` table again (the manifest decoder checks it too, but the
/// hypervisor does not trust the manifest), and the blocks this machine's
/// FADT declares (power management, SMI command, reset). When the FADT is
/// unreadable, any port grant is refused: what the firmware uses is unknown.
pub fn check_ports(name: &str, ports: &[(u16, u16)], firmware: &FadtPorts) -> Result<(), String> {
    for &(first, last) in ports {
        let range = PortRange::new(first, last);
        if first > last {
            return Err(format!(
                "partition {name} is granted the empty I/O port range {first:#x}-{last:#x}"
            ));
        }
        if let Some(owner) = first_platform_overlap(range) {
            return Err(format!(
                "partition {name} is granted I/O ports {range}, which overlap {} {}: the platform owns them ({})",
                owner.range, owner.name, owner.reason
            ));
        }
        match firmware {
            FadtPorts::Declared(blocks) => {
                if let Some(block) = blocks.iter().find(|b| b.range.overlaps(&range)) {
                    return Err(format!(
                        "partition {name} is granted I/O ports {range}, which overlap {} ({}), declared by this machine's ACPI FADT: the firmware owns them",
                        block.range, block.field
                    ));
                }
            }
            FadtPorts::Absent => {}
            FadtPorts::Unreadable(e) => {
                return Err(format!(
                    "partition {name} is granted I/O ports {range}, but this machine's ACPI FADT is unreadable ({e}), so the ports its firmware uses are unknown"
                ));
            }
        }
    }
    Ok(())
}

fn args_text(partition: &partition_config::manifest::Partition<'_>) -> Result<String, String> {
    let mut out = String::new();
    for arg in partition.args() {
        if !out.is_empty() {
            out.push(' ');
        }
        let value = match arg.value {
            ArgValue::Integer(i) => i.to_string(),
            ArgValue::Bool(b) => b.to_string(),
            ArgValue::Str(s) if s.bytes().all(|b| b.is_ascii_graphic()) => s.to_string(),
            ArgValue::Str(s) => {
                return Err(format!(
                    "argument {}={s:?} of partition {} has spaces or non-ASCII characters",
                    arg.key, partition.name
                ))
            }
        };
        out.push_str(arg.key);
        out.push('=');
        out.push_str(&value);
    }
    if out.len() > MAX_ARGS {
        return Err(format!(
            "the arguments of partition {} exceed {MAX_ARGS} bytes",
            partition.name
        ));
    }
    Ok(out)
}

/// A group's adjacency table (`GroupInfo::adjacency`) from its links
/// (member pairs); pairs out of range or a member with itself are ignored.
pub fn adjacency(links: impl Iterator<Item = (u8, u8)>) -> [u32; MAX_MEMBERS] {
    let mut table = [0u32; MAX_MEMBERS];
    for (a, b) in links.map(|(a, b)| (usize::from(a), usize::from(b))) {
        if a != b && a < MAX_MEMBERS && b < MAX_MEMBERS {
            table[a] |= 1 << b;
            table[b] |= 1 << a;
        }
    }
    table
}

/// Builds the run plan, or says precisely why this machine cannot hold the
/// layout.
pub fn plan(manifest: &Manifest<'_>, machine: &impl MachineView) -> Result<RunPlan, String> {
    let needed = u32::from(manifest.machine().cpus);
    if needed > machine.cpu_count() {
        return Err(format!(
            "the layout needs {needed} cores but this machine has {}",
            machine.cpu_count()
        ));
    }
    let mut channels = Vec::new();
    for ch in manifest.channels() {
        if !machine.is_free_ram(ch.host_base, ch.size) {
            return Err(format!(
                "channel {} at {:#x}+{:#x} is not free RAM on this machine",
                ch.index, ch.host_base, ch.size
            ));
        }
        channels.push(ChannelRegion {
            host_base: ch.host_base,
            size: ch.size,
            slots: ch.slots,
        });
    }
    let mut partitions = Vec::new();
    for p in manifest.partitions() {
        let cpu = u32::from(p.cpu);
        let apic_id = machine.apic_id(cpu).ok_or_else(|| {
            format!(
                "partition {} wants core {cpu}, which this machine lacks",
                p.name
            )
        })?;
        if !machine.is_free_ram(p.host_base, p.memory_size) {
            return Err(format!(
                "partition {} at {:#x}+{:#x} ({} MiB) is not free RAM on this machine",
                p.name,
                p.host_base,
                p.memory_size,
                p.memory_size >> 20
            ));
        }
        if p.memory_size > CHANNEL_WINDOW_GPA {
            return Err(format!(
                "partition {} has more RAM than the guest-physical window allows",
                p.name
            ));
        }
        let mut views = Vec::new();
        let mut grants = Vec::new();
        let mut gpa = CHANNEL_WINDOW_GPA;
        for ch in manifest.channels_of(p.index) {
            let Some(peer_index) = ch.peer_of(p.index) else {
                continue;
            };
            let peer = manifest
                .partition(usize::from(peer_index))
                .ok_or_else(|| format!("channel {} names a missing partition", ch.index))?;
            let peer_apic = machine.apic_id(u32::from(peer.cpu)).ok_or_else(|| {
                format!(
                    "partition {} wants core {}, which this machine lacks",
                    peer.name, peer.cpu
                )
            })?;
            let vector = ch.vector_for(p.index).unwrap_or(0);
            let peer_vector = ch.vector_for(peer_index).unwrap_or(0);
            let ipi = ch.notify == Notify::Ipi;
            let info = ChannelInfo {
                gpa,
                size: ch.size,
                channel_id: u32::from(ch.index),
                slots: ch.slots,
                side: u32::from(ch.partition_a != p.index),
                notify: if ipi {
                    BootNotify::Ipi as u32
                } else {
                    BootNotify::Poll as u32
                },
                vector: u32::from(vector),
                peer_vector: u32::from(peer_vector),
                peer_apic_id: peer_apic,
                peer_partition: u32::from(peer_index),
                peer_name: abi::boot::name_field(peer.name).unwrap_or([0; abi::boot::NAME_LEN]),
            };
            gpa = gpa
                .checked_add(ch.size)
                .ok_or_else(|| String::from("channel window overflow"))?;
            views.push(ChannelView {
                info,
                host_base: ch.host_base,
            });
            grants.push(ChannelGrant {
                channel_id: u32::from(ch.index),
                ipi,
                peer_apic_id: peer_apic,
                peer_vector,
            });
        }
        if views.len() > MAX_CHANNELS {
            return Err(format!(
                "partition {} has more than {MAX_CHANNELS} channels",
                p.name
            ));
        }
        if gpa > GROUP_STATUS_GPA {
            return Err(format!(
                "the channels of partition {} do not fit in the channel window",
                p.name
            ));
        }
        let mut groups = Vec::new();
        for (k, g) in manifest.groups_of(p.index).enumerate() {
            let member_id = g.member_id_of(p.index).map(u32::from);
            let count = g.member_count();
            if k >= MAX_GROUPS || !(2..=MAX_MEMBERS).contains(&count) {
                return Err(format!("partition {}'s groups exceed the limits", p.name));
            }
            groups.push(GroupInfo {
                group: u32::from(g.index),
                member_id: member_id.unwrap_or(0),
                member_count: u32::try_from(count).unwrap_or(0),
                vector: u32::from(MEMBERSHIP_VECTOR),
                members: g.member_set,
                status_gpa: GROUP_STATUS_GPA + (k * STATUS_PAGE_SIZE) as u64,
                name: abi::boot::name_field(g.name).unwrap_or([0; abi::boot::NAME_LEN]),
                adjacency: adjacency(g.links().map(|l| (l.a, l.b))),
            });
        }
        let ports: Vec<(u16, u16)> = p.ports().collect();
        check_ports(p.name, &ports, machine.firmware_ports())?;
        partitions.push(PartitionPlan {
            policy: Partition {
                id: u32::from(p.index),
                name: p.name.to_string(),
                cpu,
                apic_id,
                memory: p.memory_size,
                compat: p.compat.is_compat(),
                channels: grants,
            },
            host_base: p.host_base,
            kernel: p.kernel,
            workload: p.workload.to_string(),
            args: args_text(&p)?,
            ports,
            channels: views,
            on_fault: p.on_fault,
            max_restarts: p.max_restarts,
            cmdline: p.cmdline.to_string(),
            initrd: p.initrd.is_some(),
            groups,
        });
    }
    let groups = manifest
        .groups()
        .map(|g| GroupPlan {
            partitions: g.members().map(u32::from).collect(),
        })
        .collect();
    Ok(RunPlan {
        partitions,
        groups,
        channels,
        timeout_secs: manifest.machine().timeout_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::platform::acpi::{AcpiError, FirmwarePort};

    struct Machine {
        cpus: u32,
        ram_end: u64,
        firmware: FadtPorts,
    }

    fn machine(cpus: u32, ram_end: u64) -> Machine {
        Machine {
            cpus,
            ram_end,
            firmware: FadtPorts::Absent,
        }
    }

    impl MachineView for Machine {
        fn apic_id(&self, index: u32) -> Option<u32> {
            (index < self.cpus).then_some(index * 2)
        }
        fn cpu_count(&self) -> u32 {
            self.cpus
        }
        fn is_free_ram(&self, base: u64, len: u64) -> bool {
            base >= 64 << 20 && base + len <= self.ram_end
        }
        fn firmware_ports(&self) -> &FadtPorts {
            &self.firmware
        }
    }

    const LAYOUT: &str = r#"
[machine]
cpus = 3
memory = "512 MiB"

[[partition]]
name = "ping"
cpu = 0
memory = "16 MiB"
workload = "pingpong"
args = { rounds = 50 }

[[partition]]
name = "pong"
cpu = 2
memory = "16 MiB"
workload = "pingpong"

[[partition]]
name = "calc"
cpu = 1
memory = "16 MiB"
workload = "compute"
ports = ["0x2f8-0x2ff"]

[[channel]]
between = ["ping", "pong"]
slots = 64
notify = "ipi"
"#;

    fn manifest_bytes() -> Vec<u8> {
        partition_config::parse_str(LAYOUT, "test.toml")
            .expect("valid layout")
            .encode_manifest()
    }

    #[test]
    fn plans_partitions_channels_and_permissions() {
        let bytes = manifest_bytes();
        let manifest = Manifest::decode(&bytes).expect("decodes");
        let plan = plan(&manifest, &machine(4, 512 << 20)).expect("fits");
        assert_eq!(plan.partitions.len(), 3);
        assert_eq!(plan.channels.len(), 1);
        let ping = &plan.partitions[0];
        let pong = &plan.partitions[1];
        assert_eq!(
            pong.policy.apic_id, 4,
            "APIC ID comes from the machine, not the index"
        );
        assert_eq!(ping.args, "rounds=50");
        assert_eq!(ping.channels.len(), 1);
        assert_eq!(ping.channels[0].info.gpa, CHANNEL_WINDOW_GPA);
        assert_eq!(ping.channels[0].info.side, 0);
        assert_eq!(pong.channels[0].info.side, 1);
        assert_eq!(ping.channels[0].info.peer_apic_id, 4);
        assert_eq!(
            ping.channels[0].info.peer_vector,
            pong.channels[0].info.vector
        );
        assert!(ping
            .policy
            .may_interrupt(4, u8::try_from(pong.channels[0].info.vector).unwrap()));
        assert!(
            !ping
                .policy
                .may_interrupt(2, u8::try_from(pong.channels[0].info.vector).unwrap()),
            "calc is no peer"
        );
        assert_eq!(plan.partitions[2].ports, vec![(0x2f8, 0x2ff)]);
        assert!(
            plan.partitions[2].args.contains("n="),
            "defaults are passed: {}",
            plan.partitions[2].args
        );
        assert_eq!(
            plan.partition_on(1).map(|p| p.policy.name.as_str()),
            Some("calc")
        );
        assert!(plan.partition_on(3).is_none());
    }

    /// What `maps` give the guest at byte `offset` of the region (offsets
    /// relative to the region's guest-physical base `base`), checking that
    /// the host page is the same offset into the host region.
    fn access_at(maps: &[Mapping], base: (u64, u64), offset: u64) -> Option<Access> {
        let mut found = None;
        for m in maps {
            if (m.gpa..m.gpa + m.len).contains(&(base.0 + offset)) {
                assert!(found.is_none(), "page at {offset:#x} mapped twice");
                assert_eq!(m.hpa - base.1, m.gpa - base.0, "same offset in host memory");
                found = Some(m.access);
            }
        }
        found
    }

    /// Both endpoints' views of a channel of `slots` slots.
    fn views(slots: u32) -> [ChannelView; 2] {
        let view = |side: u32, gpa: u64| ChannelView {
            info: ChannelInfo {
                gpa,
                size: partition_config::limits::channel_region_size(slots),
                channel_id: 0,
                slots,
                side,
                notify: BootNotify::Poll as u32,
                vector: 0x40,
                peer_vector: 0x40,
                peer_apic_id: 0,
                peer_partition: 1 - side,
                peer_name: [0; abi::boot::NAME_LEN],
            },
            host_base: 0x1234_5000,
        };
        [
            view(0, CHANNEL_WINDOW_GPA),
            view(1, CHANNEL_WINDOW_GPA + 0x10_0000),
        ]
    }

    #[test]
    fn every_page_of_a_channel_has_exactly_one_writer() {
        use channels::layout::{control_offset, ring_offset, ring_size, PAGE_SIZE};
        let mut slots = channels::layout::MIN_SLOTS;
        while slots <= channels::layout::MAX_SLOTS {
            let size = partition_config::limits::channel_region_size(slots);
            let [a, b] = views(slots);
            let maps = [a.mappings(), b.mappings()];
            for (view, maps) in [&a, &b].into_iter().zip(&maps) {
                let total: u64 = maps.iter().map(|m| m.len).sum();
                assert_eq!(
                    total, size,
                    "{slots} slots: the whole region and nothing more"
                );
                assert!(maps.iter().all(|m| !m.access.execute), "nothing executable");
                assert!(maps.iter().all(|m| m.gpa % 4096 == 0 && m.len % 4096 == 0));
                assert!(maps.iter().all(|m| m.hpa >= view.host_base));
            }
            let base = |v: &ChannelView| (v.info.gpa, v.host_base);
            let at = |side: usize, offset: u64| {
                let view = if side == 0 { &a } else { &b };
                access_at(&maps[side], base(view), offset)
                    .unwrap_or_else(|| panic!("{slots} slots: {offset:#x} unmapped"))
            };
            // No page is writable by both endpoints, and every page is mapped for both.
            for page in (0..size).step_by(PAGE_SIZE) {
                assert!(
                    !(at(0, page).write && at(1, page).write),
                    "{slots} slots: page {page:#x} writable by both"
                );
            }
            // The identity line: the hypervisor's, read-only for both guests.
            assert_eq!((at(0, 0), at(1, 0)), (Access::RO, Access::RO));
            // Each control line and ring: writable by its owner only.
            for (owner, side) in [(0, Side::A), (1, Side::B)] {
                let ring = ring_offset(side, slots) as u64;
                let ring_end = ring + ring_size(slots) as u64;
                let owned = [control_offset(side, slots) as u64, ring, ring_end - 8];
                for offset in owned {
                    assert_eq!(at(owner, offset), Access::RW, "{side:?} writes {offset:#x}");
                    assert_eq!(
                        at(1 - owner, offset),
                        Access::RO,
                        "peer of {side:?} reads it"
                    );
                }
            }
            slots *= 2;
        }
    }

    #[test]
    fn the_planned_channel_is_mapped_into_both_endpoints_over_the_same_pages() {
        let bytes = manifest_bytes();
        let manifest = Manifest::decode(&bytes).expect("decodes");
        let plan = plan(&manifest, &machine(4, 512 << 20)).expect("fits");
        let a = plan.partitions[0].channels[0].mappings();
        let b = plan.partitions[1].channels[0].mappings();
        // Identity, own area, peer's area: A's area is B's peer area and vice versa.
        assert_eq!((a[0].hpa, a[0].len), (b[0].hpa, 4096));
        assert_eq!((a[1].hpa, a[1].access), (b[2].hpa, Access::RW));
        assert_eq!((b[1].hpa, b[1].access), (a[2].hpa, Access::RW));
        assert_eq!((a[2].access, b[2].access), (Access::RO, Access::RO));
        assert_eq!(
            a[1].hpa - a[0].hpa,
            4096,
            "A's area follows the identity page"
        );
        let total: u64 = a.iter().map(|m| m.len).sum();
        assert_eq!(total, plan.channels[0].size);
    }

    #[test]
    fn the_layout_and_the_channels_crate_agree_on_the_region_size() {
        let mut slots = channels::layout::MIN_SLOTS;
        while slots <= channels::layout::MAX_SLOTS {
            assert_eq!(
                partition_config::limits::channel_region_size(slots),
                channels::region_size(slots) as u64,
                "{slots} slots"
            );
            slots *= 2;
        }
    }

    #[test]
    fn refuses_ports_the_platform_or_the_firmware_owns() {
        let spare = [(0x2f8, 0x2ff), (0x1800, 0x1807)];
        assert_eq!(check_ports("calc", &spare, &FadtPorts::Absent), Ok(()));
        // The abi table, whatever the manifest said: both ends of COM1.
        for range in [(0x3f0, 0x3f8), (0x3ff, 0x2000)] {
            let err = check_ports("calc", &[range], &FadtPorts::Absent).unwrap_err();
            assert!(err.contains("COM1") && err.contains("calc"), "{err}");
        }
        let err = check_ports("calc", &[(0xcfc, 0xcfc)], &FadtPorts::Absent).unwrap_err();
        assert!(err.contains("PCI configuration"), "{err}");
        // A machine whose firmware put its PM1 blocks at 0x1800 (real
        // chipsets use such PMBASEs): the spare range at 0x1800 is refused.
        let fadt = FadtPorts::Declared(vec![FirmwarePort {
            range: PortRange::new(0x1804, 0x1805),
            field: "PM1a_CNT_BLK",
        }]);
        let err = check_ports("calc", &spare, &fadt).unwrap_err();
        assert_eq!(
            err,
            "partition calc is granted I/O ports 0x1800-0x1807, which overlap 0x1804-0x1805 \
             (PM1a_CNT_BLK), declared by this machine's ACPI FADT: the firmware owns them"
        );
        assert_eq!(check_ports("calc", &[(0x2f8, 0x2ff)], &fadt), Ok(()));
        // Unknown firmware ports: grants are refused, no grant is fine.
        let unreadable = FadtPorts::Unreadable(AcpiError::BadChecksum("FADT"));
        assert!(check_ports("calc", &[(0x2f8, 0x2ff)], &unreadable)
            .unwrap_err()
            .contains("unreadable"));
        assert_eq!(check_ports("calc", &[], &unreadable), Ok(()));
    }

    #[test]
    fn the_plan_is_refused_before_any_partition_when_the_fadt_owns_a_grant() {
        let bytes = manifest_bytes();
        let manifest = Manifest::decode(&bytes).expect("decodes");
        let mut m = machine(4, 512 << 20);
        m.firmware = FadtPorts::Declared(vec![FirmwarePort {
            range: PortRange::new(0x2fc, 0x2fc),
            field: "SMI_CMD",
        }]);
        let err = plan(&manifest, &m).unwrap_err();
        assert!(
            err.starts_with("partition calc is granted I/O ports 0x2f8-0x2ff")
                && err.contains("SMI_CMD"),
            "{err}"
        );
        m.firmware = FadtPorts::Declared(vec![]);
        assert!(plan(&manifest, &m).is_ok());
    }

    #[test]
    fn layout_and_boot_protocol_agree_on_the_channel_limit() {
        assert_eq!(
            partition_config::limits::MAX_CHANNELS_PER_PARTITION,
            MAX_CHANNELS
        );
    }

    #[test]
    fn plans_restart_and_the_group_records_of_each_member() {
        let grouped =
            format!("{LAYOUT}\n[[group]]\nname = \"g\"\nmembers = [\"ping\", \"pong\"]\n");
        let bytes = partition_config::parse_str(&grouped, "g.toml")
            .expect("valid layout")
            .encode_manifest();
        let manifest = Manifest::decode(&bytes).expect("decodes");
        assert_eq!(manifest.group_count(), 1);
        let with_group = plan(&manifest, &machine(4, 512 << 20)).expect("fits");
        let plain = manifest_bytes();
        let plain = Manifest::decode(&plain).expect("decodes");
        let mut without = plan(&plain, &machine(4, 512 << 20)).expect("fits");
        assert_eq!(
            with_group.groups,
            [GroupPlan {
                partitions: vec![0, 1]
            }]
        );
        let ping = &with_group.partitions[0].groups;
        let pong = &with_group.partitions[1].groups;
        assert_eq!((ping.len(), pong.len()), (1, 1));
        assert_eq!((ping[0].member_id, pong[0].member_id), (0, 1));
        assert_eq!(
            (pong[0].group, pong[0].member_count, pong[0].members),
            (0, 2, 0b11)
        );
        assert_eq!(
            (pong[0].status_gpa, pong[0].vector),
            (GROUP_STATUS_GPA, 0xf0)
        );
        assert_eq!(abi::boot::name_str(&pong[0].name), "g");
        assert_eq!(pong[0].adjacency[..3], [0b10, 0b01, 0]);
        assert_eq!(ping[0].adjacency, pong[0].adjacency);
        let ring = adjacency([(0, 1), (1, 2), (2, 3), (0, 3), (0, 1), (4, 4), (40, 1)].into_iter());
        assert_eq!(ring[..5], [0b1010, 0b0101, 0b1010, 0b0101, 0]);
        assert!(with_group.partitions[2].groups.is_empty());
        // Apart from the records, the plan is the one without the group.
        without.groups = with_group.groups.clone();
        without.partitions[0].groups = ping.clone();
        without.partitions[1].groups = pong.clone();
        assert_eq!(with_group, without);

        // A restarting partition's channels must be inside its groups.
        let restart = grouped.replace(
            "name = \"pong\"\n",
            "name = \"pong\"\non_fault = \"restart\"\nmax_restarts = 3\n",
        );
        let bytes = partition_config::parse_str(&restart, "r.toml")
            .expect("valid layout")
            .encode_manifest();
        let manifest = Manifest::decode(&bytes).expect("decodes");
        let planned = plan(&manifest, &machine(4, 512 << 20)).expect("fits");
        let pong = &planned.partitions[1];
        assert_eq!((pong.on_fault, pong.max_restarts), (OnFault::Restart, 3));
        let ping = &planned.partitions[0];
        assert_eq!((ping.on_fault, ping.max_restarts), (OnFault::Stop, 0));
    }

    #[test]
    fn refuses_a_machine_that_cannot_hold_the_layout() {
        let bytes = manifest_bytes();
        let manifest = Manifest::decode(&bytes).expect("decodes");
        let err = plan(&manifest, &machine(2, 512 << 20)).unwrap_err();
        assert_eq!(err, "the layout needs 3 cores but this machine has 2");
        let err = plan(&manifest, &machine(4, 70 << 20)).unwrap_err();
        assert!(err.contains("is not free RAM on this machine"), "{err}");
    }
}
