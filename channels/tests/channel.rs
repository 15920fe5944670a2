//! Behaviour of the channel API on the host: round trips, flow control, typed and zero-copy
//! messages, batching, notification suppression, and a two-thread stream.
#![cfg(not(loom))]

mod common;

use channels::layout::{control_offset, ring_offset, CTL_RX_WAIT, PAYLOAD_WORDS};
use channels::{Channel, Counters, Duplex, RecvError, SendError, Side, PAYLOAD_SIZE};
use common::host_region;
use std::sync::atomic::{AtomicU64, Ordering};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[test]
fn round_trip_every_length_both_ways() {
    let mut r = host_region(8);
    let mut ch = r.channel().expect("open");
    let (mut atx, mut arx) = ch.endpoint(Side::A).expect("first take");
    let (mut btx, mut brx) = ch.endpoint(Side::B).expect("first take");
    let mut buf = [0u8; PAYLOAD_SIZE];
    for len in 0..=PAYLOAD_SIZE {
        let msg: Vec<u8> = (0..len as u8)
            .map(|i| i.wrapping_mul(7) ^ len as u8)
            .collect();
        atx.try_send(&msg).unwrap();
        assert_eq!(brx.try_recv(&mut buf), Ok(len));
        assert_eq!(&buf[..len], &msg[..]);
        btx.try_send(&msg).unwrap();
        assert_eq!(arx.try_recv(&mut buf), Ok(len));
        assert_eq!(&buf[..len], &msg[..]);
    }
    assert_eq!(brx.try_recv(&mut buf), Err(RecvError::Empty));
    assert_eq!(arx.try_recv(&mut buf), Err(RecvError::Empty));
    assert_eq!(atx.counters().messages, 57);
    assert_eq!(brx.counters().messages, 57);
}

#[test]
fn too_long_is_rejected_without_sending() {
    let mut r = host_region(4);
    let mut ch = r.channel().expect("open");
    let (mut tx, _) = ch.endpoint(Side::A).expect("first take");
    let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
    assert_eq!(tx.try_send(&[0; 57]), Err(SendError::TooLong { len: 57 }));
    assert_eq!(rx.try_recv(&mut [0; 56]), Err(RecvError::Empty));
    assert_eq!(tx.position(), 0);
}

#[test]
fn full_ring_and_credits() {
    let mut r = host_region(8);
    let mut ch = r.channel().expect("open");
    let (mut tx, _) = ch.endpoint(Side::A).expect("first take");
    let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
    for i in 0..8u8 {
        tx.try_send(&[i]).unwrap();
    }
    assert_eq!(tx.try_send(&[9]), Err(SendError::Full));
    let mut buf = [0; PAYLOAD_SIZE];
    // Default ack interval is slots / 4 = 2: one receive does not free a slot yet...
    assert_eq!(rx.try_recv(&mut buf), Ok(1));
    assert_eq!(tx.try_send(&[9]), Err(SendError::Full));
    // ...two do.
    assert_eq!(rx.try_recv(&mut buf), Ok(1));
    assert_eq!(buf[0], 1);
    assert_eq!(tx.credits(), Ok(2));
    tx.try_send(&[8]).unwrap();
    tx.try_send(&[9]).unwrap();
    assert_eq!(tx.try_send(&[10]), Err(SendError::Full));
    for expect in 2..10u8 {
        assert_eq!(rx.try_recv(&mut buf), Ok(1));
        assert_eq!(buf[0], expect);
    }
    assert_eq!(rx.try_recv(&mut buf), Err(RecvError::Empty));
}

#[test]
fn publish_ack_frees_slots_immediately() {
    let mut r = host_region(16);
    let mut ch = r.channel().expect("open");
    let (mut tx, _) = ch.endpoint(Side::B).expect("first take");
    let (_, mut rx) = ch.endpoint(Side::A).expect("first take");
    for _ in 0..16 {
        tx.try_send(b"x").unwrap();
    }
    rx.try_recv(&mut [0; 56]).unwrap();
    assert_eq!(tx.credits(), Ok(0));
    rx.publish_ack();
    assert_eq!(tx.credits(), Ok(1));
    rx.set_ack_interval(1);
    rx.try_recv(&mut [0; 56]).unwrap();
    assert_eq!(tx.credits(), Ok(2));
}

