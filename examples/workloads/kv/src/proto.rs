//! The request/reply protocol and the table (pure: unit-tested on the host
//! with `cargo test`). A message is three `u64` words: a request is
//! `[op, key, value]`, a reply `[status, value, 0]`.

use alloc::collections::BTreeMap;

/// Store `value` under `key`.
pub const PUT: u64 = 1;
/// Read the value under `key`.
pub const GET: u64 = 2;
/// The client is finished; the server stops serving it.
pub const DONE: u64 = 3;

/// The request was served.
pub const OK: u64 = 0;
/// `GET` of a key that has no value.
pub const NOT_FOUND: u64 = 1;
/// An unknown op.
pub const BAD_OP: u64 = 2;

/// The server's table.
#[derive(Debug, Default)]
pub struct Table {
    map: BTreeMap<u64, u64>,
    /// Requests served (`DONE` not counted).
    pub served: u64,
}

impl Table {
    /// The reply to `request`.
    pub fn serve(&mut self, [op, key, value]: [u64; 3]) -> [u64; 3] {
        self.served += 1;
        match op {
            PUT => {
                self.map.insert(key, value);
                [OK, value, 0]
            }
            GET => match self.map.get(&key) {
                Some(&v) => [OK, v, 0],
                None => [NOT_FOUND, 0, 0],
            },
            _ => [BAD_OP, 0, 0],
        }
    }

    /// Keys stored.
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// The value client `id` stores under its `i`-th key, and the key.
pub fn entry(id: u64, i: u64) -> (u64, u64) {
    (id * 1_000_000 + i, i * i + id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_are_read_back_and_misses_are_reported() {
        let mut t = Table::default();
        assert_eq!(t.serve([GET, 7, 0]), [NOT_FOUND, 0, 0]);
        assert_eq!(t.serve([PUT, 7, 49]), [OK, 49, 0]);
        assert_eq!(t.serve([GET, 7, 0]), [OK, 49, 0]);
        assert_eq!(t.serve([9, 7, 0]), [BAD_OP, 0, 0]);
        assert_eq!((t.len(), t.served), (1, 4));
    }

    #[test]
    fn clients_keys_do_not_collide() {
        assert_ne!(entry(1, 5).0, entry(2, 5).0);
    }
}
