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

const HEADER: usize = 96;
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
            needed: 96,
            available: 0
        })
    );
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(decode(&bad), Err(DecodeError::BadMagic));
    // Version 1 (before groups) is no longer read.
    assert_eq!(
        decode(&patch(bytes.clone(), 8, &1u16.to_le_bytes())),
        Err(DecodeError::UnsupportedVersion(1))
    );
    assert!(matches!(
        decode(&patch(bytes.clone(), 10, &80u16.to_le_bytes())),
        Err(DecodeError::BadHeader(_))
    ));
    // The header's reserved bytes.
    assert!(matches!(
        decode(&patch(bytes.clone(), 95, &[1])),
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
    // on_fault: unknown policy; restarts under stop; restart without
    // restarts or with too many.
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 100, &[2])),
        1
    ));
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 101, &[1])),
        1
    ));
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 100, &[1, 0])),
        1
    ));
    assert!(is_partition(
        decode(&patch(bytes.clone(), b + 100, &[1, 17])),
        1
    ));
    let restart = Manifest::decode(&patch(bytes.clone(), b + 100, &[1, 16]))
        .map(|m| m.partition(1).map(|p| (p.on_fault, p.max_restarts)));
    assert_eq!(
        restart,
        Ok(Some((partition_config::manifest::OnFault::Restart, 16)))
    );
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

/// Three partitions in a line `a - b - c` (plus a channel `a - d` to a
/// non-member), group `g` over `a`, `b`, `c`.
const GROUPED: &str = r#"
[machine]
cpus = 4
memory = "256 MiB"

[defaults]
memory = "16 MiB"
workload = "pingpong"

[[partition]]
name = "a"
cpu = 0

[[partition]]
name = "b"
cpu = 1

[[partition]]
name = "c"
cpu = 2

[[partition]]
name = "d"
cpu = 3

[[channel]]
between = ["a", "b"]

[[channel]]
between = ["a", "d"]

[[channel]]
between = ["c", "b"]

[[group]]
name = "g"
members = ["c", "a", "b"]
"#;

const GROUP: usize = 64;

fn grouped() -> Vec<u8> {
    parse_str(GROUPED, "grouped.toml")
        .expect("valid")
        .encode_manifest()
}

fn field_u32(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize
}

