//! The console's fairness logic, without the UART (`docs/console.md`): the
//! per-partition line budget (a token bucket over TSC time), the per-core
//! line queues a core fills without taking any lock, and the round-robin
//! drain that empties them. The bare-metal console (`console.rs` of the
//! binary) puts COM1 behind these.
//!
//! Invariants:
//! - A [`LineQueue`] has one producer (the core it belongs to) and one
//!   consumer at a time (whoever holds the UART lock). Both sides touch only
//!   atomics, so a misuse garbles text but can never be undefined behaviour.
//! - A guest line never takes the queue's last [`RESERVED_SLOTS`] slots:
//!   those are kept for the hypervisor's own notice, so it always fits.
//! - One drain round writes at most one line per queue, so the UART time a
//!   core spends on other cores' lines is bounded by the number of cores,
//!   whatever any partition floods.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU16, AtomicU8, AtomicUsize, Ordering};

/// Lines a partition may print at once after being quiet (the bucket size).
pub const BURST_LINES: u64 = 64;
/// Lines per second a partition may print in the long run (the refill rate).
pub const LINES_PER_SEC: u64 = 100;
/// Bytes of one queued line: `[` + a 32-byte name + `] ` + a 256-byte
/// `CONSOLE_WRITE` line fits (291), with room to spare. Longer text is cut
/// at a character boundary.
pub const SLOT_BYTES: usize = 320;
/// Lines one core's queue holds: two bursts.
pub const QUEUE_SLOTS: usize = 128;
/// Slots of each queue that guest lines may not take.
pub const RESERVED_SLOTS: usize = 1;

/// A token bucket counting lines: starts full with `burst` lines, refills
/// at `per_sec` lines per second of TSC time, never holds more than
/// `burst`. All arithmetic saturates; a TSC that goes backwards adds nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Credit in line-ticks: one line costs `unit` (the TSC rate).
    credit: u64,
    cap: u64,
    unit: u64,
    per_sec: u64,
    last_tsc: u64,
}

impl TokenBucket {
    /// A full bucket at TSC time `now` on a TSC running at `tsc_hz`.
    pub fn new(burst: u64, per_sec: u64, tsc_hz: u64, now: u64) -> Self {
        let unit = tsc_hz.max(1);
        let cap = burst.saturating_mul(unit);
        TokenBucket {
            credit: cap,
            cap,
            unit,
            per_sec,
            last_tsc: now,
        }
    }

    /// Takes one line's token at TSC time `now`; `false` if there is none.
    pub fn take(&mut self, now: u64) -> bool {
        let elapsed = now.saturating_sub(self.last_tsc);
        self.last_tsc = self.last_tsc.max(now);
        self.credit = self
            .credit
            .saturating_add(elapsed.saturating_mul(self.per_sec))
            .min(self.cap);
        if self.credit >= self.unit {
            self.credit -= self.unit;
            true
        } else {
            false
        }
    }
}

/// One partition's console state: its budget and whether it has been told
/// (once) that lines are being dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestConsole {
    bucket: TokenBucket,
    dropping: bool,
}

impl GuestConsole {
    /// The default budget ([`BURST_LINES`], [`LINES_PER_SEC`]).
    pub fn new(tsc_hz: u64, now: u64) -> Self {
        Self::with_budget(BURST_LINES, LINES_PER_SEC, tsc_hz, now)
    }

    /// A budget of `burst` lines refilled at `per_sec`.
    pub fn with_budget(burst: u64, per_sec: u64, tsc_hz: u64, now: u64) -> Self {
        GuestConsole {
            bucket: TokenBucket::new(burst, per_sec, tsc_hz, now),
            dropping: false,
        }
    }

    /// Whether a line offered at TSC time `now` is within the budget.
    pub fn admit(&mut self, now: u64) -> bool {
        self.bucket.take(now)
    }

    /// Records that a line was dropped; `true` the first time, when the
    /// hypervisor prints its notice.
    pub fn dropped(&mut self) -> bool {
        !core::mem::replace(&mut self.dropping, true)
    }
}

