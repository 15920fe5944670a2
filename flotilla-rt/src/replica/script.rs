//! The deterministic update sequences of the `replica` workload and their
//! sequential reference.
//!
//! Member `m`'s `i`-th update (`i = 1, 2, ...`, its `origin_seq`) is
//! [`op`]`(m, i)`. Members write disjoint keys (the member id in the high
//! half) and register distinct names, so the final key-value table and
//! registry do not depend on how the members' sequences interleave in the
//! log: only per-origin order matters, which the protocol keeps. Hence
//! [`reference_hash`], a sequential run of every member's prefix, is the
//! `state_hash` every member must end with.

use alloc::format;
use replication::{MemberId, Name, Op, Service, State};

/// Distinct keys a member cycles through (later updates overwrite earlier
/// ones, deletes remove some).
pub const KEYS_PER_MEMBER: u32 = 61;

/// Every `DELETE_EVERY`-th update deletes a key written earlier.
pub const DELETE_EVERY: u32 = 7;

/// Every `REGISTER_EVERY`-th update registers a name.
pub const REGISTER_EVERY: u32 = 16;

/// The key of member `member`'s slot `slot`.
fn key(member: MemberId, slot: u32) -> u64 {
    (u64::from(member) << 32) | u64::from(slot)
}

/// Member `member`'s `i`-th update (`i >= 1`).
pub fn op(member: MemberId, i: u32) -> Op {
    if i.is_multiple_of(REGISTER_EVERY) {
        let text = format!("m{member}.s{i}");
        // At most "m255.s4294967295": 16 bytes, no zero byte.
        if let Some(name) = Name::new(text.as_bytes()) {
            return Op::Register {
                name,
                service: Service {
                    partition: u16::from(member),
                    // truncation: a deterministic channel number, any 16 bits do.
                    #[allow(clippy::cast_possible_truncation)]
                    channel: (i / REGISTER_EVERY) as u16,
                },
            };
        }
    }
    if i.is_multiple_of(DELETE_EVERY) {
        return Op::Delete {
            key: key(member, (i / DELETE_EVERY) % KEYS_PER_MEMBER),
        };
    }
    let value = u64::from(i)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(u32::from(member) % 64)
        ^ u64::from(member);
    Op::Put {
        key: key(member, i % KEYS_PER_MEMBER),
        value,
    }
}

/// The state after every member `m` applied its first `counts[m]` updates,
/// sequentially.
pub fn reference(counts: &[u32]) -> State {
    let mut s = State::new();
    let mut seq = 0u64;
    for (m, &n) in counts.iter().enumerate() {
        let Ok(m) = MemberId::try_from(m) else { break };
        for i in 1..=n {
            seq += 1;
            s.apply(seq, m, i, &op(m, i));
        }
    }
    s
}

/// `state_hash` of [`reference()`]`(counts)`: what every member's state must
/// hash to once it applied exactly those updates.
pub fn reference_hash(counts: &[u32]) -> u64 {
    reference(counts).state_hash()
}

/// Whether `state` has applied at least `counts[m]` updates of every member
/// `m` (the replicated `dedup` table: the highest `origin_seq` applied per
/// origin).
pub fn all_applied(state: &State, counts: &[u32]) -> bool {
    counts
        .iter()
        .enumerate()
        .all(|(m, &n)| MemberId::try_from(m).is_ok_and(|m| state.dedup(m) >= n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_are_deterministic_and_members_do_not_collide() {
        assert_eq!(op(3, 5), op(3, 5));
        assert_ne!(op(1, 5), op(2, 5));
        for i in 1..200 {
            for (a, b) in [(0u8, 1u8), (1, 7), (0, 31)] {
                let keys = |m: MemberId| match op(m, i) {
                    Op::Put { key, .. } | Op::Delete { key } => Some(key),
                    Op::Register { .. } => None,
                };
                if let (Some(x), Some(y)) = (keys(a), keys(b)) {
                    assert_ne!(x, y);
                }
            }
        }
        assert!(matches!(op(0, 16), Op::Register { .. }));
        assert!(matches!(op(0, 7), Op::Delete { .. }));
        assert!(matches!(op(0, 1), Op::Put { .. }));
    }

    #[test]
    fn the_reference_does_not_depend_on_interleaving() {
        let counts = [40u32, 33, 40];
        let mut s = State::new();
        let mut next = [1u32; 3];
        let mut seq = 0;
        // Round-robin interleaving, member 2 first.
        while (0..3).any(|m| next[m] <= counts[m]) {
            for m in [2usize, 0, 1] {
                if next[m] <= counts[m] {
                    seq += 1;
                    let id = MemberId::try_from(m).unwrap();
                    s.apply(seq, id, next[m], &op(id, next[m]));
                    next[m] += 1;
                }
            }
        }
        assert_eq!(s.state_hash(), reference_hash(&counts));
        assert!(all_applied(&s, &counts));
        assert!(!all_applied(&s, &[40, 34, 40]));
        assert_ne!(reference_hash(&counts), reference_hash(&[40, 32, 40]));
        assert!(s.names() > 0 && s.keys() > 0);
    }
}
