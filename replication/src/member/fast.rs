//! The word-level steady path: the leader's proposal straight into an `ENTRY`'s payload
//! words, and at the other end an `ENTRY` from the parent (at a leaf) or an `ACK` from the
//! only child (at the leader) decoded straight from the words into the log, with the `ACK`
//! reply written into words. No [`crate::wire::Message`] value, no outbox, no frame copy;
//! and the message is handed to the driver's `send` as soon as its words are known (every
//! check done), before the bookkeeping (log, counters, pending updates), so that work
//! overlaps the message's flight.
//!
//! Every fast case checks, before changing anything, that the general path would take its
//! steady branch with the same result, and then has exactly its effects: the same log, commit
//! index, counters, events and bytes on the wire (the general path would have queued the one
//! message the fast path returns). Anything else (another kind, another epoch or phase, a
//! gap or duplicate, a snapshot in progress, messages already queued, an inner tree node, an
//! operation other than `Put` or `Delete` in an entry, any malformed byte) goes through
//! [`Member::handle_bytes`] / [`Member::propose`] unchanged and reports
//! [`FastOut::Queued`]: the driver then drains [`Member::poll_send`] as usual.

use super::{Member, Phase};
use crate::error::Error;
use crate::state::Op;
use crate::topology::MemberId;
use crate::wire::{
    encode_op, expected_len, kind, words_to_bytes, WireError, Words, MAX_MESSAGE, OP_BYTES,
};

/// What a fast-path call left for the driver.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FastOut {
    /// The one message this caused was handed to `send` (nothing was queued).
    Sent,
    /// Handled; nothing to send.
    Done,
    /// Taken by the general path: drain [`Member::poll_send`] (and it may have failed: see
    /// the `Result`).
    Queued,
}

/// Length of an `ACK`.
const ACK_LEN: usize = 16;

#[inline(always)]
fn lo32(w: u64) -> u32 {
    let b = w.to_le_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[inline(always)]
fn hi32(w: u64) -> u64 {
    w >> 32
}

/// `ENTRY` words (the layout of [`crate::wire::Message::encode`]: header, seq, commit,
/// origin_seq and the 28 operation bytes from byte 28).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn entry_words(
    epoch: u32,
    hops: u8,
    seq: u64,
    commit: u64,
    origin: MemberId,
    origin_seq: u32,
    op: &Op,
    out: &mut Words,
) {
    let (tag, o) = match *op {
        Op::Put { key, value } => (1u8, [key, value, 0, 0]),
        Op::Delete { key } => (2, [key, 0, 0, 0]),
        Op::Register { .. } => {
            let (tag, b) = encode_op(op);
            let mut w = [0u64; 4];
            for (i, c) in b.iter().enumerate() {
                w[i / 8] |= u64::from(*c) << (8 * (i % 8));
            }
            (tag, w)
        }
    };
    const _: () = assert!(OP_BYTES == 28);
    out[0] = u64::from(kind::ENTRY)
        | u64::from(hops) << 8
        | u64::from(origin) << 16
        | u64::from(tag) << 24
        | u64::from(epoch) << 32;
    out[1] = seq;
    out[2] = commit;
    out[3] = u64::from(origin_seq) | o[0] << 32;
    out[4] = o[0] >> 32 | o[1] << 32;
    out[5] = o[1] >> 32 | o[2] << 32;
    out[6] = o[2] >> 32 | o[3] << 32;
}

/// The fields of an `ENTRY`.
struct ParsedEntry {
    hops: u8,
    seq: u64,
    commit: u64,
    origin: MemberId,
    origin_seq: u32,
    op: Op,
}

