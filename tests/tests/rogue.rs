//! The rogue matrix: a hostile partition tries one forbidden thing next to
//! well-behaved ones. The hypervisor must stop it with the right fault kind
//! and let every other partition run to a correct end.
//!
//! Under QEMU TCG (SVM without nRIP save): every attack of
//! [`e2e::ROGUE_MATRIX`], with three well-behaved neighbours. Under Bochs
//! (VMX): see `bochs_rogue.rs`.

use e2e::{
    assert_passed, assert_result, boot_layout, layout, layout_config, primes_below,
    rogue_fault_kind, LayoutOutcome,
};

/// The rogue partition on core 1 (so that core 0 and the others it might
/// target are well-behaved partitions), `hello` and two `compute`s.
fn layout_toml(attack: &str) -> String {
    format!(
        r#"
[machine]
cpus = 4
memory = "256 MiB"
timeout = 30

[defaults]
memory = "16 MiB"

[[partition]]
name = "hello"
cpu = 0
workload = "hello"

[[partition]]
name = "rogue"
cpu = 1
workload = "rogue"
args = {{ attack = "{attack}" }}

[[partition]]
name = "small"
cpu = 2
workload = "compute"
args = {{ n = 10000 }}

[[partition]]
name = "large"
cpu = 3
workload = "compute"
args = {{ n = 100000 }}
"#
    )
}

fn contained(attack: &str) -> LayoutOutcome {
    let kind = rogue_fault_kind(attack);
    let config = layout_config(layout(
        &layout_toml(attack),
        &format!("rogue-{attack}.toml"),
    ))
    .expect_fault("rogue", Some(kind));
    let outcome = boot_layout(&config);
    // Passing means: rogue faulted with `kind`, every other partition exited 0.
    assert_passed(&outcome);
    assert_result(&outcome, "small", "primes", primes_below(10_000));
    assert_result(&outcome, "large", "primes", primes_below(100_000));
    let hello = e2e::partition(&outcome, "hello");
    if hello.result_u64("ticks").is_none_or(|t| t == 0) {
        e2e::fail_layout(&outcome, "hello should report its timer ticks");
    }
    outcome
}

#[test]
fn write_outside_is_a_nested_page_fault() {
    let outcome = contained("write-outside");
    let fault = e2e::partition(&outcome, "rogue").fault.clone().unwrap();
    // The partition's own memory ends at 16 MiB: that is where it wrote.
    assert_eq!(fault.gpa, Some(16 << 20), "{}", outcome.details());
}

#[test]
fn read_outside_is_a_nested_page_fault() {
    contained("read-outside");
}

#[test]
fn write_apic_mmio_is_a_nested_page_fault() {
    contained("write-apic-mmio");
}

#[test]
fn ipi_to_a_non_peer_is_denied() {
    contained("ipi-non-peer");
}

#[test]
fn init_to_a_non_peer_is_denied() {
    contained("init-non-peer");
}

#[test]
fn a_port_not_granted_is_denied() {
    contained("port-denied");
}

#[test]
fn rewriting_the_apic_base_is_denied() {
    contained("apic-base");
}

#[test]
fn vmrun_is_intercepted() {
    contained("vmrun");
}

#[test]
fn a_triple_fault_stops_only_the_rogue_partition() {
    contained("triple-fault");
}

#[test]
fn an_mpx_split_xcr0_is_refused_not_fatal() {
    contained("xsetbv-mpx-split");
}

#[test]
fn a_partial_avx512_xcr0_is_refused_not_fatal() {
    contained("xsetbv-avx512-partial");
}

#[test]
fn a_timer_lvt_with_a_delivery_mode_is_refused() {
    contained("lvt-timer-smi");
}

#[test]
fn an_lvt_with_reserved_bits_is_refused() {
    contained("lvt-reserved");
}
