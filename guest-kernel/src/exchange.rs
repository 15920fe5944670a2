//! The message loops of the channel workloads, independent of the machine:
//! `pingpong` (round trips on each channel in turn, timed) and `stream`
//! (one-way traffic on every channel at once, checksummed).
//!
//! The links, their waiting sends and receives and the machine behind
//! [`Platform`] come from the runtime (`flotilla_rt::link`), so the loops
//! run on the host between two threads over an ordinary memory region in
//! the tests. A loop never blocks without first announcing its wait on the
//! channel (the `channels` crate's wait handshake), so an IPI can always
//! wake it; on `poll` channels it spins.
//!
//! A broken channel stops only itself. When a link reports corruption (the
//! peer wrote garbage into its own ring or control line), or the peer
//! answers with the wrong message, the loops record it as [`Broken`] and
//! go on with the partition's other links; the workload reports the broken
//! ones and fails (exit code [`CHANNEL_EXIT_CODE`], see [`exit_code`]) only
//! when no channel was left to do its job on. A peer that merely stops
//! (it faulted, or never answers) cannot be told apart from a slow one
//! here: its link waits, like any stalled channel, until the run's timeout.
use alloc::vec::Vec;
use channels::{RecvError, SendError, PAYLOAD_SIZE};
pub use flotilla_rt::link::{Broken, ExchangeError, Link, Platform};

/// Exit code of a channel workload none of whose channels could do its job
/// (every one failed to open or broke; also: no channel at all).
pub const CHANNEL_EXIT_CODE: u64 = 5;

/// The exit code of a channel workload that had `channels` channels of
/// which `broken` could not be used to the end: 0 while at least one did
/// its job (the broken ones are reported in the result), else
/// [`CHANNEL_EXIT_CODE`].
pub fn exit_code(channels: usize, broken: usize) -> u64 {
    if broken < channels {
        0
    } else {
        CHANNEL_EXIT_CODE
    }
}

/// Sends `word` (8 bytes), waiting for a free slot.
fn send_word(link: &mut Link<'_>, word: u64, p: &mut impl Platform) -> Result<(), ExchangeError> {
    link.send_bytes(&word.to_le_bytes(), p)
}

/// Receives an 8-byte word, waiting for it.
fn recv_word(link: &mut Link<'_>, p: &mut impl Platform) -> Result<u64, ExchangeError> {
    let mut buf = [0u8; PAYLOAD_SIZE];
    link.recv_bytes(&mut buf, p)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[..8]);
    Ok(u64::from_le_bytes(w))
}

/// Ping side (endpoint A): `rounds` round trips; the round-trip times in
/// cycles of every `stride`-th round are pushed to `samples`.
pub fn ping(
    link: &mut Link<'_>,
    rounds: u64,
    stride: u64,
    samples: &mut Vec<u64>,
    p: &mut impl Platform,
) -> Result<(), ExchangeError> {
    for round in 0..rounds {
        let t0 = p.now();
        send_word(link, round, p)?;
        let echo = recv_word(link, p)?;
        let t1 = p.now();
        if echo != round {
            return Err(ExchangeError::Mismatch {
                expected: round,
                found: echo,
            });
        }
        if round % stride.max(1) == 0 {
            samples.push(t1.wrapping_sub(t0));
        }
    }
    link.kick_rx(p);
    Ok(())
}

/// Pong side (endpoint B): echoes `rounds` messages.
pub fn pong(link: &mut Link<'_>, rounds: u64, p: &mut impl Platform) -> Result<(), ExchangeError> {
    for round in 0..rounds {
        let word = recv_word(link, p)?;
        if word != round {
            return Err(ExchangeError::Mismatch {
                expected: round,
                found: word,
            });
        }
        send_word(link, word, p)?;
    }
    link.kick_rx(p);
    Ok(())
}

/// What [`pingpong`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PingPongTotals {
    /// Per link that completed its rounds: its channel and whether this
    /// partition pinged (endpoint A) or echoed, with the samples it added.
    pub completed: Vec<(u32, bool, core::ops::Range<usize>)>,
    /// The links that broke, in link order.
    pub broken: Vec<Broken>,
}

