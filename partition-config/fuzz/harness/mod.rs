//! The bodies of the partition-config fuzz targets, as plain functions over bytes: the cargo-fuzz
//! targets (`fuzz_targets/`) call them, and so does the corpus replay test of the main workspace
//! (`partition-config/tests/fuzz_corpus.rs`, stable, part of `cargo test`), which includes this
//! file with `#[path]`.

use partition_config::manifest::fnv1a64;
use partition_config::{parse_str, Manifest};

/// Decodes `bytes` as a manifest; on success walks every accessor and checks the invariants the
/// decoder promises (`docs/manifest.md`).
fn walk(bytes: &[u8]) {
    let Ok(m) = Manifest::decode(bytes) else {
        return;
    };
    let machine = m.machine();
    assert!(machine.cpus >= 1 && m.partition_count() >= 1);
    assert!(m.len() <= bytes.len());
    for k in m.kernels() {
        assert!(!k.name.is_empty());
    }
    for p in m.partitions() {
        assert!(p.cpu < machine.cpus);
        assert!(usize::from(p.kernel) < m.kernel_count());
        assert!(p
            .host_base
            .checked_add(p.memory_size)
            .is_some_and(|end| end <= machine.memory));
        for a in p.args() {
            let _ = p.arg(a.key);
        }
        let _ = p.ports().count();
        let _ = p.owns_port(0x3f8);
        for c in m.channels_of(p.index) {
            assert!(c.peer_of(p.index).is_some());
            assert!(c.vector_for(p.index).is_some());
        }
        assert_eq!(m.partition_on_cpu(p.cpu).map(|q| q.index), Some(p.index));
        assert_eq!(m.partition_by_name(p.name).map(|q| q.index), Some(p.index));
    }
    for c in m.channels() {
        assert_ne!(c.partition_a, c.partition_b);
        assert!(m.channel_between(c.partition_a, c.partition_b).is_some());
    }
    for g in m.groups() {
        assert!(g.member_count() >= 2);
        for (id, p) in g.members().enumerate() {
            assert!(usize::from(p) < m.partition_count());
            assert_eq!(g.member_id_of(p).map(usize::from), Some(id));
        }
        for l in g.links() {
            let c = m
                .channel(usize::from(l.channel))
                .expect("a group link names a channel");
            let (a, b) = (g.member(l.a), g.member(l.b));
            assert!(a.is_some() && b.is_some() && c.peer_of(a.unwrap_or(0)) == b);
        }
    }
}

/// `manifest_decode`: the no_std manifest decoder over arbitrary bytes must return an error or a
/// manifest whose every accessor works, and never panic or read out of bounds. Each input is tried
/// twice: as given, and with its checksum fixed up, so the structural checks behind the checksum
/// are reached.
pub fn manifest_decode(data: &[u8]) {
    walk(data);
    if data.len() >= 32 {
        let total = u32::from_le_bytes([data[24], data[25], data[26], data[27]]) as usize;
        if total >= 24 && total <= data.len() {
            let mut fixed = data.to_vec();
            let sum = fnv1a64(&fixed[24..total]);
            fixed[16..24].copy_from_slice(&sum.to_le_bytes());
            walk(&fixed);
        }
    }
}

/// `toml_front_end`: any text must be accepted or rejected with diagnostics, never panic; an
/// accepted layout must encode to a manifest the decoder accepts and that agrees with the layout;
/// every diagnostic of a rejected one has a location.
pub fn toml_front_end(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match parse_str(source, "fuzz.toml") {
        Ok(layout) => {
            let bytes = layout.encode_manifest();
            let m = match Manifest::decode(&bytes) {
                Ok(m) => m,
                Err(e) => panic!("a valid layout encoded to an invalid manifest: {e}"),
            };
            assert_eq!(m.partition_count(), layout.partitions.len());
            assert_eq!(m.channel_count(), layout.channels.len());
            for (p, q) in layout.partitions.iter().zip(m.partitions()) {
                assert_eq!(p.name, q.name);
                assert_eq!(p.region.base, q.host_base);
                assert_eq!(p.args.len(), q.args().count());
            }
            let _ = layout.explain();
        }
        Err(d) => {
            assert!(!d.is_empty());
            for diag in d.iter() {
                assert!(d.location(diag).is_some());
            }
            let _ = d.render_plain();
        }
    }
}
