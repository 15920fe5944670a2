//! The key-value table behind [`super::State`]: `u64 → u64`, as cheap to update as a few
//! compares, with a bounded worst case.
//!
//! Keys go to one of `2^bits` buckets by a multiplicative hash (one multiply, the top `bits`
//! bits); a bucket holds up to [`BUCKET`] keys and their values in arrays scanned linearly.
//! A key whose bucket is full goes to an ordered overflow map instead, so keys chosen to
//! collide (the table is replicated: a hostile member picks keys) cost a `BTreeMap` operation
//! each, never a longer scan. The bucket count doubles when the table holds more than
//! [`LOAD`] keys per bucket on average (overflow keys are placed again then).
//!
//! A key is in its bucket or in the overflow, never both. Equality, hashing and `Debug` see
//! the set of pairs only, not where they sit: two tables holding the same pairs are equal
//! whatever the order they were inserted in. Ordered iteration ([`Table::sorted`]) sorts,
//! and serves snapshots and the state hash only.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use core::hash::{Hash, Hasher};

/// Keys per bucket.
const BUCKET: usize = 7;

/// Average keys per bucket above which the bucket count doubles.
const LOAD: usize = 4;

/// Buckets of a table's first allocation.
const FIRST_BITS: u32 = 3;

/// Most buckets (2^24, beyond any partition's memory at 120 bytes each): past it, keys
/// overflow.
const MAX_BITS: u32 = 24;

/// The multiplier of the bucket hash (odd: every key keeps its own hash).
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Clone, Copy)]
struct Bucket {
    len: u8,
    keys: [u64; BUCKET],
    values: [u64; BUCKET],
}

const EMPTY: Bucket = Bucket {
    len: 0,
    keys: [0; BUCKET],
    values: [0; BUCKET],
};

impl Bucket {
    #[inline(always)]
    fn find(&self, key: u64) -> Option<usize> {
        let len = usize::from(self.len).min(BUCKET);
        self.keys[..len].iter().position(|&k| k == key)
    }
}

/// A `u64 → u64` table (see the module documentation).
#[derive(Clone, Default)]
pub struct Table {
    buckets: Vec<Bucket>,
    /// `log2(buckets.len())`, or 0 with no buckets yet.
    bits: u32,
    overflow: BTreeMap<u64, u64>,
    len: usize,
}

impl Table {
    /// An empty table (no allocation).
    pub const fn new() -> Self {
        Self {
            buckets: Vec::new(),
            bits: 0,
            overflow: BTreeMap::new(),
            len: 0,
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn index(&self, key: u64) -> usize {
        // The top `bits` (at most 24) bits of the product: below the bucket count, so the
        // conversion cannot fail (and costs nothing on a 64-bit target).
        usize::try_from(key.wrapping_mul(MUL) >> (64 - self.bits)).unwrap_or(0)
    }

    #[inline(always)]
    fn bucket(&self, key: u64) -> Option<&Bucket> {
        if self.bits == 0 {
            return None;
        }
        self.buckets.get(self.index(key))
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: u64) -> Option<u64> {
        if let Some(b) = self.bucket(key) {
            if let Some(i) = b.find(key) {
                return Some(b.values[i]);
            }
        }
        if self.overflow.is_empty() {
            None
        } else {
            self.overflow.get(&key).copied()
        }
    }

    /// Sets `key` to `value`.
    #[inline]
    pub fn insert(&mut self, key: u64, value: u64) {
        if self.bits != 0 {
            let i = self.index(key);
            if let Some(b) = self.buckets.get_mut(i) {
                if let Some(j) = b.find(key) {
                    b.values[j] = value;
                    return;
                }
            }
        }
        if let Some(v) = self.overflow.get_mut(&key) {
            *v = value;
            return;
        }
        // A new key.
        if self.bits == 0 || (self.len >= LOAD << self.bits && self.bits < MAX_BITS) {
            self.grow();
        }
        self.len += 1;
        self.place(key, value);
    }

    /// Puts a key known to be absent in its bucket, or in the overflow if the bucket is full.
    #[inline(always)]
    fn place(&mut self, key: u64, value: u64) {
        let i = self.index(key);
        if let Some(b) = self.buckets.get_mut(i) {
            let n = usize::from(b.len);
            if n < BUCKET {
                b.keys[n] = key;
                b.values[n] = value;
                b.len += 1;
                return;
            }
        }
        self.overflow.insert(key, value);
    }

    /// Doubles the buckets (or makes the first ones) and places every key again.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let bits = if self.bits == 0 {
            FIRST_BITS
        } else {
            self.bits + 1
        };
        let old = core::mem::replace(&mut self.buckets, alloc::vec![EMPTY; 1 << bits]);
        let overflow = core::mem::take(&mut self.overflow);
        self.bits = bits;
        for b in &old {
            let n = usize::from(b.len).min(BUCKET);
            for (&k, &v) in b.keys[..n].iter().zip(&b.values[..n]) {
                self.place(k, v);
            }
        }
        for (k, v) in overflow {
            self.place(k, v);
        }
    }

