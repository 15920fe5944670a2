//! Whole-system validation: the meaning of a raw layout, checked as a whole
//! (names, cores, memory budget, kernels and workloads, channels, ports),
//! then placement. Every problem becomes a [`Diagnostic`]; a [`Layout`] is
//! produced only when there are none.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::boot_options::{check_boot_options, BootOptions};
use crate::catalog::{builtin_workload, needs_group, BUILTIN_KERNEL, GUEST_KERNEL_WORKLOADS};
use crate::crate_args::{self, ArgDecl, DeclKind, Declared};
use crate::diagnostics::Diagnostic;
use crate::front::{
    suggest, Field, RawArgValue, RawChannel, RawGroup, RawLayout, RawPartition, Sp,
};
use crate::kernels::{bundle_bytes, module_bytes, KernelImage, ReadKernel};
use crate::layout::{
    ArgValue, Channel, Group, Initrd, Kernel, Layout, Machine, Notify, OnFault, Partition,
    PortRange, Region,
};
use crate::limits::{
    channel_region_size, channel_vector, is_valid_arg_key, is_valid_name, is_valid_slots,
    is_valid_workload_name, ARG_STRING_MAX_LEN, DEFAULT_TIMEOUT_SECS, FIRMWARE_RESERVE,
    HYPERVISOR_RESERVE, KERNEL_PATH_MAX_LEN, MAX_ARGS, MAX_BUNDLE_LEN, MAX_CHANNELS,
    MAX_CHANNELS_PER_PARTITION, MAX_CPUS, MAX_MACHINE_MEMORY, MAX_PARTITIONS,
    MAX_PORT_RANGES_PER_PARTITION, MAX_SLOTS, MAX_TIMEOUT_SECS, MIB, MIN_SLOTS, PARTITION_ALIGN,
};
use crate::limits::{
    DEFAULT_MAX_RESTARTS, MAX_GROUPS, MAX_GROUPS_PER_PARTITION, MAX_GROUP_MEMBERS, MAX_RESTARTS,
    MIN_GROUP_MEMBERS,
};
use crate::placement::{place, PlaceError, Request};
use abi::ports::{platform_overlaps, PlatformPort};

/// Default `slots` of a channel.
pub(crate) const DEFAULT_SLOTS: u32 = 64;

/// Renders a byte count with the largest binary unit that divides it.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (scale, unit) in UNITS {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{} {unit}", bytes / scale);
        }
    }
    format!("{bytes} B")
}

/// How the label at a partition whose faulty value comes from `[defaults]`
/// ends (it starts with the partition's name).
pub(crate) const INHERITED_LABEL: &str = "(the value comes from [defaults])";

/// Adds "in this partition" to a diagnostic about a value inherited from
/// `[defaults]`.
pub(crate) fn in_partition<T>(d: Diagnostic, value: &Sp<T>, p: &RawPartition) -> Diagnostic {
    if value.inherited {
        d.also(
            header(&p.span),
            format!("in partition {} {INHERITED_LABEL}", partition_label(p)),
        )
    } else {
        d
    }
}

/// The first line of a table's span: its `[[partition]]` header.
fn header(span: &Range<usize>) -> Range<usize> {
    span.start..span.start.saturating_add(13).min(span.end.max(span.start))
}

fn missing(p: &RawPartition, key: &str, example: &str) -> Diagnostic {
    Diagnostic::new("missing-key", format!("a partition has no `{key}`"))
        .at(header(&p.span), format!("this partition needs `{key}`"))
        .help(format!(
            "add `{key} = {example}` to the partition (or to [defaults])"
        ))
}

/// What the per-partition checks accepted of one partition: `None` (or the
/// default) where a value is missing or was rejected with a diagnostic.
struct Checked {
    name: Option<String>,
    cpu: Option<u16>,
    memory: Option<u64>,
    base: Option<u64>,
    kernel: Option<Kernel>,
    workload: Option<String>,
    ports: Vec<PortRange>,
    on_fault: OnFault,
    max_restarts: Option<u8>,
    boot: BootOptions,
}

/// The channels that passed their checks (regions not yet placed).
struct CheckedChannels {
    channels: Vec<Channel>,
    /// Per partition: how many of `channels` it is an endpoint of.
    count: Vec<usize>,
    /// No channel was rejected (every `[[channel]]` is in `channels`).
    ok: bool,
}

/// The arguments of one partition's workload, once checked.
type Args = Option<Vec<(String, ArgValue)>>;

