//! A hostile or corrupted peer: bad identity lines, bad sequence words, bad lengths, bad
//! acknowledgements, garbage in the peer's control line. Every case ends in an error (sticky
//! for the endpoint), never a panic. And the other half of layout v4's "one writer per
//! page": an honest endpoint stores only into its own area, so the read-only mappings of the
//! identity page and the peer's area never stop it.
#![cfg(not(loom))]

mod common;

use channels::layout::{
    control_offset, ring_offset, CTL_ACK, CTL_RX_WAIT, CTL_TX_WAIT, ID_GENERATION, ID_MAGIC,
    ID_SLOTS, ID_VERSION, SEQ_WORD,
};
use channels::{Channel, Corruption, LayoutError, RecvError, Region, SendError, Side};
use common::host_region;
use std::sync::atomic::{AtomicU64, Ordering};

fn set(words: &[AtomicU64], byte_offset: usize, index: usize, value: u64) {
    words[byte_offset / 8 + index].store(value, Ordering::Relaxed);
}

#[test]
fn identity_line_is_validated() {
    let mut r = host_region(8);
    set(r.words(), 0, ID_MAGIC, 0x1234);
    assert_eq!(
        Channel::open(r.region()).unwrap_err(),
        LayoutError::BadMagic { found: 0x1234 }
    );

    let mut r = host_region(8);
    // Regions formatted for layout v1 (before runs and piggybacked acknowledgements) and v2
    // (one header page writable by both endpoints).
    for old in [1, 2] {
        set(r.words(), 0, ID_VERSION, old);
        assert_eq!(
            Channel::open(r.region()).unwrap_err(),
            LayoutError::BadVersion { found: old }
        );
    }

    for bad in [0, 1, 3, 8192, u64::MAX] {
        let mut r = host_region(8);
        set(r.words(), 0, ID_SLOTS, bad);
        assert_eq!(
            Channel::open(r.region()).unwrap_err(),
            LayoutError::BadSlots { found: bad }
        );
    }

    // A slot count the region is too small for.
    let mut r = host_region(8);
    set(r.words(), 0, ID_SLOTS, 1024);
    assert!(matches!(
        Channel::open(r.region()),
        Err(LayoutError::SizeMismatch { .. })
    ));

    let mut r = host_region(8);
    assert_eq!(
        Channel::open_expecting(r.region(), 16).unwrap_err(),
        LayoutError::UnexpectedSlots {
            expected: 16,
            found: 8
        }
    );
    assert!(Channel::open_expecting(r.region(), 8).is_ok());
}

/// `Channel::format` is the channel contract's only writer (the hypervisor calls it on each
/// region before the guests start): a dirty region comes out zero but for the identity line,
/// whose bytes are the ones `docs/channels.md` gives.
#[test]
fn format_writes_exactly_the_documented_identity_line() {
    let mut r = host_region(64);
    for w in r.words() {
        w.store(0xa5a5_a5a5_a5a5_a5a5, Ordering::Relaxed);
    }
    Channel::format(r.region(), 64).expect("format");
    let bytes: Vec<u8> = r
        .words()
        .iter()
        .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
        .collect();
    assert_eq!(bytes.len(), 20 * 1024, "64 slots: a 20 KiB region");
    assert_eq!(&bytes[0..8], b"FLOTCHAN");
    assert_eq!(&bytes[8..16], &4u64.to_le_bytes(), "layout version 4");
    assert_eq!(&bytes[16..24], &64u64.to_le_bytes(), "slots");
    assert_eq!(&bytes[24..32], &0u64.to_le_bytes(), "generation 0");
    assert!(bytes[32..].iter().all(|&b| b == 0), "all else zero");
    assert_eq!(
        Channel::open_expecting(r.region(), 64).map(|c| (c.slots(), c.generation())),
        Ok((64, 0))
    );
}

