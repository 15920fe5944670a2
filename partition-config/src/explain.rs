//! `Layout::explain`: a human-readable account of a validated layout — the
//! host-physical memory map (reserved areas, partitions, channels, free
//! gaps), who may message or interrupt whom, and each replication group's
//! spanning tree and single points of failure.

use std::fmt::Write as _;

use crate::layout::{Group, Kernel, Layout, Notify, OnFault};
use crate::limits::{FIRMWARE_RESERVE, HYPERVISOR_RESERVE};
use crate::validate::human_size;

pub(crate) fn explain(layout: &Layout) -> String {
    let mut out = String::new();
    let m = &layout.machine;
    let _ = writeln!(
        out,
        "{} partition{} on {} of {} cpus, {} channel{}, {} of RAM, timeout {} s",
        layout.partitions.len(),
        plural(layout.partitions.len()),
        layout.partitions.len(),
        m.cpus,
        layout.channels.len(),
        plural(layout.channels.len()),
        human_size(m.memory),
        m.timeout_secs
    );

    out.push_str("\nPartitions\n");
    let kernel_of = |p: &crate::layout::Partition| match layout.kernels.get(p.kernel) {
        Some(Kernel::BuiltIn) | None => "guest-kernel".to_owned(),
        Some(Kernel::Elf { written, .. }) => written.clone(),
        Some(Kernel::Crate { written, .. }) => format!("crate {written}"),
    };
    // Columns as wide as their longest value (names and workloads are up
    // to 32 characters, kernel paths longer), so rows stay aligned.
    let widest = |min: usize, values: &mut dyn Iterator<Item = usize>| values.fold(min, usize::max);
    let nw = widest(
        20,
        &mut layout.partitions.iter().map(|p| p.name.chars().count()),
    );
    let kw = widest(
        16,
        &mut layout
            .partitions
            .iter()
            .map(|p| kernel_of(p).chars().count()),
    );
    let ww = widest(
        12,
        &mut layout.partitions.iter().map(|p| p.workload.chars().count()),
    );
    let _ = writeln!(
        out,
        "  {:<4} {:<nw$} {:>3}  {:<kw$} {:<ww$} arguments",
        "id", "name", "cpu", "kernel", "workload"
    );
    for (i, p) in layout.partitions.iter().enumerate() {
        let kernel = kernel_of(p);
        let args: Vec<String> = p.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            out,
            "  {:<4} {:<nw$} {:>3}  {:<kw$} {:<ww$} {}",
            i,
            p.name,
            p.cpu,
            kernel,
            p.workload,
            args.join(" ")
        );
        if p.on_fault == OnFault::Restart {
            let _ = writeln!(
                out,
                "  {:<4} {:<nw$} {:>3}  on fault: restart, at most {} time{}",
                "",
                "",
                "",
                p.max_restarts,
                plural(usize::from(p.max_restarts))
            );
        }
        if p.compat.is_compat() {
            let _ = writeln!(
                out,
                "  {:<4} {:<nw$} {:>3}  compat: {} (docs/linux.md)",
                "",
                "",
                "",
                p.compat.as_str()
            );
        }
        if !p.cmdline.is_empty() {
            let _ = writeln!(
                out,
                "  {:<4} {:<nw$} {:>3}  cmdline: {}",
                "", "", "", p.cmdline
            );
        }
        if let Some(initrd) = &p.initrd {
            let _ = writeln!(
                out,
                "  {:<4} {:<nw$} {:>3}  initrd: {} ({} bytes)",
                "", "", "", initrd.written, initrd.len
            );
        }
        for r in &p.ports {
            let _ = writeln!(
                out,
                "  {:<4} {:<nw$} {:>3}  I/O ports {:#x}-{:#x}",
                "", "", "", r.first, r.last
            );
        }
    }

    out.push_str(
        "\nHost-physical memory map (each region is start <= address < end: ends are exclusive)\n",
    );
    let _ = writeln!(out, "  {:<12} {:<12} {:>10}  owner", "start", "end", "size");
    let mut rows: Vec<(u64, u64, String)> = Vec::new();
    rows.push((0, HYPERVISOR_RESERVE, "hypervisor (reserved)".to_owned()));
    for p in &layout.partitions {
        let how = if p.explicit_base {
            ", explicit base"
        } else {
            ""
        };
        rows.push((
            p.region.base,
            p.region.end(),
            format!("partition {} (cpu {}{how})", p.name, p.cpu),
        ));
    }
    for (i, c) in layout.channels.iter().enumerate() {
        rows.push((
            c.region.base,
            c.region.end(),
            format!("channel {i}: {}", endpoints(layout, c.a, c.b)),
        ));
    }
    let top = m.memory.saturating_sub(FIRMWARE_RESERVE);
    rows.push((top, m.memory, "firmware (reserved)".to_owned()));
    rows.sort_by_key(|r| r.0);
    let mut cursor = 0;
    for (start, end, owner) in rows {
        if start > cursor {
            let _ = writeln!(
                out,
                "  {:#012x} {:#012x} {:>10}  (free)",
                cursor,
                start,
                table_size(start - cursor)
            );
        }
        let _ = writeln!(
            out,
            "  {:#012x} {:#012x} {:>10}  {owner}",
            start,
            end,
            table_size(end.saturating_sub(start))
        );
        cursor = cursor.max(end);
    }

    out.push_str("\nChannels\n");
    if layout.channels.is_empty() {
        out.push_str("  (none: the partitions are fully isolated)\n");
    } else {
        let bw = layout
            .channels
            .iter()
            .map(|c| endpoints(layout, c.a, c.b).chars().count())
            .fold(30, usize::max);
        let _ = writeln!(
            out,
            "  {:<4} {:<bw$} {:>5}  {:<6} {:>9}  vector",
            "id", "between", "slots", "notify", "size"
        );
        for (i, c) in layout.channels.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {:<4} {:<bw$} {:>5}  {:<6} {:>9}  {:#04x}",
                i,
                endpoints(layout, c.a, c.b),
                c.slots,
                c.notify.as_str(),
                human_size(c.region.size),
                c.vector
            );
        }
    }

    if !layout.groups.is_empty() {
        out.push_str("\nReplication groups (member i = the group's i-th partition by id; leader = member 0)\n");
        for g in &layout.groups {
            explain_group(layout, g, &mut out);
        }
    }

    out.push_str("\nWho may message / interrupt whom (row sends to column)\n");
    out.push_str("  M = messages over a polled channel, MI = messages and IPIs, . = nothing\n");
    let width = layout
        .partitions
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let _ = write!(out, "  {:<width$}", "");
    for p in &layout.partitions {
        let _ = write!(out, " {:>width$}", p.name);
    }
    out.push('\n');
    for (i, from) in layout.partitions.iter().enumerate() {
        let _ = write!(out, "  {:<width$}", from.name);
        for j in 0..layout.partitions.len() {
            let cell = if i == j {
                "-"
            } else {
                match layout
                    .channels
                    .iter()
                    .find(|c| (c.a, c.b) == (i, j) || (c.a, c.b) == (j, i))
                {
                    Some(c) if c.notify == Notify::Ipi => "MI",
                    Some(_) => "M",
                    None => ".",
                }
            };
            let _ = write!(out, " {cell:>width$}");
        }
        out.push('\n');
    }
    out.push_str("  Anything else a partition tries (other memory, other cores' APICs, ports it was not given) is a contained fault.\n");
    out
}