/// Checks a raw layout as a whole, in the order the diagnostics come out:
/// the machine, the partition count, each partition, restart defaults, port
/// ownership, channels, groups, workloads, the memory budget; then, when no
/// error was found, assembles and places the [`Layout`].
pub(crate) fn validate(
    raw: &RawLayout,
    base_dir: &Path,
    read_kernel: Option<ReadKernel<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Layout> {
    let machine = check_machine(raw, diags);
    let cpus = machine.as_ref().and_then(|m| m.0);
    check_partition_count(raw, diags);
    let mut images = KernelImages::new(read_kernel);
    let checked = check_partitions(raw, cpus, base_dir, &mut images, diags);
    check_port_conflicts(raw, diags);
    check_platform_ports(raw, diags);
    let channels = check_channels(raw, diags);
    check_partition_channels(raw, &channels.count, diags);
    let groups = check_groups(raw, &channels.channels, channels.ok, diags);
    let args = check_workload_args(raw, &checked, &channels, diags);
    check_peer_workloads(raw, &checked, &channels, diags);
    check_group_workloads(raw, &checked, diags);
    check_group_args(raw, &checked, &args, diags);
    if let Some(timeout) = machine.as_ref().and_then(|m| m.2) {
        check_stall_limits(raw, &checked, &args, timeout, diags);
    }
    check_unused_channels(raw, &checked, &channels, groups.as_deref(), diags);
    check_restart_channels(raw, &checked, &channels, groups.as_deref(), diags);
    let (cpus, memory, timeout) = machine?.into_parts()?;
    if !check_memory_budget(&checked, &channels.channels, &memory, diags) {
        return None;
    }
    if diags.iter().any(Diagnostic::is_error) || !channels.ok {
        return None;
    }
    let groups = groups?;
    let machine = Machine {
        cpus,
        memory: memory.value,
        timeout_secs: timeout,
    };
    let layout = assemble(
        raw,
        checked,
        args,
        channels.channels,
        groups,
        machine,
        &memory,
        diags,
    )?;
    if !images.check_bundle_size(&layout, diags) {
        return None;
    }
    Some(layout)
}

/// At least one partition, and no more than [`MAX_PARTITIONS`].
fn check_partition_count(raw: &RawLayout, diags: &mut Vec<Diagnostic>) {
    // `partition = []` declares none either (the JSON Schema's `minItems: 1`).
    if raw.partitions.is_empty() && !raw.partitions_invalid {
        diags.push(
            Diagnostic::new("no-partitions", "the layout declares no partition")
                .at(
                    raw.partitions_span
                        .clone()
                        .unwrap_or(raw.source_len..raw.source_len),
                    "expected at least one [[partition]]",
                )
                .help(
                    "add a partition: `[[partition]]` with `name`, `cpu`, `memory` and `workload`",
                ),
        );
    }
    if let Some(extra) = raw.partitions.get(MAX_PARTITIONS) {
        diags.push(
            Diagnostic::new(
                "too-many-partitions",
                format!(
                    "the layout declares {} partitions; at most {MAX_PARTITIONS} are allowed",
                    raw.partitions.len()
                ),
            )
            .at(header(&extra.span), "partition 65 and later are too many")
            .help("remove partitions: Flotilla runs one partition per core, on at most 64 cores"),
        );
    }
}

/// Per-partition checks: each partition's fields on their own, plus the
/// names and cores it must not share with an earlier partition.
fn check_partitions(
    raw: &RawLayout,
    cpus: Option<u16>,
    base_dir: &Path,
    images: &mut KernelImages<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Checked> {
    let mut checked = Vec::with_capacity(raw.partitions.len());
    let mut names: HashMap<String, Range<usize>> = HashMap::new();
    let mut cpus_used: HashMap<u16, Range<usize>> = HashMap::new();
    for p in &raw.partitions {
        let name = check_name(p, &mut names, diags);
        let cpu = check_cpu(p, cpus, &mut cpus_used, diags);
        let memory = check_memory(p, diags);
        let base = check_base(p, diags);
        let kernel = check_kernel(p, base_dir, diags).filter(|k| images.check(p, k, memory, diags));
        let workload = check_workload(p, kernel.as_ref(), diags);
        let ports = check_ports_count(p, diags);
        let (on_fault, max_restarts) = check_on_fault(p, diags);
        let boot = check_boot_options(p, kernel.as_ref(), base_dir, diags);
        if let (Some(initrd), Some(kernel), Some(memory)) = (&boot.initrd, &kernel, memory) {
            images.check_initrd_fits(p, kernel, initrd, memory, diags);
        }
        checked.push(Checked {
            name,
            cpu,
            memory,
            base,
            kernel,
            workload,
            ports,
            on_fault,
            max_restarts,
            boot,
        });
    }
    checked
}

/// `name`: valid, and not taken by an earlier partition (recorded in `names`).
fn check_name(
    p: &RawPartition,
    names: &mut HashMap<String, Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    match &p.name {
        Field::Missing => diags.push(missing(p, "name", "\"worker\"")),
        Field::Invalid => {}
        Field::Given(name) => {
            if !is_valid_name(&name.value) {
                diags.push(in_partition(
                    Diagnostic::new("bad-name", format!("`{}` is not a valid partition name", name.value))
                        .at(name.span.clone(), "invalid name")
                        .help("a name is 1 to 32 characters: a lowercase letter, then lowercase letters, digits or `-`"),
                    name,
                    p,
                ));
            } else if let Some(first) = names.get(&name.value) {
                diags.push(in_partition(
                    Diagnostic::new(
                        "duplicate-name",
                        format!("two partitions are called `{}`", name.value),
                    )
                    .at(name.span.clone(), "second use of the name")
                    .also(first.clone(), "first used here")
                    .help("give every partition its own name"),
                    name,
                    p,
                ));
            } else {
                names.insert(name.value.clone(), name.span.clone());
                return Some(name.value.clone());
            }
        }
    }
    None
}

/// `cpu`: a core of the machine, not given to an earlier partition (recorded
/// in `cpus_used`).
fn check_cpu(
    p: &RawPartition,
    cpus: Option<u16>,
    cpus_used: &mut HashMap<u16, Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<u16> {
    match &p.cpu {
        Field::Missing => diags.push(missing(p, "cpu", "0")),
        Field::Invalid => {}
        Field::Given(cpu) => {
            let in_range = u16::try_from(cpu.value)
                .ok()
                .filter(|v| cpus.is_none_or(|n| *v < n) && *v < MAX_CPUS);
            match in_range {
                None => {
                    let limit = cpus.unwrap_or(MAX_CPUS);
                    diags.push(in_partition(
                        Diagnostic::new(
                            "cpu-out-of-range",
                            format!("cpu {} does not exist", cpu.value),
                        )
                        .at(
                            cpu.span.clone(),
                            format!("expected a core from 0 to {}", limit.saturating_sub(1)),
                        )
                        .help(format!(
                            "use a free core below machine.cpus ({limit}), or raise machine.cpus"
                        )),
                        cpu,
                        p,
                    ));
                }
                Some(v) => {
                    if let Some(first) = cpus_used.get(&v) {
                        diags.push(in_partition(
                            Diagnostic::new(
                                "duplicate-cpu",
                                format!("cpu {v} is given to two partitions"),
                            )
                            .at(cpu.span.clone(), "second partition on this core")
                            .also(first.clone(), "first given here")
                            .help(
                                "each core runs one guest kernel: give this partition a free core",
                            )
                            .note("a core belongs to exactly one partition"),
                            cpu,
                            p,
                        ));
                    } else {
                        cpus_used.insert(v, cpu.span.clone());
                        return Some(v);
                    }
                }
            }
        }
    }
    None
}

/// `memory`: non-zero and a multiple of [`PARTITION_ALIGN`].
fn check_memory(p: &RawPartition, diags: &mut Vec<Diagnostic>) -> Option<u64> {
    match &p.memory {
        Field::Missing => diags.push(missing(p, "memory", "\"16 MiB\"")),
        Field::Invalid => {}
        Field::Given(m) => {
            if m.value == 0 {
                diags.push(in_partition(
                    Diagnostic::new("bad-memory", "a partition's memory cannot be zero")
                        .at(m.span.clone(), "zero bytes")
                        .help("give the partition at least \"2 MiB\""),
                    m,
                    p,
                ));
            } else if m.value % PARTITION_ALIGN != 0 {
                let up = m
                    .value
                    .div_ceil(PARTITION_ALIGN)
                    .saturating_mul(PARTITION_ALIGN);
                diags.push(in_partition(
                    Diagnostic::new(
                        "bad-memory",
                        format!(
                            "partition memory {} is not a multiple of 2 MiB",
                            human_size(m.value)
                        ),
                    )
                    .at(m.span.clone(), "not a multiple of 2 MiB")
                    .help(format!("round it up to \"{}\"", human_size(up)))
                    .note("partitions are mapped with 2 MiB pages"),
                    m,
                    p,
                ));
            } else {
                return Some(m.value);
            }
        }
    }
    None
}

/// `base` (optional): a multiple of [`PARTITION_ALIGN`].
fn check_base(p: &RawPartition, diags: &mut Vec<Diagnostic>) -> Option<u64> {
    let Field::Given(b) = &p.base else {
        return None;
    };
    if b.value % PARTITION_ALIGN != 0 {
        diags.push(in_partition(
            Diagnostic::new(
                "bad-base",
                format!("base {:#x} is not 2 MiB aligned", b.value),
            )
            .at(b.span.clone(), "not a multiple of 2 MiB")
            .help(
                "use a multiple of 2 MiB (0x200000), or leave `base` out for automatic placement",
            ),
            b,
            p,
        ));
        None
    } else {
        Some(b.value)
    }
}

/// Ports are given to one partition alone.
fn check_port_conflicts(raw: &RawLayout, diags: &mut Vec<Diagnostic>) {
    let mut all_ports: Vec<(Sp<PortRange>, usize)> = Vec::new();
    for (i, p) in raw.partitions.iter().enumerate() {
        let Some(ranges) = p.ports.given() else {
            continue;
        };
        for r in &ranges.value {
            if let Some((other, owner)) = all_ports.iter().find(|(o, _)| o.value.overlaps(&r.value))
            {
                let whose = if *owner == i {
                    "this partition already has it".to_owned()
                } else {
                    format!(
                        "already given to partition {}",
                        partition_label(&raw.partitions[*owner])
                    )
                };
                diags.push(in_partition(
                    Diagnostic::new("port-conflict", format!("I/O ports {} are given twice", r.value))
                        .at(r.span.clone(), "overlapping port range")
                        .also(other.span.clone(), whose)
                        .help("an I/O port belongs to one partition alone: remove or narrow one of the ranges"),
                    ranges,
                    p,
                ));
            } else {
                all_ports.push((r.clone(), i));
            }
        }
    }
}

/// Ports the platform owns are never granted.
fn check_platform_ports(raw: &RawLayout, diags: &mut Vec<Diagnostic>) {
    for p in &raw.partitions {
        let Some(ranges) = p.ports.given() else {
            continue;
        };
        for r in &ranges.value {
            if let Some(d) = platform_port(r) {
                diags.push(in_partition(d, ranges, p));
            }
        }
    }
}

/// Channels: the count, and each channel's `slots`, `notify` and `between`
/// (two different, known partitions, at most one channel per pair).
fn check_channels(raw: &RawLayout, diags: &mut Vec<Diagnostic>) -> CheckedChannels {
    if let Some(extra) = raw.channels.get(MAX_CHANNELS) {
        diags.push(
            Diagnostic::new(
                "too-many-channels",
                format!(
                    "the layout declares {} channels; at most {MAX_CHANNELS} are allowed",
                    raw.channels.len()
                ),
            )
            .at(header(&extra.span), "channel 129 and later are too many")
            .note("each channel has its own IPI vector, from 0x40 to 0xbf"),
        );
    }
    let mut out = CheckedChannels {
        channels: Vec::new(),
        count: vec![0usize; raw.partitions.len()],
        ok: true,
    };
    let mut pairs: HashMap<(usize, usize), Range<usize>> = HashMap::new();
    for (index, ch) in raw.channels.iter().enumerate() {
        let slots = check_slots(ch, diags);
        let notify = match &ch.notify {
            Field::Missing => Some(Notify::Ipi),
            Field::Invalid => None,
            Field::Given(n) => Some(n.value),
        };
        let ends = check_between(raw, ch, &mut pairs, diags);
        match (ends, slots, notify, channel_vector(index)) {
            (Some((a, b)), Some(slots), Some(notify), Some(vector)) => {
                out.count[a] += 1;
                out.count[b] += 1;
                out.channels.push(Channel {
                    a,
                    b,
                    slots,
                    notify,
                    region: Region {
                        base: 0,
                        size: channel_region_size(slots),
                    },
                    vector,
                });
            }
            _ => out.ok = false,
        }
    }
    out
}

/// A channel's `slots`: [`DEFAULT_SLOTS`] when left out, else a power of two
/// from [`MIN_SLOTS`] to [`MAX_SLOTS`].
fn check_slots(ch: &RawChannel, diags: &mut Vec<Diagnostic>) -> Option<u32> {
    match &ch.slots {
        Field::Missing => Some(DEFAULT_SLOTS),
        Field::Invalid => None,
        Field::Given(s) => {
            let v = u32::try_from(s.value).ok().filter(|v| is_valid_slots(*v));
            if v.is_none() {
                let hint = u32::try_from(s.value)
                    .ok()
                    .map(|v| {
                        v.clamp(MIN_SLOTS, MAX_SLOTS)
                            .next_power_of_two()
                            .min(MAX_SLOTS)
                    })
                    .unwrap_or(MIN_SLOTS);
                diags.push(
                    Diagnostic::new("bad-slots", format!("{} slots is not allowed", s.value))
                        .at(
                            s.span.clone(),
                            format!("expected a power of two from {MIN_SLOTS} to {MAX_SLOTS}"),
                        )
                        .help(format!("use a power of two, e.g. `slots = {hint}`")),
                );
            }
            v
        }
    }
}

/// A channel's `between`: the indices of two different, known partitions
/// that no earlier channel connects (recorded in `pairs`).
fn check_between(
    raw: &RawLayout,
    ch: &RawChannel,
    pairs: &mut HashMap<(usize, usize), Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<(usize, usize)> {
    let between = match &ch.between {
        Field::Missing => {
            diags.push(
                Diagnostic::new("missing-key", "a channel has no `between`")
                    .at(header(&ch.span), "this channel needs `between`")
                    .help("name the two partitions it connects: `between = [\"ping\", \"pong\"]`"),
            );
            return None;
        }
        Field::Invalid => return None,
        Field::Given(between) => between,
    };
    let mut idx = Vec::new();
    for name in &between.value {
        match raw
            .partitions
            .iter()
            .position(|p| p.name.given().is_some_and(|n| n.value == name.value))
        {
            Some(i) => idx.push(i),
            None => {
                let known = raw
                    .partitions
                    .iter()
                    .filter_map(|p| p.name.given())
                    .map(|n| n.value.as_str());
                let d = Diagnostic::new(
                    "unknown-partition",
                    format!("no partition is called `{}`", name.value),
                )
                .at(name.span.clone(), "not a partition of this layout");
                diags.push(match suggest(&name.value, known) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("a channel connects two partitions declared with [[partition]]"),
                });
            }
        }
    }
    match idx[..] {
        [a, b] if a == b => {
            diags.push(
                Diagnostic::new(
                    "self-channel",
                    format!("a channel from `{}` to itself", between.value[0].value),
                )
                .at(between.span.clone(), "both ends are the same partition")
                .help("a channel connects two different partitions"),
            );
            None
        }
        [a, b] => {
            let key = (a.min(b), a.max(b));
            if let Some(first) = pairs.get(&key) {
                diags.push(
                    Diagnostic::new(
                        "duplicate-channel",
                        format!(
                            "two channels between `{}` and `{}`",
                            between.value[0].value, between.value[1].value
                        ),
                    )
                    .at(between.span.clone(), "second channel for this pair")
                    .also(first.clone(), "first declared here")
                    .help("remove one; raise `slots` for more capacity"),
                );
                None
            } else {
                pairs.insert(key, between.span.clone());
                Some((a, b))
            }
        }
        _ => None,
    }
}

/// No partition is an endpoint of more than [`MAX_CHANNELS_PER_PARTITION`]
/// channels (`count` is per partition).
fn check_partition_channels(raw: &RawLayout, count: &[usize], diags: &mut Vec<Diagnostic>) {
    for (p, &count) in raw.partitions.iter().zip(count) {
        if count > MAX_CHANNELS_PER_PARTITION {
            diags.push(
                Diagnostic::new(
                    "too-many-partition-channels",
                    format!(
                        "partition {} is an endpoint of {count} channels; at most {MAX_CHANNELS_PER_PARTITION} are allowed",
                        partition_label(p)
                    ),
                )
                .at(header(&p.span), "this partition")
                .note("the guest boot protocol gives a partition at most 32 channel records"),
            );
        }
    }
}

/// Workloads: arguments and channel needs. One entry per partition.
fn check_workload_args(
    raw: &RawLayout,
    checked: &[Checked],
    channels: &CheckedChannels,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Args> {
    let mut all_args = Vec::with_capacity(raw.partitions.len());
    let mut crate_decls = CrateDecls::default();
    for (i, (p, c)) in raw.partitions.iter().zip(checked).enumerate() {
        let args = match (&c.kernel, &c.workload) {
            (Some(Kernel::BuiltIn), Some(w)) => builtin_workload(w).and_then(|spec| {
                if channels.ok && channels.count[i] < spec.min_channels {
                    if let Field::Given(wl) = &p.workload {
                        diags.push(in_partition(
                            Diagnostic::new(
                                "needs-channel",
                                format!("workload `{}` needs a channel, but partition {} has none", spec.name, partition_label(p)),
                            )
                            .at(wl.span.clone(), "this workload talks over a channel")
                            .help("add a [[channel]] with `between = [\"<this partition>\", \"<its peer>\"]`"),
                            wl,
                            p,
                        ));
                    }
                }
                let decls: Vec<ArgDecl> = spec.args.iter().map(ArgDecl::from).collect();
                check_declared_args(p, spec.name, &decls, diags)
            }),
            (Some(Kernel::Crate { written, dir }), Some(w)) => {
                check_crate_args(p, written, dir, w, &mut crate_decls, diags)
            }
            (Some(Kernel::Elf { .. }), Some(_)) => check_free_args(p, diags),
            _ => None,
        };
        all_args.push(args);
    }
    all_args
}

/// The memory budget, as a whole: partitions, channels and the reserves fit
/// in the machine's memory. `false` (with a diagnostic) when they do not.
fn check_memory_budget(
    checked: &[Checked],
    channels: &[Channel],
    memory: &Sp<u64>,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let partition_bytes: u64 = checked
        .iter()
        .filter_map(|c| c.memory)
        .fold(0, u64::saturating_add);
    let channel_bytes: u64 = channels
        .iter()
        .map(|c| c.region.size)
        .fold(0, u64::saturating_add);
    let reserve = HYPERVISOR_RESERVE + FIRMWARE_RESERVE;
    let needed = partition_bytes
        .saturating_add(channel_bytes)
        .saturating_add(reserve);
    if needed <= memory.value {
        return true;
    }
    diags.push(
        Diagnostic::new(
            "memory-budget",
            format!(
                "the layout needs {} of RAM but the machine has {}",
                human_size_up(needed),
                human_size(memory.value)
            ),
        )
        .at(memory.span.clone(), "not enough memory")
        .note(format!(
            "partitions {} + channels {} + reserved {} (hypervisor 64 MiB, firmware 16 MiB)",
            human_size(partition_bytes),
            human_size(channel_bytes),
            human_size(reserve)
        ))
        .help(format!(
            "raise machine.memory to at least \"{}\" (at most 3 GiB), or give the partitions less",
            human_size(
                needed
                    .div_ceil(PARTITION_ALIGN)
                    .saturating_mul(PARTITION_ALIGN)
            )
        )),
    );
    false
}

/// Everything is individually valid: assemble the partitions (one kernel
/// table entry per distinct kernel) and place them and the channels.
#[allow(clippy::too_many_arguments)]
fn assemble(
    raw: &RawLayout,
    checked: Vec<Checked>,
    all_args: Vec<Args>,
    mut channels: Vec<Channel>,
    groups: Vec<Group>,
    machine: Machine,
    memory: &Sp<u64>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Layout> {
    let mut kernels: Vec<Kernel> = Vec::new();
    let mut partitions = Vec::with_capacity(checked.len());
    for (c, args) in checked.into_iter().zip(all_args) {
        let kernel = c.kernel?;
        let kernel_index = match kernels.iter().position(|k| *k == kernel) {
            Some(i) => i,
            None => {
                kernels.push(kernel);
                kernels.len() - 1
            }
        };
        partitions.push(Partition {
            name: c.name?,
            cpu: c.cpu?,
            kernel: kernel_index,
            workload: c.workload?,
            args: args?,
            ports: c.ports,
            region: Region {
                base: c.base.unwrap_or(0),
                size: c.memory?,
            },
            explicit_base: c.base.is_some(),
            on_fault: c.on_fault,
            max_restarts: c.max_restarts?,
            compat: c.boot.compat,
            cmdline: c.boot.cmdline,
            initrd: c.boot.initrd,
        });
    }
    let requests: Vec<Request> = partitions
        .iter()
        .map(|p| Request {
            size: p.region.size,
            base: p.explicit_base.then_some(p.region.base),
        })
        .collect();
    let channel_sizes: Vec<u64> = channels.iter().map(|c| c.region.size).collect();
    match place(memory.value, &requests, &channel_sizes) {
        Ok((pr, cr)) => {
            for (p, r) in partitions.iter_mut().zip(pr) {
                p.region = r;
            }
            for (c, r) in channels.iter_mut().zip(cr) {
                c.region = r;
            }
        }
        Err(errors) => {
            for e in errors {
                diags.push(placement_error(raw, &partitions, memory, e));
            }
            return None;
        }
    }
    Some(Layout {
        machine,
        kernels,
        partitions,
        channels,
        groups,
    })
}

/// `on_fault` and `max_restarts`: the policy and the bound (0 under `stop`).
fn check_on_fault(p: &RawPartition, diags: &mut Vec<Diagnostic>) -> (OnFault, Option<u8>) {
    let on_fault = match &p.on_fault {
        Field::Given(f) => f.value,
        Field::Missing | Field::Invalid => OnFault::Stop,
    };
    let max = match (&p.max_restarts, on_fault) {
        (Field::Invalid, _) => None,
        (Field::Missing, OnFault::Stop) => Some(0),
        (Field::Missing, OnFault::Restart) => Some(DEFAULT_MAX_RESTARTS),
        (Field::Given(m), _) => {
            let v = u8::try_from(m.value)
                .ok()
                .filter(|v| (1..=MAX_RESTARTS).contains(v));
            if v.is_none() {
                diags.push(in_partition(
                    Diagnostic::new(
                        "bad-max-restarts",
                        format!("max_restarts = {} is out of range", m.value),
                    )
                    .at(m.span.clone(), format!("expected 1 to {MAX_RESTARTS}"))
                    .help(format!(
                        "give a number of restarts from 1 to {MAX_RESTARTS}, or `on_fault = \"stop\"` for none"
                    )),
                    m,
                    p,
                ));
                None
            } else if on_fault == OnFault::Stop {
                if !m.inherited {
                    diags.push(
                        Diagnostic::warning(
                            "max-restarts-without-restart",
                            format!(
                                "partition {} sets `max_restarts` but is not restarted",
                                partition_label(p)
                            ),
                        )
                        .at(m.span.clone(), "ignored: on_fault is \"stop\"")
                        .help("add `on_fault = \"restart\"`, or remove `max_restarts`"),
                    );
                }
                Some(0)
            } else {
                v
            }
        }
    };
    (on_fault, max)
}

fn group_label(g: &RawGroup) -> String {
    g.name
        .given()
        .map_or_else(|| "(unnamed)".to_owned(), |n| format!("`{}`", n.value))
}

/// The `[[group]]` tables: names, members, limits, and that the members are
/// connected by channels among themselves (with a warning per member whose
/// death would disconnect the rest). `None` when any group is invalid.
fn check_groups(
    raw: &RawLayout,
    channels: &[Channel],
    channels_ok: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Group>> {
    let group_header = |g: &RawGroup| g.span.start..g.span.start.saturating_add(9).min(g.span.end);
    let mut ok = true;
    if let Some(extra) = raw.groups.get(MAX_GROUPS) {
        ok = false;
        diags.push(
            Diagnostic::new(
                "too-many-groups",
                format!(
                    "the layout declares {} groups; at most {MAX_GROUPS} are allowed",
                    raw.groups.len()
                ),
            )
            .at(
                group_header(extra),
                format!("group {} and later are too many", MAX_GROUPS + 1),
            )
            .help("merge groups or remove some"),
        );
    }
    let known = || {
        raw.partitions
            .iter()
            .filter_map(|p| p.name.given())
            .map(|n| n.value.as_str())
    };
    let mut groups = Vec::new();
    let mut names: HashMap<&str, Range<usize>> = HashMap::new();
    // Per partition: the groups it is in (their `members` entries).
    let mut memberships: Vec<Vec<Range<usize>>> = vec![Vec::new(); raw.partitions.len()];
    for g in &raw.groups {
        let mut name = None;
        match &g.name {
            Field::Missing => {
                ok = false;
                diags.push(
                    Diagnostic::new("missing-key", "a group has no `name`")
                        .at(group_header(g), "this group needs `name`")
                        .help("add `name = \"state\"` to the group"),
                );
            }
            Field::Invalid => ok = false,
            Field::Given(n) => {
                if !is_valid_name(&n.value) {
                    ok = false;
                    diags.push(
                        Diagnostic::new("bad-name", format!("`{}` is not a valid group name", n.value))
                            .at(n.span.clone(), "invalid name")
                            .help("a name is 1 to 32 characters: a lowercase letter, then lowercase letters, digits or `-`"),
                    );
                } else if let Some(first) = names.get(n.value.as_str()) {
                    ok = false;
                    diags.push(
                        Diagnostic::new(
                            "duplicate-group",
                            format!("two groups are called `{}`", n.value),
                        )
                        .at(n.span.clone(), "second use of the name")
                        .also(first.clone(), "first used here")
                        .help("give every group its own name"),
                    );
                } else {
                    names.insert(&n.value, n.span.clone());
                    name = Some(n.value.clone());
                }
            }
        }
        let members = match &g.members {
            Field::Missing => {
                diags.push(
                    Diagnostic::new("missing-key", "a group has no `members`")
                        .at(group_header(g), "this group needs `members`")
                        .help("list its partitions: `members = [\"a\", \"b\"]`"),
                );
                None
            }
            Field::Invalid => None,
            Field::Given(m) => Some(m),
        };
        let Some(members) = members else {
            ok = false;
            continue;
        };
        // Resolve names; each partition once.
        let mut indices: Vec<(usize, &Sp<String>)> = Vec::new();
        let mut resolved = true;
        for member in &members.value {
            let found = raw
                .partitions
                .iter()
                .position(|p| p.name.given().is_some_and(|n| n.value == member.value));
            match found {
                None => {
                    resolved = false;
                    let d = Diagnostic::new(
                        "unknown-partition",
                        format!("no partition is called `{}`", member.value),
                    )
                    .at(member.span.clone(), "not a partition of this layout");
                    diags.push(match suggest(&member.value, known()) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => {
                            d.help("a group's members are partitions declared with [[partition]]")
                        }
                    });
                }
                Some(i) => {
                    if let Some((_, first)) = indices.iter().find(|(j, _)| *j == i) {
                        resolved = false;
                        diags.push(
                            Diagnostic::new(
                                "duplicate-member",
                                format!(
                                    "`{}` is a member of group {} twice",
                                    member.value,
                                    group_label(g)
                                ),
                            )
                            .at(member.span.clone(), "second listing")
                            .also(first.span.clone(), "first listed here")
                            .help("list each member once"),
                        );
                    } else {
                        indices.push((i, member));
                    }
                }
            }
        }
        let n = indices.len();
        if resolved && n < MIN_GROUP_MEMBERS {
            resolved = false;
            diags.push(
                Diagnostic::new(
                    "group-too-small",
                    format!("group {} has {n} member{}", group_label(g), if n == 1 { "" } else { "s" }),
                )
                .at(members.span.clone(), format!("expected at least {MIN_GROUP_MEMBERS} members"))
                .help("a group replicates state among two or more partitions: add members or remove the group"),
            );
        }
        if n > MAX_GROUP_MEMBERS {
            resolved = false;
            diags.push(
                Diagnostic::new(
                    "group-too-large",
                    format!(
                        "group {} has {n} members; at most {MAX_GROUP_MEMBERS} are allowed",
                        group_label(g)
                    ),
                )
                .at(members.span.clone(), "too many members")
                .help("split it into smaller groups")
                .note("the replication protocol's member sets are 32 bits wide"),
            );
        }
        for (i, member) in &indices {
            if let Some(slot) = memberships.get_mut(*i) {
                slot.push(member.span.clone());
            }
        }
        if !resolved {
            ok = false;
            continue;
        }
        indices.sort_by_key(|(i, _)| *i);
        let member_list: Vec<usize> = indices.iter().map(|(i, _)| *i).collect();
        let links = crate::groups::links_among(&member_list, channels);
        if !channels_ok {
            // Some channel is invalid (reported): connectivity is unknown.
            ok = false;
            continue;
        }
        let Some(topology) = crate::groups::topology(n, &links) else {
            ok = false;
            continue;
        };
        let label = |set: replication::MemberSet| -> String {
            let names: Vec<String> = set
                .iter()
                .filter_map(|m| indices.get(usize::from(m)))
                .map(|(_, s)| format!("`{}`", s.value))
                .collect();
            names.join(", ")
        };
        let parts = crate::groups::components(&topology, topology.members());
        if parts.len() > 1 {
            ok = false;
            let listed: Vec<String> = parts.iter().map(|p| format!("{{{}}}", label(*p))).collect();
            diags.push(
                Diagnostic::new(
                    "group-disconnected",
                    format!(
                        "the members of group {} are not connected by channels among themselves",
                        group_label(g)
                    ),
                )
                .at(members.span.clone(), format!("{} separate parts", parts.len()))
                .note(format!("the parts: {}", listed.join(" and ")))
                .note("updates travel only over channels between members; channels through non-members do not count")
                .help("add a [[channel]] between a member of one part and a member of another"),
            );
            continue;
        }
        for (cut, parts) in crate::groups::cut_vertices(&topology) {
            let Some((_, member)) = indices.get(usize::from(cut)) else {
                continue;
            };
            let listed: Vec<String> = parts.iter().map(|p| format!("{{{}}}", label(*p))).collect();
            diags.push(
                Diagnostic::warning(
                    "group-cut-vertex",
                    format!(
                        "if `{}` dies, the rest of group {} is disconnected",
                        member.value,
                        group_label(g)
                    ),
                )
                .at(member.span.clone(), "a single point of failure")
                .note(format!(
                    "without it the survivors split into {}",
                    listed.join(" and ")
                ))
                .help("add a channel that bypasses it, e.g. close the line into a ring"),
            );
        }
        if let Some(name) = name {
            groups.push(Group {
                name,
                members: member_list,
                links,
            });
        }
    }
    for (p, spans) in raw.partitions.iter().zip(&memberships) {
        if let Some(extra) = spans.get(MAX_GROUPS_PER_PARTITION) {
            ok = false;
            diags.push(
                Diagnostic::new(
                    "too-many-partition-groups",
                    format!(
                        "partition {} is a member of {} groups; at most {MAX_GROUPS_PER_PARTITION} are allowed",
                        partition_label(p),
                        spans.len()
                    ),
                )
                .at(extra.clone(), format!("group {} and later are too many", MAX_GROUPS_PER_PARTITION + 1))
                .help("merge some of its groups"),
            );
        }
    }
    ok.then_some(groups)
}

fn human_size_up(bytes: u64) -> String {
    human_size(bytes.div_ceil(MIB).saturating_mul(MIB))
}

fn partition_label(p: &RawPartition) -> String {
    p.name
        .given()
        .map_or_else(|| "(unnamed)".to_owned(), |n| format!("`{}`", n.value))
}

fn placement_error(
    raw: &RawLayout,
    partitions: &[Partition],
    memory: &Sp<u64>,
    e: PlaceError,
) -> Diagnostic {
    let base_span = |i: usize| {
        raw.partitions
            .get(i)
            .map(|p| match &p.base {
                Field::Given(b) => b.span.clone(),
                _ => header(&p.span),
            })
            .unwrap_or(0..0)
    };
    let name = |i: usize| {
        partitions
            .get(i)
            .map_or_else(String::new, |p| p.name.clone())
    };
    let usable_end = memory.value.saturating_sub(FIRMWARE_RESERVE);
    match e {
        PlaceError::BelowReserve(i) => Diagnostic::new(
            "bad-base",
            format!(
                "partition `{}` is placed inside the hypervisor's reserved low 64 MiB",
                name(i)
            ),
        )
        .at(base_span(i), "below 0x4000000")
        .help("use a base of at least 0x4000000 (64 MiB), or leave `base` out"),
        PlaceError::Overlap(j, i) => Diagnostic::new(
            "overlap",
            format!(
                "partitions `{}` and `{}` overlap in host memory",
                name(j),
                name(i)
            ),
        )
        .at(base_span(i), "this region overlaps")
        .also(base_span(j), "this one")
        .help("move one `base`, or leave `base` out for automatic placement"),
        PlaceError::PartitionPastEnd(i, end) => Diagnostic::new(
            "out-of-memory",
            format!(
                "partition `{}` does not fit in the machine's memory",
                name(i)
            ),
        )
        .at(base_span(i), format!("would end at {end:#x}"))
        .also(memory.span.clone(), "the machine's memory")
        .note(format!(
            "partitions must end by {usable_end:#x} (the top 16 MiB belong to the firmware)"
        ))
        .help("raise machine.memory, lower this partition's `base`, or shrink it"),
        PlaceError::ChannelPastEnd(i, end) => Diagnostic::new(
            "out-of-memory",
            format!("channel {i} does not fit in the machine's memory"),
        )
        .at(
            raw.channels.get(i).map_or(0..0, |c| header(&c.span)),
            format!("would end at {end:#x}"),
        )
        .also(memory.span.clone(), "the machine's memory")
        .note(format!(
            "channels are placed after the partitions and must end by {usable_end:#x}"
        ))
        .help("raise machine.memory, or lower an explicit partition `base` that leaves no room"),
    }
}

struct MachineCheck(Option<u16>, Option<Sp<u64>>, Option<u32>);

impl MachineCheck {
    fn into_parts(self) -> Option<(u16, Sp<u64>, u32)> {
        Some((self.0?, self.1?, self.2?))
    }
}

fn check_machine(raw: &RawLayout, diags: &mut Vec<Diagnostic>) -> Option<MachineCheck> {
    let m = raw.machine.as_ref()?;
    let miss = |key: &str, example: &str| {
        Diagnostic::new("missing-key", format!("[machine] has no `{key}`"))
            .at(m.span.clone(), format!("[machine] needs `{key}`"))
            .help(format!("add `{key} = {example}` under [machine]"))
    };
    let cpus = match &m.cpus {
        Field::Missing => {
            diags.push(miss("cpus", "4"));
            None
        }
        Field::Invalid => None,
        Field::Given(c) => match u16::try_from(c.value)
            .ok()
            .filter(|v| (1..=MAX_CPUS).contains(v))
        {
            Some(v) => Some(v),
            None => {
                diags.push(
                    Diagnostic::new(
                        "bad-cpus",
                        format!("machine.cpus = {} is out of range", c.value),
                    )
                    .at(c.span.clone(), format!("expected 1 to {MAX_CPUS}"))
                    .help("set machine.cpus to the number of cores the layout needs"),
                );
                None
            }
        },
    };
    let memory = match &m.memory {
        Field::Missing => {
            diags.push(miss("memory", "\"512 MiB\""));
            None
        }
        Field::Invalid => None,
        Field::Given(mem) => {
            let min = HYPERVISOR_RESERVE + FIRMWARE_RESERVE + PARTITION_ALIGN;
            let problem = if mem.value > MAX_MACHINE_MEMORY {
                Some(("more than 3 GiB", "use at most \"3 GiB\"; RAM above that is split around the PCI hole, which Flotilla does not place into yet".to_owned()))
            } else if mem.value % PARTITION_ALIGN != 0 {
                Some((
                    "not a multiple of 2 MiB",
                    format!(
                        "round it to \"{}\"",
                        human_size(mem.value.div_ceil(PARTITION_ALIGN) * PARTITION_ALIGN)
                    ),
                ))
            } else if mem.value < min {
                Some(("too small", format!("use at least \"{}\": 64 MiB for the hypervisor, 16 MiB for the firmware, and room for partitions", human_size(min))))
            } else {
                None
            };
            match problem {
                Some((what, help)) => {
                    diags.push(
                        Diagnostic::new(
                            "bad-machine-memory",
                            format!("machine.memory {} is {what}", human_size(mem.value)),
                        )
                        .at(mem.span.clone(), what)
                        .help(help),
                    );
                    None
                }
                None => Some(mem.clone()),
            }
        }
    };
    let timeout = match &m.timeout {
        Field::Missing => Some(DEFAULT_TIMEOUT_SECS),
        Field::Invalid => None,
        Field::Given(t) => {
            match u32::try_from(t.value)
                .ok()
                .filter(|v| (1..=MAX_TIMEOUT_SECS).contains(v))
            {
                Some(v) => Some(v),
                None => {
                    diags.push(
                    Diagnostic::new("bad-timeout", format!("machine.timeout = {} is out of range", t.value))
                        .at(t.span.clone(), format!("expected 1 to {MAX_TIMEOUT_SECS} seconds"))
                        .help(format!("give the run timeout in seconds; the default is {DEFAULT_TIMEOUT_SECS}")),
                );
                    None
                }
            }
        }
    };
    Some(MachineCheck(cpus, memory, timeout))
}

fn check_kernel(p: &RawPartition, base_dir: &Path, diags: &mut Vec<Diagnostic>) -> Option<Kernel> {
    match &p.kernel_crate {
        Field::Missing => {}
        Field::Invalid => return None,
        Field::Given(k) => return check_kernel_crate(p, k, base_dir, diags),
    }
    match &p.kernel {
        Field::Missing => Some(Kernel::BuiltIn),
        Field::Invalid => None,
        Field::Given(k) if k.value == BUILTIN_KERNEL => Some(Kernel::BuiltIn),
        Field::Given(k) => {
            if k.value.is_empty() || k.value.len() > KERNEL_PATH_MAX_LEN || k.value.contains('\0') {
                diags.push(in_partition(
                    Diagnostic::new(
                        "bad-kernel",
                        "the kernel path is empty, too long or contains NUL",
                    )
                    .at(k.span.clone(), "not a usable path")
                    .help(format!(
                        "use \"{BUILTIN_KERNEL}\" or the path of a PVH-bootable ELF"
                    )),
                    k,
                    p,
                ));
                return None;
            }
            let path = base_dir.join(&k.value);
            if path.is_file() {
                Some(Kernel::Elf {
                    written: k.value.clone(),
                    path,
                })
            } else if path.exists() {
                // A directory, a device, a FIFO: never opened.
                diags.push(in_partition(
                    Diagnostic::new(
                        "bad-kernel-image",
                        format!("kernel `{}` is not a regular file", k.value),
                    )
                    .at(k.span.clone(), format!("{} is not a file", path.display()))
                    .help(format!(
                        "give the path of a PVH-bootable ELF file, or use the built-in \"{BUILTIN_KERNEL}\""
                    )),
                    k,
                    p,
                ));
                None
            } else {
                let d = Diagnostic::new(
                    "kernel-not-found",
                    format!("kernel `{}` not found", k.value),
                )
                .at(k.span.clone(), format!("no file at {}", path.display()))
                .note("kernel paths are relative to the layout file's directory");
                let d = match suggest(&k.value, [BUILTIN_KERNEL]) {
                    Some(s) => d.help(format!("did you mean the built-in kernel \"{s}\"?")),
                    None => d.help(format!("build the kernel first, fix the path, or use the built-in \"{BUILTIN_KERNEL}\"")),
                };
                diags.push(in_partition(d, k, p));
                None
            }
        }
    }
}

/// The package name a workload crate depends on.
const RUNTIME_CRATE: &str = "flotilla-rt";

/// `kernel = { crate = "PATH" }`: a directory holding a package manifest
/// that depends on the runtime. Building it is the tools' job (the reader
/// given to [`validate`] gets the directory).
fn check_kernel_crate(
    p: &RawPartition,
    k: &Sp<String>,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<Kernel> {
    let help_crate = "name a directory with the `Cargo.toml` of a workload crate (`flotilla new NAME` makes one); the path is relative to the layout file's directory";
    if k.value.is_empty() || k.value.len() > KERNEL_PATH_MAX_LEN || k.value.contains('\0') {
        diags.push(in_partition(
            Diagnostic::new(
                "bad-kernel",
                "the crate path is empty, too long or contains NUL",
            )
            .at(k.span.clone(), "not a usable path")
            .help(help_crate),
            k,
            p,
        ));
        return None;
    }
    let dir = base_dir.join(&k.value);
    let manifest = dir.join("Cargo.toml");
    if !dir.exists() {
        diags.push(in_partition(
            Diagnostic::new(
                "crate-not-found",
                format!("workload crate `{}` not found", k.value),
            )
            .at(k.span.clone(), format!("no directory at {}", dir.display()))
            .help(help_crate),
            k,
            p,
        ));
        return None;
    }
    let text = if dir.is_dir() && manifest.is_file() {
        std::fs::read_to_string(&manifest).ok()
    } else {
        None
    };
    let Some(text) = text else {
        diags.push(in_partition(
            Diagnostic::new("not-a-crate", format!("`{}` is not a crate", k.value))
                .at(
                    k.span.clone(),
                    format!("no readable Cargo.toml in {}", dir.display()),
                )
                .help(help_crate),
            k,
            p,
        ));
        return None;
    };
    match manifest_facts(&text) {
        None => {
            diags.push(in_partition(
                Diagnostic::new("not-a-crate", format!("`{}` is not a crate", k.value))
                    .at(
                        k.span.clone(),
                        format!("{} has no [package] table", manifest.display()),
                    )
                    .help(help_crate),
                k,
                p,
            ));
            None
        }
        Some(false) => {
            diags.push(in_partition(
                Diagnostic::new(
                    "crate-without-runtime",
                    format!("workload crate `{}` does not depend on {RUNTIME_CRATE}", k.value),
                )
                .at(k.span.clone(), format!("no `{RUNTIME_CRATE}` in the [dependencies] of {}", manifest.display()))
                .help(format!("add `{RUNTIME_CRATE} = {{ path = \"<flotilla>/flotilla-rt\" }}` to its [dependencies] and declare the entry with `flotilla_rt::entry!`"))
                .note("docs/guest-sdk.md describes a workload crate"),
                k,
                p,
            ));
            None
        }
        Some(true) => Some(Kernel::Crate {
            written: k.value.clone(),
            dir,
        }),
    }
}

/// Of a `Cargo.toml`: `None` if it is not a package manifest (unparsable,
/// or no `[package]` table), else whether it depends on the runtime (in
/// `[dependencies]` or a `[target.'cfg(..)'.dependencies]` table).
fn manifest_facts(text: &str) -> Option<bool> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let root = root.get_ref();
    if !matches!(
        root.get("package").map(|v| v.get_ref()),
        Some(DeValue::Table(_))
    ) {
        return None;
    }
    let has_runtime = |deps: Option<&toml::Spanned<DeValue<'_>>>| matches!(deps.map(|d| d.get_ref()), Some(DeValue::Table(t)) if t.contains_key(RUNTIME_CRATE));
    let in_targets = match root.get("target").map(|v| v.get_ref()) {
        Some(DeValue::Table(targets)) => targets.values().any(|t| match t.get_ref() {
            DeValue::Table(t) => has_runtime(t.get("dependencies")),
            _ => false,
        }),
        _ => false,
    };
    Some(has_runtime(root.get("dependencies")) || in_targets)
}

fn check_workload(
    p: &RawPartition,
    kernel: Option<&Kernel>,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    let w = match &p.workload {
        Field::Missing => {
            diags.push(missing(p, "workload", "\"hello\""));
            return None;
        }
        Field::Invalid => return None,
        Field::Given(w) => w,
    };
    match kernel? {
        Kernel::BuiltIn => {
            if builtin_workload(&w.value).is_some() {
                return Some(w.value.clone());
            }
            let known: Vec<&str> = GUEST_KERNEL_WORKLOADS.iter().map(|s| s.name).collect();
            let d = Diagnostic::new(
                "unknown-workload",
                format!("the built-in guest kernel has no workload `{}`", w.value),
            )
            .at(w.span.clone(), "unknown workload")
            .note(format!("its workloads are: {}", known.join(", ")));
            let d = match suggest(&w.value, known.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(
                    "pick one of its workloads, or give `kernel` the path of your own kernel",
                ),
            };
            diags.push(in_partition(d, w, p));
            None
        }
        Kernel::Elf { .. } | Kernel::Crate { .. } => {
            if is_valid_workload_name(&w.value) {
                Some(w.value.clone())
            } else {
                diags.push(in_partition(
                    Diagnostic::new(
                        "bad-workload",
                        format!("`{}` is not a valid workload name", w.value),
                    )
                    .at(w.span.clone(), "invalid workload name")
                    .help("a workload name is 1 to 32 printable ASCII characters without spaces"),
                    w,
                    p,
                ));
                None
            }
        }
    }
}

fn too_many_args(
    p: &RawPartition,
    args: &Sp<Vec<crate::front::RawArg>>,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    if args.value.len() > MAX_ARGS {
        diags.push(in_partition(
            Diagnostic::new(
                "too-many-args",
                format!(
                    "{} workload arguments; at most {MAX_ARGS} are allowed",
                    args.value.len()
                ),
            )
            .at(args.span.clone(), "too many arguments"),
            args,
            p,
        ));
        return true;
    }
    false
}

/// The one argument checker, for the built-in kernel's workloads and for a
/// crate's declared ones: every given argument is declared and of its
/// type and range, every required one is given, and defaults fill the rest
/// (in declaration order).
fn check_declared_args(
    p: &RawPartition,
    workload: &str,
    decls: &[ArgDecl],
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<(String, ArgValue)>> {
    let given: &[crate::front::RawArg] = match &p.args {
        Field::Missing => &[],
        Field::Invalid => return None,
        Field::Given(args) => {
            if too_many_args(p, args, diags) {
                return None;
            }
            &args.value
        }
    };
    let mut ok = true;
    for arg in given {
        if !decls.iter().any(|d| d.name == arg.key.value) {
            ok = false;
            let d = Diagnostic::new(
                "unknown-arg",
                format!("workload `{workload}` has no argument `{}`", arg.key.value),
            )
            .at(arg.key.span.clone(), "unknown argument");
            let d = if decls.is_empty() {
                d.help(format!("`{workload}` takes no arguments: remove `args`"))
            } else {
                match suggest(&arg.key.value, decls.iter().map(|a| a.name.as_str())) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!(
                        "its arguments are: {}",
                        decls
                            .iter()
                            .map(|a| a.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            };
            diags.push(in_partition(d, &arg.key, p));
        }
    }
    let mut out = Vec::with_capacity(decls.len());
    for a in decls {
        let name = a.name.as_str();
        let value = given.iter().find(|g| g.key.value == a.name);
        let resolved = match (&a.kind, value) {
            (
                DeclKind::Integer {
                    default: Some(d), ..
                },
                None,
            ) => Some(ArgValue::Integer(*d)),
            (DeclKind::Bool { default: Some(d) }, None) => Some(ArgValue::Bool(*d)),
            (
                DeclKind::Choice {
                    default: Some(d), ..
                },
                None,
            ) => Some(ArgValue::String(d.clone())),
            (_, None) => {
                let span = match &p.workload {
                    Field::Given(w) => w.span.clone(),
                    _ => header(&p.span),
                };
                let label = if a.doc.is_empty() {
                    format!("`{name}` is required")
                } else {
                    format!("`{name}` is required: {}", a.doc)
                };
                let d = Diagnostic::new(
                    "missing-arg",
                    format!("workload `{workload}` needs the argument `{name}`"),
                )
                .at(span, label)
                .help(format!("add `args = {{ {name} = {} }}`", a.example()));
                // A workload from [defaults] also marks the partition that
                // lacks the argument.
                diags.push(match &p.workload {
                    Field::Given(w) => in_partition(d, w, p),
                    _ => d,
                });
                None
            }
            (&DeclKind::Integer { min, max, .. }, Some(v)) => match &v.value.value {
                RawArgValue::Integer(n) if (min..=max).contains(n) => Some(ArgValue::Integer(*n)),
                RawArgValue::Integer(n) => {
                    let help = if a.doc.is_empty() {
                        format!("`{name}` is an integer from {min} to {max}")
                    } else {
                        format!("`{name}` ({}) is an integer from {min} to {max}", a.doc)
                    };
                    diags.push(in_partition(
                        Diagnostic::new(
                            "arg-range",
                            format!("argument `{name}` = {n} is out of range"),
                        )
                        .at(v.value.span.clone(), format!("expected {min} to {max}"))
                        .help(help),
                        &v.value,
                        p,
                    ));
                    None
                }
                other => {
                    diags.push(in_partition(
                        arg_type(name, "an integer", other, &v.value.span),
                        &v.value,
                        p,
                    ));
                    None
                }
            },
            (DeclKind::Bool { .. }, Some(v)) => match &v.value.value {
                RawArgValue::Bool(b) => Some(ArgValue::Bool(*b)),
                other => {
                    diags.push(in_partition(
                        arg_type(name, "a boolean", other, &v.value.span),
                        &v.value,
                        p,
                    ));
                    None
                }
            },
            (DeclKind::Choice { choices, .. }, Some(v)) => match &v.value.value {
                RawArgValue::String(s) if choices.contains(s) => Some(ArgValue::String(s.clone())),
                RawArgValue::String(s) => {
                    let d = Diagnostic::new(
                        "arg-value",
                        format!("`{s}` is not a value of argument `{name}`"),
                    )
                    .at(v.value.span.clone(), "unknown value")
                    .note(format!("the values are: {}", choices.join(", ")));
                    let d = match suggest(s, choices.iter().map(String::as_str)) {
                        Some(m) => d.help(format!("did you mean \"{m}\"?")),
                        None => d.help(format!("pick one of the values of `{name}`")),
                    };
                    diags.push(in_partition(d, &v.value, p));
                    None
                }
                other => {
                    diags.push(in_partition(
                        arg_type(name, "a string", other, &v.value.span),
                        &v.value,
                        p,
                    ));
                    None
                }
            },
        };
        match resolved {
            Some(v) => out.push((a.name.clone(), v)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// The argument declarations of the workload crates a layout names, read
/// once per crate directory; a malformed one is reported once.
#[derive(Default)]
struct CrateDecls {
    /// Per directory: the declaration, or `None` when it is malformed (or
    /// unreadable).
    read: HashMap<PathBuf, Option<Declared>>,
}

impl CrateDecls {
    fn get(&mut self, dir: &Path, diags: &mut Vec<Diagnostic>) -> Option<&Declared> {
        self.read
            .entry(dir.to_path_buf())
            .or_insert_with(|| {
                let manifest = dir.join("Cargo.toml");
                let text = std::fs::read_to_string(&manifest).ok()?;
                let file = crate_args::source_file(manifest.display().to_string(), text);
                match crate_args::read(&file) {
                    Ok(d) => Some(d),
                    Err(mut errors) => {
                        diags.append(&mut errors);
                        None
                    }
                }
            })
            .as_ref()
    }
}

/// The arguments of a partition running a workload crate: typed by the
/// crate's declaration when it has one, passed through untyped when not.
fn check_crate_args(
    p: &RawPartition,
    written: &str,
    dir: &Path,
    workload: &str,
    decls: &mut CrateDecls,
    diags: &mut Vec<Diagnostic>,
) -> Args {
    match decls.get(dir, diags)? {
        Declared::Nothing => check_free_args(p, diags),
        declared @ Declared::Workloads(all) => {
            if let Some(w) = declared.workload(workload) {
                return check_declared_args(p, workload, &w.args, diags);
            }
            let Field::Given(wl) = &p.workload else {
                return None;
            };
            let names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
            let d = Diagnostic::new(
                "unknown-workload",
                format!("workload crate `{written}` declares no workload `{workload}`"),
            )
            .at(wl.span.clone(), "not declared by the crate")
            .note(format!(
                "its Cargo.toml declares: {}",
                if names.is_empty() {
                    "nothing".to_owned()
                } else {
                    names.join(", ")
                }
            ));
            let d = match suggest(workload, names.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!(
                    "declare it in the crate's Cargo.toml as `[package.metadata.flotilla.workloads.{workload}]`"
                )),
            };
            diags.push(in_partition(d, wl, p));
            None
        }
    }
}

fn type_name(v: &RawArgValue) -> &'static str {
    match v {
        RawArgValue::Integer(_) => "an integer",
        RawArgValue::Bool(_) => "a boolean",
        RawArgValue::String(_) => "a string",
        RawArgValue::Other(_) => "another type",
    }
}

fn arg_type(key: &str, expected: &str, found: &RawArgValue, span: &Range<usize>) -> Diagnostic {
    let found = match found {
        RawArgValue::Other(t) => format!("a {t}"),
        other => type_name(other).to_owned(),
    };
    Diagnostic::new(
        "arg-type",
        format!("argument `{key}` must be {expected}, not {found}"),
    )
    .at(span.clone(), format!("expected {expected}"))
    .help(format!("write `{key}` as {expected}"))
}

fn check_free_args(
    p: &RawPartition,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<(String, ArgValue)>> {
    let args = match &p.args {
        Field::Missing => return Some(Vec::new()),
        Field::Invalid => return None,
        Field::Given(args) => args,
    };
    if too_many_args(p, args, diags) {
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for a in &args.value {
        if !is_valid_arg_key(&a.key.value) {
            ok = false;
            diags.push(in_partition(
                Diagnostic::new("bad-arg-key", format!("`{}` is not a valid argument name", a.key.value))
                    .at(a.key.span.clone(), "invalid argument name")
                    .help("an argument name is 1 to 32 characters: a lowercase letter or `_`, then lowercase letters, digits, `_` or `-`"),
                &a.key,
                p,
            ));
            continue;
        }
        let v = match &a.value.value {
            RawArgValue::Integer(n) => ArgValue::Integer(*n),
            RawArgValue::Bool(b) => ArgValue::Bool(*b),
            RawArgValue::String(s) if s.len() <= ARG_STRING_MAX_LEN => ArgValue::String(s.clone()),
            RawArgValue::String(_) => {
                ok = false;
                diags.push(in_partition(
                    Diagnostic::new(
                        "arg-too-long",
                        format!(
                            "argument `{}` is longer than {ARG_STRING_MAX_LEN} bytes",
                            a.key.value
                        ),
                    )
                    .at(a.value.span.clone(), "too long"),
                    &a.value,
                    p,
                ));
                continue;
            }
            RawArgValue::Other(t) => {
                ok = false;
                diags.push(in_partition(
                    arg_type(&a.key.value, "an integer, a boolean or a string", &RawArgValue::Other(t), &a.value.span)
                        .note("arguments to a kernel given by path are passed through untyped: integers, booleans and strings only"),
                    &a.value,
                    p,
                ));
                continue;
            }
        };
        out.push((a.key.value.clone(), v));
    }
    ok.then_some(out)
}

/// The `platform-port` diagnostic for a granted range that overlaps ports
/// the platform owns (`abi::ports::PLATFORM_PORTS`), or `None`.
fn platform_port(r: &Sp<PortRange>) -> Option<Diagnostic> {
    let hits: Vec<&PlatformPort> = platform_overlaps(r.value).collect();
    if hits.is_empty() {
        return None;
    }
    let names: Vec<String> = hits
        .iter()
        .map(|h| format!("{} {}", h.range, h.name))
        .collect();
    let label = if hits.len() == 1 {
        format!("overlaps {}", names.join(""))
    } else {
        format!(
            "overlaps {} platform ranges: {}",
            hits.len(),
            names.join("; ")
        )
    };
    let help = match hits.iter().find_map(|h| h.instead) {
        Some(instead) => format!("give the partition {instead} instead"),
        None => String::from(
            "remove the range, or narrow it to ports the platform does not own (docs/layout.md, \"I/O ports\", lists them)",
        ),
    };
    let mut d = Diagnostic::new(
        "platform-port",
        format!(
            "I/O ports {} belong to the platform and cannot be granted",
            r.value
        ),
    )
    .at(r.span.clone(), label)
    .help(help);
    for h in &hits {
        d = d.note(format!("{} {}: {}", h.range, h.name, h.reason));
    }
    Some(d)
}

fn check_ports_count(p: &RawPartition, diags: &mut Vec<Diagnostic>) -> Vec<PortRange> {
    let Some(ports) = p.ports.given() else {
        return Vec::new();
    };
    if ports.value.len() > MAX_PORT_RANGES_PER_PARTITION {
        diags.push(in_partition(
            Diagnostic::new(
                "too-many-ports",
                format!(
                    "{} port ranges; at most {MAX_PORT_RANGES_PER_PARTITION} per partition",
                    ports.value.len()
                ),
            )
            .at(ports.span.clone(), "too many ranges")
            .help("merge adjacent ranges, e.g. \"0x2f8-0x2ff\""),
            ports,
            p,
        ));
        return Vec::new();
    }
    ports.value.iter().map(|r| r.value).collect()
}

/// Kernels given by path, read once each through the caller's reader (no
/// reader: not read, as before `flotilla check` learnt to).
struct KernelImages<'r> {
    read: Option<ReadKernel<'r>>,
    seen: Vec<SeenKernel>,
}

/// A kernel file read once.
struct SeenKernel {
    /// The resolved path.
    path: PathBuf,
    /// Its image, or why it is not bootable.
    image: Result<KernelImage, String>,
    /// It passed the per-image checks.
    ok: bool,
    /// The `kernel =` it was first read for.
    span: Range<usize>,
}

impl<'r> KernelImages<'r> {
    fn new(read: Option<ReadKernel<'r>>) -> Self {
        Self {
            read,
            seen: Vec::new(),
        }
    }

    /// Whether partition `p`'s `kernel` can be loaded into its `memory`
    /// (`None`: unknown, already reported). Each image's own problems are
    /// reported once, at the first partition that names it.
    fn check(
        &mut self,
        p: &RawPartition,
        kernel: &Kernel,
        memory: Option<u64>,
        diags: &mut Vec<Diagnostic>,
    ) -> bool {
        let given = match (&p.kernel_crate, &p.kernel) {
            (Field::Given(k), _) | (_, Field::Given(k)) => Some(k),
            _ => None,
        };
        let (
            Some(read),
            Kernel::Elf { written, path } | Kernel::Crate { written, dir: path },
            Some(k),
        ) = (self.read, kernel, given)
        else {
            return true;
        };
        let is_crate = matches!(kernel, Kernel::Crate { .. });
        let index = match self.seen.iter().position(|seen| seen.path == *path) {
            Some(i) => i,
            None => {
                let image = read(path);
                let problem = match &image {
                    Err(output) if is_crate => {
                        let (d, label) = crate_build_problem(written);
                        Some((with_output(d, output), label))
                    }
                    _ => image_problem(written, &image),
                };
                let ok = problem.is_none();
                if let Some((d, label)) = problem {
                    diags.push(in_partition(d.at(k.span.clone(), label), k, p));
                }
                self.seen.push(SeenKernel {
                    path: path.clone(),
                    image,
                    ok,
                    span: k.span.clone(),
                });
                self.seen.len() - 1
            }
        };
        let SeenKernel {
            image: Ok(image),
            ok: true,
            ..
        } = &self.seen[index]
        else {
            return false;
        };
        let Some(memory) = memory else {
            return true;
        };
        let past = image
            .segments
            .iter()
            .find(|s| s.gpa.checked_add(s.mem_len).is_none_or(|end| end > memory));
        let Some(seg) = past else {
            return true;
        };
        let end = seg.gpa.saturating_add(seg.mem_len);
        let needed = image
            .segments
            .iter()
            .map(|s| s.gpa.saturating_add(s.mem_len))
            .max()
            .unwrap_or(end)
            .div_ceil(PARTITION_ALIGN)
            .saturating_mul(PARTITION_ALIGN);
        diags.push(in_partition(
            Diagnostic::new(
                "kernel-too-large",
                format!(
                    "kernel `{written}` does not fit in the memory of partition {}",
                    partition_label(p)
                ),
            )
            .at(
                k.span.clone(),
                format!(
                    "a segment loads at {:#x}..{end:#x}, past the partition's {}",
                    seg.gpa,
                    human_size(memory)
                ),
            )
            .help(format!(
                "give the partition at least `memory = \"{}\"`, or load the kernel lower",
                human_size(needed)
            ))
            .note("a partition's memory starts at guest-physical 0; its kernel's segments must end inside it (ends are exclusive)"),
            k,
            p,
        ));
        false
    }

    /// Partition `p`'s `initrd` fits in its `memory` where the hypervisor
    /// puts it (`abi::boot::initrd_gpa`: the top of RAM), above the end of
    /// its kernel (when that was read). Reported at the `initrd =`.
    fn check_initrd_fits(
        &self,
        p: &RawPartition,
        kernel: &Kernel,
        initrd: &Initrd,
        memory: u64,
        diags: &mut Vec<Diagnostic>,
    ) {
        let Field::Given(given) = &p.initrd else {
            return;
        };
        let kernel_end = match kernel {
            Kernel::Elf { path, .. } | Kernel::Crate { dir: path, .. } => self
                .seen
                .iter()
                .find(|s| s.path == *path)
                .and_then(|s| s.image.as_ref().ok())
                .and_then(|i| {
                    i.segments
                        .iter()
                        .map(|s| s.gpa.saturating_add(s.mem_len))
                        .max()
                })
                .unwrap_or(abi::boot::KERNEL_MIN_GPA),
            Kernel::BuiltIn => return,
        };
        let at = abi::boot::initrd_gpa(memory, initrd.len);
        if at.is_some_and(|at| at >= kernel_end) {
            return;
        }
        let needed = kernel_end
            .saturating_add(initrd.len.div_ceil(4096).saturating_mul(4096))
            .div_ceil(PARTITION_ALIGN)
            .saturating_mul(PARTITION_ALIGN);
        diags.push(in_partition(
            Diagnostic::new(
                "initrd-too-large",
                format!(
                    "initrd `{}` does not fit in the memory of partition {} beside its kernel",
                    initrd.written,
                    partition_label(p)
                ),
            )
            .at(
                given.span.clone(),
                format!(
                    "{} bytes, and the kernel ends at {kernel_end:#x} of {}",
                    initrd.len,
                    human_size(memory)
                ),
            )
            .help(format!(
                "give the partition at least `memory = \"{}\"` (more for the kernel's own use), or a smaller initrd",
                human_size(needed)
            ))
            .note("the initrd is loaded at the top of the partition's RAM, page-aligned, above the kernel"),
            given,
            p,
        ));
    }

    /// The boot bundle of `total` bytes fits between the highest partition
    /// or channel region and the top of the machine's RAM, where QEMU's
    /// `-initrd` loads it (the hypervisor reads it in place, and refuses
    /// to give a partition memory that overlaps it). `false` with a
    /// diagnostic if not.
    fn check_bundle_room(&self, layout: &Layout, total: u64, diags: &mut Vec<Diagnostic>) -> bool {
        let top = layout
            .partitions
            .iter()
            .map(|p| p.region.end())
            .chain(layout.channels.iter().map(|c| c.region.end()))
            .max()
            .unwrap_or(HYPERVISOR_RESERVE);
        // QEMU keeps the last 128 KiB for its own tables; a MiB of slack.
        let needed = top.saturating_add(total).saturating_add(MIB);
        if needed <= layout.machine.memory {
            return true;
        }
        let Some(span) = self.seen.first().map(|s| s.span.clone()) else {
            return true;
        };
        diags.push(
            Diagnostic::new(
                "bundle-no-room",
                format!(
                    "the boot bundle ({total} bytes) does not fit between the partitions (up to {top:#x}) and the top of the machine's {}",
                    human_size(layout.machine.memory)
                ),
            )
            .at(span, "the kernels and initrds go into the bundle")
            .help(format!(
                "raise machine.memory to at least {}",
                human_size_up(needed)
            ))
            .note("the loader places the bundle at the top of RAM and the hypervisor reads it there; no partition may overlap it"),
        );
        false
    }

    /// The boot bundle of `layout` stays within [`MAX_BUNDLE_LEN`]: its
    /// header, manifest and the kernels given by path (the built-in kernel,
    /// not read here, only adds to it). `false` with a diagnostic if not.
    fn check_bundle_size(&self, layout: &Layout, diags: &mut Vec<Diagnostic>) -> bool {
        let images: Vec<&KernelImage> = self
            .seen
            .iter()
            .filter_map(|seen| seen.image.as_ref().ok())
            .collect();
        if images.is_empty() {
            return true;
        }
        let widen = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        let manifest = widen(layout.encode_manifest().len()).div_ceil(8) * 8;
        let mut initrds: Vec<&Initrd> = Vec::new();
        for initrd in layout.partitions.iter().filter_map(|p| p.initrd.as_ref()) {
            if !initrds.iter().any(|seen| seen.path == initrd.path) {
                initrds.push(initrd);
            }
        }
        let modules = initrds
            .iter()
            .fold(0u64, |sum, i| sum.saturating_add(module_bytes(i.len)));
        let acpi = layout
            .partitions
            .iter()
            .filter(|p| p.compat.is_compat())
            .fold(0u64, |sum, _| {
                sum.saturating_add(module_bytes(abi::compat::ACPI_TABLES_MAX))
            });
        let total = widen(abi::bundle::HEADER_SIZE)
            .saturating_add(manifest)
            .saturating_add(bundle_bytes(images.iter().copied()))
            .saturating_add(modules)
            .saturating_add(acpi);
        if total <= MAX_BUNDLE_LEN {
            return self.check_bundle_room(layout, total, diags);
        }
        // Point at the kernel that contributes the most.
        let largest = self
            .seen
            .iter()
            .filter_map(|seen| seen.image.as_ref().ok().map(|i| (i, &seen.span)))
            .max_by_key(|(i, _)| bundle_bytes([*i]))
            .map(|(i, span)| (bundle_bytes([i]), span.clone()));
        let Some((largest_bytes, span)) = largest else {
            return true;
        };
        diags.push(
            Diagnostic::new(
                "bundle-too-large",
                format!(
                    "the boot bundle would be {} bytes; the hypervisor accepts at most {}",
                    total,
                    human_size(MAX_BUNDLE_LEN)
                ),
            )
            .at(span, format!("this kernel alone takes {largest_bytes} bytes"))
            .note("the bundle holds the manifest, every distinct kernel's load segments, every distinct initrd and each compat partition's ACPI tables")
            .help("use smaller kernels or fewer distinct kernels (only the bytes of load segments count)"),
        );
        false
    }
}

/// The problem with a kernel image on its own (not against a partition):
/// unreadable or not bootable, too many segments, a segment in the boot
/// area. The diagnostic's label is set by the caller.
/// A workload crate the reader could not build (cargo's own output, what
/// the reader returned, is added as notes by [`with_output`]).
fn crate_build_problem(written: &str) -> (Diagnostic, String) {
    (
        Diagnostic::new(
            "crate-build-failed",
            format!("workload crate `{written}` did not build"),
        )
        .help("fix the crate and run again (docs/guest-sdk.md says how to build it by hand)"),
        "the crate named here".to_owned(),
    )
}

/// A diagnostic with each line of `output` (cargo's, at most
/// [`MAX_OUTPUT_LINES`] of them) as a note.
fn with_output(mut d: Diagnostic, output: &str) -> Diagnostic {
    const MAX_OUTPUT_LINES: usize = 60;
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    for line in lines.iter().take(MAX_OUTPUT_LINES) {
        d = d.note((*line).to_owned());
    }
    if lines.len() > MAX_OUTPUT_LINES {
        d = d.note(format!(
            "… {} more lines of cargo's output",
            lines.len() - MAX_OUTPUT_LINES
        ));
    }
    d
}

fn image_problem(
    written: &str,
    image: &Result<KernelImage, String>,
) -> Option<(Diagnostic, String)> {
    use abi::boot::KERNEL_MIN_GPA;
    use abi::bundle::MAX_SEGMENTS;
    let image = match image {
        Err(reason) => {
            return Some((
                Diagnostic::new(
                    "bad-kernel-image",
                    format!("kernel `{written}` is not a bootable kernel"),
                )
                .help(format!(
                    "give the path of an ELF64 kernel with a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY), or use the built-in \"{BUILTIN_KERNEL}\""
                ))
                .note("docs/layout.md, \"Kernels\", says what a kernel given by path must be"),
                reason.clone(),
            ))
        }
        Ok(image) => image,
    };
    let count = image.segments.len();
    if u32::try_from(count).map_or(true, |n| n > MAX_SEGMENTS) {
        return Some((
            Diagnostic::new(
                "too-many-segments",
                format!("kernel `{written}` has {count} load segments; a boot bundle image holds at most {MAX_SEGMENTS}"),
            )
            .help("link the kernel with fewer program headers (merge sections into fewer segments)"),
            format!("{count} load segments"),
        ));
    }
    if let Some(low) = image.segments.iter().find(|s| s.gpa < KERNEL_MIN_GPA) {
        return Some((
            Diagnostic::new(
                "bad-kernel-image",
                format!(
                    "kernel `{written}` loads below {}",
                    human_size(KERNEL_MIN_GPA)
                ),
            )
            .help(format!(
                "link the kernel at or above {KERNEL_MIN_GPA:#x}: the boot structures live below"
            )),
            format!("a segment loads at {:#x}, in the boot area", low.gpa),
        ));
    }
    None
}

/// Workloads that run as a replication group's member (`replica`,
/// `shootdown`: the catalog's `GROUP_WORKLOADS`) run in partitions that are
/// in some `[[group]]`: without one they have no status page, no tree and
/// no one to replicate with.
fn check_group_workloads(raw: &RawLayout, checked: &[Checked], diags: &mut Vec<Diagnostic>) {
    for (p, c) in raw.partitions.iter().zip(checked) {
        let (Some(Kernel::BuiltIn), Some(w)) = (&c.kernel, &c.workload) else {
            continue;
        };
        if !needs_group(w) {
            continue;
        }
        let (Some(name), Field::Given(wl)) = (p.name.given(), &p.workload) else {
            continue;
        };
        let member = raw.groups.iter().any(|g| match &g.members {
            Field::Given(m) => m.value.iter().any(|m| m.value == name.value),
            _ => false,
        });
        if member {
            continue;
        }
        diags.push(in_partition(
            Diagnostic::new(
                "workload-needs-group",
                format!(
                    "workload `{w}` runs as a member of a replication group, but partition {} \
                     is in no group",
                    partition_label(p)
                ),
            )
            .at(
                wl.span.clone(),
                "this workload replicates state with its group",
            )
            .help(format!(
                "add a [[group]] with `members = [\"{}\", ...]` over the partitions it has \
                 channels to",
                name.value
            )),
            wl,
            p,
        ));
    }
}

/// The members of a group that run the built-in `replica` propose the same
/// number of updates: each waits until every member's whole sequence is
/// applied, so a member with fewer never sees the others finish and the
/// group stalls. Located at each differing member's `updates` (or its
/// `workload` when it takes the default), with the group's first
/// `replica` member as the reference.
fn check_group_args(
    raw: &RawLayout,
    checked: &[Checked],
    args: &[Args],
    diags: &mut Vec<Diagnostic>,
) {
    for g in &raw.groups {
        let Field::Given(members) = &g.members else {
            continue;
        };
        let group = g
            .name
            .given()
            .map_or_else(|| "(unnamed)".to_owned(), |n| format!("`{}`", n.value));
        // The group's first `replica` member: its `updates`, where, its
        // name and its label.
        let mut first: Option<(i64, Range<usize>, String, String)> = None;
        for m in &members.value {
            let Some(i) = raw
                .partitions
                .iter()
                .position(|p| p.name.given().is_some_and(|n| n.value == m.value))
            else {
                continue;
            };
            let (Some(c), Some(Some(a)), Some(p)) =
                (checked.get(i), args.get(i), raw.partitions.get(i))
            else {
                continue;
            };
            if !matches!(c.kernel, Some(Kernel::BuiltIn))
                || c.workload.as_deref() != Some("replica")
            {
                continue;
            }
            let Some(&ArgValue::Integer(n)) =
                a.iter().find(|(k, _)| k == "updates").map(|(_, v)| v)
            else {
                continue;
            };
            let given = match &p.args {
                Field::Given(given) => given.value.iter().find(|a| a.key.value == "updates"),
                _ => None,
            };
            let (span, inherited) = match (given, &p.workload) {
                (Some(a), _) => (a.value.span.clone(), a.value.inherited),
                (None, Field::Given(w)) => (w.span.clone(), w.inherited),
                (None, _) => (header(&p.span), false),
            };
            let label = |n: i64| {
                if given.is_some() {
                    format!("`updates` = {n} here")
                } else {
                    format!("`updates` = {n} (the default) here")
                }
            };
            let Some((f, fspan, flabel, flabel_at)) = &first else {
                first = Some((n, span, partition_label(p), label(n)));
                continue;
            };
            if *f == n {
                continue;
            }
            let mut d = Diagnostic::new(
                "group-args-differ",
                format!(
                    "partition {} runs `replica` with `updates` = {n}, but {flabel} in the same \
                     group {group} with {f}",
                    partition_label(p)
                ),
            )
            .at(span, label(n))
            .also(fspan.clone(), flabel_at.clone())
            .help(format!(
                "give every `replica` member of group {group} the same `updates`: each waits \
                 until every member's whole sequence is applied, so the group would stall"
            ));
            if inherited {
                d = d.also(
                    header(&p.span),
                    format!("in partition {} {INHERITED_LABEL}", partition_label(p)),
                );
            }
            diags.push(d);
        }
    }
}

/// A group workload's stall limit (`max_ticks`, timer ticks of about 1 ms)
/// comes before the run's timeout: otherwise the timeout stops a stalled
/// member before it can report why (exit code 8 and its counters). A
/// warning, at `max_ticks` (or the `workload` when it takes the default).
fn check_stall_limits(
    raw: &RawLayout,
    checked: &[Checked],
    args: &[Args],
    timeout_secs: u32,
    diags: &mut Vec<Diagnostic>,
) {
    let timeout_ticks = i64::from(timeout_secs).saturating_mul(1000);
    for ((p, c), a) in raw.partitions.iter().zip(checked).zip(args) {
        let (Some(Kernel::BuiltIn), Some(w), Some(a)) = (&c.kernel, &c.workload, a) else {
            continue;
        };
        if !needs_group(w) {
            continue;
        }
        let Some(&ArgValue::Integer(n)) = a.iter().find(|(k, _)| k == "max_ticks").map(|(_, v)| v)
        else {
            continue;
        };
        if n < timeout_ticks {
            continue;
        }
        let given = match &p.args {
            Field::Given(given) => given.value.iter().find(|a| a.key.value == "max_ticks"),
            _ => None,
        };
        let d = Diagnostic::warning(
            "max-ticks-beyond-timeout",
            format!(
                "partition {}'s `{w}` gives up after {n} ticks (about {} s), not before the \
                 run's timeout of {timeout_secs} s",
                partition_label(p),
                n / 1000
            ),
        )
        .help(format!(
            "set `max_ticks` below {timeout_ticks} (or raise [machine] `timeout`), so that a \
             stalled member reports its counters and exit code 8 before the timeout stops it"
        ));
        match (given, &p.workload) {
            (Some(arg), _) => diags.push(in_partition(
                d.at(arg.value.span.clone(), "the stall limit"),
                &arg.value,
                p,
            )),
            (None, Field::Given(wl)) => diags.push(in_partition(
                d.at(wl.span.clone(), format!("`max_ticks` defaults to {n}")),
                wl,
                p,
            )),
            (None, _) => diags.push(d.at(header(&p.span), format!("`max_ticks` = {n}"))),
        }
    }
}

/// Workloads that talk to their peers (`pingpong`, `stream`: the catalog's
/// `peer_workload`) have, on every channel, a peer on the built-in kernel
/// that runs the same workload (a peer's own kernel is not known).
fn check_peer_workloads(
    raw: &RawLayout,
    checked: &[Checked],
    channels: &CheckedChannels,
    diags: &mut Vec<Diagnostic>,
) {
    let builtin = |i: usize| {
        checked.get(i).and_then(|c| match (&c.kernel, &c.workload) {
            (Some(Kernel::BuiltIn), Some(w)) => builtin_workload(w),
            _ => None,
        })
    };
    for ch in &channels.channels {
        for (me, peer) in [(ch.a, ch.b), (ch.b, ch.a)] {
            let (Some(mine), Some(theirs)) = (builtin(me), builtin(peer)) else {
                continue;
            };
            let Some(needed) = mine.peer_workload else {
                continue;
            };
            if theirs.name == needed {
                continue;
            }
            let (p, q) = (&raw.partitions[me], &raw.partitions[peer]);
            let (Field::Given(w), Field::Given(qw)) = (&p.workload, &q.workload) else {
                continue;
            };
            let d = Diagnostic::new(
                "peer-workload",
                format!(
                    "partition {} runs `{}`, but its channel peer {} runs `{}`",
                    partition_label(p),
                    mine.name,
                    partition_label(q),
                    theirs.name
                ),
            )
            .at(w.span.clone(), format!("needs a peer that runs `{needed}`"))
            .help(format!(
                "run `{needed}` in {} too, or connect {} to a partition that does",
                partition_label(q),
                partition_label(p)
            ))
            .note(format!(
                "`{}` {}; a peer running anything else never answers, and the run times out",
                mine.name, mine.doc
            ));
            let d = if qw.span == w.span {
                d
            } else {
                d.also(qw.span.clone(), "the peer's workload")
            };
            diags.push(in_partition(d, w, p));
        }
    }
}

/// A warning for each channel neither of whose ends uses channels (both
/// run built-in workloads such as `hello` or `compute`) and that no group
/// replicates over: it costs memory and an IPI vector for nothing.
/// A partition under `on_fault = "restart"` has channels only to members of
/// one of its groups: a restart re-formats every channel of the partition,
/// and only a group's members are told (membership epochs) and waited for
/// (`MEMBERSHIP_ACK`) before that; a peer outside would keep writing into
/// the region being zeroed.
fn check_restart_channels(
    raw: &RawLayout,
    checked: &[Checked],
    channels: &CheckedChannels,
    groups: Option<&[Group]>,
    diags: &mut Vec<Diagnostic>,
) {
    let (true, Some(groups)) = (channels.ok, groups) else {
        return;
    };
    let restarts = |i: usize| {
        checked
            .get(i)
            .is_some_and(|c| c.on_fault == OnFault::Restart)
    };
    for (index, (ch, raw_ch)) in channels.channels.iter().zip(&raw.channels).enumerate() {
        let grouped = groups
            .iter()
            .any(|g| g.links.iter().any(|l| l.channel == index));
        let Field::Given(between) = &raw_ch.between else {
            continue;
        };
        for (me, peer) in [(ch.a, ch.b), (ch.b, ch.a)] {
            if grouped || !restarts(me) {
                continue;
            }
            let name = |i: usize| partition_label(&raw.partitions[i]);
            diags.push(
                Diagnostic::new(
                    "restart-channel-outside-group",
                    format!(
                        "{} restarts on a fault, but its channel to {} is not in a group of both",
                        name(me),
                        name(peer)
                    ),
                )
                .at(between.span.clone(), "no group has both endpoints")
                .note(format!(
                    "a restart re-formats every channel of {}; only members of its groups are told and waited for first, so {} could write into the region while it is zeroed",
                    name(me),
                    name(peer)
                ))
                .help(format!(
                    "add a [[group]] with both {} and {}, or `on_fault = \"stop\"`",
                    name(me),
                    name(peer)
                )),
            );
        }
    }
}

fn check_unused_channels(
    raw: &RawLayout,
    checked: &[Checked],
    channels: &CheckedChannels,
    groups: Option<&[Group]>,
    diags: &mut Vec<Diagnostic>,
) {
    if !channels.ok {
        return;
    }
    let idle = |i: usize| {
        checked
            .get(i)
            .and_then(|c| match (&c.kernel, &c.workload) {
                (Some(Kernel::BuiltIn), Some(w)) => builtin_workload(w),
                _ => None,
            })
            .filter(|spec| !spec.uses_channels)
    };
    for (index, (ch, raw_ch)) in channels.channels.iter().zip(&raw.channels).enumerate() {
        let (Some(a), Some(b)) = (idle(ch.a), idle(ch.b)) else {
            continue;
        };
        let replicated = groups.is_some_and(|gs| {
            gs.iter()
                .any(|g| g.links.iter().any(|l| l.channel == index))
        });
        if replicated {
            continue;
        }
        let Field::Given(between) = &raw_ch.between else {
            continue;
        };
        let name = |i: usize| partition_label(&raw.partitions[i]);
        diags.push(
            Diagnostic::warning(
                "unused-channel",
                format!(
                    "no workload uses the channel between {} and {}",
                    name(ch.a),
                    name(ch.b)
                ),
            )
            .at(
                between.span.clone(),
                format!("`{}` and `{}` do not talk over channels", a.name, b.name),
            )
            .help("remove the channel, or run a workload that talks over it (`pingpong`, `stream`)")
            .note(format!(
                "a channel takes {} of memory and an IPI vector",
                human_size(ch.region.size)
            )),
        );
    }
}
