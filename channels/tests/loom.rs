//! Loom model of the ring's memory ordering, run by `loom.sh`
//! (`RUSTFLAGS="--cfg loom" cargo test -p channels --release --test loom`).
//!
//! The crate's atomics are loom's under `--cfg loom`, so these models explore the real sender
//! and receiver code (each model's threads share the two sides of one channel, as two
//! partitions share one region): payload visibility through the release/acquire sequence word, slot
//! reuse through the acknowledgement (a 2-slot ring wraps), and the two Dekker-style wait
//! handshakes (no lost wake-up in either direction).
#![cfg(loom)]

use channels::layout::{region_size, ID_MAGIC, ID_SLOTS, ID_VERSION, LAYOUT_VERSION, MAGIC};
use channels::{Channel, Duplex, RecvError, Region, SendError, Side, Word};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::ops::{Deref, DerefMut};

const SLOTS: u32 = 2;

/// The words of one region, kept alive by every endpoint over them (see [`channel`]).
type Words = std::sync::Arc<Vec<Word>>;

/// A zeroed region with the identity line written (what the hypervisor hands the guests),
/// opened as ONE channel whose two sides the model's threads share: safe code cannot open a
/// second channel over the same words, and loom has no scoped threads, so the channel's
/// lifetime is extended to `'static` and the words are kept alive by reference counting.
/// Callers declare the returned `Words` before every endpoint they keep (locals drop in
/// reverse order) and move endpoints into threads only inside a [`Held`].
fn channel() -> (Words, Channel<'static>) {
    let mut words: Words =
        std::sync::Arc::new((0..region_size(SLOTS) / 8).map(|_| Word::new(0)).collect());
    let slice = std::sync::Arc::get_mut(&mut words).expect("not shared yet");
    slice[ID_MAGIC].store(MAGIC, Ordering::Relaxed);
    slice[ID_VERSION].store(LAYOUT_VERSION, Ordering::Relaxed);
    slice[ID_SLOTS].store(SLOTS as u64, Ordering::Relaxed);
    let ch = Channel::open(Region::from_words(slice).unwrap()).unwrap();
    // SAFETY: only the lifetime changes. The channel points into the vector's heap buffer,
    // which does not move when the `Arc` moves and is freed only with the last `Arc`; every
    // endpoint is dropped before the `Arc` beside it (a `Held`, or a local `Words` declared
    // first), so no reference into the buffer outlives it.
    let ch = unsafe { std::mem::transmute::<Channel<'_>, Channel<'static>>(ch) };
    (words, ch)
}

/// An endpoint moved into a thread, with the words it points into: fields drop in
/// declaration order, so the endpoint goes before its reference to the words.
struct Held<T> {
    endpoint: T,
    _words: Words,
}

impl<T> Held<T> {
    fn new(endpoint: T, words: &Words) -> Self {
        Self {
            endpoint,
            _words: words.clone(),
        }
    }
}

impl<T> Deref for Held<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.endpoint
    }
}

impl<T> DerefMut for Held<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.endpoint
    }
}

