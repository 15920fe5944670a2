//! The run report of a layout run (`docs/run-report.md`, version 4), read
//! from the console: the typed [`RunReport`], the parser that finds it (and
//! the partitions' plan and end lines) in the console text, and the table
//! `flotilla run` prints.
//!
//! Invariants:
//! - Only lines that start with `flotilla:` are read as markers: a
//!   partition's console line (`[name] text`) can never forge a report.
//! - The parser is strict about everything a verdict rests on, so that lines
//!   the hypervisor did not write (a partition with direct access to the
//!   UART, bytes of two writers interleaved) make the run fail instead of
//!   passing: a second `report-begin`, a report line outside the frame, two
//!   report lines or two end lines for one partition, a report line that
//!   contradicts the partition's end line or the hypervisor's plan (a
//!   partition it did not plan, another core), a report marker that is not
//!   exactly one of the three formats or not at the start of its line,
//!   `run succeeded` anywhere but right after `report-end`, and any marker
//!   or partition line after the report each add a [`ConsoleReport::problems`]
//!   entry, and every problem fails the run.
//! - [`RunReport::from_console`] always yields one entry per partition of
//!   the layout, in layout order: from the hypervisor's report line when there
//!   is one, else from the partition's end line, else `timed-out` (the
//!   emulator was killed before the partition ended).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use abi::fault::FaultKind;
use serde::{Deserialize, Serialize};

/// Version of the report format this parser understands (defined in `abi`).
pub const REPORT_VERSION: u64 = abi::fault::REPORT_VERSION as u64;

/// Marker prefixes (`docs/run-report.md`, `docs/console.md`).
mod markers {
    pub const REPORT_BEGIN: &str = "flotilla: report-begin ";
    pub const REPORT: &str = "flotilla: report ";
    pub const REPORT_END: &str = "flotilla: report-end";
    pub const PARTITION: &str = "flotilla: partition ";
    pub const LAYOUT: &str = "flotilla: layout: ";
    /// Every report marker starts with this.
    pub const REPORT_FAMILY: &str = "flotilla: report";
}

/// How a partition ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionState {
    /// It called the `EXIT` hypercall.
    Exited,
    /// The hypervisor stopped it for a forbidden action.
    Faulted,
    /// It was still running at the deadline (or when the emulator was killed).
    TimedOut,
}

impl PartitionState {
    /// The name used in the report (`exited`, `faulted`, `timed-out`).
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionState::Exited => "exited",
            PartitionState::Faulted => "faulted",
            PartitionState::TimedOut => "timed-out",
        }
    }
}

/// Why the hypervisor stopped a partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// What the partition did (`docs/run-report.md`); an unknown name makes
    /// the report line invalid.
    #[serde(with = "fault_kind_name")]
    pub kind: FaultKind,
    /// Guest RIP of the faulting instruction.
    pub rip: u64,
    /// Guest-physical address involved, if any.
    pub gpa: Option<u64>,
    /// Human-readable detail.
    pub detail: String,
}

/// [`FaultKind`] as its stable name in JSON.
mod fault_kind_name {
    use abi::fault::FaultKind;
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &FaultKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FaultKind, D::Error> {
        let name = <&str>::deserialize(d)?;
        name.parse()
            .map_err(|e| de::Error::custom(format!("fault kind `{name}`: {e}")))
    }
}

/// VM exits counted from the partition's first hypercall on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SteadyExits {
    /// All steady-state exits.
    pub total: u64,
    /// By reason (only non-zero reasons).
    pub by_reason: BTreeMap<String, u64>,
}

/// VM exits a partition caused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmExits {
    /// Every exit.
    pub total: u64,
    /// By reason (only non-zero reasons).
    pub by_reason: BTreeMap<String, u64>,
    /// The steady-state part.
    pub steady: SteadyExits,
}