/// The fields of a well-formed `ENTRY` carrying a `Put` or a `Delete`, or `None` (the
/// general decoder decides).
#[inline(always)]
fn parse_entry(w: &Words) -> Option<ParsedEntry> {
    let h = w[0].to_le_bytes();
    let (hops, origin, tag) = (h[1], h[2], h[3]);
    let key = hi32(w[3]) | w[4] << 32;
    let op = match tag {
        1 if hi32(w[5]) | w[6] == 0 => Op::Put {
            key,
            value: hi32(w[4]) | w[5] << 32,
        },
        2 if hi32(w[4]) | w[5] | w[6] == 0 => Op::Delete { key },
        _ => return None,
    };
    Some(ParsedEntry {
        hops,
        seq: w[1],
        commit: w[2],
        origin,
        origin_seq: lo32(w[3]),
        op,
    })
}

impl Member {
    /// [`Member::propose`] on the word-level path: when this member is the open leader of a
    /// tree in which it has exactly one neighbour (N = 2), with nothing queued before the
    /// update, it sequences it and calls `send(to, words, len)` with its `ENTRY` once
    /// ([`FastOut::Sent`]); when it returns, the state is the one `propose` followed by taking
    /// that message from [`Member::poll_send`] would leave. Otherwise it is `propose`
    /// ([`FastOut::Queued`], `send` is not called). Either way the driver calls
    /// [`Member::poll_send`] once its messages are out (the leader applies its copy of the
    /// entry there). `send` must deliver the message (spin on a full channel, or keep it).
    #[inline]
    pub fn propose_words(
        &mut self,
        op: Op,
        send: impl FnOnce(MemberId, &Words, usize),
    ) -> Result<(u32, FastOut), Error> {
        if self.applied != self.logged {
            self.apply_logged();
        }
        // Else an unreleased commit (`Member::apply_logged`) waits until the ENTRY is out:
        // this queues no event before it.
        let oseq = self.next_origin_seq;
        let me = self.me as usize;
        let children = self.tree.children(self.me);
        let child = children.min();
        let fast = self.phase == Phase::Open
            && self.caught_up
            && self.out.is_empty()
            && self.backlog.is_empty()
            && self.tree.parent(self.me).is_none()
            && children.len() == 1
            && !self.window_full()
            && oseq != u32::MAX
            && self.logged != u64::MAX
            && self
                .log_dedup
                .get(me)
                .is_some_and(|&d| d.checked_add(1) == Some(oseq))
            && child.is_some_and(|c| self.known.get(c as usize) == Some(&Some(self.logged)));
        let Some(to) = child.filter(|_| fast) else {
            return self.propose(op).map(|o| (o, FastOut::Queued));
        };
        let (seq, commit) = (self.logged + 1, self.commit);
        let mut w = [0u64; crate::wire::WORDS];
        entry_words(self.epoch, 1, seq, commit, self.me, oseq, &op, &mut w);
        send(to, &w, MAX_MESSAGE);
        if self.unreleased {
            self.unreleased = false;
            self.release_committed();
        }
        // `propose`: number it, keep it pending; `sequence` and `push`: log it, send it.
        self.next_origin_seq = oseq + 1;
        self.pending.push_back((oseq, op));
        self.append(seq, self.me, oseq, op, 0);
        self.count_sent(kind::ENTRY);
        let c = to as usize;
        self.commit_told[c] = self.commit_told[c].max(commit);
        self.known[c] = Some(seq);
        Ok((oseq, FastOut::Sent))
    }