/// A re-format (the hypervisor restarting one endpoint's partition) zeroes the region and
/// writes the next generation: an endpoint of the old opening sees the generation change, and
/// a fresh opening starts from message 0 again.
#[test]
fn a_reformat_bumps_the_generation_that_live_endpoints_can_see() {
    let mut r = host_region(8);
    let mut old = Channel::format(r.region(), 8).expect("format");
    let (mut a, mut b) = (
        old.duplex(Side::A).expect("first take"),
        old.duplex(Side::B).expect("first take"),
    );
    a.try_send(b"before").expect("send");
    assert_eq!(old.current_generation(), 0);
    // The hypervisor's mapping re-formats; the restarted partition's mapping opens.
    Channel::format_generation(common::second_mapping(old.words()), 8, 1).expect("re-format");
    assert_eq!((old.generation(), old.current_generation()), (0, 1));
    let mut new = Channel::open_expecting(common::second_mapping(old.words()), 8).expect("open");
    assert_eq!(new.generation(), 1);
    let mut buf = [0u8; 56];
    assert_eq!(b.try_recv(&mut buf), Err(channels::RecvError::Empty));
    let (mut a, mut b) = (
        new.duplex(Side::A).expect("first take"),
        new.duplex(Side::B).expect("first take"),
    );
    a.try_send(b"after").expect("send");
    assert_eq!(b.try_recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"after");
}

/// A re-format under a live endpoint (the hypervisor restarting the peer): the generation
/// word goes from g to g + 1 once, before any ring word is wiped, and never passes through
/// 0; an opening during the re-format either fails or sees the whole new region.
#[test]
fn a_reformat_never_shows_an_older_generation() {
    const GENERATIONS: u64 = 2000;
    let r = host_region(64);
    let words = r.words();
    let generation = &words[ID_GENERATION];
    // The hypervisor's mapping and the peer's, simultaneously: two threads, two mappings.
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for g in 1..=GENERATIONS {
                Channel::format_generation(common::second_mapping(words), 64, g)
                    .expect("re-format");
            }
        });
        let (mut last, mut opened) = (0, 0u64);
        while !writer.is_finished() {
            let now = generation.load(Ordering::Acquire);
            assert!(now >= last, "generation went from {last} to {now}");
            last = now;
            if let Ok(c) = Channel::open_expecting(common::second_mapping(words), 64) {
                assert!(c.generation() >= now, "opened an older generation");
                opened += 1;
            }
        }
        writer.join().expect("writer");
        println!("{opened} openings during the re-formats");
    });
    assert_eq!(generation.load(Ordering::Relaxed), GENERATIONS);
}

#[test]
fn format_checks_its_arguments() {
    let mut r = host_region(8);
    assert_eq!(
        Channel::format(r.region(), 3).unwrap_err(),
        LayoutError::InvalidSlots { slots: 3 }
    );
    assert!(matches!(
        Channel::format(r.region(), 4096),
        Err(LayoutError::SizeMismatch { .. })
    ));
    let mut v: Vec<AtomicU64> = (0..608).map(|_| AtomicU64::new(0)).collect();
    let off = v.as_ptr().align_offset(64);
    let short = Region::from_words(&mut v[off..off + 600]).unwrap();
    assert!(Channel::open(short).is_err());
}

#[test]
fn bad_sequence_word_stops_the_receiver() {
    let mut r = host_region(4);
    let mut ch = r.channel().expect("open");
    let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
    // Peer A writes garbage into the sequence word of slot 0 of ring A->B.
    set(ch.words(), ring_offset(Side::A, 4), SEQ_WORD, 0xdead_beef);
    let err = RecvError::Corrupted(Corruption::BadSequence {
        pos: 0,
        word: 0xdead_beef,
    });
    assert_eq!(rx.try_recv(&mut [0; 56]), Err(err));
    // Sticky even if the peer "repairs" the slot.
    set(ch.words(), ring_offset(Side::A, 4), SEQ_WORD, 0);
    assert_eq!(rx.try_recv(&mut [0; 56]), Err(err));
    assert!(
        rx.is_ready(),
        "a corrupted channel reports, it does not look empty"
    );
    assert!(!rx.prepare_wait(&mut || ()));
    assert!(rx.fault().is_some());
}

#[test]
fn bad_length_stops_the_receiver() {
    let mut r = host_region(4);
    let mut ch = r.channel().expect("open");
    let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
    // The expected sequence (message 0 has seq 1, at bit 24) with a length of 60.
    set(
        ch.words(),
        ring_offset(Side::A, 4),
        SEQ_WORD,
        (1 << 24) | 60,
    );
    assert_eq!(
        rx.try_recv(&mut [0; 56]),
        Err(RecvError::Corrupted(Corruption::BadLength {
            pos: 0,
            len: 60
        }))
    );
    assert!(rx.recv_slot().is_err());
    assert!(rx.recv_batch(4, |_| ()).is_err());
}

