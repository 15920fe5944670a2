//! Any PVH kernel that follows the boot protocol can run in a partition:
//! a layout names the kernel by path (`kernel = "path/to/elf"`), tools
//! flatten it into the boot bundle, and the hypervisor loads it like the
//! built-in one. Here the path is a copy of the guest kernel's ELF, next to
//! the layout, so the kernel table holds two kernels (built-in and path)
//! and both boot side by side.

use e2e::{assert_passed, assert_result, boot_layout, images, layout, layout_config, primes_below};

#[test]
fn a_kernel_given_by_path_boots_next_to_the_built_in_one() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let elf = dir.path().join("my-kernel.elf");
    std::fs::copy(&images().guest_kernel, &elf).expect("copy the guest kernel ELF");
    let toml = r#"
[machine]
cpus = 2
memory = "256 MiB"
timeout = 60

[[partition]]
name = "builtin"
cpu = 0
memory = "16 MiB"
workload = "hello"

[[partition]]
name = "custom"
cpu = 1
memory = "16 MiB"
kernel = "my-kernel.elf"
workload = "compute"
args = { n = 100000 }
"#;
    // Paths resolve against the layout file's directory.
    let layout = layout(toml, &dir.path().join("layout.toml").to_string_lossy());
    assert_eq!(layout.kernels.len(), 2, "built-in + one ELF by path");
    let outcome = boot_layout(&layout_config(layout));
    assert_passed(&outcome);
    assert_result(&outcome, "custom", "primes", primes_below(100_000));
}
