//! Reading the Flotilla block and running the `pingpong` exchange on
//! every channel it names, over any [`PhysMem`]: `/dev/mem` in the
//! partition (`arch`), ordinary memory in the host tests.
//!
//! The protocol is the built-in `pingpong` workload's
//! (`guest-kernel/src/exchange.rs`), so either end of a channel may be the
//! built-in kernel: endpoint A sends round `r` (`0..rounds`) as one 8-byte
//! little-endian word and waits for the same word back; endpoint B checks
//! each word is the next round and echoes it; after its last round each
//! side publishes its acknowledgement. Channels are taken one after the
//! other in block (layout) order, as the built-in kernel does, so two
//! partitions sharing several channels never wait on each other in a
//! cycle. A channel that cannot be used is reported and skipped.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Instant;

use abi::boot::{ChannelInfo, FlotillaBlock, Notify, BLOCK_MAGIC, MAX_ARGS, MAX_CHANNELS};
use channels::{Channel, Region, Side, PAYLOAD_SIZE};
use flotilla_rt::args::Args;
use flotilla_rt::block::{Block, BlockError, CHANNEL_RECORD_SIZE, HEADER_SIZE};
use flotilla_rt::link::{ExchangeError, Link, Platform};

use crate::{CHANNEL_EXIT_CODE, PROGRAM};

/// The one workload this program runs.
pub const WORKLOAD: &str = "pingpong";
/// Default `rounds` (the built-in `pingpong`'s default).
pub const DEFAULT_ROUNDS: u64 = 10_000;
/// Most round-trip samples kept per channel (every k-th round beyond).
const MAX_SAMPLES: u64 = 100_000;
/// The largest block the boot protocol allows: header, every record, the
/// longest argument text.
pub const MAX_BLOCK: usize = HEADER_SIZE + MAX_CHANNELS * CHANNEL_RECORD_SIZE + MAX_ARGS;
/// Offset of the block's `size` field.
const SIZE_OFFSET: usize = core::mem::offset_of!(FlotillaBlock, size);

/// Guest-physical memory as this program reaches it.
pub trait PhysMem {
    /// Reads `buf.len()` bytes at `gpa`.
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Maps the `size` bytes at `gpa` read-write for the rest of the
    /// process, as a channel region (only this endpoint's own area is ever
    /// written through it).
    fn map_region(&mut self, gpa: u64, size: u64) -> io::Result<Region<'static>>;
}

/// Why the exchange could not start.
#[derive(Debug)]
pub enum SessionError {
    /// The block's bytes could not be read.
    Read {
        /// Where.
        gpa: u64,
        /// Why.
        error: io::Error,
    },
    /// The block's `size` field is outside what the boot protocol allows.
    BadSize(u32),
    /// The block is malformed.
    Block(BlockError),
    /// The layout gave this partition another workload.
    Workload(String),
    /// Its arguments are not `rounds=<n>`.
    Args(String),
    /// The partition has no channel.
    NoChannels,
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Read { gpa, error } => write!(
                f,
                "cannot read the Flotilla block at {gpa:#x} through /dev/mem: {error} \
                 (it must be reserved, not RAM, in the partition's memory map)"
            ),
            SessionError::BadSize(size) => write!(
                f,
                "Flotilla block size {size}: outside {HEADER_SIZE}..={MAX_BLOCK} bytes"
            ),
            SessionError::Block(e) => write!(f, "bad Flotilla block: {e}"),
            SessionError::Workload(w) => write!(
                f,
                "workload {w:?}: this program runs {WORKLOAD:?} (set workload = \"{WORKLOAD}\" in the layout)"
            ),
            SessionError::Args(why) => write!(f, "arguments: {why}"),
            SessionError::NoChannels => {
                write!(f, "no channels: the layout must give this partition one")
            }
        }
    }
}

impl std::error::Error for SessionError {}

/// Reads the block at `gpa`: its header, then as many bytes as its `size`
/// says (bounded by [`MAX_BLOCK`]).
pub fn read_block(mem: &mut impl PhysMem, gpa: u64) -> Result<Vec<u8>, SessionError> {
    let mut header = vec![0u8; HEADER_SIZE];
    mem.read(gpa, &mut header)
        .map_err(|error| SessionError::Read { gpa, error })?;
    let mut size = [0u8; 4];
    size.copy_from_slice(&header[SIZE_OFFSET..SIZE_OFFSET + 4]);
    let size = u32::from_le_bytes(size);
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    if !(HEADER_SIZE..=MAX_BLOCK).contains(&len) {
        // A wrong magic or version is the better message when the bytes
        // are not a block at all.
        let magic = header.get(..8).map(|m| m == BLOCK_MAGIC);
        if magic != Some(true) {
            return Err(SessionError::Block(BlockError::BadMagic));
        }
        return Err(SessionError::BadSize(size));
    }
    let mut block = vec![0u8; len];
    mem.read(gpa, &mut block)
        .map_err(|error| SessionError::Read { gpa, error })?;
    Ok(block)
}

