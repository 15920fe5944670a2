//! The attack matrix of `docs/threat-model.md` is generated from the
//! tests' table ([`e2e::matrix::ROGUE_MATRIX`]): this test fails when the
//! document differs (`FLOTILLA_BLESS=1` rewrites it), and when the table
//! and the layout catalog's attack list (`ROGUE_ATTACKS`, the names a
//! layout may give the `rogue` workload) disagree. Also, without an
//! emulator: the boot plan runs every attack exactly once, in layouts that
//! validate and fit the cores given.

use e2e::matrix::{render_markdown, ROGUE_MATRIX};
use std::collections::BTreeSet;

#[test]
fn the_threat_model_carries_the_generated_matrix() {
    e2e::assert_generated_section("docs/threat-model.md", "rogue-matrix", &render_markdown());
}

#[test]
fn the_matrix_and_the_layout_catalog_list_the_same_attacks() {
    let matrix: Vec<&str> = ROGUE_MATRIX.iter().map(|a| a.name).collect();
    let catalog = partition_config::catalog::ROGUE_ATTACKS;
    assert_eq!(matrix, catalog, "same attacks, same order");
    let distinct: BTreeSet<&str> = matrix.iter().copied().collect();
    assert_eq!(distinct.len(), matrix.len(), "attack names are distinct");
    assert!(matrix.len() >= 40, "the issue asks for at least 40 attacks");
}

#[test]
fn every_attack_is_planned_once_in_valid_layouts() {
    use e2e::matrix::{plan_boots, Backend};
    let all: Vec<_> = ROGUE_MATRIX.iter().collect();
    for backend in [Backend::Svm, Backend::Vmx] {
        for (max_cpus, solo) in [(12, false), (10, false), (12, true)] {
            let boots = plan_boots(&all, max_cpus, solo);
            let mut planned: Vec<&str> = boots.iter().flat_map(|b| b.names()).collect();
            planned.sort_unstable();
            let mut expected: Vec<&str> = ROGUE_MATRIX.iter().map(|a| a.name).collect();
            expected.sort_unstable();
            assert_eq!(planned, expected, "{max_cpus} cores, solo {solo}");
            for (i, boot) in boots.iter().enumerate() {
                // Panics with the diagnostics if the layout is invalid.
                let layout = e2e::layout(&boot.layout_toml(backend), &format!("boot-{i}.toml"));
                assert!(
                    usize::from(layout.machine.cpus) <= max_cpus,
                    "boot {i} ({:?}) needs {} cores",
                    boot.names(),
                    layout.machine.cpus
                );
                if solo {
                    assert_eq!(boot.names().len(), 1);
                }
            }
        }
    }
}
