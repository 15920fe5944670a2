//! The attack matrix under Bochs `corei7_skylake_x` (VMX with EPT): every
//! attack of [`e2e::matrix::ROGUE_MATRIX`], packed as under QEMU (see
//! `rogue.rs`). Bochs runs every core in one host thread and its BIOS and
//! GRUB take most of a boot, so few, wide boots are cheapest. Bochs'
//! `ryzen` model (SVM with nRIP save) cannot run partitions: it has no
//! x2APIC, which the hypervisor requires.

use e2e::matrix::{run_matrix, Backend};

/// Cores per boot. Under Bochs a boot's cost grows faster than its core
/// count (every core's turn of the one host thread is spent, idle or not,
/// while the others start and work), so 10 cores (7 rogues) cost about as
/// much per attack as 12 and fail in smaller pieces.
const CPUS: usize = 10;

#[test]
fn rogue_matrix_under_bochs_vmx() {
    run_matrix(Backend::Vmx, CPUS);
}
