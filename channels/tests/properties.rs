//! Property tests: the channel behaves like a bounded FIFO queue under any sequence of
//! operations, and no region content whatsoever makes an endpoint panic or misbehave.
#![cfg(not(loom))]

mod common;

use channels::layout::{region_size, PAYLOAD_SIZE};
use channels::{Channel, RecvError, Region, SendError, Side};
use common::HostRegion;
use proptest::prelude::*;
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Against a `VecDeque` model: FIFO order, exact bytes, `Full` only when `slots` messages
    /// are unacknowledged, `Empty` only when nothing is queued.
    #[test]
    fn behaves_like_a_bounded_queue(slots_log in 1u32..6, interval in 1u64..40, ops in proptest::collection::vec(op(), 0..300)) {
        let slots = 1u32 << slots_log;
        let r = HostRegion::new(slots);
        let ch = r.channel();
        let (mut tx, _) = ch.endpoint(Side::A);
        let (_, mut rx) = ch.endpoint(Side::B);
        rx.set_ack_interval(interval);
        let interval = interval.clamp(1, slots as u64);
        let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
        let mut acked = 0u64;
        let (mut sent, mut received) = (0u64, 0u64);
        for op in ops {
            match op {
                Op::Send(m) => match tx.try_send(&m) {
                    Ok(()) => { queue.push_back(m); sent += 1; }
                    Err(SendError::Full) => prop_assert_eq!(sent - acked, slots as u64),
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                },
                Op::Recv => {
                    let mut buf = [0; PAYLOAD_SIZE];
                    match rx.try_recv(&mut buf) {
                        Ok(len) => {
                            let want = queue.pop_front();
                            prop_assert_eq!(Some(&buf[..len]), want.as_deref());
                            received += 1;
                            if received - acked >= interval { acked = received; }
                        }
                        Err(RecvError::Empty) => prop_assert!(queue.is_empty()),
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
                Op::Batch(max) => {
                    let mut got = Vec::new();
                    match rx.recv_batch(max, |m| got.push(m.to_vec())) {
                        Ok(n) => {
                            prop_assert_eq!(n, got.len());
                            for m in got { prop_assert_eq!(Some(m), queue.pop_front()); }
                            received += n as u64;
                            if received - acked >= interval { acked = received; }
                        }
                        Err(RecvError::Empty) => prop_assert!(queue.is_empty()),
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
                Op::Ack => { rx.publish_ack(); acked = received; }
            }
        }
        prop_assert_eq!(tx.counters().messages, sent);
        prop_assert_eq!(rx.counters().messages, received);
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
        let r = HostRegion::new(slots);
        let ch = r.channel();
        let (mut atx, mut arx) = ch.endpoint(Side::A);
        let (mut btx, mut brx) = ch.endpoint(Side::B);
        let mut buf = [0; PAYLOAD_SIZE];
        for i in 0..honest {
            let _ = atx.try_send(&[i as u8; 9]);
            let _ = btx.try_send(&[i as u8; 3]);
            if i % 3 == 0 { let _ = brx.try_recv(&mut buf); let _ = arx.try_recv(&mut buf); }
        }
        for (index, value) in writes {
            r.words()[index.index(r.words().len())].store(value, Ordering::Relaxed);
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
        words in proptest::collection::vec(any::<u64>(), 512..1600),
        slots in prop_oneof![any::<u64>(), (0u32..14).prop_map(|s| 1u64 << s)],
    ) {
        let mut v: Vec<AtomicU64> = words.into_iter().map(AtomicU64::new).collect();
        v.extend((0..8).map(|_| AtomicU64::new(0)));
        let off = v.as_ptr().align_offset(64);
        let w = &v[off..v.len() - 8];
        w[2].store(slots, Ordering::Relaxed);
        w[0].store(channels::layout::MAGIC, Ordering::Relaxed);
        w[1].store(1, Ordering::Relaxed);
        if let Ok(region) = Region::from_words(w) {
            if let Ok(ch) = Channel::open(region) {
                prop_assert_eq!(region.len_bytes(), region_size(ch.slots()));
            }
        }
    }
}
