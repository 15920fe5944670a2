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
use crate::wire::{encode_op, kind, words_to_bytes, Words, MAX_MESSAGE, OP_BYTES};

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
    pub fn propose_words(
        &mut self,
        op: Op,
        send: impl FnOnce(MemberId, &Words, usize),
    ) -> Result<(u32, FastOut), Error> {
        self.apply_logged();
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
            && self.topo.members().contains(e.origin)
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
        if !self.tree.children(self.me).contains(from)
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
        let (sub, _) = self.subtree_applied();
        if sub > self.commit {
            self.commit = sub;
            self.untrimmed = true;
            self.release_committed();
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
