//! The replicated state: a service registry and a key-value table, and what an update is.
//!
//! Every member holds a full [`State`] and changes it only by applying log entries in log
//! order ([`State::apply`]), so members that applied the same prefix hold equal states. The
//! registry maps a [`Name`] to a [`Service`] (partition, channel); the **first** registration
//! of a name in log order wins and later ones are no-ops. The key-value table maps `u64` to
//! `u64`. The state also carries, per origin member, the highest origin sequence number
//! applied (`dedup`: the leader drops a proposal it has already sequenced, so a retried
//! update is applied exactly once) and a running hash of the log (`log_hash`).
//!
//! [`State::encode`] / [`State::decode`] are the snapshot format a restarted member catches up
//! from; decoding checks everything (sizes, canonical order, names) and never panics.

use crate::topology::{MemberId, MAX_MEMBERS};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

mod table;
use table::Table;

/// Longest service name, in bytes.
pub const MAX_NAME: usize = 24;

/// Snapshot format version (inside the snapshot bytes).
pub const SNAPSHOT_VERSION: u32 = 1;

/// A service name: 1..=24 bytes, none of them zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Name {
    bytes: [u8; MAX_NAME],
}

impl Name {
    /// The name made of `bytes`, if it is 1..=24 bytes without a zero byte.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > MAX_NAME || bytes.contains(&0) {
            return None;
        }
        let mut b = [0; MAX_NAME];
        b[..bytes.len()].copy_from_slice(bytes);
        Some(Self { bytes: b })
    }

    /// A name from its zero-padded wire form: bytes up to the first zero, and only zeros
    /// after it.
    pub fn from_padded(b: &[u8; MAX_NAME]) -> Option<Self> {
        let len = b.iter().position(|&c| c == 0).unwrap_or(MAX_NAME);
        if len == 0 || b[len..].iter().any(|&c| c != 0) {
            return None;
        }
        Some(Self { bytes: *b })
    }

    /// The zero-padded form.
    pub fn padded(&self) -> &[u8; MAX_NAME] {
        &self.bytes
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        let len = self.bytes.iter().position(|&c| c == 0).unwrap_or(MAX_NAME);
        &self.bytes[..len]
    }
}

/// Where a service is: a partition and one of its channels.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Service {
    /// The partition's index in the layout.
    pub partition: u16,
    /// The channel's index in the layout.
    pub channel: u16,
}

/// One update to the replicated state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Op {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: u64,
        /// The value.
        value: u64,
    },
    /// Remove `key` (a no-op if absent).
    Delete {
        /// The key.
        key: u64,
    },
    /// Register `name` at `service`, unless `name` is already registered.
    Register {
        /// The name.
        name: Name,
        /// Where it is.
        service: Service,
    },
}

/// What applying an update did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Applied {
    /// The state changed (or a delete of an absent key).
    Done,
    /// A registration lost to an earlier one of the same name.
    NameTaken,
}

/// The replicated state of one member.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct State {
    kv: Table,
    registry: BTreeMap<Name, Service>,
    dedup: [u32; MAX_MEMBERS],
    log_hash: u64,
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// FNV-1a over `bytes`, continuing from `h`.
#[inline]
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a over the low `n` bytes of `x` in little-endian order, continuing from `h`: the
/// same value as [`fnv1a`] over `x.to_le_bytes()[..n]`, with each byte taken from a register
/// (one move, one xor, one multiply and one shift a byte) instead of through a spilled array.
#[inline(always)]
fn fnv1a_le(mut h: u64, mut x: u64, n: u32) -> u64 {
    for _ in 0..n {
        h ^= x & 0xff;
        h = h.wrapping_mul(FNV_PRIME);
        x >>= 8;
    }
    h
}

/// FNV-1a of `bytes` from the standard offset basis (the snapshot checksum).
pub fn checksum(bytes: &[u8]) -> u64 {
    fnv1a(FNV_OFFSET, bytes)
}

