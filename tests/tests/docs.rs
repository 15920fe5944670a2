//! Sections of the contracts in `docs/` that are generated from the code:
//! the fault kinds and exit reasons of the run report come from
//! `abi::fault`, so the report, the tools and the docs share one list.

use abi::fault::{ExitReason, FaultKind};
use e2e::assert_generated_section;

fn table<'a>(header: &str, rows: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = format!("| {header} | meaning |\n|---|---|\n");
    for (name, meaning) in rows {
        out.push_str(&format!("| `{name}` | {meaning} |\n"));
    }
    out
}

#[test]
fn run_report_lists_every_fault_kind() {
    let rows = FaultKind::ALL.iter().map(|k| (k.as_str(), k.description()));
    assert_generated_section("docs/run-report.md", "fault-kinds", &table("kind", rows));
}

#[test]
fn run_report_lists_every_exit_reason() {
    let rows = ExitReason::ALL
        .iter()
        .map(|r| (r.as_str(), r.description()));
    assert_generated_section("docs/run-report.md", "exit-reasons", &table("reason", rows));
}