#[derive(Debug, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Ping {
    seq: u64,
    from: u32,
    kind: u32,
    data: [u8; 16],
}

#[test]
fn typed_messages() {
    let mut r = host_region(4);
    let mut ch = r.channel().expect("open");
    let (mut tx, _) = ch.endpoint(Side::A).expect("first take");
    let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
    let ping = Ping {
        seq: 42,
        from: 1,
        kind: 7,
        data: [3; 16],
    };
    tx.try_send_typed(&ping).unwrap();
    assert_eq!(rx.try_recv_typed::<Ping>(), Ok(ping));
    tx.try_send(&[1, 2, 3]).unwrap();
    assert_eq!(
        rx.try_recv_typed::<Ping>(),
        Err(RecvError::WrongSize {
            expected: 32,
            found: 3
        })
    );
    // The wrong-size message was consumed.
    assert_eq!(rx.try_recv_typed::<u64>(), Err(RecvError::Empty));
}

#[test]
fn typed_messages_through_duplex_endpoints() {
    let mut r = host_region(4);
    let mut ch = r.channel().expect("open");
    let mut a = ch.duplex(Side::A).expect("first take");
    let mut b = ch.duplex(Side::B).expect("first take");
    let ping = Ping {
        seq: 9,
        from: 2,
        kind: 1,
        data: [5; 16],
    };
    a.try_send_typed(&ping).unwrap();
    assert_eq!(b.try_recv_typed::<Ping>(), Ok(ping));
    b.try_send_words(&[7, 0, 0, 0, 0, 0, 0], 8).unwrap();
    assert_eq!(
        a.try_recv_typed::<Ping>(),
        Err(RecvError::WrongSize {
            expected: 32,
            found: 8
        })
    );
    a.try_send(&[1]).unwrap();
    assert_eq!(b.try_recv_words(), Ok(([1, 0, 0, 0, 0, 0, 0], 1)));
    // B's reply carried its count: A knows both of its messages were consumed.
    assert_eq!(a.sender().acknowledged(), 1);
    b.try_send(b"x").unwrap();
    assert_eq!(a.try_recv(&mut [0; PAYLOAD_SIZE]), Ok(1));
    assert_eq!(a.sender().acknowledged(), 2);
}

#[test]
fn zero_copy_slots_and_words() {
    let mut r = host_region(4);
    let mut ch = r.channel().expect("open");
    let (mut tx, _) = ch.endpoint(Side::A).expect("first take");
    let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
    {
        let mut w = tx.send_slot().unwrap();
        for i in 0..PAYLOAD_WORDS {
            assert!(w.write_word(i, 0x1111 * (i as u64 + 1)));
        }
        assert!(!w.write_word(7, 1), "the sequence word is not payload");
        w.commit(56).unwrap();
    }
    // A reservation dropped without commit sends nothing.
    let _ = tx.send_slot().unwrap();
    tx.send_slot().unwrap().commit_bytes(b"hello").unwrap();
    tx.try_send_words(&[5; PAYLOAD_WORDS], 8).unwrap();
    {
        let m = rx.recv_slot().unwrap();
        assert_eq!(m.len(), 56);
        assert_eq!(m.word(0), Some(0x1111));
        assert_eq!(m.word(6), Some(0x7777));
        assert_eq!(m.word(7), None);
    }
    {
        let m = rx.recv_slot().unwrap();
        let mut buf = [0; 56];
        assert_eq!(m.copy_to(&mut buf), 5);
        assert_eq!(&buf[..5], b"hello");
    }
    let (words, len) = rx.try_recv_words().unwrap();
    assert_eq!((words[0], len), (5, 8));
    assert!(rx.recv_slot().is_err());
    assert_eq!(tx.counters().messages, 3);
    assert_eq!(rx.counters().messages, 3);
}

