//! Tidy checks over the source tree, so rules that exist in STYLE.md do not
//! live only in prose: every Rust file begins with a `//!` module doc, no
//! `static mut` anywhere, and `unsafe` only where the trust boundary allows
//! it (the machine layers, the channel region core, the build scripts'
//! absence of it).

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name == "target" || name == "fuzz" || name.starts_with('.') {
                continue;
            }
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(PathBuf, String)> {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in [
        "abi",
        "channels",
        "partition-config",
        "replication",
        "hypervisor",
        "guest-kernel",
        "tools",
        "tests",
    ] {
        rust_files(&root.join(krate), &mut files);
    }
    assert!(
        files.len() > 50,
        "found only {} Rust files under {}",
        files.len(),
        root.display()
    );
    files
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.strip_prefix(&root).unwrap_or(&p).to_path_buf(), text)
        })
        .collect()
}

#[test]
fn every_rust_file_begins_with_a_module_doc() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| {
            !text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` module doc: {missing:#?}"
    );
}

#[test]
fn no_static_mut() {
    // A `static mut` item, not a `&'static mut` reference.
    let needle = ["static", " mut "].concat();
    let reference = ["'", &needle].concat();
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(p, _)| !p.ends_with("tidy.rs"))
        .filter(|(_, text)| {
            text.lines().any(|l| {
                !l.trim_start().starts_with("//") && l.contains(&needle) && !l.contains(&reference)
            })
        })
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "`static mut` in: {offenders:#?}");
}

#[test]
fn unsafe_stays_inside_the_trust_boundary() {
    let allowed = |p: &Path| {
        let s = p.to_string_lossy();
        s.starts_with("hypervisor/src/arch/")
            || s.starts_with("guest-kernel/src/arch/")
            || s == "channels/src/region.rs"
            || s.contains("/tests/")
            || s.contains("/benches/")
    };
    let keyword = ["uns", "afe "].concat();
    let block = ["uns", "afe {"].concat();
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(p, _)| !allowed(p))
        .filter(|(_, text)| {
            text.lines().any(|l| {
                let code = l.split("//").next().unwrap_or("");
                code.contains(&block)
                    || code.contains(&(keyword.clone() + "fn"))
                    || code.contains(&(keyword.clone() + "impl"))
            })
        })
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "`unsafe` outside the machine layers: {offenders:#?}"
    );
}
