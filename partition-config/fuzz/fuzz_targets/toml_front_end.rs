//! Fuzzes the TOML front end: any text must be accepted or rejected with
//! diagnostics, never panic; an accepted layout must encode to a manifest
//! the decoder accepts and that agrees with the layout.
#![no_main]

use libfuzzer_sys::fuzz_target;
use partition_config::{parse_str, Manifest};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
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
});
