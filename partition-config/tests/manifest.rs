//! Decoder tests on hand-corrupted manifests: each field the decoder checks
//! is broken in turn (with the checksum fixed up, so the check behind it is
//! reached) and must be reported as the right error.

use partition_config::manifest::{fnv1a64, DecodeError, RegionKind};
use partition_config::{parse_str, Manifest};

const TWO: &str = r#"
[machine]
cpus = 2
memory = "256 MiB"

[[partition]]
name = "a"
cpu = 0
memory = "16 MiB"
workload = "pingpong"
ports = ["0x2f8-0x2ff"]

[[partition]]
name = "b"
cpu = 1
memory = "16 MiB"
workload = "pingpong"

[[channel]]
between = ["a", "b"]
"#;

const HEADER: usize = 80;
const PARTITION: usize = 128;
const CHANNEL: usize = 32;

fn manifest() -> Vec<u8> {
    parse_str(TWO, "two.toml").expect("valid").encode_manifest()
}

/// Writes `value` at `offset` and fixes the checksum up.
fn patch(mut bytes: Vec<u8>, offset: usize, value: &[u8]) -> Vec<u8> {
    bytes[offset..offset + value.len()].copy_from_slice(value);
    let sum = fnv1a64(&bytes[24..]);
    bytes[16..24].copy_from_slice(&sum.to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Result<(), DecodeError> {
    Manifest::decode(bytes).map(|_| ())
}

#[test]
fn valid_manifest_and_accessors() {
    let bytes = manifest();
    let m = Manifest::decode(&bytes).expect("valid");
    let a = m.partition_by_name("a").expect("a");
    assert!(a.owns_port(0x2f8) && a.owns_port(0x2ff) && !a.owns_port(0x300));
    assert_eq!(
        a.arg("rounds"),
        Some(partition_config::manifest::ArgValue::Integer(10_000))
    );
    let c = m.channel_between(1, 0).expect("channel");
    assert_eq!(
        (c.vector_for(0), c.peer_of(1), c.peer_of(5)),
        (Some(0x40), Some(0), None)
    );
    assert_eq!(m.channels_of(1).count(), 1);
    assert_eq!(m.partition_on_cpu(1).map(|p| p.name), Some("b"));
    // Trailing bytes after total_len are ignored.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0xAA; 7]);
    assert!(decode(&longer).is_ok());
}

#[test]
fn header_errors() {
    let bytes = manifest();
    assert_eq!(
        decode(&[]),
        Err(DecodeError::Truncated {
            needed: 80,
            available: 0
        })
    );
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(decode(&bad), Err(DecodeError::BadMagic));
    assert_eq!(
        decode(&patch(bytes.clone(), 8, &2u16.to_le_bytes())),
        Err(DecodeError::UnsupportedVersion(2))
    );
    assert!(matches!(
        decode(&patch(bytes.clone(), 10, &81u16.to_le_bytes())),
        Err(DecodeError::BadHeader(_))
    ));
    assert!(matches!(
        decode(&patch(bytes.clone(), 12, &1u32.to_le_bytes())),
        Err(DecodeError::BadHeader(_))
    ));
    let mut bad = bytes.clone();
    *bad.last_mut().expect("non-empty") ^= 1;
    assert!(matches!(
        decode(&bad),
        Err(DecodeError::ChecksumMismatch { .. })
    ));
    let long = u32::try_from(bytes.len() + 1).expect("small");
    assert!(matches!(
        decode(&patch(bytes.clone(), 24, &long.to_le_bytes())),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn table_errors() {
    let bytes = manifest();
    // partition_count = 0, and = 3 (past the table).
    assert!(matches!(
        decode(&patch(bytes.clone(), 28, &0u16.to_le_bytes())),
        Err(DecodeError::BadTable(_))
    ));
    assert!(matches!(
        decode(&patch(bytes.clone(), 28, &3u16.to_le_bytes())),
        Err(DecodeError::BadTable(_))
    ));
    // partitions_offset inside the header.
    assert!(matches!(
        decode(&patch(bytes.clone(), 36, &8u32.to_le_bytes())),
        Err(DecodeError::BadTable(_))
    ));
    // strings_len too long.
    assert!(matches!(
        decode(&patch(bytes.clone(), 56, &u32::MAX.to_le_bytes())),
        Err(DecodeError::BadTable(_))
    ));
}

#[test]
fn machine_errors() {
    let bytes = manifest();
    assert!(matches!(
        decode(&patch(bytes.clone(), 64, &0u16.to_le_bytes())),
        Err(DecodeError::BadMachine(_))
    ));
    assert!(matches!(
        decode(&patch(bytes.clone(), 68, &0u32.to_le_bytes())),
        Err(DecodeError::BadMachine(_))
    ));
    let four_gib = 4u64 << 30;
    assert!(matches!(
        decode(&patch(bytes.clone(), 72, &four_gib.to_le_bytes())),
        Err(DecodeError::BadMachine(_))
    ));
}

#[test]
fn partition_errors() {
    let bytes = manifest();
    let b = HEADER + PARTITION;
    let is_partition = |r: Result<(), DecodeError>, i: u16| matches!(r, Err(DecodeError::BadPartition { index, .. }) if index == i);
    // Same cpu as partition 0.
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 66, &0u16.to_le_bytes())),
        1
    ));
    // cpu past machine.cpus.
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 66, &2u16.to_le_bytes())),
        1
    ));
    // Same name as partition 0.
    assert!(is_partition(decode(&patch(bytes.clone(), b, b"a")), 1));
    // Name with a non-NUL byte after the padding starts.
    assert!(is_partition(decode(&patch(bytes.clone(), b + 5, b"x")), 1));
    // Invalid UTF-8 name.
    assert!(is_partition(decode(&patch(bytes.clone(), b, &[0xff])), 1));
    // id differs from the index.
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 64, &7u16.to_le_bytes())),
        1
    ));
    // Kernel index out of range.
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 68, &1u16.to_le_bytes())),
        1
    ));
    // Base inside the hypervisor reserve; size not a 2 MiB multiple.
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 72, &0u64.to_le_bytes())),
        1
    ));
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 80, &4096u64.to_le_bytes())),
        1
    ));
    // Argument count that disagrees with the blob; blob out of bounds.
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 70, &2u16.to_le_bytes())),
        1
    ));
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 92, &u32::MAX.to_le_bytes())),
        1
    ));
    // Reserved byte set.
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 127, &[1])),
        1
    ));
    // Partition 1 moved onto partition 0.
    let a_base = 64u64 << 20;
    assert_eq!(
        decode(&patch(bytes.clone(), b + 72, &a_base.to_le_bytes())),
        Err(DecodeError::Overlap {
            first: RegionKind::Partition(0),
            second: RegionKind::Partition(1)
        })
    );
}

