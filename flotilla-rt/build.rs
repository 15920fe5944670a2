//! Puts the runtime's linker script (`link.ld`: the image at 1 MiB
//! guest-physical, the PVH note, the boot sections) where the linker of a
//! dependent binary finds it: the workload's own build script passes
//! `-Tflotilla-rt.ld` (see `docs/guest-sdk.md`).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rerun-if-changed=link.ld");
    std::fs::copy(format!("{dir}/link.ld"), format!("{out}/flotilla-rt.ld"))
        .expect("copying link.ld to OUT_DIR");
    println!("cargo:rustc-link-search=native={out}");
}