#[test]
fn bad_acknowledgement_stops_the_sender() {
    let mut r = host_region(4);
    let mut ch = r.channel().expect("open");
    let (mut tx, _) = ch.endpoint(Side::A).expect("first take");
    for _ in 0..4 {
        tx.try_send(b"m").unwrap();
    }
    // Peer B acknowledges more than was sent.
    set(ch.words(), control_offset(Side::B, 4), CTL_ACK, 99);
    let err = SendError::Corrupted(Corruption::BadAck { sent: 4, ack: 99 });
    assert_eq!(tx.try_send(b"m"), Err(err));
    set(ch.words(), control_offset(Side::B, 4), CTL_ACK, 2);
    assert_eq!(tx.try_send(b"m"), Err(err), "sticky");
    assert!(!tx.prepare_wait());
}

#[test]
fn acknowledgement_going_backwards_is_corruption() {
    let mut r = host_region(4);
    let mut ch = r.channel().expect("open");
    let (mut tx, _) = ch.endpoint(Side::A).expect("first take");
    let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
    rx.set_ack_interval(1);
    for _ in 0..4 {
        tx.try_send(b"m").unwrap();
    }
    for _ in 0..3 {
        rx.try_recv(&mut [0; 56]).unwrap();
    }
    assert_eq!(tx.credits(), Ok(3));
    set(ch.words(), control_offset(Side::B, 4), CTL_ACK, 1);
    assert!(matches!(
        tx.credits(),
        Err(SendError::Corrupted(Corruption::BadAck { .. }))
    ));
}

#[test]
fn peer_scribbling_on_our_own_lines_does_not_affect_us() {
    let mut r = host_region(4);
    let mut ch = r.channel().expect("open");
    let (mut atx, mut arx) = ch.endpoint(Side::A).expect("first take");
    let (mut btx, mut brx) = ch.endpoint(Side::B).expect("first take");
    // B overwrites A's control line and A's outgoing ring. (Under Flotilla these are mapped
    // read-only for B, so that write is an npf; the endpoint does not rely on it.)
    for i in 0..8 {
        set(ch.words(), control_offset(Side::A, 4), i, u64::MAX);
        set(ch.words(), ring_offset(Side::A, 4) + 64, i, u64::MAX);
    }
    // A keeps sending and receiving normally (it never reads its own lines back).
    btx.try_send(b"to a").unwrap();
    assert_eq!(arx.try_recv(&mut [0; 56]), Ok(4));
    atx.try_send(b"to b").unwrap();
    // B, the scribbler, only hurts itself: its receive of slot 1 later sees garbage.
    assert_eq!(brx.try_recv(&mut [0; 56]), Ok(4));
    atx.try_send(b"again").unwrap();
    assert_eq!(brx.try_recv(&mut [0; 56]), Ok(5));
}

/// Writes message `pos` of ring B->A by hand, as a hostile B could: payload `fill`, length
/// `len`, and a piggybacked acknowledgement `ack`.
fn forge_b_message(r: &[AtomicU64], slots: usize, pos: u64, len: u64, ack: u64) {
    use channels::layout::{ACK_SHIFT, ACK_VALID_FLAG, SEQ_SHIFT};
    let ring_ba = ring_offset(Side::B, slots as u32);
    let slot = ring_ba + (pos as usize % slots) * 64;
    let word = ((pos + 1) << SEQ_SHIFT) | (ack << ACK_SHIFT) | ACK_VALID_FLAG | len;
    set(r, slot, SEQ_WORD, word);
}

