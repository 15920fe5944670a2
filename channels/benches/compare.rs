//! `cargo bench -p channels`: this channel side by side with a raw cache-line ping-pong, rtrb,
//! ringbuf and crossbeam-channel, moving 56-byte messages between two pinned threads.
//!
//! Two measurements, each repeated (rows interleaved, so machine noise spreads over all of
//! them) and reported as the median:
//! - one-way latency: a ping-pong of N round trips, elapsed / 2N, as a ratio to the raw
//!   ping-pong (one `AtomicU64` per side, each in its own cache line: the cost of moving one
//!   line between the two cores);
//! - streaming throughput: N messages one way, elapsed / N, as a ratio to rtrb.
//!
//! Every queue waits the same way (spin on `try_*` with `spin_loop`), with the same capacity.

use channels::{region_size, Channel, RecvError, Region, SendError, Side};
use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::Instant;

type Msg = [u8; 56];
const CAPACITY: usize = 256;
const ROUNDS: u64 = 100_000;
const WARMUP_ROUNDS: u64 = 5_000;
const STREAM: u64 = 2_000_000;
const BATCH: usize = 32;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

trait Tx: Send {
    fn send(&mut self, m: &Msg);
}
trait Rx: Send {
    fn recv(&mut self, m: &mut Msg);
}

fn pin(core: usize) {
    if let Some(ids) = core_affinity::get_core_ids() {
        if let Some(id) = ids.get(core) {
            core_affinity::set_for_current(*id);
        }
    }
}

/// Ping-pong: side A (this thread, core 0) sends and waits for the echo from side B (core 1).
/// Returns one-way nanoseconds per message.
fn latency(mut a: (impl Tx, impl Rx), mut b: (impl Tx, impl Rx), rounds: u64) -> f64 {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let barrier = &barrier;
        s.spawn(move || {
            pin(1);
            barrier.wait();
            let mut m = [0u8; 56];
            for _ in 0..WARMUP_ROUNDS + rounds {
                b.1.recv(&mut m);
                b.0.send(&m);
            }
        });
        pin(0);
        barrier.wait();
        let mut m = [0u8; 56];
        let mut start = Instant::now();
        for i in 0..WARMUP_ROUNDS + rounds {
            if i == WARMUP_ROUNDS {
                start = Instant::now();
            }
            m[..8].copy_from_slice(&i.to_le_bytes());
            a.0.send(&m);
            a.1.recv(&mut m);
            debug_assert_eq!(m[..8], i.to_le_bytes());
        }
        start.elapsed().as_nanos() as f64 / (2 * rounds) as f64
    })
}

/// Streaming: this thread (core 0) sends `n` messages, a thread on core 1 receives them.
/// Returns nanoseconds per message.
fn throughput(mut tx: impl Tx, mut rx: impl Rx, n: u64) -> f64 {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let barrier = &barrier;
        let consumer = s.spawn(move || {
            pin(1);
            barrier.wait();
            let mut m = [0u8; 56];
            let mut sum = 0u64;
            for _ in 0..n {
                rx.recv(&mut m);
                sum = sum.wrapping_add(m[0] as u64);
            }
            black_box(sum);
        });
        pin(0);
        barrier.wait();
        let start = Instant::now();
        let mut m = [7u8; 56];
        for i in 0..n {
            m[0] = i as u8;
            tx.send(&m);
        }
        consumer.join().unwrap();
        start.elapsed().as_nanos() as f64 / n as f64
    })
}

// ---- raw cache-line ping-pong: one AtomicU64 per side, each in its own (128-byte) line ----

#[repr(align(128))]
struct Line(AtomicU64);

struct RawTx<'a> {
    line: &'a AtomicU64,
    next: u64,
}
struct RawRx<'a> {
    line: &'a AtomicU64,
    next: u64,
}
impl Tx for RawTx<'_> {
    #[inline(always)]
    fn send(&mut self, _m: &Msg) {
        self.next += 1;
        self.line.store(self.next, Ordering::Release);
    }
}
impl Rx for RawRx<'_> {
    #[inline(always)]
    fn recv(&mut self, _m: &mut Msg) {
        self.next += 1;
        while self.line.load(Ordering::Acquire) != self.next {
            spin_loop();
        }
    }
}

// ---- this crate ----

struct HostRegion {
    words: Vec<AtomicU64>,
    offset: usize,
    len: usize,
}

impl HostRegion {
    fn new(slots: u32) -> Self {
        let len = region_size(slots) / 8;
        let words: Vec<AtomicU64> = (0..len + 8).map(|_| AtomicU64::new(0)).collect();
        let offset = words.as_ptr().align_offset(64);
        let r = Self { words, offset, len };
        Channel::format(r.region(), slots).expect("format");
        r
    }
    fn region(&self) -> Region<'_> {
        Region::from_words(&self.words[self.offset..self.offset + self.len]).unwrap()
    }
}

