//! `cargo bench -p replication`: commit latency of a 2-member group, the two members on two
//! pinned threads connected by a real `channels` channel (`Duplex` endpoints over an
//! in-memory region), as a ratio to a plain channel round trip measured in the same run.
//!
//! The leader proposes an update, the follower applies it and acknowledges, and the leader
//! learns the commit: one `ENTRY` (56 bytes) out and one `ACK` (16 bytes) back, the commit
//! index riding on the next entry. The baseline is the same exchange without the protocol:
//! a 56-byte message out and a 16-byte reply over another channel of the same size. Each
//! repetition measures the baseline and then the protocol back to back, and the ratio
//! reported is the median of those paired ratios (on this shared 2-vCPU machine the host
//! moves the vCPUs between placements that change absolute numbers several-fold; see
//! `docs/channels.md`, "Measuring"). `REPLICATION_BENCH_REPS` and `REPLICATION_BENCH_ROUNDS`
//! adjust a run.

use channels::{region_size, Channel, Duplex, RecvError, Region, SendError, Side};
use replication::{Config, Event, Member, MemberSet, Op, Phase, Topology};
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

    fn channel(&self) -> Channel<'_> {
        let region = Region::from_words(&self.words[self.offset..self.offset + self.len])
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

fn flush_out(m: &mut Member, d: &mut Duplex<'_>) {
    while let Some((_, msg)) = m.poll_send() {
        send(d, msg.encode().as_bytes());
    }
}

/// Baseline: `rounds` exchanges of a 56-byte message and a 16-byte reply; ns per exchange.
fn round_trip(rounds: u64) -> f64 {
    let region = HostRegion::new();
    let ch = region.channel();
    let (mut a, mut b) = (ch.duplex(Side::A), ch.duplex(Side::B));
    let barrier = Barrier::new(2);
    let warm = rounds / 10;
    std::thread::scope(|s| {
        let barrier = &barrier;
        s.spawn(move || {
            pin(1);
            barrier.wait();
            let mut buf = [0u8; 56];
            for _ in 0..warm + rounds {
                while recv(&mut b, &mut buf).is_none() {
                    spin_loop();
                }
                send(&mut b, &buf[..16]);
            }
        });
        pin(0);
        barrier.wait();
        let mut buf = [0u8; 56];
        let mut start = Instant::now();
        for i in 0..warm + rounds {
            if i == warm {
                start = Instant::now();
            }
            buf[..8].copy_from_slice(&i.to_le_bytes());
            send(&mut a, &buf);
            while recv(&mut a, &mut buf).is_none() {
                spin_loop();
            }
        }
        start.elapsed().as_nanos() as f64 / rounds as f64
    })
}

/// The protocol: `rounds` updates proposed by the leader, each waited for until committed;
/// ns per committed update.
fn commit_latency(rounds: u64) -> f64 {
    let region = HostRegion::new();
    let ch = region.channel();
    let (mut a, mut b) = (ch.duplex(Side::A), ch.duplex(Side::B));
    let topo = Topology::line(2).unwrap();
    let cfg = Config {
        retain: 64,
        ..Config::default()
    };
    let mut leader = Member::new(0, topo.clone(), cfg, 1, MemberSet::first(2));
    let mut follower = Member::new(1, topo, cfg, 1, MemberSet::first(2));
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(2);
    let warm = rounds / 10;
    std::thread::scope(|s| {
        let (barrier, stop) = (&barrier, &stop);
        s.spawn(move || {
            pin(1);
            barrier.wait();
            let mut buf = [0u8; 56];
            flush_out(&mut follower, &mut b);
            while !stop.load(Ordering::Relaxed) {
                let Some(n) = recv(&mut b, &mut buf) else {
                    spin_loop();
                    continue;
                };
                follower.handle_bytes(0, &buf[..n]).expect("honest leader");
                flush_out(&mut follower, &mut b);
                while follower.poll_event().is_some() {}
            }
        });
        pin(0);
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
        let mut start = Instant::now();
        for i in 0..warm + rounds {
            if i == warm {
                start = Instant::now();
            }
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
        }
        let ns = start.elapsed().as_nanos() as f64 / rounds as f64;
        stop.store(true, Ordering::Relaxed);
        ns
    })
}

/// The protocol's own work per committed update: both members on this thread, messages
/// encoded and decoded but handed over directly (no channel). ns per update.
fn protocol_work(rounds: u64) -> f64 {
    let topo = Topology::line(2).unwrap();
    let cfg = Config {
        retain: 64,
        ..Config::default()
    };
    let mut m = [
        Member::new(0, topo.clone(), cfg, 1, MemberSet::first(2)),
        Member::new(1, topo, cfg, 1, MemberSet::first(2)),
    ];
    let pass = |m: &mut [Member; 2]| {
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
    };
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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn quartiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 4], v[(3 * v.len()) / 4])
}

fn main() {
    let reps = env_or("REPLICATION_BENCH_REPS", 15) as usize;
    let rounds = env_or("REPLICATION_BENCH_ROUNDS", 20_000);
    let cores = core_affinity::get_core_ids().map_or(0, |c| c.len());
    let _ = CORES.set(core_affinity::get_core_ids().unwrap_or_default());
    println!(
        "replication benchmark: 2-member group, threads pinned to cores 0 and 1 ({cores} cores \
         seen), {reps} repetitions of {rounds} updates; x = median over repetitions of \
         (commit / channel round trip measured just before it)"
    );
    let (mut base, mut prot, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let b = round_trip(rounds);
        let p = commit_latency(rounds);
        base.push(b);
        prot.push(p);
        ratio.push(p / b);
    }
    let (bmin, bmax) = (
        base.iter().copied().fold(f64::MAX, f64::min),
        base.iter().copied().fold(0.0, f64::max),
    );
    let (pmin, pmax) = (
        prot.iter().copied().fold(f64::MAX, f64::min),
        prot.iter().copied().fold(0.0, f64::max),
    );
    let mb = median(&mut base);
    let mp = median(&mut prot);
    let (q1, q3) = quartiles(&mut ratio.clone());
    let x = median(&mut ratio);
    let mut work: Vec<f64> = (0..reps).map(|_| protocol_work(rounds)).collect();
    let wmin = work.iter().copied().fold(f64::MAX, f64::min);
    let w = median(&mut work);
    println!("  row                                   median ns     min ns     max ns   x rt   x p25..p75");
    println!(
        "  channel round trip (56 B out, 16 B back) {mb:>9.1} {bmin:>10.1} {bmax:>10.1}   1.00"
    );
    println!(
        "  commit, N = 2 (ENTRY out, ACK back)      {mp:>9.1} {pmin:>10.1} {pmax:>10.1}   {x:.2}   {q1:.2}..{q3:.2}"
    );
    println!("  protocol work per update, one thread, no channel  {w:>9.1} {wmin:>10.1}");
    println!("  commit latency vs channel round trip (median paired): {x:.2}x (target <= 1.5x)");
}