#[test]
fn forged_piggybacked_acknowledgements_are_bounded() {
    let mut r = host_region(8);
    let mut ch = r.channel().expect("open");
    let mut a = ch.duplex(Side::A).expect("first take");
    let mut buf = [0; 56];
    assert_eq!(a.try_recv(&mut buf), Err(RecvError::Empty));
    for _ in 0..8 {
        a.try_send(b"m").unwrap();
    }
    assert_eq!(a.try_send(b"m"), Err(SendError::Full));
    // B claims to have consumed 9 of the 8 messages sent: ignored.
    forge_b_message(ch.words(), 8, 0, 1, 9);
    assert_eq!(a.try_recv(&mut buf), Ok(1));
    assert_eq!(a.sender().acknowledged(), 0);
    assert_eq!(a.sender().credits(), Ok(0));
    // B claims 3: believed. A lie here only loses B's own incoming messages.
    forge_b_message(ch.words(), 8, 1, 1, 3);
    assert_eq!(a.try_recv(&mut buf), Ok(1));
    assert_eq!(a.sender().credits(), Ok(3));
    // An older claim takes nothing back.
    forge_b_message(ch.words(), 8, 2, 1, 1);
    assert_eq!(a.try_recv(&mut buf), Ok(1));
    assert_eq!(a.sender().credits(), Ok(3));
    // A claim on a message received through the bare receiver is kept, and judged by the
    // same bounds: 8 of the 8 sent is believed.
    forge_b_message(ch.words(), 8, 3, 1, 8);
    assert_eq!(a.receiver().try_recv(&mut buf), Ok(1));
    assert_eq!(a.sender().credits(), Ok(8));
}

#[test]
fn an_old_message_cannot_claim_a_recent_count() {
    // B's reply waits unread in A's ring while A streams 70,000 messages to B: its 16-bit
    // acknowledgement (taken when B had consumed 10) must not be read as a count near A's
    // position 70,000 (10 + 65,536 = 65,546 would free slots B has not read).
    let mut r = host_region(8);
    let mut ch = r.channel().expect("open");
    let mut a = ch.duplex(Side::A).expect("first take");
    let mut b = ch.duplex(Side::B).expect("first take");
    b.receiver().set_ack_interval(1);
    let mut buf = [0; 56];
    assert_eq!(a.try_recv(&mut buf), Err(RecvError::Empty));
    for _ in 0..10 {
        a.try_send(b"m").unwrap();
        b.try_recv(&mut buf).unwrap();
    }
    b.try_send(b"reply").unwrap();
    for _ in 0..65_536 - 6 {
        a.try_send(b"m").unwrap();
        b.try_recv(&mut buf).unwrap();
    }
    // Eight more that B has not read: 10 + 2^16 = 65,546 lies among them.
    for _ in 0..8 {
        a.try_send(b"m").unwrap();
    }
    assert_eq!(a.sender().position(), 65_548);
    let consumed = b.receiver().position();
    assert_eq!(a.try_recv(&mut buf), Ok(5));
    assert!(
        a.sender().acknowledged() <= consumed,
        "believed {} consumed, B consumed {consumed}",
        a.sender().acknowledged()
    );
    assert_eq!(a.try_send(b"m"), Err(SendError::Full));
}

#[test]
fn garbage_in_the_peers_control_line_stops_only_what_reads_it() {
    let mut r = host_region(4);
    let mut ch = r.channel().expect("open");
    let (mut atx, mut arx) = ch.endpoint(Side::A).expect("first take");
    let (mut btx, _) = ch.endpoint(Side::B).expect("first take");
    // Hostile B fills its whole control line (ack, both wait words, the zero words) with ones.
    for i in 0..8 {
        set(ch.words(), control_offset(Side::B, 4), i, u64::MAX);
    }
    // A's sender has its initial credits; its kick sees "waiting" in a garbage epoch and
    // raises one notification for it, never a second one for the same word.
    atx.try_send(b"m").unwrap();
    let mut ipis = 0;
    assert!(atx.kick(&mut || ipis += 1));
    atx.try_send(b"m").unwrap();
    assert!(!atx.kick(&mut || ipis += 1));
    assert_eq!(ipis, 1);
    // Once the credits run out, A reads B's ack: u64::MAX acknowledges messages never sent.
    atx.try_send(b"m").unwrap();
    atx.try_send(b"m").unwrap();
    assert!(matches!(
        atx.try_send(b"m"),
        Err(SendError::Corrupted(Corruption::BadAck { sent: 4, .. }))
    ));
    // A's receiving half reads only B's ring and B's tx_wait: it still works, and its kick
    // notifies at most once for the garbage wait word.
    btx.try_send(b"to a").unwrap();
    assert_eq!(arx.try_recv(&mut [0; 56]), Ok(4));
    let mut sender_ipis = 0;
    arx.kick(&mut || sender_ipis += 1);
    btx.try_send(b"more").unwrap();
    assert_eq!(arx.try_recv(&mut [0; 56]), Ok(4));
    arx.kick(&mut || sender_ipis += 1);
    assert_eq!(sender_ipis, 1);
    // B's sending half never reads its own control line back: unaffected by its own garbage.
    assert_eq!(
        ch.words()[control_offset(Side::B, 4) / 8 + CTL_RX_WAIT].load(Ordering::Relaxed),
        u64::MAX
    );
    assert_eq!(
        ch.words()[control_offset(Side::B, 4) / 8 + CTL_TX_WAIT].load(Ordering::Relaxed),
        u64::MAX
    );
}