#[test]
fn batches() {
    let mut r = host_region(8);
    let mut ch = r.channel().expect("open");
    let (mut tx, _) = ch.endpoint(Side::A).expect("first take");
    let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
    let msgs: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; i as usize]).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
    assert_eq!(
        tx.send_batch(&[&[0; 60]]),
        Err(SendError::TooLong { len: 60 })
    );
    assert_eq!(tx.send_batch(&[]), Ok(0));
    assert_eq!(tx.send_batch(&refs), Ok(8));
    assert_eq!(tx.send_batch(&refs[8..]), Err(SendError::Full));
    let mut got = Vec::new();
    assert_eq!(rx.recv_batch(5, |m| got.push(m.to_vec())), Ok(5));
    assert_eq!(tx.send_batch(&refs[8..]), Ok(4));
    assert_eq!(rx.recv_batch(100, |m| got.push(m.to_vec())), Ok(7));
    assert_eq!(rx.recv_batch(100, |_| ()), Err(RecvError::Empty));
    assert_eq!(got, msgs);
}

#[test]
fn receiver_wait_and_suppression() {
    let mut r = host_region(8);
    let mut ch = r.channel().expect("open");
    let (mut tx, _) = ch.endpoint(Side::A).expect("first take");
    let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
    let mut ipis = 0;
    let mut sender_ipis = 0;
    // Nothing sent since the start: kick is free and counts nothing.
    assert!(!tx.kick(&mut || ipis += 1));
    // Receiver not waiting: the kick is suppressed.
    tx.try_send(b"a").unwrap();
    assert!(!tx.kick(&mut || ipis += 1));
    // A message is pending, so the receiver must not sleep.
    assert!(!rx.prepare_wait(&mut || sender_ipis += 1));
    rx.try_recv(&mut [0; 56]).unwrap();
    assert!(rx.prepare_wait(&mut || sender_ipis += 1));
    let wait = ch.words()[(control_offset(Side::B, 8) / 8) + CTL_RX_WAIT].load(Ordering::Relaxed);
    assert_eq!(wait & 1, 1, "waiting bit set in B's control line");
    tx.try_send(b"b").unwrap();
    assert!(tx.kick(&mut || ipis += 1));
    // Same wait epoch: a second kick raises nothing.
    tx.try_send(b"c").unwrap();
    assert!(!tx.kick(&mut || ipis += 1));
    rx.finish_wait();
    assert_eq!(rx.recv_batch(8, |_| ()), Ok(2));
    assert!(rx.prepare_wait(&mut || sender_ipis += 1));
    tx.send_notify(b"d", &mut || ipis += 1).unwrap();
    assert_eq!(ipis, 2);
    assert_eq!(sender_ipis, 0);
    assert_eq!(
        tx.counters(),
        Counters {
            messages: 4,
            notifications_raised: 2,
            notifications_suppressed: 2
        }
    );
}

#[test]
fn sender_waits_for_space() {
    let mut r = host_region(4);
    let mut ch = r.channel().expect("open");
    let (mut tx, _) = ch.endpoint(Side::B).expect("first take");
    let (_, mut rx) = ch.endpoint(Side::A).expect("first take");
    assert!(!tx.prepare_wait(), "free slots: no need to sleep");
    for _ in 0..4 {
        tx.try_send(b"z").unwrap();
    }
    assert!(tx.prepare_wait());
    let mut woke = 0;
    rx.try_recv(&mut [0; 56]).unwrap();
    assert!(rx.kick(&mut || woke += 1));
    assert!(!rx.kick(&mut || woke += 1), "nothing new consumed");
    tx.finish_wait();
    assert_eq!(woke, 1);
    assert_eq!(tx.credits(), Ok(1));
    assert_eq!(rx.counters().notifications_raised, 1);
}

