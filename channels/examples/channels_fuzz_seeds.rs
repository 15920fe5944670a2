//! Writes the named seeds of the `receiver` fuzz target (`fuzz/seeds/receiver/`): small programs
//! in the target's command language (`fuzz/harness/mod.rs`) that exercise each operation, on
//! clean and scribbled regions. Run with `cargo run -p channels --example channels_fuzz_seeds`; the
//! replay test `tests/fuzz_corpus.rs` runs the fuzz body over every seed.

use std::path::Path;

/// Side A sends / B receives (bit 7 clear), or the reverse (bit 7 set).
const B: u8 = 0x80;

fn word(i: u16, v: u64) -> Vec<u8> {
    let mut out = vec![0x00];
    out.extend_from_slice(&i.to_le_bytes());
    out.extend_from_slice(&v.to_le_bytes());
    out
}

fn run(i: u16, values: &[u64]) -> Vec<u8> {
    let mut out = vec![0x01];
    out.extend_from_slice(&i.to_le_bytes());
    out.push(values.len() as u8);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn main() {
    let every_receive = [0x04, 0x05, 0x06, 8, 0x07, 0x08];
    let seeds: Vec<(&str, Vec<Vec<u8>>)> = vec![
        // Ring size byte first (slots = 2 << (b % 5)), then commands.
        (
            "ping-pong",
            vec![
                vec![1],
                vec![0x02, 10, 0x04],
                vec![B | 0x02, 20, B | 0x04],
                vec![0x03, 56, 0x05],
                vec![B | 0x03, 0, B | 0x05],
            ],
        ),
        (
            "fill-and-drain",
            vec![
                vec![0],
                [0x02, 56].repeat(5),
                vec![0x04; 5],
                vec![0x0a, 1, 2],
            ],
        ),
        (
            "batches",
            vec![
                vec![2],
                vec![0x0b, 0x0b, 0x06, 8, B | 0x0b, B | 0x06, 1, B | 0x06, 255],
            ],
        ),
        (
            "slots",
            vec![
                vec![3],
                vec![0x0c, 3, 24, 0x07, 0x0c, 8, 57, 0x07, 0x0c, 0, 0, 0x07],
            ],
        ),
        (
            "wait-and-kick",
            vec![vec![4], vec![0x09, 0x02, 5, 0x09, 0x04, B | 0x09]],
        ),
        (
            "ack-and-hot-slots",
            vec![
                vec![1],
                vec![0x0a, 0, 0, 0x02, 1, 0x0a, 255, 8, 0x04, 0x0a, 3, 4],
            ],
        ),
        (
            "typed-and-words",
            vec![vec![1], vec![0x02, 16, 0x08, 0x02, 56, 0x08, 0x02, 3, 0x08]],
        ),
        (
            "identity-scribbled",
            vec![
                vec![1],
                word(0, u64::MAX),
                word(1, 0),
                vec![0x0d],
                vec![0x02, 5, 0x04],
            ],
        ),
        (
            "control-scribbled",
            vec![
                vec![1],
                vec![0x02, 5, 0x02, 6],
                word(8, u64::MAX),
                word(9, 1 << 40),
                every_receive.to_vec(),
            ],
        ),
        (
            "ring-scribbled",
            vec![
                vec![2],
                vec![0x02, 7],
                run(24, &[u64::MAX, 57, 1 << 63, 0, 0xdead_beef, 64, 56, 1]),
                every_receive.to_vec(),
                vec![B | 0x02, 1],
                run(40, &[0x0101_0101_0101_0101; 16]),
                [B | 0x04, B | 0x06, 4, B | 0x07].to_vec(),
            ],
        ),
        (
            "reopen-after-traffic",
            vec![
                vec![0],
                vec![0x02, 9, 0x04, 0x0d, B | 0x02, 9, B | 0x04, 0x0d, 0x0e],
            ],
        ),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/receiver");
    std::fs::create_dir_all(&dir).expect("seed directory");
    for (name, parts) in seeds {
        std::fs::write(dir.join(format!("{name}.bin")), parts.concat()).expect("seed written");
    }
}