/// Words of the region outside `side`'s area, with their index.
fn outside_area(r: &[AtomicU64], side: Side, slots: u32) -> Vec<(usize, u64)> {
    use channels::layout::{area_offset, area_size};
    let area = area_offset(side, slots) / 8..(area_offset(side, slots) + area_size(slots)) / 8;
    r.iter()
        .enumerate()
        .filter(|(i, _)| !area.contains(i))
        .map(|(i, w)| (i, w.load(Ordering::Relaxed)))
        .collect()
}

/// Runs `op` (an operation of `side`'s endpoint) and asserts it stored nothing outside
/// `side`'s area: what the nested page tables map read-only for it (layout v4).
fn only_own_area<T>(r: &[AtomicU64], side: Side, slots: u32, op: impl FnOnce() -> T) -> T {
    let before = outside_area(r, side, slots);
    let out = op();
    assert_eq!(
        outside_area(r, side, slots),
        before,
        "{side:?} wrote outside its area"
    );
    out
}

#[test]
fn each_endpoint_stores_only_into_its_own_area() {
    const SLOTS: u32 = 8;
    let mut r = host_region(SLOTS);
    let identity: Vec<u64> = r.words()[..512]
        .iter()
        .map(|w| w.load(Ordering::Relaxed))
        .collect();
    let mut ch = r.channel().expect("open");
    let mut a = ch.duplex(Side::A).expect("first take");
    let mut b = ch.duplex(Side::B).expect("first take");
    let mut buf = [0; 56];
    let mut ipis = 0;
    for round in 0..100u64 {
        // Request/response, with empty looks in between (piggybacking, runs, guards).
        only_own_area(ch.words(), Side::B, SLOTS, || {
            assert_eq!(b.try_recv(&mut buf), Err(RecvError::Empty))
        });
        only_own_area(ch.words(), Side::A, SLOTS, || {
            a.try_send(&round.to_le_bytes()).unwrap();
            a.sender().kick(&mut || ipis += 1);
        });
        only_own_area(ch.words(), Side::B, SLOTS, || {
            assert_eq!(b.try_recv(&mut buf), Ok(8));
            b.try_send(b"ok").unwrap();
            b.receiver().kick(&mut || ipis += 1);
        });
        only_own_area(ch.words(), Side::A, SLOTS, || {
            assert_eq!(a.try_recv(&mut buf), Ok(2))
        });
        // A burst that fills the ring, and both wait handshakes.
        if round % 10 == 0 {
            only_own_area(ch.words(), Side::A, SLOTS, || {
                while a.sender().try_send(b"burst").is_ok() {}
                assert!(a.sender().prepare_wait(), "full ring: the sender may sleep");
                a.sender().finish_wait();
            });
            only_own_area(ch.words(), Side::B, SLOTS, || {
                let n = b.receiver().recv_batch(64, |_| ()).unwrap();
                assert!(n > 0);
                b.receiver().publish_ack();
                assert!(b.receiver().prepare_wait(&mut || ipis += 1));
                b.receiver().finish_wait();
            });
        }
    }
    let after: Vec<u64> = ch.words()[..512]
        .iter()
        .map(|w| w.load(Ordering::Relaxed))
        .collect();
    assert_eq!(identity, after, "nobody wrote the identity page");
}