/// One partition's line of the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionReport {
    /// Name from the layout.
    pub name: String,
    /// Core it ran on.
    pub cpu: u32,
    /// How it ended.
    pub state: PartitionState,
    /// The `EXIT` code (only for `exited`).
    pub exit_code: Option<u64>,
    /// The fault (only for `faulted`).
    pub fault: Option<Fault>,
    /// How many times the hypervisor restarted it (`on_fault = "restart"`).
    pub restarts: u32,
    /// The faults of its earlier incarnations, oldest first (one per
    /// restart; the final one is `fault`).
    pub faults: Vec<Fault>,
    /// VM exits.
    pub vm_exits: VmExits,
    /// `CONSOLE_WRITE` hypercalls served.
    pub console_lines: u64,
    /// `CONSOLE_WRITE` lines dropped (over the budget or a full queue).
    pub console_dropped: u64,
    /// `MEMBERSHIP_ACK` calls accepted (run report v4).
    #[serde(default)]
    pub membership_acks: u64,
    /// Restarts that went on without every live member's acknowledgement.
    #[serde(default)]
    pub ack_timeouts: u32,
    /// The workload's `REPORT_RESULT`, as JSON values.
    pub result: Option<serde_json::Map<String, serde_json::Value>>,
    /// What it used of the compat platform (`compat = "linux"`), when it
    /// used any of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compat: Option<CompatUse>,
}

/// A compat partition's use of its virtual platform (`docs/run-report.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompatUse {
    /// RDMSR/WRMSR answered with #GP.
    pub msr_gp: u64,
    /// Port accesses that floated (no device behind the port).
    pub ports_floated: u64,
    /// Bytes written to the virtual UART.
    pub uart_bytes: u64,
    /// LINT0/LINT1 writes stored masked.
    pub lvt_masked: u64,
}

impl PartitionReport {
    /// A partition known only from the console (no report line): zero
    /// exit counts, no result.
    fn from_console(name: &str, cpu: u32, end: Option<&EndLine>, console_lines: u64) -> Self {
        let (state, exit_code, fault) = match end {
            Some(EndLine::Exited(code)) => (PartitionState::Exited, Some(*code), None),
            Some(EndLine::Faulted(f)) => (PartitionState::Faulted, None, Some(f.clone())),
            Some(EndLine::TimedOut) | None => (PartitionState::TimedOut, None, None),
        };
        PartitionReport {
            name: name.to_string(),
            cpu,
            state,
            exit_code,
            fault,
            restarts: 0,
            faults: Vec::new(),
            vm_exits: VmExits::default(),
            console_lines,
            console_dropped: 0,
            membership_acks: 0,
            ack_timeouts: 0,
            result: None,
            compat: None,
        }
    }

    /// An integer of the result (`primes`, `ticks`, ...).
    pub fn result_u64(&self, key: &str) -> Option<u64> {
        self.result.as_ref()?.get(key)?.as_u64()
    }

    /// Whether it exited with code 0.
    pub fn exited_ok(&self) -> bool {
        self.state == PartitionState::Exited && self.exit_code == Some(0)
    }

    /// The fault kind, if it faulted.
    pub fn fault_kind(&self) -> Option<FaultKind> {
        self.fault.as_ref().map(|f| f.kind)
    }

    /// The result as `key=value` words (`-` when there is none).
    pub fn result_text(&self) -> String {
        match &self.result {
            None => "-".into(),
            Some(map) if map.is_empty() => "-".into(),
            Some(map) => map
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// The run report: what `--report FILE.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Virtualization backend the hypervisor used (`svm`, `vmx`), or
    /// `unknown` when the console never said.
    pub backend: String,
    /// The emulator that ran the machine (`qemu-tcg`, `qemu-kvm`,
    /// `bochs:<model>`, ...).
    pub emulator: String,
    /// One entry per partition, in layout order.
    pub partitions: Vec<PartitionReport>,
}

/// The `report-begin` header.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportHeader {
    /// Format version.
    pub version: u64,
    /// `svm` or `vmx`.
    pub backend: String,
    /// Number of report lines that follow.
    pub partitions: u64,
}

/// A partition's end as the hypervisor announced it when it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndLine {
    /// `flotilla: partition NAME exited with code N`
    Exited(u64),
    /// `flotilla: partition NAME faulted: KIND at rip 0xRIP: DETAIL`
    Faulted(Fault),
    /// `flotilla: partition NAME timed out`
    TimedOut,
}

/// A partition the hypervisor decoded from the manifest and planned
/// (`flotilla: partition NAME on cpu C (apic A): ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedPartition {
    /// Partition name.
    pub name: String,
    /// Core.
    pub cpu: u32,
    /// The rest of the line (memory, base, workload, arguments).
    pub detail: String,
}

