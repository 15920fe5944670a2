//! Property tests: the channel behaves like a bounded FIFO queue under any sequence of
//! operations, and no region content whatsoever makes an endpoint panic or misbehave.
#![cfg(not(loom))]

mod common;

use channels::layout::{region_size, PAYLOAD_SIZE};
use channels::{Channel, RecvError, Region, SendError, Side};
use common::HostRegion;
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

/// One direction of the channel and its model: the messages in flight, and what the
/// receiver has consumed and published.
struct Direction<'a> {
    tx: channels::Sender<'a>,
    rx: channels::Receiver<'a>,
    slots: u64,
    interval: u64,
    queue: VecDeque<Vec<u8>>,
    sent: u64,
    received: u64,
    published: u64,
}

impl Direction<'_> {
    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Send(m) => match self.tx.try_send(&m) {
                Ok(()) => {
                    self.queue.push_back(m);
                    self.sent += 1;
                }
                // Full only while a message is not acknowledged yet (the ring is full, or
                // the slot that ended the last run still holds an unacknowledged message),
                // and never more than `slots` unacknowledged ones are accepted.
                Err(SendError::Full) => {
                    prop_assert!(self.sent > self.published);
                    prop_assert_eq!(self.tx.credits(), Ok(0));
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            },
            Op::Recv => {
                let mut buf = [0; PAYLOAD_SIZE];
                match self.rx.try_recv(&mut buf) {
                    Ok(len) => {
                        let want = self.queue.pop_front();
                        prop_assert_eq!(Some(&buf[..len]), want.as_deref());
                        self.received += 1;
                    }
                    Err(RecvError::Empty) => prop_assert!(self.queue.is_empty()),
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
            }
            Op::Batch(max) => {
                let mut got = Vec::new();
                match self.rx.recv_batch(max, |m| got.push(m.to_vec())) {
                    Ok(n) => {
                        prop_assert_eq!(n, got.len());
                        for m in got {
                            prop_assert_eq!(Some(m), self.queue.pop_front());
                        }
                        self.received += n as u64;
                    }
                    Err(RecvError::Empty) => prop_assert!(self.queue.is_empty()),
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
            }
            Op::Ack => {
                self.rx.publish_ack();
                self.published = self.received;
            }
        }
        if self.received - self.published >= self.interval {
            self.published = self.received;
        }
        prop_assert!(self.sent - self.received <= self.slots);
        Ok(())
    }
}

fn direction<'a>(
    mut tx: channels::Sender<'a>,
    mut rx: channels::Receiver<'a>,
    slots: u32,
    interval: u64,
    hot: u64,
) -> Direction<'a> {
    tx.set_hot_slots(hot);
    rx.set_ack_interval(interval);
    Direction {
        tx,
        rx,
        slots: slots as u64,
        interval: interval.clamp(1, slots as u64),
        queue: VecDeque::new(),
        sent: 0,
        received: 0,
        published: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Both directions at once against `VecDeque` models: FIFO order, exact bytes, `Full`
    /// only while a message is unacknowledged, `Empty` only when nothing is queued — with
    /// acknowledgements piggybacked both ways and runs ending early whenever the sender
    /// knows everything was consumed (`hot` from 0 = never to 3).
    #[test]
    fn behaves_like_a_bounded_queue(
        slots_log in 1u32..6,
        interval in 1u64..40,
        hot in 0u64..4,
        ops in proptest::collection::vec((any::<bool>(), op()), 0..400),
    ) {
        let slots = 1u32 << slots_log;
        let r = HostRegion::new(slots);
        let ch = r.channel();
        let (atx, arx) = ch.endpoint(Side::A);
        let (btx, brx) = ch.endpoint(Side::B);
        let mut dirs = [
            direction(atx, brx, slots, interval, hot),
            direction(btx, arx, slots, interval, hot),
        ];
        for (backwards, op) in ops {
            dirs[backwards as usize].apply(op)?;
        }
        for d in &mut dirs {
            prop_assert_eq!(d.tx.counters().messages, d.sent);
            prop_assert_eq!(d.rx.counters().messages, d.received);
            // Drained and acknowledged, a direction always takes a message again.
            while d.rx.try_recv(&mut [0; PAYLOAD_SIZE]).is_ok() {}
            d.rx.publish_ack();
            prop_assert_eq!(d.tx.try_send(b"after"), Ok(()));
        }
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
        w[1].store(channels::layout::LAYOUT_VERSION, Ordering::Relaxed);
        if let Ok(region) = Region::from_words(w) {
            if let Ok(ch) = Channel::open(region) {
                prop_assert_eq!(region.len_bytes(), region_size(ch.slots()));
            }
        }
    }
}
