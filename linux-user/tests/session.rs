//! The program's exchange over ordinary memory: two threads play a Linux
//! partition's part against each other and against a peer written straight
//! against the `channels` crate (the wire format of the built-in
//! `pingpong`: 8-byte little-endian round numbers, echoed), and bad blocks
//! and channels are reported, never trusted.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::AtomicU64;

use abi::boot::{
    name_field, ChannelInfo, FlotillaBlock, Notify, BLOCK_MAGIC, BOOT_PROTOCOL_VERSION,
};
use channels::{region_size, Channel, Region, Side, PAYLOAD_SIZE};
use linux_user::session::{self, PhysMem, SessionError, Summary, MAX_BLOCK};
use linux_user::CHANNEL_EXIT_CODE;
use zerocopy::{FromZeros, IntoBytes};

const BLOCK_GPA: u64 = 0x2000;
const CHANNEL_GPA: u64 = abi::boot::CHANNEL_WINDOW_GPA;
const SLOTS: u32 = 64;

/// Guest memory of one partition: its block, and channel regions shared
/// with the other side's `Fake`.
#[derive(Clone)]
struct Fake {
    block: Vec<u8>,
    regions: HashMap<u64, &'static [AtomicU64]>,
}

impl PhysMem for Fake {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(gpa - BLOCK_GPA).expect("small");
        let bytes = self
            .block
            .get(start..start + buf.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "past the block"))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn map_region(&mut self, gpa: u64, size: u64) -> io::Result<Region<'static>> {
        let words = self
            .regions
            .get(&gpa)
            .filter(|w| w.len() as u64 * 8 == size)
            .ok_or_else(|| io::Error::new(io::ErrorKind::PermissionDenied, "not mapped"))?;
        Ok(mapping(words))
    }
}

/// A formatted channel region of `slots` slots, 64-byte aligned, never freed.
fn region(slots: u32) -> &'static [AtomicU64] {
    let words = region_size(slots) / 8;
    let mem: &'static mut [AtomicU64] =
        Vec::leak((0..words + 8).map(|_| AtomicU64::new(0)).collect());
    let skip = mem.as_ptr().align_offset(64);
    let mem = &mut mem[skip..skip + words];
    Channel::format(Region::from_words(&mut *mem).expect("aligned"), slots).expect("format");
    mem
}

