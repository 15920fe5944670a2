//! The byte contract: every protocol message in one 56-byte channel payload
//! ("replication protocol v2", `docs/replication.md`).
//!
//! Every message starts with an 8-byte header: byte 0 the kind, byte 1 a kind-specific byte
//! (the protocol version in `STATE`, the hop count in `ENTRY` and `ACK`, the initiator in the
//! shootdown messages, bits 0..=23 of the chunk index with bytes 2 and 3 in `SNAP_CHUNK`),
//! byte 2 the origin and byte 3 the operation tag (`PROPOSE`, `ENTRY`), bytes 4..8 the epoch
//! (`u32`). All integers are little-endian. Each kind has one exact length; header bytes a
//! kind does not use, and padding, must be zero. [`Message::decode`] treats its input as
//! hostile: anything else is a [`WireError`], never a panic.

use crate::state::{Name, Op, Service, MAX_NAME};
use crate::topology::MemberId;

/// The protocol version carried in every `STATE` message.
pub const PROTOCOL_VERSION: u8 = 2;

/// A channel payload.
pub const MAX_MESSAGE: usize = 56;

/// Snapshot bytes per `SNAP_CHUNK`.
pub const CHUNK: usize = 48;

/// Largest snapshot chunk index (24 bits).
pub const MAX_CHUNK_INDEX: u32 = (1 << 24) - 1;

pub(crate) const OP_BYTES: usize = 28;

/// Payload words of a channel message (byte `i` of a message is byte `i % 8` of word `i / 8`,
/// little-endian), the representation the fast path ([`crate::Member::propose_words`],
/// [`crate::Member::handle_words`]) reads and writes.
pub const WORDS: usize = MAX_MESSAGE / 8;

/// A message as payload words.
pub type Words = [u64; WORDS];

/// The first `len` bytes of `words` (at most [`MAX_MESSAGE`]).
pub fn words_to_bytes(words: &Words, len: usize, out: &mut [u8; MAX_MESSAGE]) -> usize {
    for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    len.min(MAX_MESSAGE)
}

/// `bytes` (at most [`MAX_MESSAGE`]) as payload words, zero past the end.
pub fn bytes_to_words(bytes: &[u8]) -> Words {
    let mut w = [0u64; WORDS];
    for (i, c) in bytes.iter().take(MAX_MESSAGE).enumerate() {
        w[i / 8] |= u64::from(*c) << (8 * (i % 8));
    }
    w
}

/// Message kinds (byte 0).
pub mod kind {
    /// `STATE`: a member's position at the start of an epoch.
    pub const STATE: u8 = 1;
    /// `READY`: this subtree is synchronized (convergecast to the leader).
    pub const READY: u8 = 2;
    /// `OPEN`: the view change is over (broadcast from the leader).
    pub const OPEN: u8 = 3;
    /// `PROPOSE`: an update on its way up to the leader.
    pub const PROPOSE: u8 = 4;
    /// `ENTRY`: a log entry.
    pub const ENTRY: u8 = 5;
    /// `ACK`: cumulative acknowledgement of a subtree.
    pub const ACK: u8 = 6;
    /// `COMMIT`: the commit index, when no entry carries it.
    pub const COMMIT: u8 = 7;
    /// `SNAP_BEGIN`: a snapshot follows.
    pub const SNAP_BEGIN: u8 = 8;
    /// `SNAP_CHUNK`: 48 snapshot bytes.
    pub const SNAP_CHUNK: u8 = 9;
    /// `SNAP_END`: the snapshot's checksum.
    pub const SNAP_END: u8 = 10;
    /// `INVALIDATE`: a shootdown on its way out.
    pub const INVALIDATE: u8 = 11;
    /// `INVALIDATE_ACK`: a subtree has invalidated.
    pub const INVALIDATE_ACK: u8 = 12;
}

/// Why bytes are not a message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WireError {
    /// Empty input or an unknown kind byte.
    UnknownKind(u8),
    /// The length is not this kind's length.
    BadLength {
        /// The kind.
        kind: u8,
        /// The length received.
        len: usize,
    },
    /// A `STATE` with another protocol version.
    BadVersion(u8),
    /// An unknown operation tag.
    BadOp(u8),
    /// A service name that is empty, contains a zero, or has garbage after its padding.
    BadName,
    /// A byte that must be zero is not.
    NonZeroPadding,
}

