//! Whole-system validation: the meaning of a raw layout, checked as a whole
//! (names, cores, memory budget, kernels and workloads, channels, ports),
//! then placement. Every problem becomes a [`Diagnostic`]; a [`Layout`] is
//! produced only when there are none.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use crate::catalog::{
    builtin_workload, ArgKind, WorkloadSpec, BUILTIN_KERNEL, GUEST_KERNEL_WORKLOADS,
};
use crate::diagnostics::Diagnostic;
use crate::front::{suggest, Field, RawArgValue, RawLayout, RawPartition, Sp};
use crate::layout::{
    ArgValue, Channel, Kernel, Layout, Machine, Notify, Partition, PortRange, Region,
};
use crate::limits::{
    channel_region_size, channel_vector, is_valid_arg_key, is_valid_name, is_valid_slots,
    is_valid_workload_name, ARG_STRING_MAX_LEN, DEFAULT_TIMEOUT_SECS, FIRMWARE_RESERVE,
    HYPERVISOR_RESERVE, KERNEL_PATH_MAX_LEN, MAX_ARGS, MAX_CHANNELS, MAX_CHANNELS_PER_PARTITION,
    MAX_CPUS, MAX_MACHINE_MEMORY, MAX_PARTITIONS, MAX_PORT_RANGES_PER_PARTITION, MAX_SLOTS,
    MAX_TIMEOUT_SECS, MIB, MIN_SLOTS, PARTITION_ALIGN,
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

/// Adds "in this partition" to a diagnostic about a value inherited from
/// `[defaults]`.
fn in_partition<T>(d: Diagnostic, value: &Sp<T>, p: &RawPartition) -> Diagnostic {
    if value.inherited {
        d.also(
            header(&p.span),
            "in this partition (the value comes from [defaults])",
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

struct Checked {
    name: Option<String>,
    cpu: Option<u16>,
    memory: Option<u64>,
    base: Option<u64>,
    kernel: Option<Kernel>,
    workload: Option<String>,
    ports: Vec<PortRange>,
}

pub(crate) fn validate(
    raw: &RawLayout,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<Layout> {
    let machine = check_machine(raw, diags);
    let cpus = machine.as_ref().and_then(|m| m.0);

    if raw.partitions.is_empty() && raw.partitions_span.is_none() {
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

    // Per-partition checks.
    let mut checked = Vec::with_capacity(raw.partitions.len());
    let mut names: HashMap<String, Range<usize>> = HashMap::new();
    let mut cpus_used: HashMap<u16, Range<usize>> = HashMap::new();
    for p in &raw.partitions {
        let mut c = Checked {
            name: None,
            cpu: None,
            memory: None,
            base: None,
            kernel: None,
            workload: None,
            ports: Vec::new(),
        };
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
                    c.name = Some(name.value.clone());
                }
            }
        }
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
                            Diagnostic::new("cpu-out-of-range", format!("cpu {} does not exist", cpu.value))
                                .at(cpu.span.clone(), format!("expected a core from 0 to {}", limit.saturating_sub(1)))
                                .help(format!("use a free core below machine.cpus ({limit}), or raise machine.cpus")),
                            cpu,
                            p,
                        ));
                    }
                    Some(v) => {
                        if let Some(first) = cpus_used.get(&v) {
                            diags.push(in_partition(
                                Diagnostic::new("duplicate-cpu", format!("cpu {v} is given to two partitions"))
                                    .at(cpu.span.clone(), "second partition on this core")
                                    .also(first.clone(), "first given here")
                                    .help("each core runs one guest kernel: give this partition a free core")
                                    .note("a core belongs to exactly one partition"),
                                cpu,
                                p,
                            ));
                        } else {
                            cpus_used.insert(v, cpu.span.clone());
                            c.cpu = Some(v);
                        }
                    }
                }
            }
        }
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
                    c.memory = Some(m.value);
                }
            }
        }
        if let Field::Given(b) = &p.base {
            if b.value % PARTITION_ALIGN != 0 {
                diags.push(in_partition(
                    Diagnostic::new("bad-base", format!("base {:#x} is not 2 MiB aligned", b.value))
                        .at(b.span.clone(), "not a multiple of 2 MiB")
                        .help("use a multiple of 2 MiB (0x200000), or leave `base` out for automatic placement"),
                    b,
                    p,
                ));
            } else {
                c.base = Some(b.value);
            }
        }
        c.kernel = check_kernel(p, base_dir, diags);
        c.workload = check_workload(p, c.kernel.as_ref(), diags);
        c.ports = check_ports_count(p, diags);
        checked.push(c);
    }

    // Ports are given to one partition alone.
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

    // Ports the platform owns are never granted.
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

    // Channels.
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
    let mut channels = Vec::new();
    let mut pairs: HashMap<(usize, usize), Range<usize>> = HashMap::new();
    let mut channel_count = vec![0usize; raw.partitions.len()];
    let mut channels_ok = true;
    for (index, ch) in raw.channels.iter().enumerate() {
        let slots = match &ch.slots {
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
        };
        let notify = match &ch.notify {
            Field::Missing => Some(Notify::Ipi),
            Field::Invalid => None,
            Field::Given(n) => Some(n.value),
        };
        let ends = match &ch.between {
            Field::Missing => {
                diags.push(
                    Diagnostic::new("missing-key", "a channel has no `between`")
                        .at(header(&ch.span), "this channel needs `between`")
                        .help(
                            "name the two partitions it connects: `between = [\"ping\", \"pong\"]`",
                        ),
                );
                None
            }
            Field::Invalid => None,
            Field::Given(between) => {
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
                                None => d.help(
                                    "a channel connects two partitions declared with [[partition]]",
                                ),
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
        };
        match (ends, slots, notify, channel_vector(index)) {
            (Some((a, b)), Some(slots), Some(notify), Some(vector)) => {
                channel_count[a] += 1;
                channel_count[b] += 1;
                channels.push(Channel {
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
            _ => channels_ok = false,
        }
    }

    for (p, &count) in raw.partitions.iter().zip(&channel_count) {
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

    // Workloads: arguments and channel needs.
    let mut all_args = Vec::with_capacity(raw.partitions.len());
    for (i, (p, c)) in raw.partitions.iter().zip(&checked).enumerate() {
        let args = match (&c.kernel, &c.workload) {
            (Some(Kernel::BuiltIn), Some(w)) => builtin_workload(w).and_then(|spec| {
                if channels_ok && channel_count[i] < spec.min_channels {
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
                check_builtin_args(p, spec, diags)
            }),
            (Some(Kernel::Elf { .. }), Some(_)) => check_free_args(p, diags),
            _ => None,
        };
        all_args.push(args);
    }

    // The memory budget, as a whole.
    let (cpus, memory, timeout) = machine?.into_parts()?;
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
    if needed > memory.value {
        diags.push(
            Diagnostic::new(
                "memory-budget",
                format!("the layout needs {} of RAM but the machine has {}", human_size_up(needed), human_size(memory.value)),
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
                human_size(needed.div_ceil(PARTITION_ALIGN).saturating_mul(PARTITION_ALIGN))
            )),
        );
        return None;
    }
    if !diags.is_empty() || !channels_ok {
        return None;
    }

    // Everything is individually valid: assemble and place.
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
                diags.push(placement_error(raw, &partitions, &memory, e));
            }
            return None;
        }
    }
    Some(Layout {
        machine: Machine {
            cpus,
            memory: memory.value,
            timeout_secs: timeout,
        },
        kernels,
        partitions,
        channels,
    })
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
        Kernel::Elf { .. } => {
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

fn check_builtin_args(
    p: &RawPartition,
    spec: &WorkloadSpec,
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
        if spec.arg(&arg.key.value).is_none() {
            ok = false;
            let d = Diagnostic::new(
                "unknown-arg",
                format!(
                    "workload `{}` has no argument `{}`",
                    spec.name, arg.key.value
                ),
            )
            .at(arg.key.span.clone(), "unknown argument");
            let d = if spec.args.is_empty() {
                d.help(format!("`{}` takes no arguments: remove `args`", spec.name))
            } else {
                match suggest(&arg.key.value, spec.args.iter().map(|a| a.name)) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!(
                        "its arguments are: {}",
                        spec.args
                            .iter()
                            .map(|a| a.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            };
            diags.push(in_partition(d, &arg.key, p));
        }
    }
    let mut out = Vec::with_capacity(spec.args.len());
    for a in spec.args {
        let value = given.iter().find(|g| g.key.value == a.name);
        let resolved = match (a.kind, value) {
            (
                ArgKind::Integer {
                    default: Some(d), ..
                },
                None,
            ) => Some(ArgValue::Integer(d)),
            (
                ArgKind::Choice {
                    default: Some(d), ..
                },
                None,
            ) => Some(ArgValue::String(d.to_owned())),
            (_, None) => {
                let example = match a.kind {
                    ArgKind::Choice { choices, .. } => {
                        format!("\"{}\"", choices.first().copied().unwrap_or(""))
                    }
                    ArgKind::Integer { min, .. } => min.to_string(),
                };
                let span = match &p.workload {
                    Field::Given(w) => w.span.clone(),
                    _ => header(&p.span),
                };
                diags.push(
                    Diagnostic::new(
                        "missing-arg",
                        format!("workload `{}` needs the argument `{}`", spec.name, a.name),
                    )
                    .at(span, format!("`{}` is required: {}", a.name, a.doc))
                    .help(format!("add `args = {{ {} = {example} }}`", a.name)),
                );
                None
            }
            (ArgKind::Integer { min, max, .. }, Some(v)) => match &v.value.value {
                RawArgValue::Integer(n) if (min..=max).contains(n) => Some(ArgValue::Integer(*n)),
                RawArgValue::Integer(n) => {
                    diags.push(in_partition(
                        Diagnostic::new(
                            "arg-range",
                            format!("argument `{}` = {n} is out of range", a.name),
                        )
                        .at(v.value.span.clone(), format!("expected {min} to {max}"))
                        .help(format!(
                            "`{}` ({}) is an integer from {min} to {max}",
                            a.name, a.doc
                        )),
                        &v.value,
                        p,
                    ));
                    None
                }
                other => {
                    diags.push(in_partition(
                        arg_type(a.name, "an integer", other, &v.value.span),
                        &v.value,
                        p,
                    ));
                    None
                }
            },
            (ArgKind::Choice { choices, .. }, Some(v)) => match &v.value.value {
                RawArgValue::String(s) if choices.contains(&s.as_str()) => {
                    Some(ArgValue::String(s.clone()))
                }
                RawArgValue::String(s) => {
                    let d = Diagnostic::new(
                        "arg-value",
                        format!("`{s}` is not a value of argument `{}`", a.name),
                    )
                    .at(v.value.span.clone(), "unknown value")
                    .note(format!("the values are: {}", choices.join(", ")));
                    let d = match suggest(s, choices.iter().copied()) {
                        Some(m) => d.help(format!("did you mean \"{m}\"?")),
                        None => d.help(format!("pick one of the values of `{}`", a.name)),
                    };
                    diags.push(in_partition(d, &v.value, p));
                    None
                }
                other => {
                    diags.push(in_partition(
                        arg_type(a.name, "a string", other, &v.value.span),
                        &v.value,
                        p,
                    ));
                    None
                }
            },
        };
        match resolved {
            Some(v) => out.push((a.name.to_owned(), v)),
            None => ok = false,
        }
    }
    ok.then_some(out)
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