#[test]
fn groups_decode() {
    let bytes = grouped();
    let m = Manifest::decode(&bytes).expect("valid");
    assert_eq!(m.group_count(), 1);
    let g = m.group(0).expect("group 0");
    assert_eq!(g.name, "g");
    assert_eq!(g.members().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!((g.member(2), g.member(3)), (Some(2), None));
    assert_eq!((g.member_id_of(1), g.member_id_of(3)), (Some(1), None));
    assert_eq!(g.member_id_of(200), None);
    let links: Vec<_> = g.links().map(|l| (l.channel, l.a, l.b)).collect();
    assert_eq!(links, [(0, 0, 1), (2, 1, 2)]);
    assert_eq!(m.groups_of(2).count(), 1);
    assert_eq!(m.groups_of(3).count(), 0);
}

#[test]
fn group_errors() {
    let bytes = grouped();
    let groups = field_u32(&bytes, 80);
    let links = field_u32(&bytes, 84);
    assert_eq!(links, groups + GROUP);
    let is_group =
        |r: Result<(), DecodeError>| matches!(r, Err(DecodeError::BadGroup { index: 0, .. }));
    // Name invalid; id differs from its index; reserved byte set.
    assert!(is_group(decode(&patch(bytes.clone(), groups, b"G"))));
    assert!(is_group(decode(&patch(
        bytes.clone(),
        groups + 32,
        &1u16.to_le_bytes()
    ))));
    assert!(is_group(decode(&patch(bytes.clone(), groups + 63, &[1]))));
    // member_count disagreeing with the set; a member that is no partition;
    // d added (no link reaches it: disconnected, and the member ids shift).
    assert!(is_group(decode(&patch(
        bytes.clone(),
        groups + 34,
        &4u16.to_le_bytes()
    ))));
    let with = |set: u64, count: u16| {
        let b = patch(bytes.clone(), groups + 40, &set.to_le_bytes());
        patch(b, groups + 34, &count.to_le_bytes())
    };
    assert!(is_group(decode(&with(0b1_0111, 4))));
    assert!(is_group(decode(&with(0b1111, 4))));
    // A group of one.
    assert!(is_group(decode(&with(0b0001, 1))));
    // Links: first not 0, count short of the channels among members (c-b
    // missing), past the table.
    assert!(is_group(decode(&patch(
        bytes.clone(),
        groups + 36,
        &1u16.to_le_bytes()
    ))));
    assert!(is_group(decode(&patch(
        bytes.clone(),
        groups + 38,
        &1u16.to_le_bytes()
    ))));
    assert!(is_group(decode(&patch(
        bytes.clone(),
        groups + 38,
        &3u16.to_le_bytes()
    ))));
    // A link naming the a-d channel; an unknown channel; members reversed;
    // members that the channel does not connect; both links the same.
    assert!(is_group(decode(&patch(
        bytes.clone(),
        links,
        &1u16.to_le_bytes()
    ))));
    assert!(is_group(decode(&patch(
        bytes.clone(),
        links,
        &9u16.to_le_bytes()
    ))));
    assert!(is_group(decode(&patch(bytes.clone(), links + 2, &[1, 0]))));
    assert!(is_group(decode(&patch(bytes.clone(), links + 2, &[0, 2]))));
    assert!(is_group(decode(&patch(
        bytes.clone(),
        links + 4,
        &[0, 0, 0, 1]
    ))));
    // group_count past the table; group_link_count with links no group owns.
    assert!(matches!(
        decode(&patch(bytes.clone(), 60, &2u16.to_le_bytes())),
        Err(DecodeError::BadTable(_))
    ));
    assert!(matches!(
        decode(&patch(bytes.clone(), 60, &17u16.to_le_bytes())),
        Err(DecodeError::BadTable(_))
    ));
}

#[test]
fn a_disconnected_group_is_refused() {
    // Channel 2 (c - b) is moved to b - d, leaving c linked to no member;
    // the group keeps its one remaining link (a - b), so the links are
    // exactly the channels among members, but c cannot be reached.
    let bytes = grouped();
    let channels = field_u32(&bytes, 40);
    let groups = field_u32(&bytes, 80);
    let ch2 = channels + 2 * CHANNEL;
    assert_eq!(
        &bytes[ch2 + 2..ch2 + 6],
        &[2, 0, 1, 0],
        "channel 2 is c - b"
    );
    let b = patch(bytes.clone(), ch2 + 2, &3u16.to_le_bytes());
    let b = patch(b, groups + 38, &1u16.to_le_bytes());
    // The link table loses its second record (the gap before the string
    // table is allowed).
    let b = patch(b, 62, &1u16.to_le_bytes());
    assert!(
        matches!(
            decode(&b),
            Err(DecodeError::BadGroup { index: 0, problem }) if problem.contains("connected")
        ),
        "{:?}",
        decode(&b)
    );
}

/// A compat partition with a command line and an initrd beside a built-in
/// one (paths relative to the crate directory, the tests' working directory).
const COMPAT: &str = r#"
[machine]
cpus = 2
memory = "256 MiB"

[[partition]]
name = "linux"
cpu = 0
memory = "64 MiB"
kernel = "tests/corpus/kernels/tiny.elf"
compat = "linux"
cmdline = "console=ttyS0"
initrd = "tests/corpus/kernels/tiny.cpio"
workload = "linux"

[[partition]]
name = "b"
cpu = 1
memory = "16 MiB"
workload = "hello"
"#;

#[test]
fn compat_cmdline_and_initrd_round_trip_and_are_checked() {
    use partition_config::manifest::Compat;
    let bytes = parse_str(COMPAT, "compat.toml")
        .expect("valid")
        .encode_manifest();
    let m = Manifest::decode(&bytes).expect("valid");
    let linux = m.partition_by_name("linux").expect("linux");
    assert_eq!(linux.compat, Compat::Linux);
    assert_eq!(linux.cmdline, "console=ttyS0");
    assert_eq!(linux.initrd, Some("tests/corpus/kernels/tiny.cpio"));
    let b = m.partition_by_name("b").expect("b");
    assert_eq!((b.compat, b.cmdline, b.initrd), (Compat::None, "", None));

    let is_partition = |r: Result<(), DecodeError>, i: u16| matches!(r, Err(DecodeError::BadPartition { index, .. }) if index == i);
    let p0 = HEADER;
    let p1 = HEADER + PARTITION;
    // An unknown compat byte; the reserved byte beside it; the last
    // reserved bytes.
    assert!(is_partition(
        decode(&patch(bytes.clone(), p0 + 102, &[2])),
        0
    ));
    assert!(is_partition(
        decode(&patch(bytes.clone(), p0 + 103, &[1])),
        0
    ));
    assert!(is_partition(
        decode(&patch(bytes.clone(), p0 + 127, &[1])),
        0
    ));
    // The command line out of bounds, too long, or with a control byte.
    assert!(is_partition(
        decode(&patch(bytes.clone(), p0 + 104, &u32::MAX.to_le_bytes())),
        0
    ));
    let cmdline_at = field_u32(&bytes, 52) + field_u32(&bytes, p0 + 104);
    assert!(is_partition(
        decode(&patch(bytes.clone(), cmdline_at, b"\n")),
        0
    ));
    // The initrd name past the string table.
    assert!(is_partition(
        decode(&patch(bytes.clone(), p0 + 116, &u32::MAX.to_le_bytes())),
        0
    ));
    // compat, a command line or an initrd on the built-in kernel.
    assert!(is_partition(
        decode(&patch(bytes.clone(), p1 + 102, &[1])),
        1
    ));
    let cmdline = patch(
        bytes.clone(),
        p1 + 104,
        &field_u32(&bytes, p0 + 104).to_le_bytes(),
    );
    assert!(is_partition(
        decode(&patch(cmdline, p1 + 108, &4u32.to_le_bytes())),
        1
    ));
    let initrd = patch(
        bytes.clone(),
        p1 + 112,
        &field_u32(&bytes, p0 + 112).to_le_bytes(),
    );
    assert!(is_partition(
        decode(&patch(initrd, p1 + 116, &4u32.to_le_bytes())),
        1
    ));
}