/// Everything about partitions that the console of a run said.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConsoleReport {
    /// Backend from `flotilla: layout: ... backend X` or the report header.
    pub backend: Option<String>,
    /// The partitions the hypervisor planned, in console order.
    pub plan: Vec<PlannedPartition>,
    /// End lines, in console order.
    pub ends: Vec<(String, EndLine)>,
    /// `[name] ...` lines per partition.
    pub console_lines: BTreeMap<String, u64>,
    /// The report header, if seen.
    pub header: Option<ReportHeader>,
    /// Report lines, in console order.
    pub partitions: Vec<PartitionReport>,
    /// `report-end` was seen.
    pub ended: bool,
    /// Partitions whose console started dropping lines (in console order).
    pub dropping: Vec<String>,
    /// Why the console cannot be trusted as the hypervisor's report: lines
    /// that could not be read, or that the hypervisor would not have written
    /// where they are (see the module documentation). Each fails the run.
    pub problems: Vec<String>,
    /// Where the console is relative to the report.
    phase: Phase,
}

/// Where a console line is relative to the report frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Before `report-begin`.
    #[default]
    Before,
    /// Between `report-begin` and `report-end`.
    Report,
    /// After `report-end`, before the run's end marker.
    After,
    /// After the run's end marker: nothing more may come.
    Verdict,
}

impl ConsoleReport {
    /// Reads a whole console.
    pub fn parse(console: &str) -> Self {
        let mut report = ConsoleReport::default();
        for line in console.lines() {
            report.push_line(line);
        }
        report
    }

    /// Reads one console line.
    pub fn push_line(&mut self, line: &str) {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix('[') {
            if let Some((name, _)) = rest.split_once(']') {
                *self.console_lines.entry(name.to_string()).or_default() += 1;
                if self.phase != Phase::Before && self.phase != Phase::Report {
                    self.problems.push(format!(
                        "partition {name}'s console line after the report (every partition had ended): {line}"
                    ));
                }
            }
            return;
        }
        if !line.starts_with(abi::console::PREFIX) {
            // Firmware output; but the report's and the verdict's markers are
            // only ever written at the start of a line.
            if line.contains(markers::REPORT_FAMILY) || line.contains(abi::console::RUN_SUCCEEDED) {
                self.problems
                    .push(format!("a marker in the middle of a line: {line}"));
            }
            return;
        }
        if line.starts_with(markers::REPORT_FAMILY) {
            self.report_marker(line);
        } else if line == abi::console::RUN_SUCCEEDED || line.starts_with(abi::console::RUN_FAILED)
        {
            self.verdict_marker(line);
        } else if self.phase == Phase::After || self.phase == Phase::Verdict {
            self.problems
                .push(format!("a line after the report: {line}"));
        } else if line.starts_with(abi::console::RUN_SUCCEEDED) {
            self.problems
                .push(format!("a malformed run marker: {line}"));
        } else if let Some(rest) = line.strip_prefix(markers::LAYOUT) {
            if let Some((_, backend)) = rest.rsplit_once(" backend ") {
                self.backend
                    .get_or_insert_with(|| backend.trim().to_string());
            }
        } else if let Some(rest) = line.strip_prefix(markers::PARTITION) {
            self.partition_line(rest);
        }
    }

    /// `flotilla: report...`: exactly one of the three formats, in order.
    fn report_marker(&mut self, line: &str) {
        if let Some(json) = line.strip_prefix(markers::REPORT_BEGIN) {
            if self.phase != Phase::Before {
                self.problems
                    .push(format!("a second `report-begin`: {line}"));
                return;
            }
            self.phase = Phase::Report;
            match serde_json::from_str::<ReportHeader>(json) {
                Ok(h) => {
                    if h.version != REPORT_VERSION {
                        self.problems.push(format!(
                            "report version {} (this tool reads version {REPORT_VERSION})",
                            h.version
                        ));
                    }
                    self.backend = Some(h.backend.clone());
                    self.header = Some(h);
                }
                Err(e) => self
                    .problems
                    .push(format!("unreadable report header ({e}): {json}")),
            }
        } else if let Some(json) = line.strip_prefix(markers::REPORT) {
            if self.phase != Phase::Report {
                self.problems.push(format!(
                    "a report line outside `report-begin` … `report-end`: {line}"
                ));
                return;
            }
            match serde_json::from_str::<PartitionReport>(json) {
                Ok(p) => self.report_line(p),
                Err(e) => self
                    .problems
                    .push(format!("unreadable report line ({e}): {json}")),
            }
        } else if line == markers::REPORT_END {
            if self.phase != Phase::Report {
                self.problems
                    .push(format!("`report-end` without its `report-begin`: {line}"));
                return;
            }
            self.phase = Phase::After;
            self.ended = true;
        } else {
            self.problems
                .push(format!("a malformed report marker: {line}"));
        }
    }

