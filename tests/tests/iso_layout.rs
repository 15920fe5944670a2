//! A layout booted the way hardware boots it: GRUB (multiboot2) with the
//! boot bundle as a module, under QEMU with SeaBIOS and with OVMF (UEFI).
//! The firmware's memory map differs from PVH's (UEFI reserves more at the
//! top of RAM), so placement and the hypervisor's re-check meet real maps.

use e2e::{
    assert_passed, assert_result, boot_layout, examples_dir, layout_config, layout_file,
    primes_below,
};
use tools::layout_run::LayoutBoot;
use tools::runner::Firmware;

fn default_layout_via(firmware: Firmware) {
    let layout = layout_file(&examples_dir().join("default.toml"));
    let mut config = layout_config(layout);
    config.boot = LayoutBoot::Iso(firmware);
    let outcome = boot_layout(&config);
    assert_passed(&outcome);
    assert_eq!(outcome.report.backend, "svm");
    assert_result(&outcome, "compute", "primes", primes_below(200_000));
    assert_result(&outcome, "ping", "rounds", 10_000);
}

#[test]
fn default_layout_from_the_iso_with_bios() {
    default_layout_via(Firmware::Bios);
}

#[test]
fn default_layout_from_the_iso_with_uefi() {
    default_layout_via(Firmware::Uefi);
}