/// The polling machine: no IPIs (Linux userspace cannot raise Flotilla
/// IPIs), time in nanoseconds from the monotonic clock.
#[derive(Debug)]
struct Polling {
    origin: Instant,
    spins: u32,
}

impl Platform for Polling {
    fn now(&mut self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
    fn notify(&mut self, _channel_id: u32) {}
    fn begin_wait(&mut self) {}
    fn end_wait(&mut self, _sleep: bool) {}
    fn relax(&mut self) {
        std::hint::spin_loop();
        // Now and then let another thread run (the peer, in the host
        // tests; in a one-CPU partition there is none, and this is cheap).
        self.spins = self.spins.wrapping_add(1);
        if self.spins.is_multiple_of(256) {
            std::thread::yield_now();
        }
    }
}

fn send_word(link: &mut Link<'_>, word: u64, p: &mut Polling) -> Result<(), ExchangeError> {
    link.send_bytes(&word.to_le_bytes(), p)
}

fn recv_word(link: &mut Link<'_>, p: &mut Polling) -> Result<u64, ExchangeError> {
    let mut buf = [0u8; PAYLOAD_SIZE];
    let len = link.recv_bytes(&mut buf, p)?;
    if len < 8 {
        return Err(ExchangeError::Short {
            expected: 8,
            found: len,
        });
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[..8]);
    Ok(u64::from_le_bytes(w))
}

/// Endpoint A: `rounds` timed round trips; every `stride`-th round trip's
/// time in nanoseconds goes to `samples`.
fn ping(
    link: &mut Link<'_>,
    rounds: u64,
    stride: u64,
    samples: &mut Vec<u64>,
    p: &mut Polling,
) -> Result<(), ExchangeError> {
    for round in 0..rounds {
        let t0 = p.now();
        send_word(link, round, p)?;
        let echo = recv_word(link, p)?;
        let t1 = p.now();
        if echo != round {
            return Err(ExchangeError::Mismatch {
                expected: round,
                found: echo,
            });
        }
        if round % stride.max(1) == 0 {
            samples.push(t1.saturating_sub(t0));
        }
    }
    link.kick_rx(p);
    Ok(())
}

/// Endpoint B: echoes `rounds` words, each the next round number.
fn pong(link: &mut Link<'_>, rounds: u64, p: &mut Polling) -> Result<(), ExchangeError> {
    for round in 0..rounds {
        let word = recv_word(link, p)?;
        if word != round {
            return Err(ExchangeError::Mismatch {
                expected: round,
                found: word,
            });
        }
        send_word(link, word, p)?;
    }
    link.kick_rx(p);
    Ok(())
}

/// The nearest-rank `pct`-th percentile of `sorted` (0 when empty).
pub fn percentile(sorted: &[u64], pct: u64) -> u64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0;
    };
    let n = u64::try_from(sorted.len()).unwrap_or(u64::MAX);
    let rank = pct.min(100).saturating_mul(n).div_ceil(100).max(1);
    let index = usize::try_from(rank - 1).map_or(last, |i| i.min(last));
    sorted[index]
}

/// What the exchange did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Round trips per channel.
    pub rounds: u64,
    /// Channels in the block.
    pub channels: usize,
    /// Channels that could not be used to the end.
    pub broken: usize,
    /// Channels where this partition pinged (endpoint A) to the end.
    pub pinged: usize,
    /// Median round trip over every channel pinged on, in nanoseconds.
    pub median_ns: u64,
    /// 99th percentile round trip, in nanoseconds.
    pub p99_ns: u64,
}

impl Summary {
    /// The program's exit code: 0 while some channel did its job, else
    /// [`CHANNEL_EXIT_CODE`].
    pub fn exit_code(&self) -> i32 {
        if self.broken < self.channels {
            0
        } else {
            CHANNEL_EXIT_CODE
        }
    }

    /// The result line (`flotilla-linux: result key=value ...`).
    pub fn line(&self) -> String {
        let mut line = format!(
            "{PROGRAM}: result rounds={} channels={} broken_channels={}",
            self.rounds, self.channels, self.broken
        );
        if self.pinged > 0 {
            let _ = write!(line, " median_ns={} p99_ns={}", self.median_ns, self.p99_ns);
        }
        line
    }
}

