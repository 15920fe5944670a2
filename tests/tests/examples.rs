//! Every layout in `examples/` boots under QEMU TCG: the hypervisor
//! announces each partition it decoded, on its core, and every partition
//! exits with code 0. `linux.toml` boots a kernel and initramfs the user
//! puts next to it: `tests/tests/linux.rs` boots it with the ones
//! `ci/setup.sh` fetched.

use e2e::{
    assert_passed, assert_plan_printed, boot_layout, examples_dir, layout_config, layout_file,
};

#[test]
fn every_example_boots_and_every_partition_exits_0() {
    let mut examples: Vec<_> = std::fs::read_dir(examples_dir())
        .expect("examples/ is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .filter(|path| !path.ends_with("linux.toml"))
        .collect();
    examples.sort();
    assert!(
        examples.len() >= 3,
        "expected at least default, single and eight in examples/, found {examples:?}"
    );
    for path in &examples {
        let layout = layout_file(path);
        eprintln!("e2e: booting {}", path.display());
        let outcome = boot_layout(&layout_config(layout.clone()));
        assert_plan_printed(&outcome, &layout);
        assert_passed(&outcome);
        assert_eq!(outcome.report.partitions.len(), layout.partitions.len());
    }
}