    /// A parsed report line: once per partition, agreeing with its end line.
    fn report_line(&mut self, p: PartitionReport) {
        if self.partitions.iter().any(|q| q.name == p.name) {
            self.problems
                .push(format!("two report lines for partition {}", p.name));
            return;
        }
        if let Some(limit) = self.header.as_ref().map(|h| h.partitions) {
            if self.partitions.len() as u64 >= limit {
                self.problems.push(format!(
                    "more report lines than the {limit} the header announced (partition {})",
                    p.name
                ));
                return;
            }
        }
        match self.plan.iter().find(|q| q.name == p.name) {
            Some(plan) if plan.cpu != p.cpu => self.problems.push(format!(
                "the report puts partition {} on cpu {}; the plan said cpu {}",
                p.name, p.cpu, plan.cpu
            )),
            None if !self.plan.is_empty() => self.problems.push(format!(
                "the report has partition {}, which the hypervisor's plan did not",
                p.name
            )),
            _ => {}
        }
        match self.end_of(&p.name) {
            None => self.problems.push(format!(
                "the report has partition {} but the console never said how it ended",
                p.name
            )),
            Some(end) if !end.agrees_with(&p) => self.problems.push(format!(
                "the report line of partition {} ({}) contradicts its end line ({})",
                p.name,
                p.state.as_str(),
                end.describe()
            )),
            Some(_) => {}
        }
        self.partitions.push(p);
    }

    /// `run succeeded` must follow the report; only one end marker.
    fn verdict_marker(&mut self, line: &str) {
        match self.phase {
            Phase::Verdict => self
                .problems
                .push(format!("a second run end marker: {line}")),
            Phase::After => self.phase = Phase::Verdict,
            Phase::Before | Phase::Report if line == abi::console::RUN_SUCCEEDED => {
                self.problems
                    .push(format!("`{line}` before the report ended"));
                self.phase = Phase::Verdict;
            }
            // A run that fails before its report (a layout the hypervisor
            // refused, a crash) says so without one.
            Phase::Before | Phase::Report => self.phase = Phase::Verdict,
        }
    }

    fn partition_line(&mut self, rest: &str) {
        let Some((name, what)) = rest.split_once(' ') else {
            return;
        };
        if let Some(plan) = what.strip_prefix("on cpu ") {
            let (cpu, detail) = plan.split_once(' ').unwrap_or((plan, ""));
            if let Ok(cpu) = cpu.trim_end_matches(':').parse() {
                if self.plan.iter().any(|p| p.name == name) {
                    self.problems
                        .push(format!("partition {name} planned twice"));
                }
                self.plan.push(PlannedPartition {
                    name: name.to_string(),
                    cpu,
                    detail: detail.to_string(),
                });
            }
        } else if what.starts_with(abi::console::PARTITION_DROPPING) {
            self.dropping.push(name.to_string());
        } else if let Some(end) = parse_end(what) {
            if self.end_of(name).is_some() {
                self.problems
                    .push(format!("two end lines for partition {name}"));
            }
            self.ends.push((name.to_string(), end));
        } else if ["exited", "faulted", "timed"]
            .iter()
            .any(|w| what.starts_with(w))
        {
            self.problems
                .push(format!("a malformed end line: flotilla: partition {rest}"));
        }
    }

    /// The last end line of `name`.
    pub fn end_of(&self, name: &str) -> Option<&EndLine> {
        self.ends
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e)
    }

    /// Whether the report is whole: header, one line per partition the
    /// header announced, and the end line.
    pub fn is_complete(&self) -> bool {
        self.ended
            && self
                .header
                .as_ref()
                .is_some_and(|h| h.partitions == self.partitions.len() as u64)
    }
}