/// Opens one channel and runs its half of the exchange.
fn exchange(
    mem: &mut impl PhysMem,
    info: &ChannelInfo,
    rounds: u64,
    samples: &mut Vec<u64>,
    p: &mut Polling,
) -> Result<(), String> {
    if info.notify != Notify::Poll as u32 {
        return Err(
            "an ipi channel: Linux userspace cannot raise Flotilla IPIs, declare it notify = \"poll\""
                .into(),
        );
    }
    let region = mem
        .map_region(info.gpa, info.size)
        .map_err(|e| format!("cannot map {:#x} (+{:#x}): {e}", info.gpa, info.size))?;
    let mut channel = Channel::open_expecting(region, info.slots)
        .map_err(|e| format!("cannot open it at {:#x}: {e}", info.gpa))?;
    let side = if info.side == 0 { Side::A } else { Side::B };
    let io = channel
        .duplex(side)
        .ok_or_else(|| "its side was already taken".to_owned())?;
    let mut link = Link {
        io,
        channel_id: info.channel_id,
        ipi: false,
        side_a: side == Side::A,
    };
    let stride = rounds.div_ceil(MAX_SAMPLES).max(1);
    let done = if link.side_a {
        ping(&mut link, rounds, stride, samples, p)
    } else {
        pong(&mut link, rounds, p)
    };
    done.map_err(|e| e.to_string())
}

/// Runs `pingpong` on every channel of `block` (its bytes, see
/// [`read_block`]), printing one line per channel and the result line to
/// `out`.
pub fn run(
    mem: &mut impl PhysMem,
    block: &[u8],
    out: &mut impl Write,
) -> Result<Summary, SessionError> {
    let block = Block::parse(block).map_err(SessionError::Block)?;
    if block.workload != WORKLOAD {
        return Err(SessionError::Workload(block.workload.to_string()));
    }
    let args = Args::new(block.args);
    if let Some(key) = args.unknown(&["rounds"]).next() {
        return Err(SessionError::Args(format!(
            "unknown argument {key:?} (pingpong takes rounds)"
        )));
    }
    let rounds = args
        .u64_or("rounds", DEFAULT_ROUNDS)
        .map_err(|e| SessionError::Args(e.to_string()))?;
    let infos: Vec<ChannelInfo> = block.channels().collect();
    if infos.is_empty() {
        return Err(SessionError::NoChannels);
    }
    let _ = writeln!(
        out,
        "{PROGRAM}: partition {} (partition {}, cpu {}): {WORKLOAD} rounds={rounds} over {} channel(s)",
        block.name,
        block.partition_id,
        block.cpu,
        infos.len()
    );
    let mut p = Polling {
        origin: Instant::now(),
        spins: 0,
    };
    let mut summary = Summary {
        rounds,
        channels: infos.len(),
        ..Summary::default()
    };
    let mut pinged: Vec<u64> = Vec::new();
    for info in &infos {
        let peer = abi::boot::name_str(&info.peer_name);
        let mut samples = Vec::new();
        match exchange(mem, info, rounds, &mut samples, &mut p) {
            Ok(()) if info.side == 0 => {
                samples.sort_unstable();
                let _ = writeln!(
                    out,
                    "{PROGRAM}: {WORKLOAD}: {rounds} round trips with {peer}: median {} ns, p99 {} ns",
                    percentile(&samples, 50),
                    percentile(&samples, 99)
                );
                summary.pinged += 1;
                pinged.extend_from_slice(&samples);
            }
            Ok(()) => {
                let _ = writeln!(
                    out,
                    "{PROGRAM}: {WORKLOAD}: echoed {rounds} messages from {peer}"
                );
            }
            Err(why) => {
                summary.broken += 1;
                let _ = writeln!(
                    out,
                    "{PROGRAM}: {WORKLOAD}: channel {} with {peer} broken: {why}",
                    info.channel_id
                );
            }
        }
        let _ = out.flush();
    }
    pinged.sort_unstable();
    summary.median_ns = percentile(&pinged, 50);
    summary.p99_ns = percentile(&pinged, 99);
    let _ = writeln!(out, "{}", summary.line());
    let _ = out.flush();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(
            (percentile(&v, 50), percentile(&v, 99), percentile(&v, 100)),
            (50, 99, 100)
        );
        assert_eq!(percentile(&v, 0), 1);
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[], 50), 0);
    }

    #[test]
    fn the_result_line_has_times_only_where_this_side_pinged() {
        let echoed = Summary {
            rounds: 3,
            channels: 2,
            broken: 1,
            ..Summary::default()
        };
        assert_eq!(
            echoed.line(),
            "flotilla-linux: result rounds=3 channels=2 broken_channels=1"
        );
        assert_eq!(echoed.exit_code(), 0);
        let pinged = Summary {
            pinged: 1,
            median_ns: 10,
            p99_ns: 20,
            ..echoed.clone()
        };
        assert!(pinged.line().ends_with(" median_ns=10 p99_ns=20"));
        let none = Summary {
            broken: 2,
            ..echoed
        };
        assert_eq!(none.exit_code(), CHANNEL_EXIT_CODE);
    }
}
