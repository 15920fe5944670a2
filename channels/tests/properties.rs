//! Property tests: the channel behaves like a bounded FIFO queue under any sequence of
//! operations, and no region content whatsoever makes an endpoint panic or misbehave.
#![cfg(not(loom))]

mod common;

use channels::layout::{region_size, PAYLOAD_SIZE};
use channels::{Channel, Duplex, RecvError, Region, SendError, Side};
use common::host_region;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone)]
enum Op {
    Send(Vec<u8>),
    Recv,
    Batch(usize),
    Ack,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..=PAYLOAD_SIZE).prop_map(Op::Send),
        4 => Just(Op::Recv),
        1 => (1usize..10).prop_map(Op::Batch),
        1 => Just(Op::Ack),
    ]
}

/// One endpoint (both halves, as a [`Duplex`]) and the model of the direction it sends on:
/// the messages in flight, and what the peer has consumed and published.
struct End<'a> {
    io: Duplex<'a>,
    queue: VecDeque<Vec<u8>>,
    sent: u64,
    /// Messages the peer has received from this end, and published in its control line.
    received: u64,
    published: u64,
}

fn end<'a>(mut io: Duplex<'a>, interval: u64, hot: u64) -> End<'a> {
    io.sender().set_hot_slots(hot);
    io.receiver().set_ack_interval(interval);
    End {
        io,
        queue: VecDeque::new(),
        sent: 0,
        received: 0,
        published: 0,
    }
}