    /// Removes `key` (nothing if absent).
    #[inline]
    pub fn remove(&mut self, key: u64) {
        if self.bits != 0 {
            let i = self.index(key);
            if let Some(b) = self.buckets.get_mut(i) {
                if let Some(j) = b.find(key) {
                    let last = usize::from(b.len) - 1;
                    b.keys[j] = b.keys[last];
                    b.values[j] = b.values[last];
                    b.len -= 1;
                    self.len -= 1;
                    return;
                }
            }
        }
        if self.overflow.remove(&key).is_some() {
            self.len -= 1;
        }
    }

    /// Every pair, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| {
                let n = usize::from(b.len).min(BUCKET);
                b.keys[..n]
                    .iter()
                    .copied()
                    .zip(b.values[..n].iter().copied())
            })
            .chain(self.overflow.iter().map(|(&k, &v)| (k, v)))
    }

    /// Every pair, in increasing key order.
    pub fn sorted(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self.iter().collect();
        v.sort_unstable_by_key(|p| p.0);
        v
    }
}

impl PartialEq for Table {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Table {}

impl Hash for Table {
    /// The number of pairs and a sum over them of a mix of each pair: independent of where
    /// they sit, so equal tables hash equal.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let sum = self.iter().fold(0u64, |s, (k, v)| {
            let x = (k ^ v.rotate_left(32)).wrapping_mul(MUL);
            s.wrapping_add(x ^ (x >> 29) ^ v)
        });
        self.len.hash(state);
        sum.hash(state);
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.sorted()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The multiplicative inverse of `MUL` modulo 2^64 (Newton's iteration).
    fn inverse() -> u64 {
        let mut x = MUL;
        for _ in 0..6 {
            x = x.wrapping_mul(2u64.wrapping_sub(MUL.wrapping_mul(x)));
        }
        assert_eq!(x.wrapping_mul(MUL), 1);
        x
    }

    /// Runs `ops` against the table and a `BTreeMap`, comparing after every one.
    fn against_btree(keys: &[u64], steps: usize, seed: u64) {
        let mut t = Table::new();
        let mut m = BTreeMap::new();
        let mut x = seed | 1;
        for step in 0..steps {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = keys[usize::try_from(x % keys.len() as u64).unwrap()];
            if x >> 60 < 11 {
                t.insert(key, x);
                m.insert(key, x);
            } else {
                t.remove(key);
                m.remove(&key);
            }
            assert_eq!(t.len(), m.len(), "step {step}");
            assert_eq!(t.get(key), m.get(&key).copied(), "step {step}");
            if step % 97 == 0 {
                let want: Vec<(u64, u64)> = m.iter().map(|(&k, &v)| (k, v)).collect();
                assert_eq!(t.sorted(), want, "step {step}");
                for &k in keys.iter().take(64) {
                    assert_eq!(t.get(k), m.get(&k).copied());
                }
            }
        }
    }

    #[test]
    fn behaves_like_an_ordered_map() {
        let spread: Vec<u64> = (0..3000u64)
            .map(|i| i.wrapping_mul(0x2545_f491_4f6c_dd1d))
            .collect();
        against_btree(&spread, 20_000, 7);
        let small: Vec<u64> = (0..40).collect();
        against_btree(&small, 5_000, 9);
        let extreme = [0, 1, u64::MAX, u64::MAX - 1, 1 << 63];
        against_btree(&extreme, 500, 3);
    }

    #[test]
    fn colliding_keys_overflow_and_stay_correct() {
        // Keys whose hashes share the top 32 bits: one bucket at every size.
        let inv = inverse();
        let keys: Vec<u64> = (0..500u64)
            .map(|i| (0x1234_5678_0000_0000 | i).wrapping_mul(inv))
            .collect();
        let mut t = Table::new();
        for &k in &keys {
            t.insert(k, !k);
        }
        assert_eq!(t.len(), keys.len());
        assert_eq!(
            t.overflow.len(),
            keys.len() - BUCKET,
            "one bucket holds {BUCKET}"
        );
        for &k in &keys {
            assert_eq!(t.get(k), Some(!k));
        }
        against_btree(&keys, 10_000, 5);
    }

    #[test]
    fn equality_and_hash_ignore_placement() {
        use core::hash::BuildHasher;
        let keys: Vec<u64> = (0..200).map(|i| i * 3).collect();
        let (mut a, mut b) = (Table::new(), Table::new());
        for &k in &keys {
            a.insert(k, k + 1);
        }
        for &k in keys.iter().rev() {
            b.insert(k, k + 1);
        }
        // Different histories: `b` also held and lost other keys.
        for k in 1000..1100 {
            b.insert(k, 0);
        }
        for k in 1000..1100 {
            b.remove(k);
        }
        assert_eq!(a, b);
        let h = std::collections::hash_map::RandomState::new();
        assert_eq!(h.hash_one(&a), h.hash_one(&b));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        b.insert(3, 5);
        assert_ne!(a, b);
        b.insert(3, 4);
        assert_eq!(a, b);
        b.remove(0);
        assert_ne!(a, b);
    }
}
