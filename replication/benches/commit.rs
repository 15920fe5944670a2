//! `cargo bench -p replication`: commit latency of a 2-member group, the two members on two
//! pinned threads connected by a real `channels` channel (`Duplex` endpoints over an
//! in-memory region), as a ratio to a plain channel round trip measured in the same run.
//!
//! The leader proposes an update and waits for [`Event::Committed`]; the follower logs the
//! entry, acknowledges it and applies it: one `ENTRY` (56 bytes) out and one `ACK` (16
//! bytes) back, the commit index riding on the next entry. The baseline is the same exchange
//! without the protocol: a 56-byte message out and a 16-byte reply, over another channel of
//! the same size, with the same threads, pinning, endpoints (`Duplex::try_send` /
//! `try_recv`) and spin-polling loops. Each repetition measures both back to back (the order
//! alternates between repetitions) and the headline ratio is the median of those paired
//! ratios: on this shared 2-vCPU machine the host moves the vCPUs between placements that
//! change absolute numbers several-fold (see `docs/channels.md`, "Measuring"), so only
//! paired figures compare.
//!
//! Two timings per side: *mean* (the time of a whole run of updates over their number, no
//! clock in the loop) and *per operation* (one clock read per operation, in a separate run:
//! median and p99 over all repetitions; the clock read, whose cost is printed, is inside
//! both).
//!
//! The fast row is the same exchange on the word-level steady path
//! ([`Member::propose_words`], [`Member::handle_words`], the channel's `try_send_words` /
//! `try_recv_words`), same threads, pinning and polling; a reference row runs the baseline on
//! the word interface too, and the general row (the interface above) stays for comparison.
//!
//! Environment: `REPLICATION_BENCH_REPS` (repetitions, default 15), `REPLICATION_BENCH_ROUNDS`
//! (operations per run, default 20 000), `REPLICATION_BENCH_MODE=work` or `work-fast` (only
//! the one-thread protocol-work row, general or fast path, for a profiler).

use channels::{region_size, Channel, Duplex, RecvError, Region, SendError, Side};
use replication::{Config, Event, FastOut, Member, MemberSet, Op, Phase, Topology, Words};
use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::Instant;

const SLOTS: u32 = 256;
const KEYS: u64 = 256;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

static CORES: std::sync::OnceLock<Vec<core_affinity::CoreId>> = std::sync::OnceLock::new();

fn pin(core: usize) {
    let cores = CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default());
    if let Some(id) = cores.get(core) {
        core_affinity::set_for_current(*id);
    }
}

/// Words for one channel region, 64-byte aligned inside a larger allocation.
struct HostRegion {
    words: Vec<AtomicU64>,
    offset: usize,
    len: usize,
}

impl HostRegion {
    fn new() -> Self {
        let len = region_size(SLOTS) / 8;
        let words: Vec<AtomicU64> = (0..len + 8).map(|_| AtomicU64::new(0)).collect();
        let offset = words.as_ptr().align_offset(64);
        Self { words, offset, len }
    }

    fn channel(&mut self) -> Channel<'_> {
        let region = Region::from_words(&mut self.words[self.offset..self.offset + self.len])
            .expect("aligned region");
        Channel::format(region, SLOTS).expect("format")
    }
}

fn send(d: &mut Duplex<'_>, bytes: &[u8]) {
    loop {
        match d.try_send(bytes) {
            Ok(()) => return,
            Err(SendError::Full) => spin_loop(),
            Err(e) => panic!("send: {e:?}"),
        }
    }
}

/// Receives one message if there is one.
fn recv(d: &mut Duplex<'_>, buf: &mut [u8; 56]) -> Option<usize> {
    match d.try_recv(buf) {
        Ok(n) => Some(n),
        Err(RecvError::Empty) => None,
        Err(e) => panic!("recv: {e:?}"),
    }
}