    /// [`Member::handle_bytes`] on the word-level path, for a message of `len` bytes given as
    /// payload words: an `ENTRY` from the parent at a member without children (its `ACK`
    /// goes to `send`, [`FastOut::Sent`]) and an `ACK` from a child at the leader
    /// ([`FastOut::Done`]) are handled without a [`crate::wire::Message`] or the outbox,
    /// anything else by `handle_bytes` ([`FastOut::Queued`], `send` is not called). The
    /// driver calls [`Member::poll_send`] once its messages are out, as after `handle_bytes`.
    #[inline]
    pub fn handle_words(
        &mut self,
        from: MemberId,
        words: &Words,
        len: usize,
        send: impl FnOnce(MemberId, &Words, usize),
    ) -> Result<FastOut, Error> {
        self.apply_logged();
        let h = words[0].to_le_bytes();
        let epoch = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if epoch == self.epoch && self.phase == Phase::Open && self.out.is_empty() {
            if len == MAX_MESSAGE && h[0] == kind::ENTRY {
                if let Some(e) = self.fast_entry_check(from, words) {
                    return Ok(self.fast_entry(from, e, send));
                }
            } else if len == ACK_LEN && h[0] == kind::ACK && h[2] | h[3] == 0 {
                if let Some(r) = self.fast_ack(from, h[1], words[1]) {
                    return Ok(r);
                }
            }
        }
        self.handle_words_general(from, words, len)
    }

    /// [`Member::handle_words`] off the steady path: `handle_bytes` on the message's bytes.
    #[inline(never)]
    fn handle_words_general(
        &mut self,
        from: MemberId,
        words: &Words,
        len: usize,
    ) -> Result<FastOut, Error> {
        let h = words[0].to_le_bytes();
        if len > MAX_MESSAGE {
            // What `handle_bytes` says of bytes longer than any message.
            self.stats.rejected += 1;
            return Err(Error::Wire(match expected_len(h[0]) {
                Some(_) => WireError::BadLength { kind: h[0], len },
                None => WireError::UnknownKind(h[0]),
            }));
        }
        let mut bytes = [0u8; MAX_MESSAGE];
        let n = words_to_bytes(words, len, &mut bytes);
        self.handle_bytes(from, &bytes[..n])
            .map(|()| FastOut::Queued)
    }

    /// Whether an `ENTRY` takes the steady branch at a leaf: its fields, or `None`.
    #[inline(always)]
    fn fast_entry_check(&self, from: MemberId, w: &Words) -> Option<ParsedEntry> {
        let e = parse_entry(w)?;
        let parent = self.tree.parent(self.me)?;
        let ok = parent == from
            && Some(e.seq) == self.logged.checked_add(1)
            && e.seq != u64::MAX
            // `topo.members().contains(origin)`: the members are `0..size`.
            && usize::from(e.origin) < self.topo.size()
            && self.snap_in.is_empty()
            && self.tree.children(self.me).is_empty()
            && self.ready_sent;
        ok.then_some(e)
    }

    /// The steady `ENTRY` branch at a leaf (checked by `fast_entry_check`): the `ACK` first,
    /// then the log.
    #[inline(always)]
    fn fast_entry(
        &mut self,
        from: MemberId,
        e: ParsedEntry,
        send: impl FnOnce(MemberId, &Words, usize),
    ) -> FastOut {
        // `progress` at a leaf: the subtree is this member, which will have logged `seq`.
        let max_hops = self.stats.max_hops.max(e.hops);
        let acked = e.seq > self.ack_sent;
        if acked {
            let mut w = [0u64; crate::wire::WORDS];
            w[0] = u64::from(kind::ACK) | u64::from(max_hops) << 8 | u64::from(self.epoch) << 32;
            w[1] = e.seq;
            send(from, &w, ACK_LEN);
        }
        self.stats.received += 1;
        self.raise_known(from, e.seq);
        self.append(e.seq, e.origin, e.origin_seq, e.op, e.hops);
        if e.commit > self.commit {
            self.commit = e.commit;
            self.untrimmed = true;
            self.release_committed();
        }
        if !acked {
            return FastOut::Done;
        }
        self.ack_sent = e.seq;
        self.count_sent(kind::ACK);
        FastOut::Sent
    }

