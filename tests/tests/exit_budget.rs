//! The exit budget (DESIGN §5, docs/run-report.md): a `compute` partition
//! whose timer ticks costs the hypervisor nothing in steady state but its
//! hypercalls — one per console line, one `REPORT_RESULT`, one `EXIT`.
//!
//! What the guest kernel does (flotilla-rt/src/kernel.rs): its first
//! hypercall is its first console line, so the steady state starts there;
//! the boot exits before it (CPUID probes, the EFER write) are not steady.
//! The x2APIC timer ticks without exits (its MSRs are passed through and the
//! interrupt is delivered straight to the guest).

use e2e::{boot_layout, fail_layout, layout, layout_config, partition, primes_below};

const LAYOUT: &str = r#"
[machine]
cpus = 2
memory = "128 MiB"
timeout = 60

[[partition]]
name = "calc"
cpu = 0
memory = "16 MiB"
workload = "compute"
args = { n = 10000000 }   # long enough for the timer to tick

[[partition]]
name = "hello"
cpu = 1
memory = "16 MiB"
workload = "hello"
"#;

#[test]
fn a_ticking_compute_partition_exits_only_for_hypercalls() {
    let outcome = boot_layout(&layout_config(layout(LAYOUT, "exit-budget.toml")));
    e2e::assert_passed(&outcome);
    let calc = partition(&outcome, "calc");
    let ticks = calc.result_u64("ticks").unwrap_or(0);
    if calc.result_u64("primes") != Some(primes_below(10_000_000)) || ticks == 0 {
        fail_layout(
            &outcome,
            "calc should count the primes below 10^7 while its timer ticks (result ticks > 0)",
        );
    }
    let steady = &calc.vm_exits.steady;
    let reasons: Vec<&str> = steady.by_reason.keys().map(String::as_str).collect();
    if reasons != ["hypercall"] {
        fail_layout(
            &outcome,
            &format!(
                "steady-state exits other than hypercalls: {:?}",
                steady.by_reason
            ),
        );
    }
    // Console lines, then REPORT_RESULT, then EXIT.
    if steady.total != calc.console_lines + 2 || steady.by_reason["hypercall"] != steady.total {
        fail_layout(
            &outcome,
            &format!(
                "expected steady.total = console_lines ({}) + 2, got {}",
                calc.console_lines, steady.total
            ),
        );
    }
    // The console lines counted by the hypervisor are the ones on the console.
    let printed = outcome
        .parsed
        .console_lines
        .get("calc")
        .copied()
        .unwrap_or(0);
    if printed != calc.console_lines {
        fail_layout(
            &outcome,
            &format!(
                "the report counts {} console lines, the console shows {printed}",
                calc.console_lines
            ),
        );
    }
    // The total is the steady state plus the boot exits.
    assert!(calc.vm_exits.total >= steady.total);
}