/// `rounds` round trips on every link in turn, in link (layout) order:
/// pinging where this partition is A, echoing where it is B. Both endpoints
/// of every channel take their links in the same global order, so no two
/// partitions wait on each other in a cycle. A link that breaks is recorded
/// and the next one is taken; its samples so far are kept. Ping samples
/// (every `stride`-th round trip, in cycles) of all links go to `samples`.
pub fn pingpong(
    links: &mut [Link<'_>],
    rounds: u64,
    stride: u64,
    samples: &mut Vec<u64>,
    p: &mut impl Platform,
) -> PingPongTotals {
    let mut totals = PingPongTotals::default();
    for link in links.iter_mut() {
        let first = samples.len();
        let done = if link.side_a {
            ping(link, rounds, stride, samples, p)
        } else {
            pong(link, rounds, p)
        };
        match done {
            Ok(()) => totals
                .completed
                .push((link.channel_id, link.side_a, first..samples.len())),
            Err(error) => totals.broken.push(Broken {
                channel_id: link.channel_id,
                error,
            }),
        }
    }
    totals
}

/// A 64-bit mixing function (splitmix64's finaliser).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The payload of stream message `seq` on channel `channel_id`: two words.
pub fn stream_payload(channel_id: u32, seq: u64) -> [u64; 2] {
    [seq, mix(seq ^ (u64::from(channel_id) << 48))]
}

/// Order-independent checksum contribution of one payload.
pub fn payload_checksum(words: &[u64]) -> u64 {
    words.iter().fold(0u64, |c, &w| c.wrapping_add(mix(w)))
}

/// What a stream endpoint did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamTotals {
    /// Messages sent (over channels where this partition is A).
    pub sent: u64,
    /// Messages received (where it is B).
    pub received: u64,
    /// Checksum of the payloads sent.
    pub sent_checksum: u64,
    /// Checksum of the payloads received.
    pub received_checksum: u64,
    /// The links that broke (they count what they moved before breaking).
    pub broken: Vec<Broken>,
}