    /// The steady `ACK` branch at the leader, or `None` without any effect.
    #[inline(always)]
    fn fast_ack(&mut self, from: MemberId, hops: u8, applied: u64) -> Option<FastOut> {
        let f = from as usize;
        let children = self.tree.children(self.me);
        if !children.contains(from)
            || applied > self.known.get(f).copied()??
            || self.tree.parent(self.me).is_some()
            || !self.backlog.is_empty()
        {
            return None;
        }
        self.stats.received += 1;
        self.child_ack[f] = self.child_ack[f].max(applied);
        self.child_hops[f] = self.child_hops[f].max(hops);
        self.stats.max_hops = self.stats.max_hops.max(hops);
        // `subtree_applied`, at once for an only child.
        let sub = if children.without(from).is_empty() {
            self.logged.min(self.child_ack[f])
        } else {
            self.subtree_applied().0
        };
        if sub > self.commit {
            self.commit = sub;
            self.untrimmed = true;
            // `Committed` is queued by the next call (`Member::apply_logged`), after this
            // returns: `Member::is_committed` says so already.
            self.unreleased = true;
        }
        Some(FastOut::Done)
    }

    /// The counters of [`Member::send`] for a message of kind `k` sent without the outbox.
    #[inline(always)]
    fn count_sent(&mut self, k: u8) {
        self.stats.sent += 1;
        if let Some(c) = self.stats.sent_by_kind.get_mut(k as usize) {
            *c += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::{Config, Event};
    use crate::state::{Name, Service};
    use crate::topology::{MemberSet, Topology};
    use crate::wire::{bytes_to_words, Message};
    use alloc::collections::VecDeque;
    use alloc::vec::Vec;

    /// Members plus one FIFO of message bytes per (from, to), driven either through the
    /// general interface or the word-level one.
    struct World {
        fast: bool,
        ms: Vec<Member>,
        wires: Vec<VecDeque<Vec<u8>>>,
        hits: u64,
        events: Vec<Vec<Event>>,
    }

    impl World {
        fn new(topo: &Topology, fast: bool, cfg: Config) -> Self {
            let n = topo.size();
            let ms = (0..u8::try_from(n).unwrap())
                .map(|i| Member::new(i, topo.clone(), cfg, 1, topo.members()))
                .collect();
            let mut w = Self {
                fast,
                ms,
                wires: (0..n * n).map(|_| VecDeque::new()).collect(),
                hits: 0,
                events: (0..n).map(|_| Vec::new()).collect(),
            };
            for i in 0..n {
                w.drain(i);
            }
            w
        }

        fn n(&self) -> usize {
            self.ms.len()
        }

        /// Moves member `i`'s queued messages onto the wires (which applies what it logged).
        fn drain(&mut self, i: usize) {
            let n = self.n();
            while let Some((to, msg)) = self.ms[i].poll_send() {
                self.wires[i * n + to as usize].push_back(msg.encode().as_bytes().to_vec());
            }
        }

        fn sent(&mut self, i: usize, got: Option<(MemberId, Words, usize)>) {
            if let Some((to, w, len)) = got {
                let mut b = [0u8; MAX_MESSAGE];
                let n = words_to_bytes(&w, len, &mut b);
                let nn = self.n();
                self.wires[i * nn + to as usize].push_back(b[..n].to_vec());
            }
        }

        fn propose(&mut self, i: usize, op: Op) -> Result<u32, Error> {
            let r = if self.fast {
                let mut got = None;
                let r = self.ms[i].propose_words(op, |to, w, len| got = Some((to, *w, len)));
                if matches!(r, Ok((_, FastOut::Sent))) {
                    self.hits += 1;
                    assert!(got.is_some());
                } else {
                    assert!(got.is_none());
                }
                self.sent(i, got);
                r.map(|(o, _)| o)
            } else {
                self.ms[i].propose(op)
            };
            self.drain(i);
            r
        }

        /// Delivers the next message from `from` to `to`, if any.
        fn deliver(&mut self, from: usize, to: usize) -> Option<Result<(), Error>> {
            let n = self.n();
            let bytes = self.wires[from * n + to].pop_front()?;
            let f = u8::try_from(from).unwrap();
            let r = if self.fast {
                let mut got = None;
                let r = self.ms[to].handle_words(
                    f,
                    &bytes_to_words(&bytes),
                    bytes.len(),
                    |t, w, len| {
                        got = Some((t, *w, len));
                    },
                );
                match r {
                    Ok(FastOut::Sent) => {
                        self.hits += 1;
                        assert!(got.is_some());
                    }
                    Ok(FastOut::Done) => self.hits += 1,
                    _ => assert!(got.is_none()),
                }
                self.sent(to, got);
                r.map(|_| ())
            } else {
                self.ms[to].handle_bytes(f, &bytes)
            };
            self.drain(to);
            Some(r)
        }

        fn inject(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
            let n = self.n();
            self.wires[from * n + to].push_front(bytes);
        }

        fn flush(&mut self, i: usize) -> bool {
            let r = self.ms[i].flush();
            self.drain(i);
            r
        }

        fn membership(&mut self, epoch: u32, alive: MemberSet) {
            for i in 0..self.n() {
                if alive.contains(u8::try_from(i).unwrap()) {
                    self.ms[i].on_membership(epoch, alive);
                    self.drain(i);
                }
            }
        }

        fn poll_events(&mut self, i: usize) {
            while let Some(e) = self.ms[i].poll_event() {
                self.events[i].push(e);
            }
        }
    }

    fn ops(i: u64) -> Op {
        match i % 5 {
            0 | 1 => Op::Put {
                key: i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                value: !i,
            },
            2 => Op::Delete { key: i % 7 },
            3 => Op::Put {
                key: u64::MAX,
                value: u64::MAX - i,
            },
            _ => Op::Register {
                name: Name::new(b"svc").unwrap(),
                service: Service {
                    partition: 0xfffe,
                    channel: u16::try_from(i % 100).unwrap(),
                },
            },
        }
    }

    fn same(g: &World, f: &World, step: usize) {
        for (i, (a, b)) in g.ms.iter().zip(&f.ms).enumerate() {
            for o in 0..=a.next_origin_seq {
                assert_eq!(a.is_committed(o), b.is_committed(o), "{i} {o} step {step}");
            }
        }
        assert_eq!(g.ms, f.ms, "members differ after step {step}");
        assert_eq!(g.wires, f.wires, "wire bytes differ after step {step}");
        assert_eq!(g.events, f.events, "events differ after step {step}");
    }

    /// One seeded schedule of proposals, deliveries, flushes, duplicates, corrupt bytes and
    /// epoch changes, run through both interfaces in lockstep; returns the fast hits.
    fn lockstep(topo: &Topology, seed: u64, steps: usize, cfg: Config) -> u64 {
        let mut g = World::new(topo, false, cfg);
        let mut f = World::new(topo, true, cfg);
        let n = topo.size();
        let mut x = seed | 1;
        let mut rnd = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let mut epoch = 1;
        let mut next_op = 0;
        same(&g, &f, 0);
        for step in 1..=steps {
            let r = rnd(100);
            let i = usize::try_from(rnd(n as u64)).unwrap();
            let j = usize::try_from(rnd(n as u64)).unwrap();
            match r {
                0..=29 => {
                    next_op += 1;
                    let op = ops(next_op);
                    assert_eq!(g.propose(i, op), f.propose(i, op), "step {step}");
                }
                30..=84 => {
                    assert_eq!(g.deliver(i, j), f.deliver(i, j), "step {step}");
                }
                85..=89 => assert_eq!(g.flush(i), f.flush(i)),
                90..=93 => {
                    // A duplicate or a corrupted copy of the next message on a wire.
                    let k = i * n + j;
                    if let Some(b) = g.wires[k].front().cloned() {
                        let mut b2 = b.clone();
                        if r == 91 {
                            b2[usize::try_from(rnd(b.len() as u64)).unwrap()] ^= 0x10;
                        }
                        g.inject(i, j, b2.clone());
                        f.inject(i, j, b2);
                    }
                }
                94..=95 => {
                    epoch += 1;
                    let alive = topo.members();
                    g.membership(epoch, alive);
                    f.membership(epoch, alive);
                }
                _ => {
                    g.poll_events(i);
                    f.poll_events(i);
                    // With every event drained: committed exactly when `Committed` was seen.
                    for w in [&g, &f] {
                        for o in 0..=w.ms[i].next_origin_seq {
                            let seen = w.events[i].contains(&Event::Committed { origin_seq: o });
                            assert_eq!(w.ms[i].is_committed(o), seen, "{i} {o} step {step}");
                        }
                    }
                }
            }
            same(&g, &f, step);
        }
        f.hits
    }

    #[test]
    fn fast_and_general_paths_agree_two_members() {
        let topo = Topology::line(2).unwrap();
        let mut hits = 0;
        for seed in 1..=40 {
            hits += lockstep(&topo, seed * 0x1234_5679, 400, Config::default());
        }
        assert!(hits > 1000, "the fast path was taken {hits} times");
    }

    #[test]
    fn fast_and_general_paths_agree_small_window_and_retain() {
        let topo = Topology::line(2).unwrap();
        let cfg = Config {
            window: 2,
            retain: 1,
            ..Config::default()
        };
        for seed in 1..=40 {
            lockstep(&topo, seed * 0x9e37_79b9, 400, cfg);
        }
    }

    #[test]
    fn fast_and_general_paths_agree_larger_trees() {
        for topo in [Topology::line(3).unwrap(), Topology::hypercube(2).unwrap()] {
            for seed in 1..=20 {
                lockstep(&topo, seed * 0x5bd1_e995, 400, Config::default());
            }
        }
    }

    /// A proposal through a steady N = 2 group: the same bytes on the wire and the same
    /// members after every message, and no message ever queued on the fast side.
    #[test]
    fn steady_exchange_is_identical_message_by_message() {
        let topo = Topology::line(2).unwrap();
        let mut g = World::new(&topo, false, Config::default());
        let mut f = World::new(&topo, true, Config::default());
        while g.deliver(0, 1).is_some() | g.deliver(1, 0).is_some() {}
        while f.deliver(0, 1).is_some() | f.deliver(1, 0).is_some() {}
        same(&g, &f, 0);
        for k in 0..50 {
            let op = ops(k);
            let hits = f.hits;
            assert_eq!(g.propose(0, op), f.propose(0, op));
            same(&g, &f, 1);
            let entry = g.wires[1].front().unwrap().clone();
            assert!(matches!(Message::decode(&entry), Ok(Message::Entry { .. })));
            assert_eq!(g.deliver(0, 1), Some(Ok(())));
            assert_eq!(f.deliver(0, 1), Some(Ok(())));
            same(&g, &f, 2);
            let oseq = u32::try_from(k + 1).unwrap();
            assert!(!f.ms[0].is_committed(oseq) && !g.ms[0].is_committed(oseq));
            // Straight after the ACK (nothing drained): committed, `Committed` not queued yet
            // on the fast side, and queued by the next call.
            let ack = f.wires[2].pop_front().unwrap();
            let o = f.ms[0].handle_words(
                1,
                &bytes_to_words(&ack),
                ack.len(),
                |_, _, _| unreachable!(),
            );
            assert_eq!(o, Ok(FastOut::Done));
            assert!(f.ms[0].is_committed(oseq));
            assert_eq!(f.ms[0].uncommitted(), 0);
            assert!(!f.ms[0]
                .events
                .contains(&Event::Committed { origin_seq: oseq }));
            f.hits += 1;
            f.drain(0);
            assert_eq!(g.deliver(1, 0), Some(Ok(())));
            assert!(g.ms[0].is_committed(oseq));
            same(&g, &f, 3);
            g.poll_events(0);
            f.poll_events(0);
            same(&g, &f, 4);
            assert!(f.events[0].contains(&Event::Committed {
                origin_seq: u32::try_from(k + 1).unwrap()
            }));
            // Proposal, ACK at the leader, and the ENTRY at the follower unless it carries
            // a registration (the general decoder takes those).
            let expected = if matches!(op, Op::Register { .. }) {
                2
            } else {
                3
            };
            assert_eq!(f.hits - hits, expected, "round {k}");
        }
        assert_eq!(
            f.ms[1].commit(),
            49,
            "the commit index rides on the next entry"
        );
    }

    /// Every single-bit flip and every length of the steady `ENTRY` and `ACK`, handed to
    /// both interfaces: the same result, the same member, the same bytes sent.
    #[test]
    fn damaged_steady_messages_are_judged_alike() {
        let topo = Topology::line(2).unwrap();
        let mut g = World::new(&topo, false, Config::default());
        while g.deliver(0, 1).is_some() | g.deliver(1, 0).is_some() {}
        for k in 0..3 {
            g.propose(0, ops(k)).unwrap();
            while g.deliver(0, 1).is_some() | g.deliver(1, 0).is_some() {}
        }
        g.propose(0, ops(3)).unwrap();
        let entry = g.wires[1].front().unwrap().clone();
        let at_follower = g.ms[1].clone();
        g.deliver(0, 1).unwrap().unwrap();
        let ack = g.wires[2].front().unwrap().clone();
        let at_leader = g.ms[0].clone();
        let mut fast_hits = 0;
        for (from, member, good) in [(0u8, &at_follower, &entry), (1, &at_leader, &ack)] {
            let mut inputs: Vec<Vec<u8>> = Vec::new();
            for bit in 0..good.len() * 8 {
                let mut b = good.clone();
                b[bit / 8] ^= 1 << (bit % 8);
                inputs.push(b);
            }
            for len in 0..=MAX_MESSAGE {
                let mut b = good.clone();
                b.resize(len, 0);
                inputs.push(b);
            }
            inputs.push(good.clone());
            for b in inputs {
                let (mut general, mut fast) = (member.clone(), member.clone());
                let rg = general.handle_bytes(from, &b);
                let mut sent_g = Vec::new();
                while let Some((t, m)) = general.poll_send() {
                    sent_g.push((t, m.encode().as_bytes().to_vec()));
                }
                let mut sent_f = Vec::new();
                let rf = fast.handle_words(from, &bytes_to_words(&b), b.len(), |t, w, len| {
                    let mut out = [0u8; MAX_MESSAGE];
                    let n = words_to_bytes(w, len, &mut out);
                    sent_f.push((t, out[..n].to_vec()));
                });
                fast_hits += u64::from(matches!(rf, Ok(FastOut::Sent | FastOut::Done)));
                while let Some((t, m)) = fast.poll_send() {
                    sent_f.push((t, m.encode().as_bytes().to_vec()));
                }
                assert_eq!(rg, rf.map(|_| ()), "{b:?}");
                assert_eq!(general, fast, "{b:?}");
                assert_eq!(sent_g, sent_f, "{b:?}");
            }
        }
        assert!(fast_hits >= 2, "{fast_hits}");
        // Longer than any message (only the word interface can say so): refused.
        for kind in [kind::ENTRY, 0, 200] {
            let mut fast = at_follower.clone();
            let mut w = bytes_to_words(&entry);
            w[0] = (w[0] & !0xff) | u64::from(kind);
            let r = fast.handle_words(0, &w, MAX_MESSAGE + 1, |_, _, _| unreachable!());
            assert!(matches!(r, Err(Error::Wire(_))), "{r:?}");
            assert_eq!(fast.stats().rejected, at_follower.stats().rejected + 1);
        }
    }
}
