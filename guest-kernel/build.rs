//! Links the bare-metal guest kernel with the runtime's linker script
//! (`flotilla-rt.ld`, which `flotilla-rt`'s build script puts on the
//! library path: the image at 1 MiB guest-physical); host builds (unit
//! tests) link normally.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-Tflotilla-rt.ld");
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=0x1000");
    }
}