#[test]
fn stream_between_threads() {
    const N: u64 = 200_000;
    let mut r = host_region(64);
    let mut ch = r.channel().expect("open");
    let (mut tx, _) = ch.endpoint(Side::A).expect("first take");
    let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..N {
                let len = (i % 57) as usize;
                let mut words = [0u64; PAYLOAD_WORDS];
                words[0] = i;
                words[6] = !i;
                loop {
                    match tx.try_send_words(&words, len.max(8)) {
                        Ok(()) => break,
                        Err(SendError::Full) => std::hint::spin_loop(),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        let mut next = 0;
        while next < N {
            match rx.try_recv_words() {
                Ok((w, len)) => {
                    assert_eq!(
                        (w[0], w[6], len),
                        (next, !next, ((next % 57) as usize).max(8))
                    );
                    next += 1;
                }
                Err(RecvError::Empty) => std::hint::spin_loop(),
                Err(e) => panic!("{e}"),
            }
        }
    });
}

#[test]
fn endpoints_of_b_use_the_second_ring() {
    let mut r = host_region(2);
    let mut ch = r.channel().expect("open");
    let (mut btx, _) = ch.endpoint(Side::B).expect("first take");
    btx.try_send(&[0xAB; 8]).unwrap();
    // The first payload word of ring B->A (identity page, A's control page and ring, B's
    // control page: offset 4 * 4096).
    assert_eq!(ring_offset(Side::B, 2), 4 * 4096);
    let w = ch.words()[ring_offset(Side::B, 2) / 8].load(Ordering::Relaxed);
    assert_eq!(w, u64::from_le_bytes([0xAB; 8]));
    assert_eq!(Side::A.peer(), Side::B);
    assert_eq!(Channel::open(r.region()).unwrap().slots(), 2);
}

/// Slots of ring `ring_offset` whose sequence word was ever written (non-zero).
fn written_slots(r: &[AtomicU64], ring_offset: usize, slots: usize) -> Vec<usize> {
    (0..slots)
        .filter(|i| r[(ring_offset + i * 64) / 8 + PAYLOAD_WORDS].load(Ordering::Relaxed) != 0)
        .collect()
}

/// `rounds` request/response exchanges; each side first finds its ring empty, as a real
/// poller would.
fn ping_pong(a: &mut Duplex<'_>, b: &mut Duplex<'_>, rounds: u64) {
    let mut buf = [0u8; PAYLOAD_SIZE];
    for i in 0..rounds {
        assert_eq!(b.try_recv(&mut buf), Err(RecvError::Empty));
        a.try_send(&i.to_le_bytes()).unwrap();
        assert_eq!(a.try_recv(&mut buf), Err(RecvError::Empty));
        assert_eq!(b.try_recv(&mut buf), Ok(8));
        assert_eq!(buf[..8], i.to_le_bytes());
        b.try_send(&(!i).to_le_bytes()).unwrap();
        assert_eq!(a.try_recv(&mut buf), Ok(8));
        assert_eq!(buf[..8], (!i).to_le_bytes());
    }
}

#[test]
fn request_response_stays_on_a_few_hot_lines() {
    let slots = 256;
    let mut r = host_region(slots as u32);
    let mut ch = r.channel().expect("open");
    let mut a = ch.duplex(Side::A).expect("first take");
    let mut b = ch.duplex(Side::B).expect("first take");
    ping_pong(&mut a, &mut b, 10_000);
    // The piggybacked acknowledgements tell each sender that everything was consumed, so
    // every run ends after the default 4 messages: 10,000 round trips touch 4 lines each way.
    let ring_ab = ring_offset(Side::A, slots as u32);
    let ring_ba = ring_offset(Side::B, slots as u32);
    assert_eq!(written_slots(ch.words(), ring_ab, slots), vec![0, 1, 2, 3]);
    assert_eq!(written_slots(ch.words(), ring_ba, slots), vec![0, 1, 2, 3]);
    assert_eq!(a.receiver().counters().messages, 10_000);
    // Every reply but the last was acknowledged by the next request's piggyback.
    assert_eq!(b.sender().acknowledged(), 9_999);
}

#[test]
fn hot_slots_are_configurable() {
    for (hot, expect) in [(1, vec![0]), (2, vec![0, 1]), (7, (0..7).collect())] {
        let mut r = host_region(64);
        let mut ch = r.channel().expect("open");
        let mut a = ch.duplex(Side::A).expect("first take");
        let mut b = ch.duplex(Side::B).expect("first take");
        a.sender().set_hot_slots(hot);
        b.sender().set_hot_slots(hot);
        ping_pong(&mut a, &mut b, 1000);
        assert_eq!(
            written_slots(ch.words(), ring_offset(Side::A, 64), 64),
            expect,
            "hot {hot}"
        );
    }
    // 0: runs never end early, the ring is walked like a plain ring buffer.
    let mut r = host_region(64);
    let mut ch = r.channel().expect("open");
    let mut a = ch.duplex(Side::A).expect("first take");
    let mut b = ch.duplex(Side::B).expect("first take");
    a.sender().set_hot_slots(0);
    ping_pong(&mut a, &mut b, 100);
    assert_eq!(
        written_slots(ch.words(), ring_offset(Side::A, 64), 64),
        (0..64).collect::<Vec<_>>()
    );
}

#[test]
fn split_halves_send_no_acknowledgement_so_runs_never_end_early() {
    // The same request/response through split halves: the responder's messages carry no
    // count, so the requester keeps walking its ring like a plain ring buffer.
    let mut r = host_region(16);
    let mut ch = r.channel().expect("open");
    let (mut atx, mut arx) = ch.endpoint(Side::A).expect("first take");
    let (mut btx, mut brx) = ch.endpoint(Side::B).expect("first take");
    let mut buf = [0u8; PAYLOAD_SIZE];
    for i in 0..40u64 {
        atx.try_send(&i.to_le_bytes()).unwrap();
        assert_eq!(brx.try_recv(&mut buf), Ok(8));
        btx.try_send(b"ok").unwrap();
        assert_eq!(arx.try_recv(&mut buf), Ok(2));
    }
    assert_eq!(
        written_slots(ch.words(), ring_offset(Side::A, 16), 16),
        (0..16).collect::<Vec<_>>()
    );
}

#[test]
fn one_way_stream_walks_the_whole_ring() {
    let mut r = host_region(16);
    let mut ch = r.channel().expect("open");
    let (mut tx, _) = ch.endpoint(Side::A).expect("first take");
    let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
    rx.set_ack_interval(1);
    let mut buf = [0u8; PAYLOAD_SIZE];
    for i in 0..100u64 {
        tx.try_send(&i.to_le_bytes()).unwrap();
        assert_eq!(rx.try_recv(&mut buf), Ok(8));
        assert_eq!(buf[..8], i.to_le_bytes());
    }
    // No reverse traffic, no piggybacked acknowledgement: no run ends early.
    assert_eq!(
        written_slots(ch.words(), ring_offset(Side::A, 16), 16),
        (0..16).collect::<Vec<_>>()
    );
}

#[test]
fn a_burst_after_request_response_arrives_in_order() {
    let mut r = host_region(32);
    let mut ch = r.channel().expect("open");
    let mut a = ch.duplex(Side::A).expect("first take");
    let mut b = ch.duplex(Side::B).expect("first take");
    ping_pong(&mut a, &mut b, 7);
    // A burst: the run that ended with the last request started over in slot 0, and the slot
    // holding that request is reused only once it is acknowledged, so a burst may see `Full`
    // early; receiving frees it (run-ending messages are acknowledged at once).
    let atx = a.sender();
    let brx = b.receiver();
    let mut buf = [0u8; PAYLOAD_SIZE];
    let (mut sent, mut got, mut full) = (0u64, 0u64, 0u64);
    for step in 0..10_000u64 {
        let mut blocked = sent == 200;
        if sent < 200 {
            match atx.try_send(&(1000 + sent).to_le_bytes()) {
                Ok(()) => sent += 1,
                Err(SendError::Full) => {
                    full += 1;
                    blocked = true;
                }
                Err(e) => panic!("{e}"),
            }
        }
        // The receiver lags (one receive per three sends) unless the sender is stuck.
        if blocked || step % 3 == 0 {
            if let Ok(8) = brx.try_recv(&mut buf) {
                assert_eq!(buf[..8], (1000 + got).to_le_bytes());
                got += 1;
            }
        }
        if got == 200 {
            break;
        }
    }
    assert_eq!(got, 200);
    assert_eq!(brx.try_recv(&mut buf), Err(RecvError::Empty));
    assert!(full > 0, "a lagging receiver fills a 32-slot ring");
}

#[test]
fn credits_count_the_guarded_slot() {
    let mut r = host_region(8);
    let mut ch = r.channel().expect("open");
    let mut a = ch.duplex(Side::A).expect("first take");
    let mut b = ch.duplex(Side::B).expect("first take");
    ping_pong(&mut a, &mut b, 3);
    let mut buf = [0u8; PAYLOAD_SIZE];
    // Round 4 ends A's first run (4 messages, all earlier ones consumed): the next message goes
    // to slot 0, and slot 3 (holding message 3) stays guarded until B consumes it.
    a.try_send(b"req").unwrap();
    assert_eq!(a.sender().credits(), Ok(3));
    for i in 0..3u8 {
        a.try_send(&[i]).unwrap();
    }
    assert_eq!(a.sender().credits(), Ok(0));
    assert_eq!(a.try_send(b"x"), Err(SendError::Full));
    assert_eq!(b.try_recv(&mut buf), Ok(3));
    // B acknowledged the run-ending message at once: the whole ring but the 3 in flight.
    assert_eq!(a.sender().credits(), Ok(5));
    a.try_send(b"x").unwrap();
    for want in [&[0u8][..], &[1], &[2], b"x"] {
        let len = b.try_recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], want);
    }
}