/// Whether a queued line is the partition's (subject to the reserve) or
/// the hypervisor's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// A partition's line: refused when only the reserve is left.
    Guest,
    /// The hypervisor's line: may take the reserve.
    Hypervisor,
}

/// A single-producer, single-consumer queue of lines in fixed slots.
#[derive(Debug)]
pub struct LineQueue {
    bytes: Vec<AtomicU8>,
    lens: Vec<AtomicU16>,
    /// Lines ever pushed (the producer's index; wraps).
    head: AtomicUsize,
    /// Lines ever popped (the consumer's index; wraps).
    tail: AtomicUsize,
}

impl LineQueue {
    /// An empty queue of `slots` lines (at least one).
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        LineQueue {
            bytes: (0..slots * SLOT_BYTES).map(|_| AtomicU8::new(0)).collect(),
            lens: (0..slots).map(|_| AtomicU16::new(0)).collect(),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    fn slots(&self) -> usize {
        self.lens.len()
    }

    /// Lines waiting.
    pub fn len(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        head.wrapping_sub(tail).min(self.slots())
    }

    /// Whether no line is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the line made of `parts` (no newline), cut to [`SLOT_BYTES`]
    /// at a character boundary. Producer side. `false` when it does not fit.
    pub fn push(&self, parts: &[&str], priority: Priority) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        let free = self.slots().saturating_sub(head.wrapping_sub(tail));
        let needed = match priority {
            Priority::Guest => RESERVED_SLOTS + 1,
            Priority::Hypervisor => 1,
        };
        if free < needed {
            return false;
        }
        let slot = head % self.slots();
        let base = slot * SLOT_BYTES;
        let mut len = 0;
        'parts: for part in parts {
            for (at, c) in part.char_indices() {
                let width = c.len_utf8();
                if len + width > SLOT_BYTES {
                    break 'parts;
                }
                for (i, b) in part.as_bytes()[at..at + width].iter().enumerate() {
                    if let Some(cell) = self.bytes.get(base + len + i) {
                        cell.store(*b, Ordering::Relaxed);
                    }
                }
                len += width;
            }
        }
        // len <= SLOT_BYTES, so the conversion cannot fail.
        if let (Some(cell), Ok(len)) = (self.lens.get(slot), u16::try_from(len)) {
            cell.store(len, Ordering::Relaxed);
        }
        self.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Takes the oldest line into `out`; returns its length. Consumer side.
    pub fn pop(&self, out: &mut [u8; SLOT_BYTES]) -> Option<usize> {
        let tail = self.tail.load(Ordering::Acquire);
        let head = self.head.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        let slot = tail % self.slots();
        let len = self
            .lens
            .get(slot)
            .map_or(0, |l| usize::from(l.load(Ordering::Relaxed)))
            .min(SLOT_BYTES);
        let base = slot * SLOT_BYTES;
        for (i, b) in out.iter_mut().take(len).enumerate() {
            *b = self
                .bytes
                .get(base + i)
                .map_or(b' ', |c| c.load(Ordering::Relaxed));
        }
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        Some(len)
    }
}

/// The round-robin drain over every core's queue: the state its consumer
/// (the holder of the UART lock) keeps between rounds.
#[derive(Debug)]
pub struct Drain {
    cursor: usize,
    buf: [u8; SLOT_BYTES],
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            cursor: 0,
            buf: [0; SLOT_BYTES],
        }
    }
}

impl Drain {
    /// One round: visits every queue once, starting one further than the
    /// last round did, and writes at most one line of each. Returns the
    /// lines written.
    pub fn round(&mut self, queues: &[LineQueue], mut write: impl FnMut(&[u8])) -> usize {
        let n = queues.len();
        if n == 0 {
            return 0;
        }
        let start = self.cursor % n;
        self.cursor = (start + 1) % n;
        let mut written = 0;
        for k in 0..n {
            if let Some(q) = queues.get((start + k) % n) {
                if let Some(len) = q.pop(&mut self.buf) {
                    write(self.buf.get(..len).unwrap_or_default());
                    written += 1;
                }
            }
        }
        written
    }