impl Tx for channels::Sender<'_> {
    #[inline(always)]
    fn send(&mut self, m: &Msg) {
        loop {
            match self.try_send(m) {
                Ok(()) => return,
                Err(SendError::Full) => spin_loop(),
                Err(e) => panic!("{e}"),
            }
        }
    }
}
impl Rx for channels::Receiver<'_> {
    #[inline(always)]
    fn recv(&mut self, m: &mut Msg) {
        loop {
            match self.try_recv(m) {
                Ok(_) => return,
                Err(RecvError::Empty) => spin_loop(),
                Err(e) => panic!("{e}"),
            }
        }
    }
}

/// Batched use of this crate: the sender stages `BATCH` messages and sends them with one
/// `send_batch`; the receiver drains with `recv_batch`.
struct BatchTx<'a> {
    tx: channels::Sender<'a>,
    staged: Vec<Msg>,
}
struct BatchRx<'a> {
    rx: channels::Receiver<'a>,
    ready: Vec<Msg>,
    next: usize,
}
impl BatchTx<'_> {
    fn flush(&mut self) {
        let mut done = 0;
        while done < self.staged.len() {
            let refs: Vec<&[u8]> = self.staged[done..].iter().map(|m| &m[..]).collect();
            match self.tx.send_batch(&refs) {
                Ok(n) => done += n,
                Err(SendError::Full) => spin_loop(),
                Err(e) => panic!("{e}"),
            }
        }
        self.staged.clear();
    }
}
impl Tx for BatchTx<'_> {
    #[inline(always)]
    fn send(&mut self, m: &Msg) {
        self.staged.push(*m);
        if self.staged.len() == BATCH {
            self.flush();
        }
    }
}
impl Drop for BatchTx<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}
impl Rx for BatchRx<'_> {
    #[inline(always)]
    fn recv(&mut self, m: &mut Msg) {
        while self.next == self.ready.len() {
            self.ready.clear();
            self.next = 0;
            let ready = &mut self.ready;
            match self.rx.recv_batch(BATCH, |p| {
                let mut b = [0u8; 56];
                b[..p.len()].copy_from_slice(p);
                ready.push(b);
            }) {
                Ok(_) => {}
                Err(RecvError::Empty) => spin_loop(),
                Err(e) => panic!("{e}"),
            }
        }
        *m = self.ready[self.next];
        self.next += 1;
    }
}

// ---- rtrb, ringbuf, crossbeam-channel ----

impl Tx for rtrb::Producer<Msg> {
    #[inline(always)]
    fn send(&mut self, m: &Msg) {
        while self.push(*m).is_err() {
            spin_loop();
        }
    }
}
impl Rx for rtrb::Consumer<Msg> {
    #[inline(always)]
    fn recv(&mut self, m: &mut Msg) {
        loop {
            if let Ok(v) = self.pop() {
                *m = v;
                return;
            }
            spin_loop();
        }
    }
}

type RbProd = ringbuf::HeapProd<Msg>;
type RbCons = ringbuf::HeapCons<Msg>;
impl Tx for RbProd {
    #[inline(always)]
    fn send(&mut self, m: &Msg) {
        use ringbuf::traits::Producer;
        while self.try_push(*m).is_err() {
            spin_loop();
        }
    }
}
impl Rx for RbCons {
    #[inline(always)]
    fn recv(&mut self, m: &mut Msg) {
        use ringbuf::traits::Consumer;
        loop {
            if let Some(v) = self.try_pop() {
                *m = v;
                return;
            }
            spin_loop();
        }
    }
}