impl EndLine {
    /// Whether a report line says the same.
    fn agrees_with(&self, p: &PartitionReport) -> bool {
        match self {
            EndLine::Exited(code) => {
                p.state == PartitionState::Exited && p.exit_code == Some(*code)
            }
            EndLine::Faulted(f) => {
                p.state == PartitionState::Faulted && p.fault_kind() == Some(f.kind)
            }
            EndLine::TimedOut => p.state == PartitionState::TimedOut,
        }
    }

    fn describe(&self) -> String {
        match self {
            EndLine::Exited(code) => format!("exited with code {code}"),
            EndLine::Faulted(f) => format!("faulted: {}", f.kind.as_str()),
            EndLine::TimedOut => "timed out".to_string(),
        }
    }
}

/// Parses what follows `flotilla: partition NAME ` in an end line.
fn parse_end(what: &str) -> Option<EndLine> {
    if let Some(code) = what.strip_prefix("exited with code ") {
        return code.trim().parse().ok().map(EndLine::Exited);
    }
    if what.trim() == "timed out" {
        return Some(EndLine::TimedOut);
    }
    let rest = what.strip_prefix("faulted: ")?;
    let (kind, rest) = rest.split_once(" at rip ")?;
    let kind = kind.parse().ok()?;
    let (rip, detail) = rest.split_once(": ").unwrap_or((rest, ""));
    let rip = u64::from_str_radix(rip.trim().trim_start_matches("0x"), 16).ok()?;
    Some(EndLine::Faulted(Fault {
        kind,
        rip,
        gpa: None,
        detail: detail.to_string(),
    }))
}

impl RunReport {
    /// The report of a run of a layout whose partitions are `partitions`
    /// (`(name, cpu)` in layout order), from what its console said. See the
    /// module documentation for partitions the report does not cover.
    pub fn from_console(
        parsed: &ConsoleReport,
        partitions: &[(&str, u32)],
        emulator: &str,
    ) -> Self {
        let entries = partitions
            .iter()
            .map(|&(name, cpu)| {
                parsed
                    .partitions
                    .iter()
                    .find(|p| p.name == name)
                    .cloned()
                    .unwrap_or_else(|| {
                        PartitionReport::from_console(
                            name,
                            cpu,
                            parsed.end_of(name),
                            parsed.console_lines.get(name).copied().unwrap_or(0),
                        )
                    })
            })
            .collect();
        RunReport {
            backend: parsed
                .backend
                .clone()
                .unwrap_or_else(|| "unknown".to_string()),
            emulator: emulator.to_string(),
            partitions: entries,
        }
    }

    /// The partition called `name`.
    pub fn partition(&self, name: &str) -> Option<&PartitionReport> {
        self.partitions.iter().find(|p| p.name == name)
    }