    /// Writes every line of `queue` (at most its capacity: a producer
    /// cannot keep the caller here).
    pub fn all_of(&mut self, queue: &LineQueue, mut write: impl FnMut(&[u8])) -> usize {
        let mut written = 0;
        for _ in 0..queue.slots() {
            match queue.pop(&mut self.buf) {
                Some(len) => {
                    write(self.buf.get(..len).unwrap_or_default());
                    written += 1;
                }
                None => break,
            }
        }
        written
    }

    /// Rounds until every queue is empty or `max_rounds` have run.
    pub fn everything(
        &mut self,
        queues: &[LineQueue],
        max_rounds: usize,
        mut write: impl FnMut(&[u8]),
    ) -> usize {
        let mut written = 0;
        for _ in 0..max_rounds {
            let n = self.round(queues, &mut write);
            if n == 0 {
                break;
            }
            written += n;
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::vec;

    const HZ: u64 = 1_000_000; // a 1 MHz TSC keeps the numbers readable

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let mut b = TokenBucket::new(4, 10, HZ, 0);
        assert_eq!((0..6).filter(|_| b.take(0)).count(), 4, "the burst");
        assert!(!b.take(50_000), "half a token after 50 ms at 10/s");
        assert!(b.take(100_000), "one token after 100 ms");
        assert!(!b.take(100_000));
        // A long silence refills to the burst, never beyond.
        assert_eq!((0..10).filter(|_| b.take(1_000_000_000)).count(), 4);
    }

    #[test]
    fn bucket_survives_hostile_clocks() {
        let mut b = TokenBucket::new(2, 10, HZ, u64::MAX);
        assert!(
            b.take(0),
            "a TSC going backwards adds nothing but keeps the burst"
        );
        assert!(b.take(0));
        assert!(!b.take(0));
        assert!(!b.take(u64::MAX), "no time passed since the latest reading");
        let mut fast = TokenBucket::new(3, u64::MAX, u64::MAX, 0);
        assert!(fast.take(0), "a cap that saturates still holds one line");
        assert!(!fast.take(0));
        assert!(
            fast.take(10),
            "a refill that overflows saturates at the cap"
        );
        let mut empty = TokenBucket::new(0, 100, HZ, 0);
        assert!(!empty.take(u64::MAX), "no burst: nothing ever fits");
        let mut zero_hz = TokenBucket::new(1, 1, 0, 0);
        assert!(zero_hz.take(0));
        assert!(zero_hz.take(1), "a 0 Hz TSC is treated as 1 Hz");
    }

    #[test]
    fn the_default_budget_covers_every_built_in_workload() {
        // The busiest built-in workload prints a handful of lines at once.
        let mut c = GuestConsole::new(HZ, 0);
        assert!((0..BURST_LINES).all(|_| c.admit(0)));
        assert!(!c.admit(0));
        assert!(c.dropped(), "first drop: notice");
        assert!(!c.dropped(), "then silence");
        // 100 lines/s sustained: one line every 10 ms always fits.
        assert!((1..=1000).all(|i| c.admit(i * HZ / LINES_PER_SEC)));
    }

    fn pop_string(q: &LineQueue) -> Option<String> {
        let mut buf = [0; SLOT_BYTES];
        let len = q.pop(&mut buf)?;
        Some(String::from_utf8(buf[..len].to_vec()).unwrap())
    }

    #[test]
    fn queue_keeps_order_and_the_reserve() {
        let q = LineQueue::new(3);
        assert!(q.is_empty());
        assert!(q.push(&["[a] ", "one"], Priority::Guest));
        assert!(q.push(&["[a] two"], Priority::Guest));
        assert!(
            !q.push(&["[a] three"], Priority::Guest),
            "last slot is reserved"
        );
        assert!(q.push(&["flotilla: notice"], Priority::Hypervisor));
        assert!(!q.push(&["flotilla: more"], Priority::Hypervisor), "full");
        assert_eq!(q.len(), 3);
        assert_eq!(pop_string(&q).as_deref(), Some("[a] one"));
        assert_eq!(pop_string(&q).as_deref(), Some("[a] two"));
        assert!(q.push(&["[a] four"], Priority::Guest), "room again");
        assert_eq!(pop_string(&q).as_deref(), Some("flotilla: notice"));
        assert_eq!(pop_string(&q).as_deref(), Some("[a] four"));
        assert_eq!(pop_string(&q), None);
    }

    #[test]
    fn queue_cuts_long_lines_at_a_character_boundary() {
        let q = LineQueue::new(2);
        let long = "é".repeat(SLOT_BYTES); // two bytes each
        assert!(q.push(&["x", &long], Priority::Guest));
        let line = pop_string(&q).unwrap();
        assert_eq!(line.len(), SLOT_BYTES - 1, "x + 159 whole characters");
        assert!(line.starts_with("xé"));
        // The longest guest line fits whole.
        let name = "n".repeat(32);
        let text = "t".repeat(256);
        assert!(q.push(&["[", &name, "] ", &text], Priority::Guest));
        assert_eq!(pop_string(&q).unwrap().len(), 32 + 256 + 3);
    }

    #[test]
    fn indices_wrap_around() {
        let q = LineQueue::new(2);
        q.head.store(usize::MAX, Ordering::Relaxed);
        q.tail.store(usize::MAX, Ordering::Relaxed);
        assert!(q.push(&["a"], Priority::Guest));
        assert_eq!(q.len(), 1);
        assert_eq!(pop_string(&q).as_deref(), Some("a"));
        assert!(q.is_empty());
    }

    fn lines(queues: &[LineQueue], drain: &mut Drain, rounds: usize) -> vec::Vec<String> {
        let mut out = vec::Vec::new();
        for _ in 0..rounds {
            drain.round(queues, |b| out.push(String::from_utf8(b.to_vec()).unwrap()));
        }
        out
    }

    #[test]
    fn a_round_serves_each_core_once_so_a_flood_cannot_starve_a_neighbour() {
        let queues: vec::Vec<LineQueue> = (0..3).map(|_| LineQueue::new(QUEUE_SLOTS)).collect();
        for i in 0..100 {
            assert!(queues[0].push(&["[flood] ", &i.to_string()], Priority::Guest));
        }
        assert!(queues[2].push(&["[calm] hello"], Priority::Guest));
        let mut drain = Drain::default();
        let first = lines(&queues, &mut drain, 1);
        assert_eq!(
            first,
            ["[flood] 0", "[calm] hello"],
            "one line per core per round"
        );
        assert_eq!(queues[0].len(), 99);
        // Rounds start one core further each time.
        assert!(queues[1].push(&["[mid] a"], Priority::Guest));
        assert!(queues[0].push(&["[flood] x"], Priority::Guest));
        let second = lines(&queues, &mut drain, 1);
        assert_eq!(second, ["[mid] a", "[flood] 1"]);
        let mut rest = 0;
        drain.everything(&queues, usize::MAX, |_| rest += 1);
        assert_eq!(rest, 99);
        assert!(queues.iter().all(LineQueue::is_empty));
        assert_eq!(Drain::default().round(&[], |_| {}), 0);
    }

    #[test]
    fn draining_one_queue_is_bounded_by_its_size() {
        let q = LineQueue::new(4);
        for _ in 0..3 {
            q.push(&["l"], Priority::Guest);
        }
        let mut n = 0;
        assert_eq!(Drain::default().all_of(&q, |_| n += 1), 3);
        assert_eq!(n, 3);
        assert!(q.is_empty());
    }

    #[test]
    fn a_producer_and_a_consumer_on_two_threads_lose_nothing() {
        extern crate std;
        use std::sync::Arc;
        let q = Arc::new(LineQueue::new(8));
        let producer = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    let text = i.to_string();
                    while !q.push(&["[p] ", &text], Priority::Guest) {
                        std::thread::yield_now();
                    }
                }
            })
        };
        let mut next = 0u32;
        let mut buf = [0; SLOT_BYTES];
        while next < 20_000 {
            match q.pop(&mut buf) {
                Some(len) => {
                    let line = std::str::from_utf8(&buf[..len]).unwrap();
                    assert_eq!(line, std::format!("[p] {next}"));
                    next += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        producer.join().unwrap();
    }
}
