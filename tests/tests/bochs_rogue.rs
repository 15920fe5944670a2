//! The rogue matrix under Bochs `corei7_skylake_x`: the VMX backend's
//! containment (EPT violations, I/O and MSR bitmaps, the x2APIC ICR and
//! APIC base, VMX instructions, triple faults) for every attack of
//! [`e2e::ROGUE_MATRIX`], next to a well-behaved `compute` partition.
//!
//! Two cores and a small `n` keep each boot near 30 s (most of it Bochs'
//! BIOS and GRUB). Bochs' `ryzen` model (SVM with nRIP save) cannot run
//! partitions: it has no x2APIC, which the hypervisor requires, so its cores
//! boot "(cannot host partitions)" and a layout run fails before any
//! partition starts.

use e2e::{assert_passed, assert_result, boot_layout, layout, layout_config, primes_below};
use e2e::{rogue_fault_kind, Emulator};

fn contained_under_bochs(attack: &str) {
    let toml = format!(
        r#"
[machine]
cpus = 2
memory = "128 MiB"
timeout = 60

[defaults]
memory = "16 MiB"

[[partition]]
name = "calc"
cpu = 0
workload = "compute"
args = {{ n = 10000 }}

[[partition]]
name = "rogue"
cpu = 1
workload = "rogue"
args = {{ attack = "{attack}" }}
"#
    );
    let config = layout_config(layout(&toml, &format!("bochs-rogue-{attack}.toml")))
        .with_emulator(Emulator::bochs())
        .expect_fault("rogue", Some(rogue_fault_kind(attack)));
    let outcome = boot_layout(&config);
    assert_passed(&outcome);
    assert_eq!(outcome.report.backend, "vmx", "{}", outcome.details());
    assert_result(&outcome, "calc", "primes", primes_below(10_000));
}

#[test]
fn bochs_vmx_write_outside() {
    contained_under_bochs("write-outside");
}

#[test]
fn bochs_vmx_read_outside() {
    contained_under_bochs("read-outside");
}

#[test]
fn bochs_vmx_write_apic_mmio() {
    contained_under_bochs("write-apic-mmio");
}

#[test]
fn bochs_vmx_ipi_non_peer() {
    contained_under_bochs("ipi-non-peer");
}

#[test]
fn bochs_vmx_init_non_peer() {
    contained_under_bochs("init-non-peer");
}

#[test]
fn bochs_vmx_port_denied() {
    contained_under_bochs("port-denied");
}

#[test]
fn bochs_vmx_apic_base() {
    contained_under_bochs("apic-base");
}

#[test]
fn bochs_vmx_vmrun() {
    contained_under_bochs("vmrun");
}

#[test]
fn bochs_vmx_triple_fault() {
    contained_under_bochs("triple-fault");
}

#[test]
fn bochs_vmx_xsetbv_mpx_split() {
    contained_under_bochs("xsetbv-mpx-split");
}

#[test]
fn bochs_vmx_xsetbv_avx512_partial() {
    contained_under_bochs("xsetbv-avx512-partial");
}

#[test]
fn bochs_vmx_lvt_timer_smi() {
    contained_under_bochs("lvt-timer-smi");
}

#[test]
fn bochs_vmx_lvt_reserved() {
    contained_under_bochs("lvt-reserved");
}