/// Stream: on every link where this partition is A, send `messages`
/// messages; where it is B, receive `messages`. All links progress
/// together; when none can, the loop idles (sleeping only if every link
/// is an `ipi` channel). A link that breaks is recorded in
/// [`StreamTotals::broken`] and left alone; the others go on.
pub fn stream(links: &mut [Link<'_>], messages: u64, p: &mut impl Platform) -> StreamTotals {
    let mut totals = StreamTotals::default();
    let mut done: Vec<u64> = links.iter().map(|_| 0).collect();
    let can_sleep = links.iter().all(|l| l.ipi);
    let mut buf = [0u8; PAYLOAD_SIZE];
    loop {
        let mut progress = false;
        let mut finished = true;
        for (link, count) in links.iter_mut().zip(done.iter_mut()) {
            if *count == messages
                || totals
                    .broken
                    .iter()
                    .any(|b| b.channel_id == link.channel_id)
            {
                continue;
            }
            finished = false;
            let before = *count;
            let mut failed = None;
            if link.side_a {
                while *count < messages {
                    let words = stream_payload(link.channel_id, *count);
                    let mut bytes = [0u8; 16];
                    bytes[..8].copy_from_slice(&words[0].to_le_bytes());
                    bytes[8..].copy_from_slice(&words[1].to_le_bytes());
                    match link.io.try_send(&bytes) {
                        Ok(()) => {
                            *count += 1;
                            totals.sent += 1;
                            totals.sent_checksum =
                                totals.sent_checksum.wrapping_add(payload_checksum(&words));
                        }
                        Err(SendError::Full) => break,
                        Err(e) => {
                            failed = Some(ExchangeError::Send(e));
                            break;
                        }
                    }
                }
                if *count != before {
                    link.kick_tx(p);
                }
            } else {
                while *count < messages {
                    match link.io.try_recv(&mut buf) {
                        Ok(len) => {
                            let mut words = [0u64; 7];
                            for (w, chunk) in words.iter_mut().zip(buf[..len].chunks(8)) {
                                let mut b = [0u8; 8];
                                b[..chunk.len()].copy_from_slice(chunk);
                                *w = u64::from_le_bytes(b);
                            }
                            let n = len.div_ceil(8);
                            *count += 1;
                            totals.received += 1;
                            totals.received_checksum = totals
                                .received_checksum
                                .wrapping_add(payload_checksum(&words[..n]));
                        }
                        Err(RecvError::Empty) => break,
                        Err(e) => {
                            failed = Some(ExchangeError::Recv(e));
                            break;
                        }
                    }
                }
                if *count != before {
                    link.kick_rx(p);
                }
            }
            if let Some(error) = failed {
                totals.broken.push(Broken {
                    channel_id: link.channel_id,
                    error,
                });
            }
            progress |= *count != before || failed.is_some();
        }
        if finished {
            return totals;
        }
        if !progress {
            let waiting: Vec<bool> = links
                .iter()
                .zip(&done)
                .map(|(l, &c)| {
                    c < messages && !totals.broken.iter().any(|b| b.channel_id == l.channel_id)
                })
                .collect();
            idle_all(links, &waiting, can_sleep, p);
        }
    }
}

/// No link made progress: announce a wait on every link still `waiting`
/// and sleep if all of them agree (only when every link is `ipi`), else
/// spin.
fn idle_all(links: &mut [Link<'_>], waiting: &[bool], can_sleep: bool, p: &mut impl Platform) {
    if !can_sleep || !waiting.contains(&true) {
        for link in links.iter_mut() {
            link.io.receiver().publish_ack();
        }
        p.relax();
        return;
    }
    p.begin_wait();
    let mut sleep = true;
    for (link, _) in links.iter_mut().zip(waiting).filter(|(_, w)| **w) {
        let id = link.channel_id;
        sleep &= if link.side_a {
            link.io.sender().prepare_wait()
        } else {
            link.io.receiver().prepare_wait(&mut || p.notify(id))
        };
    }
    p.end_wait(sleep);
    for (link, _) in links.iter_mut().zip(waiting).filter(|(_, w)| **w) {
        if link.side_a {
            link.io.sender().finish_wait();
        } else {
            link.io.receiver().finish_wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use channels::{Channel, Corruption, Region, Side};
    use std::sync::atomic::AtomicU64;

    /// A host platform: a counter for a clock, notifications counted,
    /// idling by yielding.
    #[derive(Default)]
    struct Host {
        clock: u64,
        notified: u64,
    }

    impl Platform for Host {
        fn now(&mut self) -> u64 {
            self.clock += 1;
            self.clock
        }
        fn notify(&mut self, _channel_id: u32) {
            self.notified += 1;
        }
        fn begin_wait(&mut self) {}
        fn end_wait(&mut self, _sleep: bool) {
            // No interrupts to wake a sleeper here: yield instead.
            std::thread::yield_now();
        }
        fn relax(&mut self) {
            std::thread::yield_now();
        }
    }

    /// Words of a 64-slot channel region (layout v4: 20 KiB).
    const WORDS: usize = 20 * 1024 / 8;

    #[repr(C, align(64))]
    struct Mem([AtomicU64; WORDS]);

    /// A formatted region, never freed, as ONE channel: both partitions' links come from
    /// it (each side once), which is all safe code can get over one region.
    fn region(slots: u32) -> Channel<'static> {
        assert_eq!(channels::region_size(slots), WORDS * 8);
        let mem: &'static mut Mem = Box::leak(Box::new(Mem([const { AtomicU64::new(0) }; WORDS])));
        Channel::format(Region::from_words(&mut mem.0).expect("aligned"), slots).expect("format")
    }

    fn link_on(ch: &mut Channel<'static>, side: Side, ipi: bool, channel_id: u32) -> Link<'static> {
        Link {
            io: ch.duplex(side).expect("a fresh opening's side"),
            channel_id,
            ipi,
            side_a: side == Side::A,
        }
    }

    fn link(ch: &mut Channel<'static>, side: Side, ipi: bool) -> Link<'static> {
        link_on(ch, side, ipi, 7)
    }

    /// A hostile `side` writes a garbage sequence word into slot 0 of the
    /// ring it sends on (all it can write besides its control line).
    fn corrupt_ring_of(ch: &Channel<'_>, side: Side) {
        use channels::layout::{ring_offset, SEQ_WORD};
        ch.words()[ring_offset(side, 64) / 8 + SEQ_WORD]
            .store(0xdead_beef, std::sync::atomic::Ordering::Relaxed);
    }

    #[test]
    fn ping_pong_round_trips() {
        for ipi in [false, true] {
            let mut mem = region(64);
            let mut b = link(&mut mem, Side::B, ipi);
            let peer = std::thread::spawn(move || pong(&mut b, 1000, &mut Host::default()));
            let mut a = link(&mut mem, Side::A, ipi);
            let mut samples = Vec::new();
            ping(&mut a, 1000, 10, &mut samples, &mut Host::default()).expect("ping");
            peer.join().expect("thread").expect("pong");
            assert_eq!(samples.len(), 100);
            assert!(samples.iter().all(|&s| s >= 1));
        }
    }

    #[test]
    fn pingpong_goes_on_past_a_broken_channel() {
        // Channel 3 with a hostile peer, then channel 4 with an honest one.
        let mut hostile = region(64);
        let mut honest = region(64);
        corrupt_ring_of(&hostile, Side::B);
        let mut b = [link_on(&mut honest, Side::B, true, 4)];
        let peer = std::thread::spawn(move || {
            pingpong(&mut b, 500, 1, &mut Vec::new(), &mut Host::default())
        });
        let mut a = [
            link_on(&mut hostile, Side::A, true, 3),
            link_on(&mut honest, Side::A, true, 4),
        ];
        let mut samples = Vec::new();
        let totals = pingpong(&mut a, 500, 1, &mut samples, &mut Host::default());
        let echoed = peer.join().expect("thread");
        assert_eq!(echoed.completed, vec![(4, false, 0..0)]);
        assert!(echoed.broken.is_empty());
        assert_eq!(totals.completed, vec![(4, true, 0..500)]);
        assert_eq!(samples.len(), 500);
        assert_eq!(totals.broken.len(), 1);
        assert_eq!(totals.broken[0].channel_id, 3);
        assert!(matches!(
            totals.broken[0].error,
            ExchangeError::Recv(RecvError::Corrupted(Corruption::BadSequence { pos: 0, .. }))
        ));
        assert_eq!(exit_code(a.len(), totals.broken.len()), 0);
    }

    #[test]
    fn stream_checksums_agree() {
        let mut mem = region(64);
        let mut b = [link(&mut mem, Side::B, true)];
        let peer = std::thread::spawn(move || stream(&mut b, 5000, &mut Host::default()));
        let mut a = [link(&mut mem, Side::A, true)];
        let sent = stream(&mut a, 5000, &mut Host::default());
        let got = peer.join().expect("thread");
        assert_eq!((sent.sent, got.received), (5000, 5000));
        assert_eq!(sent.sent_checksum, got.received_checksum);
        assert_ne!(sent.sent_checksum, 0);
        assert!(sent.broken.is_empty() && got.broken.is_empty());
    }

    #[test]
    fn stream_goes_on_past_a_broken_channel() {
        for ipi in [false, true] {
            // This partition receives on channel 1 (hostile sender) and on
            // channel 2 (honest sender), and sends on channel 3.
            let mut hostile = region(64);
            let mut honest = region(64);
            let mut back = region(64);
            corrupt_ring_of(&hostile, Side::A);
            let mut others = [
                link_on(&mut honest, Side::A, ipi, 2),
                link_on(&mut back, Side::B, ipi, 3),
            ];
            let peer = std::thread::spawn(move || stream(&mut others, 3000, &mut Host::default()));
            let mut mine = [
                link_on(&mut hostile, Side::B, ipi, 1),
                link_on(&mut honest, Side::B, ipi, 2),
                link_on(&mut back, Side::A, ipi, 3),
            ];
            let totals = stream(&mut mine, 3000, &mut Host::default());
            let theirs = peer.join().expect("thread");
            assert_eq!(totals.broken.len(), 1);
            assert_eq!(totals.broken[0].channel_id, 1);
            assert_eq!((totals.received, totals.sent), (3000, 3000));
            assert_eq!(totals.received_checksum, theirs.sent_checksum);
            assert_eq!(totals.sent_checksum, theirs.received_checksum);
            assert!(theirs.broken.is_empty());
            assert_eq!(exit_code(mine.len(), totals.broken.len()), 0);
        }
    }

    #[test]
    fn a_workload_whose_every_channel_broke_fails() {
        let mut hostile = region(64);
        corrupt_ring_of(&hostile, Side::A);
        let mut only = [link_on(&mut hostile, Side::B, false, 9)];
        let totals = stream(&mut only, 10, &mut Host::default());
        assert_eq!(totals.broken.len(), 1);
        assert_eq!(exit_code(1, totals.broken.len()), CHANNEL_EXIT_CODE);
        assert_eq!(exit_code(3, 2), 0);
        assert_eq!(exit_code(3, 3), CHANNEL_EXIT_CODE);
        assert_eq!(
            exit_code(0, 0),
            CHANNEL_EXIT_CODE,
            "no channel: nothing to do it on"
        );
    }
}