#[test]
fn a_duplex_keeps_acknowledgements_received_through_its_receiver() {
    // A fills a 16-slot ring; B reads half of it with a batch (its receiver's own API, with
    // an interval that publishes nothing) and answers; A reads the answer in place through
    // its receiver. The answer's piggybacked count must still free A's slots: the control
    // line never said anything.
    let mut r = host_region(16);
    let mut ch = r.channel().expect("open");
    let mut a = ch.duplex(Side::A).expect("first take");
    let mut b = ch.duplex(Side::B).expect("first take");
    b.receiver().set_ack_interval(16);
    let mut buf = [0; 56];
    assert_eq!(a.try_recv(&mut buf), Err(RecvError::Empty));
    for i in 0..16u64 {
        a.try_send_typed(&i).unwrap();
    }
    assert_eq!(a.try_send(b"m"), Err(SendError::Full));
    let mut seen = Vec::new();
    assert_eq!(b.receiver().recv_batch(8, |m| seen.push(m[0])), Ok(8));
    assert_eq!(seen, (0..8).collect::<Vec<u8>>());
    b.try_send(b"reply").unwrap();
    let control_ack = channels::layout::control_offset(Side::B, 16) / 8 + channels::layout::CTL_ACK;
    assert_eq!(
        ch.words()[control_ack].load(Ordering::Relaxed),
        0,
        "B published nothing"
    );
    {
        let reply = a.receiver().recv_slot().expect("the reply");
        assert_eq!(reply.len(), 5);
    }
    // The first send finds the ring full by what the sender knew, takes the kept count in
    // and goes through: eight slots are free.
    for i in 16..24u64 {
        a.try_send_typed(&i).unwrap();
    }
    assert_eq!(a.try_send(b"m"), Err(SendError::Full));
    assert_eq!(a.sender().acknowledged(), 8);
}