const HEADER: usize = 24;
const KV_BYTES: usize = 16;
const REG_BYTES: usize = MAX_NAME + 4;

impl State {
    /// The genesis state (empty tables, nothing applied).
    pub fn new() -> Self {
        Self {
            kv: Table::new(),
            registry: BTreeMap::new(),
            dedup: [0; MAX_MEMBERS],
            log_hash: FNV_OFFSET,
        }
    }

    /// Applies log entry `seq` (proposed by `origin` as its `origin_seq`-th update). The caller
    /// (the protocol) guarantees log order; `dedup` records the origin's progress.
    #[inline]
    pub fn apply(&mut self, seq: u64, origin: MemberId, origin_seq: u32, op: &Op) -> Applied {
        if let Some(d) = self.dedup.get_mut(origin as usize) {
            *d = (*d).max(origin_seq);
        }
        // The log hash: FNV-1a over seq, origin and origin_seq, little-endian.
        let h = fnv1a_le(self.log_hash, seq, 8);
        let h = fnv1a_le(h, u64::from(origin), 1);
        self.log_hash = fnv1a_le(h, u64::from(origin_seq), 4);
        match *op {
            Op::Put { key, value } => {
                self.kv.insert(key, value);
                Applied::Done
            }
            Op::Delete { key } => {
                self.kv.remove(key);
                Applied::Done
            }
            Op::Register { name, service } => match self.registry.entry(name) {
                alloc::collections::btree_map::Entry::Occupied(_) => Applied::NameTaken,
                alloc::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(service);
                    Applied::Done
                }
            },
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: u64) -> Option<u64> {
        self.kv.get(key)
    }

    /// Where `name` is registered.
    pub fn lookup(&self, name: &Name) -> Option<Service> {
        self.registry.get(name).copied()
    }

    /// Number of keys in the table.
    pub fn keys(&self) -> usize {
        self.kv.len()
    }

    /// Number of registered names.
    pub fn names(&self) -> usize {
        self.registry.len()
    }

    /// The highest origin sequence number of `origin` applied (0: none).
    pub fn dedup(&self, origin: MemberId) -> u32 {
        self.dedup.get(origin as usize).copied().unwrap_or(0)
    }

    /// Running hash of `(seq, origin, origin_seq)` of every entry applied.
    pub fn log_hash(&self) -> u64 {
        self.log_hash
    }

    /// Hash of the key-value table and the registry only: equal for equal contents, whatever
    /// order the updates were applied in.
    pub fn state_hash(&self) -> u64 {
        let mut h = FNV_OFFSET;
        for (k, v) in self.kv.sorted() {
            h = fnv1a(h, &k.to_le_bytes());
            h = fnv1a(h, &v.to_le_bytes());
        }
        h = fnv1a(h, &[0xff]);
        for (name, s) in &self.registry {
            h = fnv1a(h, name.padded());
            h = fnv1a(h, &s.partition.to_le_bytes());
            h = fnv1a(h, &s.channel.to_le_bytes());
        }
        h
    }

    /// Origins with a `dedup` entry in the snapshot: up to the last non-zero one.
    fn dedup_len(&self) -> usize {
        self.dedup
            .iter()
            .rposition(|&d| d != 0)
            .map_or(0, |i| i + 1)
    }

