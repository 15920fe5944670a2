//! The body of the channels fuzz target `receiver`, as a plain function over bytes: the
//! cargo-fuzz target (`fuzz_targets/receiver.rs`) calls it, and so does the corpus replay test of
//! the main workspace (`channels/tests/fuzz_corpus.rs`, stable), which includes this file with
//! `#[path]`.
//!
//! Both endpoints of a channel over a region whose contents the input controls.
//!
//! The input is a small program: the first byte picks the ring size (2..=32 slots), then each
//! command either scribbles on the region (single words, or runs of raw input bytes — the
//! identity line, control and private lines and rings alike) or drives an endpoint operation
//! (send and receive in every flavour, through a `Duplex` or its bare halves, batch,
//! wait/kick, hot-slot and ack-interval settings, re-open). Nothing may panic or hang, and every received length must be at most 56.

use channels::{region_size, Channel, Region, Side, PAYLOAD_SIZE};
use std::sync::atomic::{AtomicU64, Ordering};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }
    fn u64(&mut self) -> Option<u64> {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.byte()?;
        }
        Some(u64::from_le_bytes(b))
    }
}

/// `receiver`: runs the program in `data` (see the module doc); panics on a broken invariant.
pub fn receiver(data: &[u8]) {
    let mut input = Input(data);
    let Some(first) = input.byte() else { return };
    let slots = 1u32 << (1 + first % 5);
    let len = region_size(slots) / 8;
    let mut backing: Vec<AtomicU64> = (0..len + 8).map(|_| AtomicU64::new(0)).collect();
    let off = backing.as_ptr().align_offset(64);
    let region = Region::from_words(&mut backing[off..off + len]).expect("aligned");
    let Ok(mut ch) = Channel::format(region, slots) else {
        return;
    };
    // The raw words, for the scribbling commands (the region itself is the channel's).
    let words = ch.words();
    let (Some(mut a), Some(mut b)) = (ch.duplex(Side::A), ch.duplex(Side::B)) else {
        unreachable!("a fresh opening hands out each side once");
    };
    assert!(ch.duplex(Side::A).is_none() && ch.endpoint(Side::B).is_none());
    let mut buf = [0u8; PAYLOAD_SIZE];
    let mut counter = 0u8;
    while let Some(cmd) = input.byte() {
        // The sending endpoint and the receiving one (the other side).
        let (me, peer) = if cmd & 0x80 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        match cmd & 0x0f {
            0 => {
                // One word anywhere in the region.
                let (Some(i), Some(v)) = (input.u16(), input.u64()) else {
                    return;
                };
                words[i as usize % len].store(v, Ordering::Relaxed);
            }
            1 => {
                // A run of raw bytes at a word offset (up to 16 words).
                let (Some(i), Some(n)) = (input.u16(), input.byte()) else {
                    return;
                };
                for k in 0..(n % 17) as usize {
                    let Some(v) = input.u64() else { return };
                    words[(i as usize + k) % len].store(v, Ordering::Relaxed);
                }
            }
            2 | 3 => {
                let n = input.byte().unwrap_or(0) % 64;
                counter = counter.wrapping_add(1);
                let msg = &[counter; 64][..n as usize];
                // Through the duplex (piggybacking) or the bare sender.
                let _ = if cmd & 1 == 0 {
                    me.try_send(msg)
                } else {
                    me.sender().try_send(msg)
                };
            }
            4 | 5 => {
                let got = if cmd & 1 == 0 {
                    peer.try_recv(&mut buf)
                } else {
                    peer.receiver().try_recv(&mut buf)
                };
                if let Ok(n) = got {
                    assert!(n <= PAYLOAD_SIZE);
                }
            }
            6 => {
                let max = input.byte().unwrap_or(1) as usize;
                let _ = peer
                    .receiver()
                    .recv_batch(max, |m| assert!(m.len() <= PAYLOAD_SIZE));
            }
            7 => {
                if let Ok(m) = peer.receiver().recv_slot() {
                    assert!(m.len() <= PAYLOAD_SIZE);
                    for i in 0..8 {
                        let _ = m.word(i);
                    }
                    let _ = m.copy_to(&mut buf);
                }
            }
            8 => {
                let _ = peer.try_recv_typed::<[u8; 16]>();
                let _ = peer.try_recv_words();
                let _ = peer.receiver().try_recv_words();
            }
            9 => {
                let mut n = 0;
                if peer.receiver().prepare_wait(&mut || n += 1) {
                    peer.receiver().finish_wait();
                }
                let _ = me.sender().kick(&mut || n += 1);
                if me.sender().prepare_wait() {
                    me.sender().finish_wait();
                }
                let _ = peer.receiver().kick(&mut || n += 1);
            }
            10 => {
                let _ = me.sender().credits();
                peer.receiver().publish_ack();
                peer.receiver()
                    .set_ack_interval(input.byte().unwrap_or(0) as u64);
                me.sender()
                    .set_hot_slots(input.byte().unwrap_or(4) as u64 % 9);
            }
            11 => {
                let msgs: [&[u8]; 3] = [b"one", &[9; 56], b""];
                let _ = me.sender().send_batch(&msgs);
            }
            12 => {
                if let Ok(mut w) = me.sender().send_slot() {
                    let i = input.byte().unwrap_or(0) as usize;
                    let _ = w.write_word(i % 9, 7);
                    let _ = w.commit(input.byte().unwrap_or(0) as usize);
                }
            }
            13 => {
                // Re-open (after the input scribbled a new generation): the identity line is
                // validated again, whatever else the input wrote into it.
                if ch.reopen().is_ok() {
                    assert_eq!(len * 8, region_size(ch.slots()));
                }
            }
            _ => {
                let _ = peer.receiver().is_ready();
            }
        }
    }
}
