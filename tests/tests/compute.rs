//! Four partitions on four cores, `hello` and `compute` side by side: each
//! exits 0 and every `compute` reports the right number of primes.

use e2e::{assert_passed, assert_result, boot_layout, layout, layout_config, primes_below};

const LAYOUT: &str = r#"
[machine]
cpus = 4
memory = "256 MiB"
timeout = 60

[defaults]
memory = "16 MiB"

[[partition]]
name = "hello-a"
cpu = 0
workload = "hello"

[[partition]]
name = "small"
cpu = 1
workload = "compute"
args = { n = 100000 }

[[partition]]
name = "hello-b"
cpu = 2
workload = "hello"

[[partition]]
name = "large"
cpu = 3
workload = "compute"
args = { n = 1000000 }
"#;

#[test]
fn hello_and_compute_on_every_core() {
    let outcome = boot_layout(&layout_config(layout(LAYOUT, "compute.toml")));
    assert_passed(&outcome);
    assert_eq!(outcome.report.backend, "svm");
    assert_eq!(outcome.report.emulator, "qemu-tcg");
    assert_result(&outcome, "small", "primes", primes_below(100_000));
    assert_result(&outcome, "large", "primes", primes_below(1_000_000));
    for name in ["hello-a", "hello-b"] {
        let p = e2e::partition(&outcome, name);
        if !p.exited_ok() || p.result_u64("ticks").is_none_or(|t| t == 0) {
            e2e::fail_layout(
                &outcome,
                &format!("{name} should exit 0 after a timer tick"),
            );
        }
    }
}