/// Three messages through a two-slot ring: the third reuses slot 0, so it needs the
/// receiver's acknowledgement; every payload word must arrive intact and in order.
#[test]
fn messages_arrive_intact_across_slot_reuse() {
    loom::model(|| {
        let (words, mut ch) = channel();
        let mut tx = Held::new(ch.endpoint(Side::A).expect("first take").0, &words);
        let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
        let producer = thread::spawn(move || {
            for i in 1..=3u64 {
                let payload = [i, i * 10, 0, 0, 0, 0, i * 100];
                loop {
                    match tx.try_send_words(&payload, 56) {
                        Ok(()) => break,
                        Err(SendError::Full) => thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        for i in 1..=3u64 {
            loop {
                match rx.try_recv_words() {
                    Ok((w, len)) => {
                        assert_eq!(len, 56);
                        assert_eq!((w[0], w[1], w[6]), (i, i * 10, i * 100));
                        break;
                    }
                    Err(RecvError::Empty) => thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
        }
        producer.join().unwrap();
    });
}

fn send_spin(io: &mut Duplex<'_>, words: &[u64; 7]) {
    loop {
        match io.try_send_words(words, 56) {
            Ok(()) => return,
            Err(SendError::Full) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

fn recv_spin(io: &mut Duplex<'_>) -> [u64; 7] {
    loop {
        match io.try_recv_words() {
            Ok((w, 56)) => return w,
            Ok((_, len)) => panic!("length {len}"),
            Err(RecvError::Empty) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Request/response between two `Duplex` endpoints with one hot line per direction: every
/// message ends its run, so each request reuses the slot of the previous one, freed by the
/// acknowledgement piggybacked on the response. Slot reuse must never expose a half-written
/// or overwritten message.
#[test]
fn request_response_reuses_slots_safely() {
    loom::model(|| {
        let (words, mut ch) = channel();
        let mut peer = Held::new(ch.duplex(Side::B).expect("first take"), &words);
        let mut io = ch.duplex(Side::A).expect("first take");
        let responder = thread::spawn(move || {
            let io = &mut *peer;
            io.sender().set_hot_slots(1);
            for i in 1..=3u64 {
                let w = recv_spin(io);
                assert_eq!((w[0], w[6]), (i, i * 100));
                send_spin(io, &[i + 10, 0, 0, 0, 0, 0, i]);
            }
        });
        io.sender().set_hot_slots(1);
        for i in 1..=3u64 {
            send_spin(&mut io, &[i, 0, 0, 0, 0, 0, i * 100]);
            let w = recv_spin(&mut io);
            assert_eq!((w[0], w[6]), (i + 10, i));
        }
        responder.join().unwrap();
    });
}

/// A burst right after a response: the first message of the burst ended its run (the
/// response said everything was consumed), so the second one targets the same slot and must
/// wait for the first to be consumed (the guard), never overwrite it.
#[test]
fn a_burst_never_overwrites_an_unread_message() {
    loom::model(|| {
        let (words, mut ch) = channel();
        let mut peer = Held::new(ch.duplex(Side::B).expect("first take"), &words);
        let mut io = ch.duplex(Side::A).expect("first take");
        let responder = thread::spawn(move || {
            let io = &mut *peer;
            let w = recv_spin(io);
            assert_eq!(w[0], 1);
            send_spin(io, &[11, 0, 0, 0, 0, 0, 0]);
            for i in 2..=3u64 {
                let w = recv_spin(io);
                assert_eq!((w[0], w[6]), (i, i * 100));
            }
        });
        io.sender().set_hot_slots(1);
        send_spin(&mut io, &[1, 0, 0, 0, 0, 0, 100]);
        assert_eq!(recv_spin(&mut io)[0], 11);
        send_spin(&mut io, &[2, 0, 0, 0, 0, 0, 200]);
        send_spin(&mut io, &[3, 0, 0, 0, 0, 0, 300]);
        responder.join().unwrap();
    });
}

/// A receiver that decides to sleep is always notified by a sender that sends afterwards.
#[test]
fn receiver_wakeup_is_never_lost() {
    loom::model(|| {
        let (words, mut ch) = channel();
        let mut tx = Held::new(ch.endpoint(Side::A).expect("first take").0, &words);
        let (_, mut rx) = ch.endpoint(Side::B).expect("first take");
        let notified = Arc::new(AtomicBool::new(false));
        let n2 = notified.clone();
        let producer = thread::spawn(move || {
            tx.try_send(b"wake").unwrap();
            tx.kick(&mut || n2.store(true, Ordering::Relaxed));
        });
        let sleeps = rx.prepare_wait(&mut || ());
        producer.join().unwrap();
        if sleeps {
            assert!(notified.load(Ordering::Relaxed), "lost wake-up");
        } else {
            assert_eq!(rx.try_recv(&mut [0; 56]), Ok(4));
        }
    });
}

/// A sender that decides to sleep on a full ring is always notified by a receiver that frees
/// a slot afterwards.
#[test]
fn sender_wakeup_is_never_lost() {
    loom::model(|| {
        let (words, mut ch) = channel();
        let (mut tx, _) = ch.endpoint(Side::A).expect("first take");
        let mut rx = Held::new(ch.endpoint(Side::B).expect("first take").1, &words);
        let notified = Arc::new(AtomicBool::new(false));
        let n2 = notified.clone();
        tx.try_send(b"1").unwrap();
        tx.try_send(b"2").unwrap();
        let consumer = thread::spawn(move || {
            rx.set_ack_interval(SLOTS as u64);
            assert_eq!(rx.try_recv(&mut [0; 56]), Ok(1));
            rx.kick(&mut || n2.store(true, Ordering::Relaxed));
        });
        let sleeps = tx.prepare_wait();
        consumer.join().unwrap();
        if sleeps {
            assert!(notified.load(Ordering::Relaxed), "lost wake-up");
        } else {
            assert_eq!(tx.credits(), Ok(1));
        }
    });
}