/// Applies `op` at endpoint `me` (sending to, or receiving from, `peer`).
fn apply<'a>(
    me: &mut End<'a>,
    peer: &mut End<'a>,
    op: Op,
    slots: u64,
    interval: u64,
) -> Result<(), TestCaseError> {
    match op {
        Op::Send(m) => match me.io.try_send(&m) {
            Ok(()) => {
                me.queue.push_back(m);
                me.sent += 1;
            }
            // Full only while a message is not acknowledged yet (the ring is full, or the slot
            // that ended the last run still holds an unacknowledged message).
            Err(SendError::Full) => {
                prop_assert!(me.sent > me.published);
                prop_assert_eq!(me.io.sender().credits(), Ok(0));
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        },
        Op::Recv => {
            let mut buf = [0; PAYLOAD_SIZE];
            match me.io.try_recv(&mut buf) {
                Ok(len) => {
                    let want = peer.queue.pop_front();
                    prop_assert_eq!(Some(&buf[..len]), want.as_deref());
                    peer.received += 1;
                }
                Err(RecvError::Empty) => prop_assert!(peer.queue.is_empty()),
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
        Op::Batch(max) => {
            let mut got = Vec::new();
            match me.io.receiver().recv_batch(max, |m| got.push(m.to_vec())) {
                Ok(n) => {
                    prop_assert_eq!(n, got.len());
                    for m in got {
                        prop_assert_eq!(Some(m), peer.queue.pop_front());
                    }
                    peer.received += n as u64;
                }
                Err(RecvError::Empty) => prop_assert!(peer.queue.is_empty()),
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
        Op::Ack => {
            me.io.receiver().publish_ack();
            peer.published = peer.received;
        }
    }
    if peer.received - peer.published >= interval {
        peer.published = peer.received;
    }
    invariants(me, peer, slots)?;
    invariants(peer, me, slots)
}

/// The one thing a sender must never believe: more consumed than really was.
fn invariants(x: &mut End<'_>, y: &mut End<'_>, slots: u64) -> Result<(), TestCaseError> {
    prop_assert!(x.io.sender().acknowledged() <= y.io.receiver().position());
    prop_assert!(x.sent - x.received <= slots);
    Ok(())
}

/// At the end: counters agree with the model, and a drained, acknowledged direction always
/// takes a message again.
fn drain(x: &mut End<'_>, y: &mut End<'_>) -> Result<(), TestCaseError> {
    prop_assert_eq!(x.io.sender().counters().messages, x.sent);
    prop_assert_eq!(y.io.receiver().counters().messages, x.received);
    while y.io.try_recv(&mut [0; PAYLOAD_SIZE]).is_ok() {}
    y.io.receiver().publish_ack();
    prop_assert_eq!(x.io.try_send(b"after"), Ok(()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Two `Duplex` endpoints against `VecDeque` models: FIFO order, exact bytes, `Full` only
    /// while a message is unacknowledged, `Empty` only when nothing is queued, and no sender
    /// ever believing more consumed than was — with acknowledgements piggybacked both ways and
    /// runs ending early whenever a sender learns everything was consumed (`hot` 0..=3).
    #[test]
    fn behaves_like_a_bounded_queue(
        slots_log in 1u32..6,
        interval in 1u64..40,
        hot in 0u64..4,
        ops in proptest::collection::vec((any::<bool>(), op()), 0..400),
    ) {
        let slots = 1u32 << slots_log;
        let mut r = host_region(slots);
        let mut ch = r.channel().expect("open");
        let mut a = end(ch.duplex(Side::A).expect("first take"), interval, hot);
        let mut b = end(ch.duplex(Side::B).expect("first take"), interval, hot);
        let interval = interval.clamp(1, slots as u64);
        for (at_b, op) in ops {
            if at_b {
                apply(&mut b, &mut a, op, slots as u64, interval)?;
            } else {
                apply(&mut a, &mut b, op, slots as u64, interval)?;
            }
        }
        drain(&mut a, &mut b)?;
        drain(&mut b, &mut a)?;
    }

    /// Arbitrary region contents (random words at random places, after some honest traffic):
    /// opening and using both endpoints never panics, every loop is bounded, and a receiver
    /// never returns more than 56 bytes.
    #[test]
    fn arbitrary_contents_never_panic(
        slots_log in 1u32..5,
        honest in 0usize..40,
        writes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u64>()), 0..64),
        tail_ops in 0usize..64,
    ) {
        let slots = 1u32 << slots_log;
        let mut r = host_region(slots);
        let mut ch = r.channel().expect("open");
        let (mut atx, mut arx) = ch.endpoint(Side::A).expect("first take");
        let (mut btx, mut brx) = ch.endpoint(Side::B).expect("first take");
        let mut buf = [0; PAYLOAD_SIZE];
        for i in 0..honest {
            let _ = atx.try_send(&[i as u8; 9]);
            let _ = btx.try_send(&[i as u8; 3]);
            if i % 3 == 0 { let _ = brx.try_recv(&mut buf); let _ = arx.try_recv(&mut buf); }
        }
        for (index, value) in writes {
            ch.words()[index.index(ch.words().len())].store(value, Ordering::Relaxed);
        }
        for _ in 0..tail_ops {
            for rx in [&mut arx, &mut brx] {
                if let Ok(len) = rx.try_recv(&mut buf) { prop_assert!(len <= PAYLOAD_SIZE); }
                let _ = rx.recv_batch(4, |m| assert!(m.len() <= PAYLOAD_SIZE));
                let _ = rx.prepare_wait(&mut || ());
                rx.finish_wait();
            }
            for tx in [&mut atx, &mut btx] {
                let _ = tx.try_send(b"x");
                let _ = tx.kick(&mut || ());
                let _ = tx.prepare_wait();
                tx.finish_wait();
            }
        }
        // Re-opening over the scribbled header is also safe.
        let _ = Channel::open(r.region());
    }

    /// Opening a region of arbitrary contents and length never panics.
    #[test]
    fn open_arbitrary_identity(
        words in proptest::collection::vec(any::<u64>(), 512..3200),
        slots in prop_oneof![any::<u64>(), (0u32..14).prop_map(|s| 1u64 << s)],
    ) {
        let mut v: Vec<AtomicU64> = words.into_iter().map(AtomicU64::new).collect();
        v.extend((0..8).map(|_| AtomicU64::new(0)));
        let off = v.as_ptr().align_offset(64);
        let end = v.len() - 8;
        let w = &mut v[off..end];
        w[2].store(slots, Ordering::Relaxed);
        w[0].store(channels::layout::MAGIC, Ordering::Relaxed);
        w[1].store(channels::layout::LAYOUT_VERSION, Ordering::Relaxed);
        if let Ok(region) = Region::from_words(w) {
            let len = region.len_bytes();
            if let Ok(ch) = Channel::open(region) {
                prop_assert_eq!(len, region_size(ch.slots()));
            }
        }
    }
}