    /// Size of [`State::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        HEADER + 4 * self.dedup_len() + KV_BYTES * self.kv.len() + REG_BYTES * self.registry.len()
    }

    /// The snapshot bytes: a 24-byte header (version, key count, name count, dedup count
    /// `d`, `log_hash`), `dedup` of origins `0..d` (little-endian `u32`, the last one non-zero;
    /// later origins have 0), the keys in increasing order (key, value), the names in
    /// increasing order (padded name, partition, channel).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        let d = self.dedup_len();
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&snapshot_count(self.kv.len()).to_le_bytes());
        out.extend_from_slice(&snapshot_count(self.registry.len()).to_le_bytes());
        out.extend_from_slice(&snapshot_count(d).to_le_bytes());
        out.extend_from_slice(&self.log_hash.to_le_bytes());
        for v in &self.dedup[..d] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for (k, v) in self.kv.sorted() {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        for (name, s) in &self.registry {
            out.extend_from_slice(name.padded());
            out.extend_from_slice(&s.partition.to_le_bytes());
            out.extend_from_slice(&s.channel.to_le_bytes());
        }
        out
    }

    /// Decodes snapshot bytes; `None` for anything but the exact output of [`State::encode`]
    /// of some state.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let header = bytes.get(..HEADER)?;
        let word = |i: usize| -> u32 {
            let mut w = [0; 4];
            w.copy_from_slice(&header[i..i + 4]);
            u32::from_le_bytes(w)
        };
        let d = word(12) as usize;
        if word(0) != SNAPSHOT_VERSION || d > MAX_MEMBERS {
            return None;
        }
        let (keys, names) = (word(4) as usize, word(8) as usize);
        let expected = KV_BYTES
            .checked_mul(keys)?
            .checked_add(REG_BYTES.checked_mul(names)?)?
            .checked_add(HEADER + 4 * d)?;
        if bytes.len() != expected {
            return None;
        }
        let mut state = Self::new();
        state.log_hash = u64_at(bytes, 16);
        for i in 0..d {
            state.dedup[i] = u32_at(bytes, HEADER + 4 * i);
        }
        if d > 0 && state.dedup[d - 1] == 0 {
            return None; // not canonical
        }
        let mut at = HEADER + 4 * d;
        let mut last_key = None;
        for _ in 0..keys {
            let (k, v) = (u64_at(bytes, at), u64_at(bytes, at + 8));
            if last_key.is_some_and(|l| l >= k) {
                return None;
            }
            last_key = Some(k);
            state.kv.insert(k, v);
            at += KV_BYTES;
        }
        let mut last_name = None;
        for _ in 0..names {
            let mut padded = [0; MAX_NAME];
            padded.copy_from_slice(bytes.get(at..at + MAX_NAME)?);
            let name = Name::from_padded(&padded)?;
            if last_name.is_some_and(|l| l >= name) {
                return None;
            }
            last_name = Some(name);
            let service = Service {
                partition: u16_at(bytes, at + MAX_NAME),
                channel: u16_at(bytes, at + MAX_NAME + 2),
            };
            state.registry.insert(name, service);
            at += REG_BYTES;
        }
        Some(state)
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    if let Some(s) = b.get(at..at + 8) {
        w.copy_from_slice(s);
    }
    u64::from_le_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut w = [0; 2];
    if let Some(s) = b.get(at..at + 2) {
        w.copy_from_slice(s);
    }
    u16::from_le_bytes(w)
}