impl Tx for crossbeam_channel::Sender<Msg> {
    #[inline(always)]
    fn send(&mut self, m: &Msg) {
        let mut m = *m;
        loop {
            match self.try_send(m) {
                Ok(()) => return,
                Err(crossbeam_channel::TrySendError::Full(back)) => {
                    m = back;
                    spin_loop();
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
}
impl Rx for crossbeam_channel::Receiver<Msg> {
    #[inline(always)]
    fn recv(&mut self, m: &mut Msg) {
        loop {
            if let Ok(v) = self.try_recv() {
                *m = v;
                return;
            }
            spin_loop();
        }
    }
}

fn rb_pair() -> (RbProd, RbCons) {
    use ringbuf::traits::Split;
    ringbuf::HeapRb::<Msg>::new(CAPACITY).split()
}

// ---- rows ----

fn lat_raw(rounds: u64) -> f64 {
    let (ping, pong) = (Line(AtomicU64::new(0)), Line(AtomicU64::new(0)));
    let a = (
        RawTx {
            line: &ping.0,
            next: 0,
        },
        RawRx {
            line: &pong.0,
            next: 0,
        },
    );
    let b = (
        RawTx {
            line: &pong.0,
            next: 0,
        },
        RawRx {
            line: &ping.0,
            next: 0,
        },
    );
    latency(a, b, rounds)
}

fn lat_flotilla(rounds: u64) -> f64 {
    let r = HostRegion::new(CAPACITY as u32);
    let ch = Channel::open(r.region()).unwrap();
    latency(ch.endpoint(Side::A), ch.endpoint(Side::B), rounds)
}

fn lat_rtrb(rounds: u64) -> f64 {
    let (p1, c1) = rtrb::RingBuffer::<Msg>::new(CAPACITY);
    let (p2, c2) = rtrb::RingBuffer::<Msg>::new(CAPACITY);
    latency((p1, c2), (p2, c1), rounds)
}

fn lat_ringbuf(rounds: u64) -> f64 {
    let (p1, c1) = rb_pair();
    let (p2, c2) = rb_pair();
    latency((p1, c2), (p2, c1), rounds)
}

fn lat_crossbeam(rounds: u64) -> f64 {
    let (p1, c1) = crossbeam_channel::bounded::<Msg>(CAPACITY);
    let (p2, c2) = crossbeam_channel::bounded::<Msg>(CAPACITY);
    latency((p1, c2), (p2, c1), rounds)
}

fn thr_flotilla(n: u64) -> f64 {
    let r = HostRegion::new(CAPACITY as u32);
    let ch = Channel::open(r.region()).unwrap();
    throughput(ch.endpoint(Side::A).0, ch.endpoint(Side::B).1, n)
}

fn thr_flotilla_batch(n: u64) -> f64 {
    let r = HostRegion::new(CAPACITY as u32);
    let ch = Channel::open(r.region()).unwrap();
    let tx = BatchTx {
        tx: ch.endpoint(Side::A).0,
        staged: Vec::with_capacity(BATCH),
    };
    let rx = BatchRx {
        rx: ch.endpoint(Side::B).1,
        ready: Vec::with_capacity(BATCH),
        next: 0,
    };
    throughput(tx, rx, n)
}

fn thr_rtrb(n: u64) -> f64 {
    let (p, c) = rtrb::RingBuffer::<Msg>::new(CAPACITY);
    throughput(p, c, n)
}

fn thr_ringbuf(n: u64) -> f64 {
    let (p, c) = rb_pair();
    throughput(p, c, n)
}

fn thr_crossbeam(n: u64) -> f64 {
    let (p, c) = crossbeam_channel::bounded::<Msg>(CAPACITY);
    throughput(p, c, n)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Row {
    name: &'static str,
    run: fn(u64) -> f64,
    samples: Vec<f64>,
}

fn row(name: &'static str, run: fn(u64) -> f64) -> Row {
    Row {
        name,
        run,
        samples: Vec::new(),
    }
}

fn measure(rows: &mut [Row], reps: u64, n: u64) {
    for rep in 0..reps {
        for r in rows.iter_mut() {
            let ns = (r.run)(n);
            eprintln!("  [{}/{reps}] {:<30} {ns:>10.1} ns", rep + 1, r.name);
            r.samples.push(ns);
        }
    }
}

fn print(title: &str, rows: &mut [Row], base: usize, base_name: &str) {
    let medians: Vec<f64> = rows.iter_mut().map(|r| median(&mut r.samples)).collect();
    println!("{title}");
    println!(
        "  {:<30} {:>10} {:>10} {:>10} {:>10}",
        "row",
        "median ns",
        "min ns",
        "max ns",
        format!("x {base_name}")
    );
    for (r, m) in rows.iter().zip(&medians) {
        let min = r.samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = r.samples.iter().copied().fold(0.0, f64::max);
        println!(
            "  {:<30} {:>10.1} {:>10.1} {:>10.1} {:>10.2}",
            r.name,
            m,
            min,
            max,
            m / medians[base]
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported (all rows always run
    // side by side so the ratios come from one run).
    let reps = env_or("CHANNELS_BENCH_REPS", 9);
    let rounds = env_or("CHANNELS_BENCH_ROUNDS", ROUNDS);
    let stream = env_or("CHANNELS_BENCH_STREAM", STREAM);
    let cores = core_affinity::get_core_ids().map_or(0, |c| c.len());
    println!(
        "channels benchmark: 56-byte messages, capacity {CAPACITY}, threads pinned to cores 0 and 1 \
         ({cores} cores seen), median of {reps} interleaved repetitions"
    );
    let mut lat = [
        row("raw cache-line ping-pong", lat_raw),
        row("flotilla channel", lat_flotilla),
        row("rtrb", lat_rtrb),
        row("ringbuf", lat_ringbuf),
        row("crossbeam-channel", lat_crossbeam),
    ];
    measure(&mut lat, reps, rounds);
    print(
        &format!("one-way latency, ns/message (ping-pong, {rounds} round trips)"),
        &mut lat,
        0,
        "raw",
    );
    let mut thr = [
        row("rtrb", thr_rtrb),
        row("flotilla channel", thr_flotilla),
        row("flotilla channel (batch 32)", thr_flotilla_batch),
        row("ringbuf", thr_ringbuf),
        row("crossbeam-channel", thr_crossbeam),
    ];
    measure(&mut thr, reps, stream);
    print(
        &format!("streaming, ns/message ({stream} messages; lower is better)"),
        &mut thr,
        0,
        "rtrb",
    );
    let medians: Vec<f64> = thr.iter_mut().map(|r| median(&mut r.samples)).collect();
    println!(
        "  throughput vs rtrb: flotilla {:.2}x, flotilla batch {:.2}x (target >= 1.2x)",
        medians[0] / medians[1],
        medians[0] / medians[2]
    );
}
