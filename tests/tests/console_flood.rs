//! A partition floods the console (`hello` with `lines`): its lines beyond
//! the budget are dropped and counted, the hypervisor says so once, and its
//! neighbours and the report are unaffected (`docs/console.md`). Under QEMU
//! TCG (SVM) and Bochs (VMX; fewer lines, its cores share one host thread).

use e2e::{
    assert_backend, assert_passed, assert_result, boot_layout, layout, layout_config, primes_below,
    Emulator,
};

const LAYOUT: &str = r#"
[machine]
cpus = 3
memory = "128 MiB"
timeout = 60

[defaults]
memory = "16 MiB"

[[partition]]
name = "flood"
cpu = 0
workload = "hello"
args = { lines = FLOOD }

[[partition]]
name = "calc"
cpu = 1
workload = "compute"
args = { n = 100000 }

[[partition]]
name = "quiet"
cpu = 2
workload = "hello"
"#;

#[test]
fn a_console_flood_is_bounded_and_harms_no_neighbour() {
    flood(Emulator::qemu_tcg(), "svm", 3000);
}

#[test]
fn bochs_vmx_a_console_flood_is_bounded_and_harms_no_neighbour() {
    flood(Emulator::bochs(), "vmx", 400);
}

fn flood(emulator: Emulator, backend: &str, lines: u64) {
    let toml = LAYOUT.replace("FLOOD", &lines.to_string());
    let config = layout_config(layout(&toml, "flood.toml")).with_emulator(emulator);
    let outcome = boot_layout(&config);
    assert_passed(&outcome);
    assert_backend(&outcome, backend);
    assert_result(&outcome, "calc", "primes", primes_below(100_000));
    let flood = e2e::partition(&outcome, "flood");
    // The kernel's own lines and the greeting (as many as `quiet` printed),
    // then the numbered lines.
    let offered = lines + e2e::partition(&outcome, "quiet").console_lines;
    let fail = |why: &str| e2e::fail_layout(&outcome, why);
    if flood.console_lines + flood.console_dropped != offered {
        fail(&format!(
            "flood: {} printed + {} dropped, expected {offered} lines offered",
            flood.console_lines, flood.console_dropped
        ));
    }
    if flood.console_dropped == 0 || flood.console_lines < 64 {
        fail("flood: expected the 64-line burst printed and the rest of the flood dropped");
    }
    let steady = &flood.vm_exits.steady;
    if steady.by_reason.get("hypercall").copied() != Some(offered + 2) {
        fail("flood: every CONSOLE_WRITE (printed or dropped) is one hypercall exit");
    }
    let printed = outcome.parsed.console_lines.get("flood").copied();
    if printed != Some(flood.console_lines) {
        fail(&format!(
            "flood: the console shows {printed:?} lines, the report counts {}",
            flood.console_lines
        ));
    }
    if outcome.parsed.dropping != ["flood"] {
        fail(&format!(
            "expected one dropping notice, for flood only: {:?}",
            outcome.parsed.dropping
        ));
    }
    for name in ["calc", "quiet"] {
        let p = e2e::partition(&outcome, name);
        if p.console_dropped != 0 || p.console_lines == 0 {
            fail(&format!("{name}: its console lines must all get through"));
        }
    }
}