    /// The report as pretty JSON (what `--report` writes).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as a table, one row per partition.
    pub fn table(&self) -> String {
        let header = [
            "partition",
            "cpu",
            "state",
            "exit",
            "fault",
            "exits total/steady",
            "console",
            "result",
        ];
        let rows: Vec<[String; 8]> = self
            .partitions
            .iter()
            .map(|p| {
                [
                    p.name.clone(),
                    p.cpu.to_string(),
                    p.state.as_str().to_string(),
                    p.exit_code.map_or_else(|| "-".into(), |c| c.to_string()),
                    p.fault.as_ref().map_or_else(
                        || "-".into(),
                        |f| {
                            if f.detail.is_empty() {
                                f.kind.to_string()
                            } else {
                                format!("{}: {}", f.kind, f.detail)
                            }
                        },
                    ),
                    format!("{}/{}", p.vm_exits.total, p.vm_exits.steady.total),
                    if p.console_dropped == 0 {
                        p.console_lines.to_string()
                    } else {
                        format!("{} ({} dropped)", p.console_lines, p.console_dropped)
                    },
                    p.result_text(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[&str]| {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    let _ = write!(text, "{cell:<w$}  ");
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&header);
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(&cells);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "\
flotilla: layout: 2 partition(s), 0 channel(s), timeout 120 s, backend svm
flotilla: partition calc on cpu 0 (apic 0): 16 MiB at 0x4000000, workload compute n=100000
flotilla: partition rogue on cpu 1 (apic 1): 16 MiB at 0x5000000, workload rogue attack=vmrun
[calc] guest-kernel: calc (partition 0) on core 0
[rogue] flotilla: report {\"name\":\"rogue\",\"cpu\":1,\"state\":\"exited\"}
[rogue] rogue: attack vmrun
flotilla: partition rogue faulted: virt-instruction at rip 0x1234ab: VMRUN
[calc] compute: 9592 primes
flotilla: partition calc exited with code 0
flotilla: report-begin {\"version\":4,\"backend\":\"svm\",\"partitions\":2}
flotilla: report {\"name\":\"calc\",\"cpu\":0,\"state\":\"exited\",\"exit_code\":0,\"fault\":null,\"restarts\":0,\"faults\":[],\"vm_exits\":{\"total\":9,\"by_reason\":{\"hypercall\":5,\"cpuid\":4},\"steady\":{\"total\":5,\"by_reason\":{\"hypercall\":5}}},\"console_lines\":3,\"console_dropped\":0,\"result\":{\"primes\":9592,\"ticks\":3},\"compat\":{\"msr_gp\":2,\"ports_floated\":7,\"uart_bytes\":0,\"lvt_masked\":1}}
flotilla: report {\"name\":\"rogue\",\"cpu\":1,\"state\":\"faulted\",\"exit_code\":null,\"fault\":{\"kind\":\"virt-instruction\",\"rip\":1193131,\"gpa\":null,\"detail\":\"VMRUN\"},\"restarts\":0,\"faults\":[],\"vm_exits\":{\"total\":3,\"by_reason\":{\"hypercall\":2,\"virt-instruction\":1},\"steady\":{\"total\":3,\"by_reason\":{\"hypercall\":2,\"virt-instruction\":1}}},\"console_lines\":2,\"console_dropped\":0,\"result\":null}
flotilla: report-end
flotilla: run failed: 1 partition(s) did not exit with code 0
";

    #[test]
    fn parses_a_whole_report() {
        let parsed = ConsoleReport::parse(CONSOLE);
        assert!(parsed.is_complete(), "{parsed:?}");
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.backend.as_deref(), Some("svm"));
        assert_eq!(parsed.plan.len(), 2);
        assert_eq!(parsed.plan[1].name, "rogue");
        assert_eq!(parsed.plan[1].cpu, 1);
        assert_eq!(parsed.console_lines.get("calc"), Some(&2));
        let report = RunReport::from_console(&parsed, &[("calc", 0), ("rogue", 1)], "qemu-tcg");
        let calc = report.partition("calc").unwrap();
        assert!(calc.exited_ok());
        assert_eq!(calc.result_u64("primes"), Some(9592));
        assert_eq!(calc.vm_exits.steady.by_reason.get("hypercall"), Some(&5));
        let used = calc.compat.expect("the compat counts");
        assert_eq!(
            (used.msr_gp, used.ports_floated, used.lvt_masked),
            (2, 7, 1)
        );
        let rogue = report.partition("rogue").unwrap();
        assert_eq!(rogue.state, PartitionState::Faulted);
        assert_eq!(rogue.fault_kind(), Some(FaultKind::VirtInstruction));
        assert_eq!(rogue.result, None);
        assert_eq!(rogue.compat, None, "a strict partition reports none");
    }

    #[test]
    fn a_partition_line_cannot_forge_a_report() {
        let parsed = ConsoleReport::parse(CONSOLE);
        assert_eq!(parsed.partitions.len(), 2);
        assert_eq!(parsed.partitions[1].state, PartitionState::Faulted);
    }

    #[test]
    fn json_round_trips_with_the_contract_keys() {
        let parsed = ConsoleReport::parse(CONSOLE);
        let report = RunReport::from_console(&parsed, &[("calc", 0), ("rogue", 1)], "bochs:ryzen");
        let json = report.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["backend"], "svm");
        assert_eq!(value["emulator"], "bochs:ryzen");
        let rogue = &value["partitions"][1];
        for key in [
            "name",
            "cpu",
            "state",
            "exit_code",
            "fault",
            "vm_exits",
            "console_lines",
            "result",
        ] {
            assert!(rogue.get(key).is_some(), "missing {key} in {rogue}");
        }
        assert_eq!(rogue["state"], "faulted");
        assert_eq!(rogue["fault"]["rip"], 0x1234ab);
        assert_eq!(value["partitions"][0]["vm_exits"]["steady"]["total"], 5);
        let back: RunReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn without_a_report_partitions_come_from_their_end_lines() {
        let cut: String = CONSOLE
            .lines()
            .take_while(|l| !l.starts_with("flotilla: report-begin"))
            .filter(|l| !l.contains("calc exited"))
            .flat_map(|l| [l, "\n"])
            .collect();
        let parsed = ConsoleReport::parse(&cut);
        assert!(!parsed.is_complete());
        let report = RunReport::from_console(&parsed, &[("calc", 0), ("rogue", 1)], "qemu-tcg");
        assert_eq!(report.backend, "svm");
        let calc = report.partition("calc").unwrap();
        assert_eq!(calc.state, PartitionState::TimedOut);
        assert_eq!(calc.console_lines, 2);
        let rogue = report.partition("rogue").unwrap();
        assert_eq!(rogue.state, PartitionState::Faulted);
        let fault = rogue.fault.as_ref().unwrap();
        assert_eq!(fault.rip, 0x1234ab);
        assert_eq!(fault.detail, "VMRUN");
    }

    #[test]
    fn end_lines_parse() {
        assert_eq!(parse_end("exited with code 3"), Some(EndLine::Exited(3)));
        assert_eq!(parse_end("timed out"), Some(EndLine::TimedOut));
        assert_eq!(
            parse_end("faulted: npf at rip 0x10: write at gpa 0x1: outside"),
            Some(EndLine::Faulted(Fault {
                kind: FaultKind::Npf,
                rip: 0x10,
                gpa: None,
                detail: "write at gpa 0x1: outside".into()
            }))
        );
        assert_eq!(parse_end("exited with code x"), None);
        assert_eq!(parse_end("faulted: npf"), None);
        assert_eq!(
            parse_end("faulted: npff at rip 0x10: x"),
            None,
            "unknown kind"
        );
    }

    #[test]
    fn malformed_report_lines_are_problems_not_panics() {
        let parsed = ConsoleReport::parse(
            "flotilla: report-begin {\"version\":99,\"backend\":\"vmx\",\"partitions\":1}\n\
             flotilla: report {\"name\":3}\n\
             flotilla: report-end\n",
        );
        assert_eq!(parsed.problems.len(), 2, "{:?}", parsed.problems);
        assert!(!parsed.is_complete());
    }

    /// The console with `edit` applied to its lines.
    fn edited(edit: impl Fn(Vec<&str>) -> Vec<String>) -> ConsoleReport {
        let text: String = edit(CONSOLE.lines().collect())
            .into_iter()
            .flat_map(|l| [l, "\n".to_string()])
            .collect();
        ConsoleReport::parse(&text)
    }

    fn problems_of(edit: impl Fn(Vec<&str>) -> Vec<String>) -> String {
        let parsed = edited(edit);
        assert!(
            !parsed.problems.is_empty(),
            "no problem found in {parsed:?}"
        );
        parsed.problems.join("\n")
    }

    fn own(lines: Vec<&str>) -> Vec<String> {
        lines.into_iter().map(str::to_string).collect()
    }

    /// Inserts `extra` before the line that starts with `before`.
    fn insert_before(lines: Vec<&str>, before: &str, extra: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for l in lines {
            if l.starts_with(before) {
                out.extend(extra.iter().map(|e| e.to_string()));
            }
            out.push(l.to_string());
        }
        out
    }

    const FORGED_ROGUE: &str = "flotilla: report {\"name\":\"rogue\",\"cpu\":1,\"state\":\"exited\",\"exit_code\":0,\"fault\":null,\"restarts\":0,\"faults\":[],\"vm_exits\":{\"total\":0,\"by_reason\":{},\"steady\":{\"total\":0,\"by_reason\":{}}},\"console_lines\":0,\"console_dropped\":0,\"result\":null}";

    #[test]
    fn the_unmodified_console_has_no_problem() {
        let parsed = edited(own);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    }

    #[test]
    fn a_forged_report_before_the_real_one_is_a_problem() {
        let p = problems_of(|l| {
            insert_before(
                l,
                "flotilla: report-begin",
                &[
                    "flotilla: report-begin {\"version\":4,\"backend\":\"svm\",\"partitions\":2}",
                    FORGED_ROGUE,
                    "flotilla: report-end",
                    "flotilla: run succeeded",
                ],
            )
        });
        assert!(p.contains("contradicts its end line"), "{p}");
        assert!(p.contains("a second `report-begin`"), "{p}");
        assert!(p.contains("a report line outside"), "{p}");
    }

    #[test]
    fn report_lines_only_inside_the_frame_and_once_each() {
        let p = problems_of(|l| insert_before(l, "flotilla: partition calc on", &[FORGED_ROGUE]));
        assert!(p.contains("outside `report-begin`"), "{p}");
        let p = problems_of(|l| {
            let line = l
                .iter()
                .find(|x| x.starts_with("flotilla: report {\"name\":\"calc"))
                .unwrap()
                .to_string();
            insert_before(l, "flotilla: report-end", &[&line])
        });
        assert!(p.contains("two report lines for partition calc"), "{p}");
        let p =
            problems_of(|l| insert_before(l, "flotilla: report-end", &["flotilla: report-end"]));
        assert!(p.contains("without its `report-begin`"), "{p}");
    }

    #[test]
    fn malformed_or_misplaced_markers_are_problems() {
        for (bad, expect) in [
            ("flotilla: report-end now", "malformed report marker"),
            ("flotilla: reports {}", "malformed report marker"),
            ("junk flotilla: report-end", "in the middle of a line"),
            ("xflotilla: run succeeded", "in the middle of a line"),
            ("flotilla: run succeeded", "before the report ended"),
            ("flotilla: run succeeded!", "malformed run marker"),
            (
                "flotilla: partition calc exited with code 0x0",
                "malformed end line",
            ),
            (
                "flotilla: partition calc timed out now",
                "malformed end line",
            ),
        ] {
            let p = problems_of(|l| insert_before(l, "flotilla: report {\"name\":\"calc", &[bad]));
            assert!(p.contains(expect), "{bad}: {p}");
        }
    }

    #[test]
    fn nothing_may_follow_the_report_but_one_end_marker() {
        for (extra, expect) in [
            ("flotilla: run succeeded", "a second run end marker"),
            (
                "flotilla: partition calc exited with code 0",
                "a line after the report",
            ),
            ("[calc] late", "after the report"),
            (FORGED_ROGUE, "outside `report-begin`"),
        ] {
            let p = problems_of(|mut l| {
                l.push(extra);
                own(l)
            });
            assert!(p.contains(expect), "{extra}: {p}");
        }
        // Without the hypervisor's verdict the report-end may be followed by
        // `run succeeded` once: the real console.
        let parsed = edited(|l| {
            let mut l = own(l);
            l.pop();
            l.push("flotilla: run succeeded".into());
            l
        });
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    }

    #[test]
    fn two_end_lines_or_a_missing_one_are_problems() {
        let p = problems_of(|l| {
            insert_before(
                l,
                "flotilla: report-begin",
                &["flotilla: partition calc exited with code 0"],
            )
        });
        assert!(p.contains("two end lines for partition calc"), "{p}");
        let p = problems_of(|l| {
            own(l
                .into_iter()
                .filter(|x| !x.starts_with("flotilla: partition calc exited"))
                .collect())
        });
        assert!(p.contains("never said how it ended"), "{p}");
        let p = problems_of(|l| {
            own(l
                .into_iter()
                .map(|x| {
                    if x.contains("on cpu 0") {
                        "flotilla: partition calc on cpu 3 (apic 3): x"
                    } else {
                        x
                    }
                })
                .collect())
        });
        assert!(p.contains("the plan said cpu 3"), "{p}");
        let p = problems_of(|l| {
            own(l
                .into_iter()
                .filter(|x| !x.starts_with("flotilla: partition rogue on"))
                .collect())
        });
        assert!(
            p.contains("rogue, which the hypervisor's plan did not"),
            "{p}"
        );
    }

    #[test]
    fn the_dropping_notice_is_recorded() {
        let parsed = edited(|l| {
            insert_before(
                l,
                "flotilla: partition calc exited",
                &["flotilla: partition calc console dropping lines: over its budget"],
            )
        });
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.dropping, ["calc"]);
    }

    #[test]
    fn table_has_a_row_per_partition() {
        let parsed = ConsoleReport::parse(CONSOLE);
        let report = RunReport::from_console(&parsed, &[("calc", 0), ("rogue", 1)], "qemu-tcg");
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("partition  cpu  state"), "{table}");
        assert!(lines[1].contains("exited") && lines[1].contains("primes=9592 ticks=3"));
        assert!(lines[1].contains("9/5"), "{table}");
        assert!(lines[2].contains("virt-instruction: VMRUN"), "{table}");
    }
}
