//! `cargo bench -p channels`: this channel side by side with a raw cache-line ping-pong, rtrb,
//! ringbuf and crossbeam-channel, moving 56-byte messages between two pinned threads.
//!
//! Two measurements, each repeated with the rows interleaved:
//! - one-way latency: a ping-pong of N round trips, elapsed / 2N, as a ratio to the raw
//!   ping-pong (one `AtomicU64` per side, each in its own cache line: the cost of moving one
//!   line between the two cores);
//! - streaming throughput: N messages one way, elapsed / N, as a ratio to rtrb.
//!
//! The channel's latency rows use `Duplex` endpoints (request/response: acknowledgements ride
//! on the replies); its streaming row uses the bare halves (a one-way stream), and a second
//! streaming row shows the same stream through `Duplex` endpoints.
//!
//! Every measurement of a row is paired with a baseline measurement taken just before it, and
//! the reported ratio is the median of those paired ratios: on a shared 2-vCPU machine the
//! host moves the vCPUs between placements (SMT siblings, one core complex, two dies) that
//! change every absolute number several-fold, and a back-to-back pair almost always sees one
//! placement. The baseline's own row shows the noise floor of that method.
//!
//! Two extra latency rows locate the channel's cost: a raw 64-byte line (seven payload words
//! then a sequence word, the same line reused each round trip) and a raw ring of such lines
//! (a fresh line per message, the URPC access pattern, no flow control).
//!
//! Every queue waits the same way (spin on `try_*` with `spin_loop`), with the same capacity.

use channels::{HostRegion, RecvError, SendError, Side};
use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::Instant;

type Msg = [u8; 56];
const CAPACITY: usize = 256;
const ROUNDS: u64 = 50_000;
const WARMUP_ROUNDS: u64 = 5_000;
const STREAM: u64 = 1_000_000;

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

/// One side of a ping-pong: a queue's two halves, or a channel `Duplex`.
trait Peer: Send {
    fn send(&mut self, m: &Msg);
    fn recv(&mut self, m: &mut Msg);
}

impl<T: Tx, R: Rx> Peer for (T, R) {
    #[inline(always)]
    fn send(&mut self, m: &Msg) {
        self.0.send(m)
    }
    #[inline(always)]
    fn recv(&mut self, m: &mut Msg) {
        self.1.recv(m)
    }
}

/// The cores seen at start-up, before any thread is pinned (`get_core_ids` only lists the
/// cores of the caller's current affinity mask, and spawned threads inherit it).
static CORES: std::sync::OnceLock<Vec<core_affinity::CoreId>> = std::sync::OnceLock::new();

fn cores() -> &'static [core_affinity::CoreId] {
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

fn pin(core: usize) {
    let id = cores().get(core).expect("benchmark needs two cores");
    assert!(
        core_affinity::set_for_current(*id),
        "cannot pin to core {core}"
    );
}

/// Ping-pong: side A (this thread, core 0) sends and waits for the echo from side B (core 1).
/// Returns one-way nanoseconds per message.
fn latency(mut a: impl Peer, mut b: impl Peer, rounds: u64) -> f64 {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let barrier = &barrier;
        s.spawn(move || {
            pin(1);
            barrier.wait();
            let mut m = [0u8; 56];
            for _ in 0..WARMUP_ROUNDS + rounds {
                b.recv(&mut m);
                b.send(&m);
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
            a.send(&m);
            a.recv(&mut m);
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

// ---- raw full line: 7 payload words then a sequence word, one line per direction ----
// Not a queue: the cost of moving a whole 64-byte message line (8 stores) instead of one word,
// to separate that cost from the channel's own bookkeeping.

#[repr(C, align(128))]
struct FullLine([AtomicU64; 8]);

struct LineTx<'a> {
    line: &'a FullLine,
    next: u64,
}
struct LineRx<'a> {
    line: &'a FullLine,
    next: u64,
}
impl Tx for LineTx<'_> {
    #[inline(always)]
    fn send(&mut self, m: &Msg) {
        self.next += 1;
        for (w, chunk) in self.line.0[..7].iter().zip(m.chunks_exact(8)) {
            w.store(
                u64::from_le_bytes(chunk.try_into().unwrap()),
                Ordering::Relaxed,
            );
        }
        self.line.0[7].store(self.next, Ordering::Release);
    }
}
impl Rx for LineRx<'_> {
    #[inline(always)]
    fn recv(&mut self, m: &mut Msg) {
        self.next += 1;
        while self.line.0[7].load(Ordering::Acquire) != self.next {
            spin_loop();
        }
        for (w, chunk) in self.line.0[..7].iter().zip(m.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
    }
}

// ---- raw ring of 64-byte lines: like the above, but message `n` uses line `n % CAPACITY` ----
// No flow control or validation: the bare URPC access pattern (a fresh line per message), to
// separate the cost of that pattern from this crate's bookkeeping.

#[repr(C, align(64))]
struct Slot64([AtomicU64; 8]);

struct RingTx<'a> {
    lines: &'a [Slot64],
    next: u64,
}
struct RingRx<'a> {
    lines: &'a [Slot64],
    next: u64,
}
impl Tx for RingTx<'_> {
    #[inline(always)]
    fn send(&mut self, m: &Msg) {
        let line = &self.lines[self.next as usize % CAPACITY];
        self.next += 1;
        for (w, chunk) in line.0[..7].iter().zip(m.chunks_exact(8)) {
            w.store(
                u64::from_le_bytes(chunk.try_into().unwrap()),
                Ordering::Relaxed,
            );
        }
        line.0[7].store(self.next, Ordering::Release);
    }
}
impl Rx for RingRx<'_> {
    #[inline(always)]
    fn recv(&mut self, m: &mut Msg) {
        let line = &self.lines[self.next as usize % CAPACITY];
        self.next += 1;
        while line.0[7].load(Ordering::Acquire) != self.next {
            spin_loop();
        }
        for (w, chunk) in line.0[..7].iter().zip(m.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
    }
}