/// Sends everything the member queued. `poll_send` returning `None` is also where the
/// member applies what it logged, after its messages are on their way.
fn flush_out(m: &mut Member, d: &mut Duplex<'_>) {
    while let Some((_, msg)) = m.poll_send() {
        send(d, msg.encode().as_bytes());
    }
}

fn send_words(d: &mut Duplex<'_>, words: &Words, len: usize) {
    loop {
        match d.try_send_words(words, len) {
            Ok(()) => return,
            Err(SendError::Full) => spin_loop(),
            Err(e) => panic!("send: {e:?}"),
        }
    }
}

/// Receives one message as payload words if there is one.
fn recv_words(d: &mut Duplex<'_>) -> Option<(Words, usize)> {
    match d.try_recv_words() {
        Ok(m) => Some(m),
        Err(RecvError::Empty) => None,
        Err(e) => panic!("recv: {e:?}"),
    }
}

/// How a run is timed.
enum Timing<'a> {
    /// One clock read per batch of [`BATCH`] operations: each batch's mean, ns per operation.
    Batches(&'a mut Vec<f64>),
    /// One clock read per operation: each operation's time, ns (the clock read included).
    PerOp(&'a mut Vec<u32>),
}

/// Operations per batch in [`Timing::Batches`] (one clock read per batch).
const BATCH: u64 = 64;

impl Timing<'_> {
    /// Runs `op` `warm + rounds` times, timing the last `rounds`.
    fn run(&mut self, warm: u64, rounds: u64, mut op: impl FnMut(u64)) {
        for i in 0..warm {
            op(i);
        }
        let mut last = Instant::now();
        match self {
            Self::Batches(v) => {
                for b in 0..rounds / BATCH {
                    for i in 0..BATCH {
                        op(warm + b * BATCH + i);
                    }
                    let now = Instant::now();
                    v.push(now.duration_since(last).as_nanos() as f64 / BATCH as f64);
                    last = now;
                }
            }
            Self::PerOp(v) => {
                for i in warm..warm + rounds {
                    op(i);
                    let now = Instant::now();
                    v.push(now.duration_since(last).as_nanos().min(u32::MAX as u128) as u32);
                    last = now;
                }
            }
        }
    }
}

/// The peer loop both sides share: spin on the channel until `stop`, handing each message
/// to `on_msg`.
fn serve(d: &mut Duplex<'_>, stop: &AtomicBool, mut on_msg: impl FnMut(&mut Duplex<'_>, &[u8])) {
    let mut buf = [0u8; 56];
    while !stop.load(Ordering::Relaxed) {
        match recv(d, &mut buf) {
            Some(n) => on_msg(d, &buf[..n]),
            None => spin_loop(),
        }
    }
}

/// Baseline: exchanges of a 56-byte message and a 16-byte reply; ns per exchange.
fn round_trip(rounds: u64, mut timing: Timing<'_>) {
    let mut region = HostRegion::new();
    let mut ch = region.channel();
    let (mut a, mut b) = (
        ch.duplex(Side::A).expect("side A"),
        ch.duplex(Side::B).expect("side B"),
    );
    let barrier = Barrier::new(2);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (barrier, stop) = (&barrier, &stop);
        s.spawn(move || {
            pin(1);
            barrier.wait();
            serve(&mut b, stop, |d, msg| send(d, &msg[..16]));
        });
        pin(0);
        barrier.wait();
        let mut buf = [0u8; 56];
        timing.run(rounds / 10, rounds, |i| {
            buf[..8].copy_from_slice(&i.to_le_bytes());
            send(&mut a, &buf);
            while recv(&mut a, &mut buf).is_none() {
                spin_loop();
            }
        });
        stop.store(true, Ordering::Relaxed);
    });
}