fn explain_group(layout: &Layout, g: &Group, out: &mut String) {
    let name = |m: u8| {
        g.members
            .get(usize::from(m))
            .and_then(|&p| layout.partitions.get(p))
            .map_or("?", |p| p.name.as_str())
    };
    let members: Vec<String> = (0..g.members.len())
        .filter_map(|m| u8::try_from(m).ok())
        .map(|m| format!("{m}={}", name(m)))
        .collect();
    let _ = writeln!(
        out,
        "  group {}: {} members ({}), leader {}",
        g.name,
        g.members.len(),
        members.join(" "),
        name(0)
    );
    let links: Vec<String> = g
        .links
        .iter()
        .map(|l| format!("{}-{} (channel {})", name(l.a), name(l.b), l.channel))
        .collect();
    let _ = writeln!(out, "    links: {}", links.join(", "));
    let Some(tree) = g.tree() else {
        return;
    };
    let _ = writeln!(
        out,
        "    tree (parent -> children), height {}:",
        tree.height()
    );
    // Breadth-first, as the tree was built: by depth, then by member id.
    let mut order: Vec<u8> = tree.reached().iter().collect();
    order.sort_by_key(|&m| (tree.depth(m), m));
    for m in order {
        let children: Vec<&str> = tree.children(m).iter().map(name).collect();
        let _ = writeln!(
            out,
            "      depth {}  {}{}",
            tree.depth(m),
            name(m),
            if children.is_empty() {
                String::new()
            } else {
                format!(" -> {}", children.join(", "))
            }
        );
    }
    let cuts: Vec<&str> = g.cut_vertices().into_iter().map(name).collect();
    if cuts.is_empty() {
        out.push_str("    cut vertices: none (any one member may die; the rest stay connected)\n");
    } else {
        let _ = writeln!(
            out,
            "    cut vertices: {} (the death of one disconnects the rest)",
            cuts.join(", ")
        );
    }
}

/// A size for the table: exact when it is a whole number of a unit,
/// otherwise in MiB with one decimal.
fn table_size(bytes: u64) -> String {
    let exact = human_size(bytes);
    if bytes < (1 << 20) || exact.ends_with("MiB") || exact.ends_with("GiB") {
        exact
    } else {
        // Display only: the precision of f64 is more than enough here.
        #[allow(clippy::cast_precision_loss)]
        let mib = bytes as f64 / f64::from(1u32 << 20);
        format!("~{mib:.1} MiB")
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn endpoints(layout: &Layout, a: usize, b: usize) -> String {
    let name = |i: usize| layout.partitions.get(i).map_or("?", |p| p.name.as_str());
    format!("{} <-> {}", name(a), name(b))
}
