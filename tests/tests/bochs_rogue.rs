//! The attack matrix under Bochs `corei7_skylake_x` (VMX with EPT): every
//! attack of [`e2e::matrix::ROGUE_MATRIX`], packed as under QEMU (see
//! `rogue.rs`). Bochs runs every core in one host thread and its BIOS and
//! GRUB take most of a boot, so few, wide boots are cheapest. Bochs'
//! `ryzen` model (SVM with nRIP save) cannot run partitions: it has no
//! x2APIC, which the hypervisor requires.

use e2e::matrix::{run_matrix, Backend};

/// Cores per boot.
const CPUS: usize = 12;

#[test]
fn rogue_matrix_under_bochs_vmx() {
    run_matrix(Backend::Vmx, CPUS);
}