/// The baseline on the channel's word interface (`try_send_words` / `try_recv_words`, the
/// one the fast path uses): otherwise [`round_trip`].
fn round_trip_words(rounds: u64, mut timing: Timing<'_>) {
    let mut region = HostRegion::new();
    let mut ch = region.channel();
    let (mut a, mut b) = (
        ch.duplex(Side::A).expect("side A"),
        ch.duplex(Side::B).expect("side B"),
    );
    let barrier = Barrier::new(2);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (barrier, stop) = (&barrier, &stop);
        s.spawn(move || {
            pin(1);
            barrier.wait();
            while !stop.load(Ordering::Relaxed) {
                match recv_words(&mut b) {
                    Some((w, _)) => send_words(&mut b, &w, 16),
                    None => spin_loop(),
                }
            }
        });
        pin(0);
        barrier.wait();
        let mut w = [0u64; 7];
        timing.run(rounds / 10, rounds, |i| {
            w[0] = i;
            send_words(&mut a, &w, 56);
            loop {
                if let Some((r, _)) = recv_words(&mut a) {
                    w = r;
                    break;
                }
                spin_loop();
            }
        });
        stop.store(true, Ordering::Relaxed);
    });
}

/// Member `id` of a fresh 2-member group.
fn member(id: u8) -> Member {
    let topo = Topology::line(2).expect("two members");
    let cfg = Config {
        retain: 64,
        ..Config::default()
    };
    Member::new(id, topo, cfg, 1, MemberSet::first(2))
}

/// The protocol: updates proposed by the leader, each waited for until committed; ns per
/// committed update.
fn commit_latency(rounds: u64, mut timing: Timing<'_>) {
    let mut region = HostRegion::new();
    let mut ch = region.channel();
    let (mut a, mut b) = (
        ch.duplex(Side::A).expect("side A"),
        ch.duplex(Side::B).expect("side B"),
    );
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let (barrier, stop) = (&barrier, &stop);
        s.spawn(move || {
            pin(1);
            // Each member is built on its own thread, so their heap blocks come from
            // different allocator arenas and share no cache line (as members in two
            // partitions share no memory but their channel).
            let mut follower = member(1);
            barrier.wait();
            flush_out(&mut follower, &mut b);
            serve(&mut b, stop, |d, msg| {
                follower.handle_bytes(0, msg).expect("honest leader");
                flush_out(&mut follower, d);
                while follower.poll_event().is_some() {}
            });
        });
        pin(0);
        let mut leader = member(0);
        barrier.wait();
        let mut buf = [0u8; 56];
        flush_out(&mut leader, &mut a);
        while leader.phase() != Phase::Open {
            if let Some(n) = recv(&mut a, &mut buf) {
                leader.handle_bytes(1, &buf[..n]).expect("honest follower");
                flush_out(&mut leader, &mut a);
            }
        }
        while leader.poll_event().is_some() {}
        timing.run(rounds / 10, rounds, |i| {
            let oseq = leader
                .propose(Op::Put {
                    key: i % KEYS,
                    value: i,
                })
                .expect("open leader");
            flush_out(&mut leader, &mut a);
            'wait: loop {
                if let Some(n) = recv(&mut a, &mut buf) {
                    leader.handle_bytes(1, &buf[..n]).expect("honest follower");
                    flush_out(&mut leader, &mut a);
                    while let Some(e) = leader.poll_event() {
                        if e == (Event::Committed { origin_seq: oseq }) {
                            break 'wait;
                        }
                    }
                } else {
                    spin_loop();
                }
            }
        });
        stop.store(true, Ordering::Relaxed);
    });
}

/// Fast-path calls that took the general path instead: the follower's `STATE` and `OPEN` of
/// the view change, 2 per run (the leader's view change is not on the fast path), and none
/// in the steady state.
static FALLBACKS: AtomicU64 = AtomicU64::new(0);