/// One protocol message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Message {
    /// Sent to every tree neighbour when a member adopts an epoch.
    State {
        /// The epoch.
        epoch: u32,
        /// Entries applied.
        applied: u64,
        /// Commit index known.
        commit: u64,
    },
    /// Child to parent: this subtree is synchronized.
    Ready {
        /// The epoch.
        epoch: u32,
    },
    /// Parent to children: the view change is over; every member has applied `upto`.
    Open {
        /// The epoch.
        epoch: u32,
        /// The longest surviving log.
        upto: u64,
    },
    /// An update going up to the leader.
    Propose {
        /// The epoch.
        epoch: u32,
        /// Who proposed it.
        origin: MemberId,
        /// The origin's number for it, from 1.
        origin_seq: u32,
        /// The update.
        op: Op,
    },
    /// A log entry.
    Entry {
        /// The epoch.
        epoch: u32,
        /// Tree hops from the member holding it to the receiver.
        hops: u8,
        /// Log position, from 1.
        seq: u64,
        /// The sender's commit index (piggybacked).
        commit: u64,
        /// Who proposed it.
        origin: MemberId,
        /// The origin's number for it.
        origin_seq: u32,
        /// The update.
        op: Op,
    },
    /// Child to parent: every member of the subtree has applied `applied`.
    Ack {
        /// The epoch.
        epoch: u32,
        /// Largest hop count of an entry seen in the subtree.
        hops: u8,
        /// Applied by the whole subtree.
        applied: u64,
    },
    /// The commit index, parent to children.
    Commit {
        /// The epoch.
        epoch: u32,
        /// Commit index.
        commit: u64,
    },
    /// A snapshot of the state after entry `seq`, `len` bytes in chunks.
    SnapBegin {
        /// The epoch.
        epoch: u32,
        /// Entries applied in the snapshot.
        seq: u64,
        /// Snapshot bytes.
        len: u32,
    },
    /// Snapshot bytes `48 * index ..`.
    SnapChunk {
        /// The epoch.
        epoch: u32,
        /// Chunk number, from 0 (24 bits).
        index: u32,
        /// The bytes (the last chunk is zero-padded).
        data: [u8; CHUNK],
    },
    /// End of the snapshot.
    SnapEnd {
        /// The epoch.
        epoch: u32,
        /// As in `SnapBegin`.
        seq: u64,
        /// [`crate::state::checksum`] of the snapshot bytes.
        checksum: u64,
    },
    /// A shootdown: invalidate `addr`.
    Invalidate {
        /// The epoch.
        epoch: u32,
        /// Who started it.
        initiator: MemberId,
        /// The initiator's number for it.
        id: u32,
        /// What to invalidate.
        addr: u64,
    },
    /// A subtree has invalidated.
    InvalidateAck {
        /// The epoch.
        epoch: u32,
        /// Who started it.
        initiator: MemberId,
        /// The initiator's number for it.
        id: u32,
    },
}

/// An encoded message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Frame {
    bytes: [u8; MAX_MESSAGE],
    len: u8,
}

impl Frame {
    /// The message bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

#[inline(always)]
fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

#[inline(always)]
fn get<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut w = [0; N];
    if let Some(s) = b.get(at..at + N) {
        w.copy_from_slice(s);
    }
    w
}

#[inline(always)]
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(get(b, at))
}

#[inline(always)]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(get(b, at))
}

#[inline(always)]
pub(crate) fn encode_op(op: &Op) -> (u8, [u8; OP_BYTES]) {
    let mut b = [0; OP_BYTES];
    match *op {
        Op::Put { key, value } => {
            put(&mut b, 0, &key.to_le_bytes());
            put(&mut b, 8, &value.to_le_bytes());
            (1, b)
        }
        Op::Delete { key } => {
            put(&mut b, 0, &key.to_le_bytes());
            (2, b)
        }
        Op::Register { name, service } => {
            put(&mut b, 0, name.padded());
            put(&mut b, MAX_NAME, &service.partition.to_le_bytes());
            put(&mut b, MAX_NAME + 2, &service.channel.to_le_bytes());
            (3, b)
        }
    }
}