/// One partition's mapping of a shared region. Both partitions map it at once (each thread
/// here plays one), which safe code cannot model: `Region::from_words` takes the words by
/// `&mut`, so one slice backs one live region.
fn mapping(words: &'static [AtomicU64]) -> Region<'static> {
    // SAFETY: the words are leaked (valid and never freed or reused) and 8-byte aligned
    // atomics; `from_raw` re-checks 64-byte alignment and length. Every access to them,
    // through this region or any other user, is an atomic word load or store, and atomics
    // allow shared mutation, so storing through a pointer from a shared reference is fine.
    unsafe { Region::from_raw(words.as_ptr().cast_mut().cast::<u8>(), words.len() * 8) }
        .expect("aligned")
}

fn record(channel_id: u32, side: u32, notify: Notify, peer: &str) -> ChannelInfo {
    ChannelInfo {
        gpa: CHANNEL_GPA + u64::from(channel_id) * 0x10_0000,
        size: region_size(SLOTS) as u64,
        channel_id,
        slots: SLOTS,
        side,
        notify: notify as u32,
        vector: 0x40 + channel_id,
        peer_vector: 0x40 + channel_id,
        peer_apic_id: 1,
        peer_partition: 1,
        peer_name: name_field(peer).expect("short name"),
    }
}

/// A block's bytes, records right after the header, then the argument text.
fn block(name: &str, workload: &str, channels: &[ChannelInfo], args: &str) -> Vec<u8> {
    let header = core::mem::size_of::<FlotillaBlock>();
    let channels_offset = header;
    let args_offset = channels_offset + std::mem::size_of_val(channels);
    let size = args_offset + args.len();
    let h = FlotillaBlock {
        magic: BLOCK_MAGIC,
        version: BOOT_PROTOCOL_VERSION,
        size: size as u32,
        partition_id: 0,
        cpu: 0,
        apic_id: 0,
        partition_count: 2,
        memory: 256 << 20,
        tsc_khz: 2_000_000,
        name: name_field(name).expect("short name"),
        workload: name_field(workload).expect("short name"),
        channel_count: channels.len() as u32,
        channels_offset: channels_offset as u32,
        args_offset: args_offset as u32,
        args_len: args.len() as u32,
        ..FlotillaBlock::new_zeroed()
    };
    let mut bytes = h.as_bytes().to_vec();
    for c in channels {
        bytes.extend_from_slice(c.as_bytes());
    }
    bytes.extend_from_slice(args.as_bytes());
    bytes
}

fn fake(block: Vec<u8>, regions: &[(u64, &'static [AtomicU64])]) -> Fake {
    Fake {
        block,
        regions: regions.iter().copied().collect(),
    }
}

/// Reads the block from the fake memory and runs the exchange; returns the
/// summary and the printed lines.
fn run(mut mem: Fake) -> (Result<Summary, SessionError>, String) {
    let mut out = Vec::new();
    let result =
        session::read_block(&mut mem, BLOCK_GPA).and_then(|b| session::run(&mut mem, &b, &mut out));
    (result, String::from_utf8(out).expect("UTF-8 output"))
}

#[test]
fn two_linux_sides_ping_and_echo_over_one_channel() {
    let r = region(SLOTS);
    let a = record(0, 0, Notify::Poll, "pong-side");
    let b = record(0, 1, Notify::Poll, "ping-side");
    let ping = fake(
        block("ping-side", "pingpong", &[a], "rounds=2000"),
        &[(a.gpa, r)],
    );
    let pong = fake(
        block("pong-side", "pingpong", &[b], "rounds=2000"),
        &[(b.gpa, r)],
    );
    let echo = std::thread::spawn(move || run(pong));
    let (summary, lines) = run(ping);
    let (echoed, echo_lines) = echo.join().expect("echo thread");
    let summary = summary.expect("ping side ran");
    assert_eq!(
        (
            summary.rounds,
            summary.channels,
            summary.broken,
            summary.pinged
        ),
        (2000, 1, 0, 1)
    );
    assert_eq!(summary.exit_code(), 0);
    assert!(summary.median_ns <= summary.p99_ns);
    assert!(
        lines.contains("flotilla-linux: pingpong: 2000 round trips with pong-side: median "),
        "{lines}"
    );
    assert!(
        lines
            .contains("flotilla-linux: result rounds=2000 channels=1 broken_channels=0 median_ns="),
        "{lines}"
    );
    let echoed = echoed.expect("pong side ran");
    assert_eq!(
        (echoed.pinged, echoed.broken, echoed.exit_code()),
        (0, 0, 0)
    );
    assert!(
        echo_lines.contains("flotilla-linux: pingpong: echoed 2000 messages from ping-side"),
        "{echo_lines}"
    );
    assert!(
        echo_lines.ends_with("flotilla-linux: result rounds=2000 channels=1 broken_channels=0\n"),
        "{echo_lines}"
    );
}

/// The built-in kernel's side of the wire, written against `channels`
/// alone: receive 8-byte little-endian words `0..rounds`, echo each.
fn plain_echo(words: &'static [AtomicU64], rounds: u64) -> u64 {
    let mut ch = Channel::open_expecting(mapping(words), SLOTS).expect("open");
    let mut io = ch.duplex(Side::B).expect("side B, once");
    let mut buf = [0u8; PAYLOAD_SIZE];
    for round in 0..rounds {
        let len = loop {
            match io.try_recv(&mut buf) {
                Ok(len) => break len,
                Err(channels::RecvError::Empty) => std::thread::yield_now(),
                Err(e) => panic!("receive: {e}"),
            }
        };
        assert_eq!(len, 8, "one word per message");
        let word = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
        assert_eq!(word, round, "round numbers in order");
        while io.try_send(&word.to_le_bytes()).is_err() {
            std::thread::yield_now();
        }
    }
    rounds
}

#[test]
fn the_linux_side_speaks_the_built_in_wire_format_on_every_channel_in_order() {
    let (r0, r1) = (region(SLOTS), region(SLOTS));
    let c0 = record(0, 0, Notify::Poll, "k0");
    let c1 = record(1, 0, Notify::Poll, "k1");
    let mem = fake(
        block("linux", "pingpong", &[c0, c1], "rounds=300"),
        &[(c0.gpa, r0), (c1.gpa, r1)],
    );
    let peers = std::thread::spawn(move || plain_echo(r0, 300) + plain_echo(r1, 300));
    let (summary, lines) = run(mem);
    assert_eq!(peers.join().expect("echo thread"), 600);
    let summary = summary.expect("ran");
    assert_eq!(
        (summary.channels, summary.pinged, summary.broken),
        (2, 2, 0)
    );
    let k0 = lines.find("round trips with k0").expect("k0 line");
    let k1 = lines.find("round trips with k1").expect("k1 line");
    assert!(k0 < k1, "layout order: {lines}");
}

#[test]
fn unusable_channels_are_reported_and_skipped() {
    let good = region(SLOTS);
    let ipi = record(0, 0, Notify::Ipi, "sleepy");
    let unmapped = record(1, 0, Notify::Poll, "nowhere");
    // `liar`'s record says 32 slots, its region was formatted with 64.
    let mut liar = record(2, 0, Notify::Poll, "liar");
    liar.slots = 32;
    liar.size = region_size(32) as u64;
    let liar_region = &region(SLOTS)[..region_size(32) / 8];
    let fine = record(3, 0, Notify::Poll, "k1");
    let mem = fake(
        block(
            "linux",
            "pingpong",
            &[ipi, unmapped, liar, fine],
            "rounds=50",
        ),
        &[(liar.gpa, liar_region), (fine.gpa, good)],
    );
    let peer = std::thread::spawn(move || plain_echo(good, 50));
    let (summary, lines) = run(mem);
    peer.join().expect("echo thread");
    let summary = summary.expect("ran");
    assert_eq!(
        (summary.channels, summary.broken, summary.pinged),
        (4, 3, 1),
        "{lines}"
    );
    assert_eq!(summary.exit_code(), 0, "one channel did its job");
    for expected in [
        "channel 0 with sleepy broken: an ipi channel",
        "channel 1 with nowhere broken: cannot map",
        "channel 2 with liar broken: cannot open it",
        "50 round trips with k1",
        "result rounds=50 channels=4 broken_channels=3",
    ] {
        assert!(lines.contains(expected), "{expected:?} in {lines}");
    }
}

#[test]
fn no_usable_channel_is_the_channel_exit_code() {
    let ipi = record(0, 1, Notify::Ipi, "sleepy");
    let (summary, lines) = run(fake(block("linux", "pingpong", &[ipi], ""), &[]));
    let summary = summary.expect("ran");
    assert_eq!(summary.exit_code(), CHANNEL_EXIT_CODE);
    assert!(
        lines.contains("result rounds=10000 channels=1 broken_channels=1"),
        "the default rounds: {lines}"
    );
}

#[test]
fn bad_blocks_workloads_and_arguments_are_refused() {
    let c = record(0, 0, Notify::Poll, "k1");
    let err = |bytes: Vec<u8>| run(fake(bytes, &[])).0.expect_err("refused").to_string();

    let mut bad_magic = block("linux", "pingpong", &[c], "");
    bad_magic[0] ^= 1;
    assert!(err(bad_magic).contains("bad magic"));

    // A huge `size` is refused before anything that large is read.
    let mut huge = block("linux", "pingpong", &[c], "");
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    let header = size_of::<FlotillaBlock>();
    assert!(err(huge).contains(&format!("outside {header}..={MAX_BLOCK}")));

    // `size` larger than what can be read: a read error naming the address.
    let mut short = block("linux", "pingpong", &[c], "");
    let len = short.len() as u32 + 8;
    short[12..16].copy_from_slice(&len.to_le_bytes());
    assert!(err(short).contains("cannot read the Flotilla block at 0x2000"));

    assert!(err(block("linux", "stream", &[c], "")).contains("this program runs \"pingpong\""));
    assert!(err(block("linux", "pingpong", &[c], "rounds=x")).contains("arguments"));
    assert!(err(block("linux", "pingpong", &[c], "count=3")).contains("unknown argument"));
    assert!(err(block("linux", "pingpong", &[], "")).contains("no channels"));
}