/// [`commit_latency`] on the word-level fast path ([`Member::propose_words`],
/// [`Member::handle_words`], the channel's word interface); same threads, pinning, channel,
/// polling and wait for [`Event::Committed`].
fn commit_latency_fast(rounds: u64, mut timing: Timing<'_>) {
    let mut region = HostRegion::new();
    let mut ch = region.channel();
    let (mut a, mut b) = (
        ch.duplex(Side::A).expect("side A"),
        ch.duplex(Side::B).expect("side B"),
    );
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let (barrier, stop) = (&barrier, &stop);
        s.spawn(move || {
            pin(1);
            let mut follower = member(1);
            barrier.wait();
            flush_out(&mut follower, &mut b);
            while !stop.load(Ordering::Relaxed) {
                match recv_words(&mut b) {
                    Some((w, n)) => {
                        let o = follower
                            .handle_words(0, &w, n, |_, w, n| send_words(&mut b, w, n))
                            .expect("honest leader");
                        if o == FastOut::Queued {
                            FALLBACKS.fetch_add(1, Ordering::Relaxed);
                        }
                        flush_out(&mut follower, &mut b);
                        while follower.poll_event().is_some() {}
                    }
                    None => spin_loop(),
                }
            }
        });
        pin(0);
        let mut leader = member(0);
        barrier.wait();
        let mut buf = [0u8; 56];
        flush_out(&mut leader, &mut a);
        while leader.phase() != Phase::Open {
            if let Some(n) = recv(&mut a, &mut buf) {
                leader.handle_bytes(1, &buf[..n]).expect("honest follower");
                flush_out(&mut leader, &mut a);
            }
        }
        while leader.poll_event().is_some() {}
        let mut queued = 0;
        timing.run(rounds / 10, rounds, |i| {
            let (oseq, o) = leader
                .propose_words(
                    Op::Put {
                        key: i % KEYS,
                        value: i,
                    },
                    |_, w, n| send_words(&mut a, w, n),
                )
                .expect("open leader");
            queued += u64::from(o == FastOut::Queued);
            // While the ENTRY is in flight: the leader applies its copy, and the events (its
            // `Applied`, the previous update's `Committed`) are drained.
            flush_out(&mut leader, &mut a);
            while leader.poll_event().is_some() {}
            while !leader_sees_commit(&mut leader, oseq) {
                if let Some((w, n)) = recv_words(&mut a) {
                    let o = leader
                        .handle_words(1, &w, n, |_, w, n| send_words(&mut a, w, n))
                        .expect("honest follower");
                    if o == FastOut::Queued {
                        queued += 1;
                        flush_out(&mut leader, &mut a);
                    }
                } else {
                    spin_loop();
                }
            }
        });
        FALLBACKS.fetch_add(queued, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
    });
}

/// Hands every queued message of two members on this thread straight to
/// its receiver (encoded and decoded, no channel) until neither has more,
/// draining their events.
fn pass(m: &mut [Member; 2]) {
    let mut moved = true;
    while moved {
        moved = false;
        for i in 0..2 {
            while let Some((to, msg)) = m[i].poll_send() {
                let f = msg.encode();
                m[to as usize].handle_bytes(i as u8, f.as_bytes()).unwrap();
                moved = true;
            }
            while m[i].poll_event().is_some() {}
        }
    }
}

/// The protocol's own work per committed update: both members on this thread, messages
/// encoded and decoded but handed over directly (no channel). ns per update.
fn protocol_work(rounds: u64) -> f64 {
    let mut m = [member(0), member(1)];
    pass(&mut m);
    let start = Instant::now();
    for i in 0..rounds {
        m[0].propose(Op::Put {
            key: i % KEYS,
            value: i,
        })
        .unwrap();
        pass(&mut m);
    }
    assert_eq!(m[0].commit(), rounds);
    start.elapsed().as_nanos() as f64 / rounds as f64
}