#[test]
fn channel_errors() {
    let bytes = manifest();
    let c = HEADER + 2 * PARTITION;
    let is_channel =
        |r: Result<(), DecodeError>| matches!(r, Err(DecodeError::BadChannel { index: 0, .. }));
    assert!(is_channel(decode(&patch(
        bytes.clone(),
        c + 4,
        &0u16.to_le_bytes()
    )))); // b = a
    assert!(is_channel(decode(&patch(
        bytes.clone(),
        c + 4,
        &9u16.to_le_bytes()
    )))); // b not a partition
    assert!(is_channel(decode(&patch(bytes.clone(), c + 6, &[7])))); // notify kind
    assert!(is_channel(decode(&patch(bytes.clone(), c + 7, &[0x10])))); // exception vector
    assert!(is_channel(decode(&patch(
        bytes.clone(),
        c + 8,
        &48u32.to_le_bytes()
    )))); // slots
    assert!(is_channel(decode(&patch(
        bytes.clone(),
        c + 16,
        &(64u64 << 20 | 1).to_le_bytes()
    )))); // unaligned
    assert!(is_channel(decode(&patch(
        bytes.clone(),
        c + 24,
        &4096u64.to_le_bytes()
    )))); // size
          // Moved onto partition 1.
    let b_base = 80u64 << 20;
    assert_eq!(
        decode(&patch(bytes.clone(), c + 16, &b_base.to_le_bytes())),
        Err(DecodeError::Overlap {
            first: RegionKind::Partition(1),
            second: RegionKind::Channel(0)
        })
    );
    let _ = CHANNEL;
}

#[test]
fn port_errors() {
    let bytes = manifest();
    // Header field `ports_offset` (byte 48): partition a's one range.
    let at = u32::from_le_bytes(bytes[48..52].try_into().expect("4 bytes")) as usize;
    assert_eq!(&bytes[at..at + 4], &[0xf8, 0x02, 0xff, 0x02], "0x2f8-0x2ff");
    assert!(matches!(
        decode(&patch(bytes.clone(), at, &0x300u16.to_le_bytes())),
        Err(DecodeError::BadPortRange { index: 0, .. })
    ));
    // Moved onto the hypervisor's UART, one port of it, and the Bochs
    // shutdown port: each a typed error naming the platform's range.
    for (first, last, owner) in [
        (0x3f8u16, 0x3ffu16, 0x3f8u16),
        (0x3ff, 0x3ff, 0x3f8),
        (0x3f0, 0x3f8, 0x3f8),
        (0x8900, 0x8900, 0x8900),
        (0xcfc, 0xcff, 0xcf8),
    ] {
        let mut range = first.to_le_bytes().to_vec();
        range.extend_from_slice(&last.to_le_bytes());
        match decode(&patch(bytes.clone(), at, &range)) {
            Err(
                e @ DecodeError::PlatformPort {
                    index: 0,
                    range,
                    owner: o,
                },
            ) => {
                assert_eq!((range.first, range.last), (first, last));
                assert_eq!(o.range.first, owner);
                assert!(e.to_string().contains(o.name), "{e}");
            }
            other => panic!("{first:#x}-{last:#x}: {other:?}"),
        }
    }
    // Spare UARTs decode.
    for (first, last) in [(0x2e8u16, 0x2efu16), (0x3e8, 0x3ef)] {
        let mut range = first.to_le_bytes().to_vec();
        range.extend_from_slice(&last.to_le_bytes());
        assert!(decode(&patch(bytes.clone(), at, &range)).is_ok());
    }
}

#[test]
fn errors_display() {
    let e = DecodeError::Overlap {
        first: RegionKind::Partition(0),
        second: RegionKind::Channel(3),
    };
    assert_eq!(
        e.to_string(),
        "partition 0 overlaps channel 3 in host memory"
    );
    assert_eq!(
        DecodeError::BadMagic.to_string(),
        "not a Flotilla manifest (bad magic)"
    );
}
