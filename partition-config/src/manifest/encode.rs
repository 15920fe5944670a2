//! The manifest encoder: lowers a validated [`Layout`] to bytes.
//!
//! The layout has passed validation and placement, so every count fits its
//! field; conversions still saturate instead of panicking, and the decoder
//! (run over the output by the tests and the fuzzer) is the final judge.

use std::mem::size_of;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::IntoBytes;

use super::format::{
    fnv1a64, ChannelRecord, GroupLinkRecord, GroupRecord, Header, KernelRecord, MachineRecord,
    PartitionRecord, PortRangeRecord, ARG_BOOL, ARG_INTEGER, ARG_STRING, CHECKSUM_START,
    FORMAT_VERSION, KERNEL_BUILTIN, KERNEL_ELF, MAGIC, NAME_FIELD_LEN, NOTIFY_IPI, NOTIFY_POLL,
    ON_FAULT_RESTART, ON_FAULT_STOP,
};
use crate::layout::{ArgValue, Kernel, Layout, Notify, OnFault};

fn u16_of(v: usize) -> U16 {
    U16::new(u16::try_from(v).unwrap_or(u16::MAX))
}

fn u32_of(v: usize) -> U32 {
    U32::new(u32::try_from(v).unwrap_or(u32::MAX))
}

fn fixed(text: &str) -> [u8; NAME_FIELD_LEN] {
    let mut field = [0u8; NAME_FIELD_LEN];
    for (dst, src) in field.iter_mut().zip(text.as_bytes()) {
        *dst = *src;
    }
    field
}

