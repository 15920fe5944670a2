//! Snapshot tests over the layout corpus: every file in `corpus/valid` must
//! be accepted (its `explain` output, its warnings if any, and the manifest
//! summary are snapshotted),
//! every file in `corpus/invalid` must be rejected with exactly the
//! diagnostics in its snapshot.

use std::fmt::Write as _;
use std::path::Path;

use partition_config::{parse_str, parse_str_with_warnings, Manifest};

/// The path relative to the crate directory (the tests' working directory),
/// so snapshots do not depend on where the checkout is.
fn display_name(path: &Path) -> String {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(crate_dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

fn manifest_summary(bytes: &[u8]) -> String {
    let m = Manifest::decode(bytes).expect("encoder output decodes");
    let mut out = String::new();
    let machine = m.machine();
    let _ = writeln!(
        out,
        "manifest v{}: {} bytes, checksum {:#018x}",
        m.version(),
        m.len(),
        m.checksum()
    );
    let _ = writeln!(
        out,
        "machine: cpus={} memory={:#x} timeout={}s",
        machine.cpus, machine.memory, machine.timeout_secs
    );
    for k in m.kernels() {
        let _ = writeln!(out, "kernel {}: {:?} {}", k.index, k.kind, k.name);
    }
    for p in m.partitions() {
        let args: Vec<String> = p
            .args()
            .map(|a| format!("{}={:?}", a.key, a.value))
            .collect();
        let ports: Vec<String> = p.ports().map(|(a, b)| format!("{a:#x}-{b:#x}")).collect();
        let _ = writeln!(
            out,
            "partition {} {:?}: cpu={} kernel={} base={:#x} size={:#x} workload={} args=[{}] ports=[{}] on_fault={:?}/{}",
            p.index, p.name, p.cpu, p.kernel, p.host_base, p.memory_size, p.workload, args.join(", "), ports.join(", "),
            p.on_fault, p.max_restarts
        );
        if p.compat.is_compat() || !p.cmdline.is_empty() || p.initrd.is_some() {
            let _ = writeln!(
                out,
                "  compat={:?} cmdline={:?} initrd={:?}",
                p.compat, p.cmdline, p.initrd
            );
        }
    }
    for g in m.groups() {
        let members: Vec<String> = g.members().map(|p| p.to_string()).collect();
        let links: Vec<String> = g
            .links()
            .map(|l| format!("{}-{}@{}", l.a, l.b, l.channel))
            .collect();
        let _ = writeln!(
            out,
            "group {} {:?}: members=[{}] links=[{}]",
            g.index,
            g.name,
            members.join(", "),
            links.join(", ")
        );
    }
    for c in m.channels() {
        let _ = writeln!(
            out,
            "channel {}: {}<->{} {:?} slots={} base={:#x} size={:#x} vectors={:#x}/{:#x}",
            c.index,
            c.partition_a,
            c.partition_b,
            c.notify,
            c.slots,
            c.host_base,
            c.size,
            c.vector_a,
            c.vector_b
        );
    }
    out
}

#[test]
fn valid_layouts() {
    insta::glob!("corpus/valid/*.toml", |path| {
        let source = std::fs::read_to_string(path).expect("readable corpus file");
        let name = display_name(path);
        let (layout, warnings) = match parse_str_with_warnings(&source, &name) {
            Ok(ok) => ok,
            Err(d) => panic!("{name} should be valid:\n{}", d.render_plain()),
        };
        assert_eq!(warnings.error_count(), 0);
        let bytes = layout.encode_manifest();
        let mut snapshot = format!("{}\n{}", layout.explain(), manifest_summary(&bytes));
        if !warnings.is_empty() {
            for w in warnings.iter() {
                assert!(
                    warnings.location(w).is_some(),
                    "{name}: warning without a location: {w:?}"
                );
            }
            snapshot = format!("{snapshot}\nwarnings:\n{}", warnings.render_plain());
        }
        insta::assert_snapshot!(snapshot);
    });
}

#[test]
fn invalid_layouts() {
    insta::glob!("corpus/invalid/*.toml", |path| {
        let source = std::fs::read_to_string(path).expect("readable corpus file");
        let name = display_name(path);
        match parse_str(&source, &name) {
            Ok(_) => panic!("{name} should be rejected"),
            Err(d) => {
                assert!(!d.is_empty());
                for diag in d.iter() {
                    assert!(
                        d.location(diag).is_some(),
                        "{name}: diagnostic without a location: {diag:?}"
                    );
                    assert!(
                        diag.help.is_some() || !diag.notes.is_empty(),
                        "{name}: no help for {diag:?}"
                    );
                }
                insta::assert_snapshot!(d.render_plain());
            }
        }
    });
}

#[test]
fn examples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("examples directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            seen += 1;
            if let Err(d) = partition_config::load(&path) {
                // linux.toml boots a kernel and initramfs the user puts next
                // to it (tests/tests/linux.rs runs it with them in place):
                // their absence is all that may be wrong with it here.
                let absent = |code: &str| ["kernel-not-found", "initrd-not-found"].contains(&code);
                let only_absent = path.ends_with("linux.toml") && d.iter().all(|x| absent(x.code));
                if !only_absent {
                    panic!("{} is invalid:\n{}", path.display(), d.render_plain());
                }
            }
        }
    }
    assert!(seen >= 3);
    let default = partition_config::Layout::default_layout().expect("default layout valid");
    assert_eq!(default.partitions.len(), 4);
    let cpus: Vec<u16> = default.partitions.iter().map(|p| p.cpu).collect();
    assert_eq!(cpus, [0, 1, 2, 3]);
}