/// Cost of the clock read the per-operation timings make once per operation.
fn clock_cost() -> f64 {
    let n = 100_000;
    let start = Instant::now();
    let mut last = start;
    for _ in 0..n {
        last = std::hint::black_box(Instant::now());
    }
    last.duration_since(start).as_nanos() as f64 / n as f64
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn at(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn percentile(v: &mut [u32], q: f64) -> u32 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn median_f(v: &[f64]) -> f64 {
    at(&sorted(v), 0.5)
}

/// [`protocol_work`] on the word-level fast path.
fn protocol_work_fast(rounds: u64) -> f64 {
    let mut m = [member(0), member(1)];
    pass(&mut m);
    let start = Instant::now();
    let (mut w, mut r) = (([0u64; 7], 0), ([0u64; 7], 0));
    for i in 0..rounds {
        let (_, o) = m[0]
            .propose_words(
                Op::Put {
                    key: i % KEYS,
                    value: i,
                },
                |_, x, n| w = (*x, n),
            )
            .unwrap();
        assert_eq!(o, FastOut::Sent);
        while m[0].poll_send().is_some() {}
        let o = m[1]
            .handle_words(0, &w.0, w.1, |_, x, n| r = (*x, n))
            .unwrap();
        assert_eq!(o, FastOut::Sent);
        while m[1].poll_send().is_some() {}
        while m[1].poll_event().is_some() {}
        let o = m[0]
            .handle_words(1, &r.0, r.1, |_, _, _| unreachable!())
            .unwrap();
        assert_eq!(o, FastOut::Done);
        while m[0].poll_send().is_some() {}
        while m[0].poll_event().is_some() {}
    }
    assert_eq!(m[0].commit(), rounds);
    start.elapsed().as_nanos() as f64 / rounds as f64
}

/// Valgrind's client request `CALLGRIND_TOGGLE_COLLECT`: callgrind (run with
/// `--collect-atstart=no`) counts instructions only between two calls. A no-op outside
/// valgrind.
#[inline(always)]
fn callgrind_toggle() {
    #[cfg(target_arch = "x86_64")]
    {
        // VG_USERREQ_TOOL_BASE('C', 'T') + 2, then five unused arguments.
        let args: [u64; 6] = [0x4354_0002, 0, 0, 0, 0, 0];
        // SAFETY: valgrind's client-request sequence: four rotations of rdi by 128 bits in
        // all (rdi is left as it was, and declared clobbered anyway) and an exchange of rbx
        // with itself, which changes nothing outside valgrind; under valgrind it reads the
        // six words of `args` (alive across the asm) and writes rdx. No memory is written.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") args.as_ptr(),
                inout("rdx") 0u64 => _,
                inout("rdi") 0u64 => _,
                options(nostack, readonly),
            );
        }
    }
}

/// At the leader, once an `ACK` was handled: whether update `oseq` is committed (its
/// `Committed` event stays queued until the next update's `ENTRY` is out).
#[inline(always)]
fn leader_sees_commit(leader: &mut Member, oseq: u32) -> bool {
    leader.is_committed(oseq)
}

/// At the leader, once its `ENTRY` is out: the rest (applying, draining events).
#[inline(always)]
fn leader_after_send(leader: &mut Member) {
    while leader.poll_send().is_some() {}
    while leader.poll_event().is_some() {}
}

/// Which critical-path segment [`path_counts`] has callgrind count.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Segment {
    /// At the leader, from the `ACK`'s words in hand to knowing the update committed.
    Ack,
    /// At the leader, from there to its next `ENTRY` handed to the channel (the driver's
    /// loop, `propose_words` up to its `send`).
    Propose,
    /// At the follower, from the `ENTRY`'s words in hand to its `ACK` handed to the channel.
    Entry,
    /// At the leader, its work after its `ENTRY` is out (applying its copy, draining its
    /// events): off the critical path only while it takes less than the round trip.
    After,
}