#[test]
fn each_side_is_handed_out_once_per_opening() {
    let mut r = host_region(8);
    let mut ch = r.channel().expect("open");
    assert!(ch.endpoint(Side::A).is_some());
    assert!(ch.endpoint(Side::A).is_none());
    assert!(ch.duplex(Side::A).is_none());
    assert!(ch.duplex(Side::B).is_some());
    assert!(ch.endpoint(Side::B).is_none());
    // Not re-formatted: reopening hands nothing out again.
    assert_eq!(
        ch.reopen(),
        Err(channels::LayoutError::NotReformatted { generation: 0 })
    );
    assert!(ch.endpoint(Side::A).is_none());
    // After the hypervisor's re-format (a restart), both sides are fresh once more.
    // (The hypervisor's mapping, alongside this live opening.)
    Channel::format_generation(common::second_mapping(ch.words()), 8, 1).expect("re-format");
    assert_eq!(ch.reopen(), Ok(1));
    assert_eq!(ch.generation(), 1);
    let (mut tx, _) = ch.endpoint(Side::A).expect("fresh");
    let (_, mut rx) = ch.endpoint(Side::B).expect("fresh");
    assert!(ch.duplex(Side::A).is_none());
    tx.try_send(b"again").unwrap();
    assert_eq!(rx.try_recv(&mut [0; 56]), Ok(5));
}