/// A count in the snapshot header as its `u32`. Never fails in practice: a
/// state holding 2^32 keys, names or origins would take over 64 GiB (each
/// key is at least 16 bytes), far beyond any partition's memory.
fn snapshot_count(n: usize) -> u32 {
    u32::try_from(n).expect("a state holds fewer than 2^32 entries of each kind")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_fnv_equals_byte_fnv() {
        let xs = [
            0u64,
            1,
            0xff,
            0x100,
            0x0123_4567_89ab_cdef,
            u64::MAX,
            1 << 63,
        ];
        for &x in &xs {
            for n in 0..=8u32 {
                let bytes = &x.to_le_bytes()[..n as usize];
                assert_eq!(fnv1a_le(FNV_OFFSET, x, n), fnv1a(FNV_OFFSET, bytes));
                assert_eq!(fnv1a_le(0x1234, x, n), fnv1a(0x1234, bytes));
            }
        }
    }

    fn name(s: &str) -> Name {
        Name::new(s.as_bytes()).unwrap()
    }

    #[test]
    fn names() {
        assert!(Name::new(b"").is_none());
        assert!(Name::new(&[b'a'; 25]).is_none());
        assert!(Name::new(b"a\0b").is_none());
        let n = Name::new(&[b'x'; 24]).unwrap();
        assert_eq!(n.as_bytes().len(), 24);
        assert_eq!(name("console").as_bytes(), b"console");
        let mut padded = *name("ab").padded();
        assert_eq!(Name::from_padded(&padded), Some(name("ab")));
        padded[5] = 1;
        assert_eq!(Name::from_padded(&padded), None, "garbage after the zero");
        assert_eq!(Name::from_padded(&[0; MAX_NAME]), None, "empty");
    }

    #[test]
    fn first_registration_wins() {
        let mut s = State::new();
        let a = Service {
            partition: 1,
            channel: 2,
        };
        let b = Service {
            partition: 3,
            channel: 4,
        };
        let reg = |service| Op::Register {
            name: name("fs"),
            service,
        };
        assert_eq!(s.apply(1, 0, 1, &reg(a)), Applied::Done);
        assert_eq!(s.apply(2, 1, 1, &reg(b)), Applied::NameTaken);
        assert_eq!(s.lookup(&name("fs")), Some(a));
        assert_eq!(s.dedup(1), 1);
    }

    #[test]
    fn kv_and_hashes() {
        let mut a = State::new();
        let mut b = State::new();
        a.apply(1, 0, 1, &Op::Put { key: 1, value: 10 });
        a.apply(2, 1, 1, &Op::Put { key: 2, value: 20 });
        b.apply(1, 1, 1, &Op::Put { key: 2, value: 20 });
        b.apply(2, 0, 1, &Op::Put { key: 1, value: 10 });
        assert_eq!(a.state_hash(), b.state_hash(), "independent of order");
        assert_ne!(a.log_hash(), b.log_hash(), "the log hash sees the order");
        a.apply(3, 0, 2, &Op::Delete { key: 1 });
        assert_eq!(a.get(1), None);
        assert_ne!(a.state_hash(), b.state_hash());
    }

    #[test]
    fn snapshot_round_trip() {
        let mut s = State::new();
        for i in 0..50u64 {
            s.apply(
                i + 1,
                (i % 3) as u8,
                u32::try_from(i / 3 + 1).unwrap(),
                &Op::Put {
                    key: i * 7,
                    value: i,
                },
            );
        }
        s.apply(
            51,
            2,
            100,
            &Op::Register {
                name: name("net"),
                service: Service {
                    partition: 5,
                    channel: 9,
                },
            },
        );
        let bytes = s.encode();
        assert_eq!(bytes.len(), s.encoded_len());
        assert_eq!(State::decode(&bytes), Some(s.clone()));
        assert_eq!(State::decode(&State::new().encode()), Some(State::new()));
    }

    #[test]
    fn hostile_snapshots_are_refused() {
        let mut s = State::new();
        s.apply(1, 0, 1, &Op::Put { key: 1, value: 1 });
        s.apply(2, 0, 2, &Op::Put { key: 2, value: 2 });
        let good = s.encode();
        // Truncated or extended.
        assert!(State::decode(&good[..good.len() - 1]).is_none());
        let mut long = good.clone();
        long.push(0);
        assert!(State::decode(&long).is_none());
        // Keys out of order.
        let mut bad = good.clone();
        let at = HEADER + 4;
        bad[at] = 9;
        assert!(State::decode(&bad).is_none());
        // Wrong version; absurd counts (no overflow, no panic).
        let mut bad = good.clone();
        bad[0] = 2;
        assert!(State::decode(&bad).is_none());
        let mut bad = good.clone();
        bad[4..12].fill(0xff);
        assert!(State::decode(&bad).is_none());
        let mut bad = good.clone();
        bad[12] = 33;
        assert!(State::decode(&bad).is_none(), "more origins than members");
        let mut bad = good.clone();
        bad[HEADER..HEADER + 4].fill(0);
        assert!(
            State::decode(&bad).is_none(),
            "trailing zero dedup is not canonical"
        );
        assert_eq!(good.len(), HEADER + 4 + 2 * KV_BYTES);
        for len in 0..good.len() {
            let _ = State::decode(&good[..len]);
        }
    }
}