/// The bench's fast loop on one thread, the channel replaced by a word buffer, with
/// callgrind counting only `seg` (run under `valgrind --tool=callgrind --collect-atstart=no`
/// with `REPLICATION_BENCH_MODE=path-ack|path-propose|path-entry|path-after`; divide the total by the
/// rounds). Outside valgrind it is the one-thread fast row without a clock.
fn path_counts(rounds: u64, seg: Segment) {
    let mut m = [member(0), member(1)];
    pass(&mut m);
    let (mut w, mut r) = (([0u64; 7], 0), ([0u64; 7], 0));
    let on = |s: Segment| {
        if s == seg {
            callgrind_toggle();
        }
    };
    // The first proposal, outside the loop (as the bench's warm-up would be).
    let (mut oseq, _) = m[0]
        .propose_words(Op::Put { key: 0, value: 0 }, |_, x, n| w = (*x, n))
        .unwrap();
    while m[0].poll_send().is_some() {}
    while m[0].poll_event().is_some() {}
    for i in 1..=rounds {
        // The follower.
        on(Segment::Entry);
        let o = m[1]
            .handle_words(0, &w.0, w.1, |_, x, n| {
                on(Segment::Entry);
                r = (*x, n);
            })
            .unwrap();
        assert_eq!(o, FastOut::Sent);
        while m[1].poll_send().is_some() {}
        while m[1].poll_event().is_some() {}
        // The leader: the ACK, the commit, the next proposal.
        on(Segment::Ack);
        let o = m[0]
            .handle_words(1, &r.0, r.1, |_, _, _| unreachable!())
            .unwrap();
        assert_eq!(o, FastOut::Done);
        let done = leader_sees_commit(&mut m[0], oseq);
        on(Segment::Ack);
        assert!(done);
        on(Segment::Propose);
        let (next, o) = m[0]
            .propose_words(
                Op::Put {
                    key: i % KEYS,
                    value: i,
                },
                |_, x, n| {
                    on(Segment::Propose);
                    w = (*x, n);
                },
            )
            .unwrap();
        assert_eq!(o, FastOut::Sent);
        oseq = next;
        on(Segment::After);
        leader_after_send(&mut m[0]);
        on(Segment::After);
    }
}