fn encode_args(args: &[(String, ArgValue)], out: &mut Vec<u8>) {
    for (key, value) in args {
        out.push(u8::try_from(key.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(key.as_bytes());
        match value {
            ArgValue::Integer(v) => {
                out.push(ARG_INTEGER);
                out.extend_from_slice(&v.to_le_bytes());
            }
            ArgValue::Bool(v) => {
                out.push(ARG_BOOL);
                out.push(u8::from(*v));
            }
            ArgValue::String(s) => {
                out.push(ARG_STRING);
                out.extend_from_slice(&u16::try_from(s.len()).unwrap_or(u16::MAX).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// Encodes `layout`; see `docs/manifest.md` for the format.
pub(crate) fn encode(layout: &Layout) -> Vec<u8> {
    let mut strings = Vec::new();
    let mut kernels = Vec::new();
    for kernel in &layout.kernels {
        let name = kernel.name();
        kernels.push(KernelRecord {
            kind: match kernel {
                Kernel::BuiltIn => KERNEL_BUILTIN,
                Kernel::Elf { .. } | Kernel::Crate { .. } => KERNEL_ELF,
            },
            reserved0: [0; 3],
            name_offset: u32_of(strings.len()),
            name_len: u32_of(name.len()),
            reserved1: U32::ZERO,
        });
        strings.extend_from_slice(name.as_bytes());
    }

    let mut ports = Vec::new();
    let mut partitions = Vec::new();
    for (index, p) in layout.partitions.iter().enumerate() {
        let args_offset = strings.len();
        encode_args(&p.args, &mut strings);
        let cmdline_offset = strings.len();
        strings.extend_from_slice(p.cmdline.as_bytes());
        let initrd_offset = strings.len();
        let initrd = p.initrd.as_ref().map_or("", |i| i.written.as_str());
        strings.extend_from_slice(initrd.as_bytes());
        partitions.push(PartitionRecord {
            name: fixed(&p.name),
            workload: fixed(&p.workload),
            id: u16_of(index),
            cpu: U16::new(p.cpu),
            kernel: u16_of(p.kernel),
            arg_count: u16_of(p.args.len()),
            host_base: U64::new(p.region.base),
            memory_size: U64::new(p.region.size),
            args_offset: u32_of(args_offset),
            args_len: u32_of(cmdline_offset - args_offset),
            ports_first: u16_of(ports.len()),
            ports_count: u16_of(p.ports.len()),
            on_fault: match p.on_fault {
                OnFault::Stop => ON_FAULT_STOP,
                OnFault::Restart => ON_FAULT_RESTART,
            },
            max_restarts: p.max_restarts,
            compat: p.compat.to_byte(),
            reserved0: 0,
            cmdline_offset: u32_of(cmdline_offset),
            cmdline_len: u32_of(p.cmdline.len()),
            initrd_offset: u32_of(initrd_offset),
            initrd_len: u32_of(initrd.len()),
            reserved: [0; 8],
        });
        ports.extend(p.ports.iter().map(|r| PortRangeRecord {
            first: U16::new(r.first),
            last: U16::new(r.last),
        }));
    }

    let channels: Vec<ChannelRecord> = layout
        .channels
        .iter()
        .enumerate()
        .map(|(index, c)| ChannelRecord {
            id: u16_of(index),
            partition_a: u16_of(c.a),
            partition_b: u16_of(c.b),
            notify: match c.notify {
                Notify::Ipi => NOTIFY_IPI,
                Notify::Poll => NOTIFY_POLL,
            },
            vector_a: c.vector,
            slots: U32::new(c.slots),
            vector_b: c.vector,
            reserved: [0; 3],
            host_base: U64::new(c.region.base),
            size: U64::new(c.region.size),
        })
        .collect();

    let mut groups = Vec::new();
    let mut group_links = Vec::new();
    for (index, g) in layout.groups.iter().enumerate() {
        groups.push(GroupRecord {
            name: fixed(&g.name),
            id: u16_of(index),
            member_count: u16_of(g.members.len()),
            links_first: u16_of(group_links.len()),
            links_count: u16_of(g.links.len()),
            members: U64::new(g.members.iter().fold(0u64, |bits, &p| {
                bits | 1u64.checked_shl(u32_of(p).get()).unwrap_or(0)
            })),
            reserved: [0; 16],
        });
        group_links.extend(g.links.iter().map(|l| GroupLinkRecord {
            channel: u16_of(l.channel),
            member_a: l.a,
            member_b: l.b,
        }));
    }

    let partitions_offset = size_of::<Header>();
    let channels_offset = partitions_offset + partitions.as_bytes().len();
    let kernels_offset = channels_offset + channels.as_bytes().len();
    let ports_offset = kernels_offset + kernels.as_bytes().len();
    let groups_offset = ports_offset + ports.as_bytes().len();
    let group_links_offset = groups_offset + groups.as_bytes().len();
    let strings_offset = group_links_offset + group_links.as_bytes().len();
    let total_len = strings_offset + strings.len();

    let header = Header {
        magic: MAGIC,
        version: U16::new(FORMAT_VERSION),
        header_size: u16_of(size_of::<Header>()),
        flags: U32::ZERO,
        checksum: U64::ZERO,
        total_len: u32_of(total_len),
        partition_count: u16_of(partitions.len()),
        channel_count: u16_of(channels.len()),
        kernel_count: u16_of(kernels.len()),
        port_range_count: u16_of(ports.len()),
        partitions_offset: u32_of(partitions_offset),
        channels_offset: u32_of(channels_offset),
        kernels_offset: u32_of(kernels_offset),
        ports_offset: u32_of(ports_offset),
        strings_offset: u32_of(strings_offset),
        strings_len: u32_of(strings.len()),
        group_count: u16_of(groups.len()),
        group_link_count: u16_of(group_links.len()),
        machine: MachineRecord {
            cpus: U16::new(layout.machine.cpus),
            reserved0: U16::ZERO,
            timeout_secs: U32::new(layout.machine.timeout_secs),
            memory: U64::new(layout.machine.memory),
        },
        groups_offset: u32_of(groups_offset),
        group_links_offset: u32_of(group_links_offset),
        reserved0: [0; 8],
    };

    let mut out = Vec::with_capacity(total_len);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(partitions.as_bytes());
    out.extend_from_slice(channels.as_bytes());
    out.extend_from_slice(kernels.as_bytes());
    out.extend_from_slice(ports.as_bytes());
    out.extend_from_slice(groups.as_bytes());
    out.extend_from_slice(group_links.as_bytes());
    out.extend_from_slice(&strings);
    let checksum = fnv1a64(out.get(CHECKSUM_START..).unwrap_or_default());
    if let Some(field) = out.get_mut(16..CHECKSUM_START) {
        field.copy_from_slice(&checksum.to_le_bytes());
    }
    out
}