// ---- this crate ----

// The wait loops below are written out per type on purpose: routing them through one generic
// helper taking a closure measurably changed the generated code (a one-way stream through
// `Duplex` endpoints went from about 1.2x to 0.5x rtrb).
impl Peer for channels::Duplex<'_> {
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

fn lat_raw_line(rounds: u64) -> f64 {
    let new = || FullLine(std::array::from_fn(|_| AtomicU64::new(0)));
    let (ping, pong) = (new(), new());
    let a = (
        LineTx {
            line: &ping,
            next: 0,
        },
        LineRx {
            line: &pong,
            next: 0,
        },
    );
    let b = (
        LineTx {
            line: &pong,
            next: 0,
        },
        LineRx {
            line: &ping,
            next: 0,
        },
    );
    latency(a, b, rounds)
}

fn lat_raw_ring(rounds: u64) -> f64 {
    let new = || {
        (0..CAPACITY)
            .map(|_| Slot64(std::array::from_fn(|_| AtomicU64::new(0))))
            .collect::<Vec<_>>()
    };
    let (ping, pong) = (new(), new());
    let a = (
        RingTx {
            lines: &ping,
            next: 0,
        },
        RingRx {
            lines: &pong,
            next: 0,
        },
    );
    let b = (
        RingTx {
            lines: &pong,
            next: 0,
        },
        RingRx {
            lines: &ping,
            next: 0,
        },
    );
    latency(a, b, rounds)
}

fn lat_flotilla(rounds: u64) -> f64 {
    let mut r = HostRegion::new(CAPACITY as u32).unwrap();
    let mut ch = r.channel().unwrap();
    latency(
        ch.duplex(Side::A).unwrap(),
        ch.duplex(Side::B).unwrap(),
        rounds,
    )
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
    let mut r = HostRegion::new(CAPACITY as u32).unwrap();
    let mut ch = r.channel().unwrap();
    let (tx, _) = ch.endpoint(Side::A).unwrap();
    let (_, rx) = ch.endpoint(Side::B).unwrap();
    throughput(tx, rx, n)
}

/// A one-way stream through `Duplex` endpoints (what a guest that also receives uses): the
/// same ring, plus the piggyback bookkeeping on every message.
struct DuplexTx<'a>(channels::Duplex<'a>);
struct DuplexRx<'a>(channels::Duplex<'a>);
impl Tx for DuplexTx<'_> {
    #[inline(always)]
    fn send(&mut self, m: &Msg) {
        Peer::send(&mut self.0, m)
    }
}
impl Rx for DuplexRx<'_> {
    #[inline(always)]
    fn recv(&mut self, m: &mut Msg) {
        Peer::recv(&mut self.0, m)
    }
}