#[inline(always)]
fn decode_op(tag: u8, b: &[u8; OP_BYTES]) -> Result<Op, WireError> {
    let zero = |nonzero: bool| {
        if nonzero {
            Err(WireError::NonZeroPadding)
        } else {
            Ok(())
        }
    };
    match tag {
        1 => {
            zero(u64::from(u32_at(b, 16)) | u64_at(b, 20) != 0)?;
            Ok(Op::Put {
                key: u64_at(b, 0),
                value: u64_at(b, 8),
            })
        }
        2 => {
            zero(u64_at(b, 8) | u64_at(b, 16) | u64::from(u32_at(b, 24)) != 0)?;
            Ok(Op::Delete { key: u64_at(b, 0) })
        }
        3 => {
            let name = Name::from_padded(&get(b, 0)).ok_or(WireError::BadName)?;
            Ok(Op::Register {
                name,
                service: Service {
                    partition: u16::from_le_bytes(get(b, MAX_NAME)),
                    channel: u16::from_le_bytes(get(b, MAX_NAME + 2)),
                },
            })
        }
        t => Err(WireError::BadOp(t)),
    }
}

/// A message length (at most [`MAX_MESSAGE`], the callers' values from
/// [`expected_len`]) as a frame's `u8` length.
const fn frame_len(len: usize) -> u8 {
    const _: () = assert!(MAX_MESSAGE <= u8::MAX as usize);
    debug_assert!(len <= MAX_MESSAGE);
    // Not lossy: `len <= MAX_MESSAGE`, which fits in a `u8` (asserted above).
    #[allow(clippy::cast_possible_truncation)]
    let short = len as u8;
    short
}

#[inline(always)]
pub(crate) fn expected_len(k: u8) -> Option<usize> {
    Some(match k {
        kind::STATE => 24,
        kind::READY => 8,
        kind::OPEN | kind::ACK | kind::COMMIT => 16,
        kind::PROPOSE => 12 + OP_BYTES,
        kind::ENTRY | kind::SNAP_CHUNK => MAX_MESSAGE,
        kind::SNAP_BEGIN | kind::SNAP_END | kind::INVALIDATE => 24,
        kind::INVALIDATE_ACK => 12,
        _ => return None,
    })
}

impl Message {
    /// The epoch the message belongs to.
    pub fn epoch(&self) -> u32 {
        match *self {
            Self::State { epoch, .. }
            | Self::Ready { epoch }
            | Self::Open { epoch, .. }
            | Self::Propose { epoch, .. }
            | Self::Entry { epoch, .. }
            | Self::Ack { epoch, .. }
            | Self::Commit { epoch, .. }
            | Self::SnapBegin { epoch, .. }
            | Self::SnapChunk { epoch, .. }
            | Self::SnapEnd { epoch, .. }
            | Self::Invalidate { epoch, .. }
            | Self::InvalidateAck { epoch, .. } => epoch,
        }
    }

