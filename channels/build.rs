//! Declares the `loom` cfg so `RUSTFLAGS="--cfg loom"` builds (see `loom.sh`) do not warn.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
