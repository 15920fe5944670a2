//! Writes seed inputs for the fuzz targets: the example and corpus layouts
//! (for `toml_front_end`) and their encoded manifests (for
//! `manifest_decode`), and a few damaged manifests. Run with
//! `cargo run -p partition-config --example partition_config_fuzz_seeds`; the replay test
//! `tests/fuzz_corpus.rs` runs the fuzz bodies over them.

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let toml_dir = crate_dir.join("fuzz/seeds/toml_front_end");
    let manifest_dir = crate_dir.join("fuzz/seeds/manifest_decode");
    fs::create_dir_all(&toml_dir)?;
    fs::create_dir_all(&manifest_dir)?;
    let sources = [
        crate_dir.join("../examples"),
        crate_dir.join("tests/corpus/valid"),
        crate_dir.join("tests/corpus/invalid"),
    ];
    for dir in sources {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text = fs::read_to_string(&path)?;
            fs::write(toml_dir.join(format!("{stem}.toml")), &text)?;
            if let Ok(layout) = partition_config::parse_str(&text, &path.to_string_lossy()) {
                let bytes = layout.encode_manifest();
                fs::write(manifest_dir.join(format!("{stem}.bin")), &bytes)?;
                if stem == "default" {
                    // Damaged copies: cut short, a flipped body byte (the target also retries
                    // it with the checksum fixed, reaching the structural checks), a length
                    // past the end.
                    fs::write(
                        manifest_dir.join("truncated.bin"),
                        &bytes[..bytes.len() / 2],
                    )?;
                    let mut flipped = bytes.clone();
                    if let Some(b) = flipped.get_mut(40) {
                        *b ^= 0xff;
                    }
                    fs::write(manifest_dir.join("flipped.bin"), &flipped)?;
                    let mut long = bytes.clone();
                    long[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
                    fs::write(manifest_dir.join("length-past-end.bin"), &long)?;
                }
            }
        }
    }
    Ok(())
}