fn thr_flotilla_duplex(n: u64) -> f64 {
    let mut r = HostRegion::new(CAPACITY as u32).unwrap();
    let mut ch = r.channel().unwrap();
    throughput(
        DuplexTx(ch.duplex(Side::A).unwrap()),
        DuplexRx(ch.duplex(Side::B).unwrap()),
        n,
    )
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

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

struct Row {
    name: &'static str,
    run: fn(u64) -> f64,
    /// Nanoseconds per message, one per repetition.
    samples: Vec<f64>,
    /// This row divided by the baseline row measured just before it, one per repetition.
    ratios: Vec<f64>,
}

fn row(name: &'static str, run: fn(u64) -> f64) -> Row {
    Row {
        name,
        run,
        samples: Vec::new(),
        ratios: Vec::new(),
    }
}

/// Measures every row `reps` times, rows interleaved. Each measurement of a row is paired
/// with a measurement of the baseline (row 0) taken right before it, and the row's ratio
/// is computed within that pair. The host moves this machine's vCPUs (SMT siblings, same
/// core complex, across dies) every few seconds, which changes every number by up to 10x;
/// a pair taken back to back almost always sees one placement, so the paired ratios are
/// what the table reports.
fn measure(rows: &mut [Row], reps: u64, n: u64) {
    // CHANNELS_BENCH_ONLY=substring: measure only matching rows (and the baseline), for
    // investigating one row; the others then print NaN.
    let only = std::env::var("CHANNELS_BENCH_ONLY").unwrap_or_default();
    let base = rows[0].run;
    for rep in 0..reps {
        for r in rows.iter_mut() {
            if !r.name.contains(only.as_str()) {
                r.samples.push(f64::NAN);
                r.ratios.push(f64::NAN);
                continue;
            }
            let b = base(n);
            let ns = (r.run)(n);
            eprintln!(
                "  [{}/{reps}] {:<30} {ns:>10.1} ns  (baseline {b:>8.1} ns, x{:.2})",
                rep + 1,
                r.name,
                ns / b
            );
            r.samples.push(ns);
            r.ratios.push(ns / b);
        }
    }
}

fn print(title: &str, rows: &mut [Row], base_name: &str) -> Vec<f64> {
    println!("{title}");
    println!(
        "  {:<30} {:>10} {:>10} {:>10} {:>12} {:>15}",
        "row",
        "median ns",
        "min ns",
        "max ns",
        format!("x {base_name}"),
        "x p25..p75"
    );
    let mut ratios = Vec::new();
    for r in rows.iter_mut() {
        let min = r.samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = r.samples.iter().copied().fold(0.0, f64::max);
        let m = median(&mut r.samples);
        let ratio = median(&mut r.ratios);
        let (p25, p75) = (quantile(&mut r.ratios, 0.25), quantile(&mut r.ratios, 0.75));
        println!(
            "  {:<30} {:>10.1} {:>10.1} {:>10.1} {:>12.2} {:>7.2}..{:<7.2}",
            r.name, m, min, max, ratio, p25, p75
        );
        ratios.push(ratio);
    }
    ratios
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported (all rows always run
    // side by side so the ratios come from one run).
    let reps = env_or("CHANNELS_BENCH_REPS", 15);
    let rounds = env_or("CHANNELS_BENCH_ROUNDS", ROUNDS);
    let stream = env_or("CHANNELS_BENCH_STREAM", STREAM);
    let cores = cores().len();
    println!(
        "channels benchmark: 56-byte messages, capacity {CAPACITY}, threads pinned to cores 0 and 1 \
         ({cores} cores seen), {reps} interleaved repetitions; x = median over repetitions of \
         (row / baseline measured just before it)"
    );
    let mut lat = [
        row("raw cache-line ping-pong", lat_raw),
        row("flotilla channel", lat_flotilla),
        row("raw 64-byte line (8 stores)", lat_raw_line),
        row("raw ring of 64-byte lines", lat_raw_ring),
        row("rtrb", lat_rtrb),
        row("ringbuf", lat_ringbuf),
        row("crossbeam-channel", lat_crossbeam),
    ];
    measure(&mut lat, reps, rounds);
    let ratios = print(
        &format!("one-way latency, ns/message (ping-pong, {rounds} round trips)"),
        &mut lat,
        "raw",
    );
    // Rows 2 and 3 are diagnostic (a bare line and a bare ring, not queues: no flow control,
    // no validation); "lowest" compares the channel with the rows the comparison is about.
    let channel = ratios[1];
    let lowest = [0, 4, 5, 6].iter().all(|&i| channel < ratios[i]);
    println!(
        "  latency vs raw ping-pong (median paired): flotilla {channel:.2}x (target <= 0.85x); \
         lowest of raw ping-pong, rtrb, ringbuf, crossbeam: {}; diagnostic rows (not queues): \
         64-byte line {:.2}x, ring of lines {:.2}x",
        if lowest { "yes" } else { "no" },
        ratios[2],
        ratios[3]
    );
    let mut thr = [
        row("rtrb", thr_rtrb),
        row("flotilla channel", thr_flotilla),
        row("flotilla channel (duplex)", thr_flotilla_duplex),
        row("ringbuf", thr_ringbuf),
        row("crossbeam-channel", thr_crossbeam),
    ];
    measure(&mut thr, reps, stream);
    let ratios = print(
        &format!("streaming, ns/message ({stream} messages; lower is better)"),
        &mut thr,
        "rtrb",
    );
    println!(
        "  throughput vs rtrb (median paired): flotilla {:.2}x (target >= 1.2x); through \
         Duplex endpoints {:.2}x",
        1.0 / ratios[1],
        1.0 / ratios[2]
    );
}