    /// The kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            Self::State { .. } => kind::STATE,
            Self::Ready { .. } => kind::READY,
            Self::Open { .. } => kind::OPEN,
            Self::Propose { .. } => kind::PROPOSE,
            Self::Entry { .. } => kind::ENTRY,
            Self::Ack { .. } => kind::ACK,
            Self::Commit { .. } => kind::COMMIT,
            Self::SnapBegin { .. } => kind::SNAP_BEGIN,
            Self::SnapChunk { .. } => kind::SNAP_CHUNK,
            Self::SnapEnd { .. } => kind::SNAP_END,
            Self::Invalidate { .. } => kind::INVALIDATE,
            Self::InvalidateAck { .. } => kind::INVALIDATE_ACK,
        }
    }

    /// The message's bytes (a snapshot chunk index is taken mod 2^24).
    #[inline]
    pub fn encode(&self) -> Frame {
        let mut b = [0u8; MAX_MESSAGE];
        let k = self.kind();
        b[0] = k;
        put(&mut b, 4, &self.epoch().to_le_bytes());
        match *self {
            Self::State {
                applied, commit, ..
            } => {
                b[1] = PROTOCOL_VERSION;
                put(&mut b, 8, &applied.to_le_bytes());
                put(&mut b, 16, &commit.to_le_bytes());
            }
            Self::Ready { .. } => {}
            Self::Open { upto, .. } => put(&mut b, 8, &upto.to_le_bytes()),
            Self::Propose {
                origin,
                origin_seq,
                op,
                ..
            } => {
                let (tag, ob) = encode_op(&op);
                b[2] = origin;
                b[3] = tag;
                put(&mut b, 8, &origin_seq.to_le_bytes());
                put(&mut b, 12, &ob);
            }
            Self::Entry {
                hops,
                seq,
                commit,
                origin,
                origin_seq,
                op,
                ..
            } => {
                let (tag, ob) = encode_op(&op);
                b[1] = hops;
                b[2] = origin;
                b[3] = tag;
                put(&mut b, 8, &seq.to_le_bytes());
                put(&mut b, 16, &commit.to_le_bytes());
                put(&mut b, 24, &origin_seq.to_le_bytes());
                put(&mut b, 28, &ob);
            }
            Self::Ack { hops, applied, .. } => {
                b[1] = hops;
                put(&mut b, 8, &applied.to_le_bytes());
            }
            Self::Commit { commit, .. } => put(&mut b, 8, &commit.to_le_bytes()),
            Self::SnapBegin { seq, len, .. } => {
                put(&mut b, 8, &seq.to_le_bytes());
                put(&mut b, 16, &len.to_le_bytes());
            }
            Self::SnapChunk { index, data, .. } => {
                put(&mut b, 1, &index.to_le_bytes()[..3]);
                put(&mut b, 8, &data);
            }
            Self::SnapEnd { seq, checksum, .. } => {
                put(&mut b, 8, &seq.to_le_bytes());
                put(&mut b, 16, &checksum.to_le_bytes());
            }
            Self::Invalidate {
                initiator,
                id,
                addr,
                ..
            } => {
                b[1] = initiator;
                put(&mut b, 8, &id.to_le_bytes());
                put(&mut b, 16, &addr.to_le_bytes());
            }
            Self::InvalidateAck { initiator, id, .. } => {
                b[1] = initiator;
                put(&mut b, 8, &id.to_le_bytes());
            }
        }
        Frame {
            bytes: b,
            len: frame_len(expected_len(k).unwrap_or(MAX_MESSAGE)),
        }
    }

    /// Decodes one message; any malformed input is an error.
    #[inline]
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let k = *b.first().ok_or(WireError::UnknownKind(0))?;
        let len = expected_len(k).ok_or(WireError::UnknownKind(k))?;
        if b.len() != len {
            return Err(WireError::BadLength {
                kind: k,
                len: b.len(),
            });
        }
        let header = u64_at(b, 0);
        let epoch = (header >> 32) as u32;
        // Header bytes 1..4 this kind does not use, as a mask of the header word.
        let unused: u64 = match k {
            kind::STATE | kind::ACK | kind::INVALIDATE | kind::INVALIDATE_ACK => 0xffff_0000,
            kind::PROPOSE => 0x0000_ff00,
            kind::ENTRY | kind::SNAP_CHUNK => 0,
            _ => 0xffff_ff00,
        };
        if header & unused != 0 {
            return Err(WireError::NonZeroPadding);
        }
        let zero = |range: core::ops::Range<usize>| {
            if b[range].iter().all(|&c| c == 0) {
                Ok(())
            } else {
                Err(WireError::NonZeroPadding)
            }
        };
        Ok(match k {
            kind::STATE => {
                if b[1] != PROTOCOL_VERSION {
                    return Err(WireError::BadVersion(b[1]));
                }
                Self::State {
                    epoch,
                    applied: u64_at(b, 8),
                    commit: u64_at(b, 16),
                }
            }
            kind::READY => Self::Ready { epoch },
            kind::OPEN => Self::Open {
                epoch,
                upto: u64_at(b, 8),
            },
            kind::PROPOSE => Self::Propose {
                epoch,
                origin: b[2],
                origin_seq: u32_at(b, 8),
                op: decode_op(b[3], &get(b, 12))?,
            },
            kind::ENTRY => Self::Entry {
                epoch,
                hops: b[1],
                seq: u64_at(b, 8),
                commit: u64_at(b, 16),
                origin: b[2],
                origin_seq: u32_at(b, 24),
                op: decode_op(b[3], &get(b, 28))?,
            },
            kind::ACK => Self::Ack {
                epoch,
                hops: b[1],
                applied: u64_at(b, 8),
            },
            kind::COMMIT => Self::Commit {
                epoch,
                commit: u64_at(b, 8),
            },
            kind::SNAP_BEGIN => {
                zero(20..24)?;
                Self::SnapBegin {
                    epoch,
                    seq: u64_at(b, 8),
                    len: u32_at(b, 16),
                }
            }
            kind::SNAP_CHUNK => Self::SnapChunk {
                epoch,
                index: u32::from_le_bytes([b[1], b[2], b[3], 0]),
                data: get(b, 8),
            },
            kind::SNAP_END => Self::SnapEnd {
                epoch,
                seq: u64_at(b, 8),
                checksum: u64_at(b, 16),
            },
            kind::INVALIDATE => {
                zero(12..16)?;
                Self::Invalidate {
                    epoch,
                    initiator: b[1],
                    id: u32_at(b, 8),
                    addr: u64_at(b, 16),
                }
            }
            kind::INVALIDATE_ACK => Self::InvalidateAck {
                epoch,
                initiator: b[1],
                id: u32_at(b, 8),
            },
            other => return Err(WireError::UnknownKind(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn samples() -> Vec<Message> {
        let name = Name::new(b"a-service-name-24-bytes!").unwrap();
        let ops = [
            Op::Put {
                key: u64::MAX,
                value: 0x0123_4567_89ab_cdef,
            },
            Op::Delete { key: 7 },
            Op::Register {
                name,
                service: Service {
                    partition: 0xfffe,
                    channel: 3,
                },
            },
        ];
        let mut v = vec![
            Message::State {
                epoch: 7,
                applied: 9,
                commit: 8,
            },
            Message::Ready { epoch: u32::MAX },
            Message::Open { epoch: 1, upto: 44 },
            Message::Ack {
                epoch: 2,
                hops: 3,
                applied: 1 << 40,
            },
            Message::Commit {
                epoch: 2,
                commit: 5,
            },
            Message::SnapBegin {
                epoch: 3,
                seq: 10,
                len: 1000,
            },
            Message::SnapChunk {
                epoch: 3,
                index: MAX_CHUNK_INDEX,
                data: [0xa5; CHUNK],
            },
            Message::SnapEnd {
                epoch: 3,
                seq: 10,
                checksum: 0xdead_beef,
            },
            Message::Invalidate {
                epoch: 4,
                initiator: 31,
                id: 99,
                addr: 0xffff_f000,
            },
            Message::InvalidateAck {
                epoch: 4,
                initiator: 31,
                id: 99,
            },
        ];
        for op in ops {
            v.push(Message::Propose {
                epoch: 5,
                origin: 3,
                origin_seq: u32::MAX,
                op,
            });
            v.push(Message::Entry {
                epoch: 5,
                hops: 2,
                seq: 100,
                commit: 99,
                origin: 3,
                origin_seq: 12,
                op,
            });
        }
        v
    }

    #[test]
    fn every_message_round_trips_and_fits() {
        for m in samples() {
            let f = m.encode();
            assert!(f.as_bytes().len() <= MAX_MESSAGE);
            assert_eq!(Message::decode(f.as_bytes()), Ok(m), "{m:?}");
        }
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert_eq!(Message::decode(&[]), Err(WireError::UnknownKind(0)));
        assert_eq!(Message::decode(&[0; 8]), Err(WireError::UnknownKind(0)));
        assert_eq!(Message::decode(&[200; 8]), Err(WireError::UnknownKind(200)));
        for m in samples() {
            let f = m.encode();
            let b = f.as_bytes();
            // Every other length is refused.
            for len in 0..=MAX_MESSAGE {
                if len != b.len() {
                    let mut v = b.to_vec();
                    v.resize(len, 0);
                    assert!(Message::decode(&v).is_err(), "{m:?} at length {len}");
                }
            }
        }
        let mut state = Message::State {
            epoch: 1,
            applied: 0,
            commit: 0,
        }
        .encode()
        .as_bytes()
        .to_vec();
        state[1] = 1;
        assert_eq!(Message::decode(&state), Err(WireError::BadVersion(1)));
        let mut ready = Message::Ready { epoch: 1 }.encode().as_bytes().to_vec();
        ready[2] = 1;
        assert_eq!(Message::decode(&ready), Err(WireError::NonZeroPadding));
        let entry = samples()
            .into_iter()
            .find(|m| matches!(m, Message::Entry { .. }))
            .unwrap();
        let mut e = entry.encode().as_bytes().to_vec();
        e[3] = 9;
        assert_eq!(Message::decode(&e), Err(WireError::BadOp(9)));
        e[3] = 1;
        e[55] = 1;
        assert_eq!(Message::decode(&e), Err(WireError::NonZeroPadding));
        e[3] = 3;
        e[28..56].fill(0);
        assert_eq!(Message::decode(&e), Err(WireError::BadName));
    }
}
