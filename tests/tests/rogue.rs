//! The attack matrix under QEMU TCG `-cpu max` (SVM without nRIP save):
//! every attack of [`e2e::matrix::ROGUE_MATRIX`], several rogue partitions
//! per boot next to well-behaved ones (`compute`, a `pingpong` pair, a
//! channel `peer`). Each rogue must end as the matrix says, every other
//! partition must finish with its known result, and the report must be
//! complete. Under Bochs (VMX): `bochs_rogue.rs`.

use e2e::matrix::{run_matrix, Backend};

/// Cores per boot: 3 well-behaved partitions and 9 rogues.
const CPUS: usize = 12;

#[test]
fn rogue_matrix_under_qemu_svm() {
    run_matrix(Backend::Svm, CPUS);
}