fn main() {
    let reps = env_or("REPLICATION_BENCH_REPS", 15).max(1) as usize;
    let rounds = env_or("REPLICATION_BENCH_ROUNDS", 20_000).max(BATCH);
    let _ = CORES.set(core_affinity::get_core_ids().unwrap_or_default());
    let cores = CORES.get().map_or(0, Vec::len);
    match std::env::var("REPLICATION_BENCH_MODE").as_deref() {
        Ok("work") => {
            let w: Vec<f64> = (0..reps).map(|_| protocol_work(rounds)).collect();
            println!(
                "protocol work per update, one thread, general path: {:.1} ns median",
                median_f(&w)
            );
            return;
        }
        Ok(mode @ ("path-ack" | "path-propose" | "path-entry" | "path-after")) => {
            let seg = match mode {
                "path-ack" => Segment::Ack,
                "path-propose" => Segment::Propose,
                "path-after" => Segment::After,
                _ => Segment::Entry,
            };
            path_counts(rounds, seg);
            println!("{mode}: {rounds} updates; callgrind's total over {rounds} is the count");
            return;
        }
        Ok("work-fast") => {
            let w: Vec<f64> = (0..reps).map(|_| protocol_work_fast(rounds)).collect();
            println!(
                "protocol work per update, one thread, fast path: {:.1} ns median",
                median_f(&w)
            );
            return;
        }
        _ => {}
    }
    println!(
        "replication benchmark: N = 2, threads pinned to cores 0 and 1 ({cores} cores seen), \
         {reps} repetitions of {rounds} operations per row"
    );
    // Per repetition: the median batch mean of each row. The order of the rows alternates.
    let (mut base, mut base_w, mut gen, mut fast) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut base_ops, mut prot_ops) = (Vec::new(), Vec::new());
    for r in 0..reps {
        let (mut b, mut bw, mut g, mut f) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        if r % 2 == 0 {
            round_trip(rounds, Timing::Batches(&mut b));
            round_trip_words(rounds, Timing::Batches(&mut bw));
            commit_latency(rounds, Timing::Batches(&mut g));
            commit_latency_fast(rounds, Timing::Batches(&mut f));
        } else {
            commit_latency_fast(rounds, Timing::Batches(&mut f));
            commit_latency(rounds, Timing::Batches(&mut g));
            round_trip_words(rounds, Timing::Batches(&mut bw));
            round_trip(rounds, Timing::Batches(&mut b));
        }
        base.push(median_f(&b));
        base_w.push(median_f(&bw));
        gen.push(median_f(&g));
        fast.push(median_f(&f));
        round_trip(rounds, Timing::PerOp(&mut base_ops));
        commit_latency_fast(rounds, Timing::PerOp(&mut prot_ops));
    }
    let ratios = |num: &[f64], den: &[f64]| -> Vec<f64> {
        sorted(&num.iter().zip(den).map(|(n, d)| n / d).collect::<Vec<_>>())
    };
    let (bm, b99) = (
        percentile(&mut base_ops, 0.5),
        percentile(&mut base_ops, 0.99),
    );
    let (pm, p99) = (
        percentile(&mut prot_ops, 0.5),
        percentile(&mut prot_ops, 0.99),
    );
    let work: Vec<f64> = (0..reps).map(|_| protocol_work(rounds)).collect();
    let work_fast: Vec<f64> = (0..reps).map(|_| protocol_work_fast(rounds)).collect();
    let clock = clock_cost();
    println!(
        "                                          median of {BATCH}-op batches, ns     one clock read per op, ns"
    );
    println!(
        "  row                                    median      min      max        median    p99"
    );
    let row = |name: &str, v: &[f64], ops: Option<(u32, u32)>| {
        let v = sorted(v);
        let tail = ops.map_or(String::new(), |(m, p)| format!("      {m:>8} {p:>6}"));
        println!(
            "  {name:<38} {:>7.1} {:>8.1} {:>8.1}{tail}",
            at(&v, 0.5),
            v[0],
            v[v.len() - 1]
        );
    };
    row(
        "channel round trip (56 B, 16 B back)",
        &base,
        Some((bm, b99)),
    );
    row("  the same, word interface", &base_w, None);
    row("commit, general path (ENTRY, ACK back)", &gen, None);
    row(
        "commit, fast path (ENTRY, ACK back)",
        &fast,
        Some((pm, p99)),
    );
    row("protocol work, one thread, general", &work, None);
    row("protocol work, one thread, fast", &work_fast, None);
    let show = |name: &str, r: &[f64]| {
        println!(
            "  {name}: median {:.2}x, min {:.2}x, p25 {:.2}x, p75 {:.2}x, max {:.2}x",
            at(r, 0.5),
            r[0],
            at(r, 0.25),
            at(r, 0.75),
            r[r.len() - 1],
        );
    };
    println!("  paired per repetition (target <= 1.5x):");
    show("fast commit / round trip   ", &ratios(&fast, &base));
    show("fast commit / word round trip", &ratios(&fast, &base_w));
    show("general commit / round trip", &ratios(&gen, &base));
    println!(
        "  per op (pooled, fast path): medians {:.2}x, p99s {:.2}x; the clock read ({clock:.1} ns) is in both",
        f64::from(pm) / f64::from(bm.max(1)),
        f64::from(p99) / f64::from(b99.max(1)),
    );
    println!(
        "  fast-path calls that took the general path: {}",
        FALLBACKS.load(Ordering::Relaxed)
    );
    // The host places the two vCPUs so that a round trip costs either about 0.1 us or about
    // 0.4 us, and may change its mind within a run: every repetition, so the two are told
    // apart.
    let reps: Vec<String> = (0..base.len())
        .map(|i| {
            format!(
                "{:.0}/{:.0}/{:.0}={:.2}",
                base[i],
                gen[i],
                fast[i],
                fast[i] / base[i]
            )
        })
        .collect();
    println!(
        "  per repetition, round trip/general/fast ns = fast ratio: {}",
        reps.join(" ")
    );
}
