//! `replica` and `shootdown`: members of a replication group running the
//! protocol over their channels (`flotilla_rt::replica`, `docs/replication.md`).
//!
//! - `replica` (args `updates`, `fault_after`, `retain`, `max_ticks`): the member proposes its
//!   deterministic script (`flotilla_rt::replica::script`), at most
//!   [`WINDOW`] own updates in flight, and waits until every member's whole
//!   script is applied (a member the status page shows gone for good
//!   counts with what it got committed) and the commit index covers the
//!   log. With `fault_after = k > 0`, in incarnation 0 only, it stops after
//!   its `k`-th update, waits until that one is committed, and writes
//!   outside its RAM: the hypervisor stops it (or restarts it under
//!   `on_fault = "restart"`; the new incarnation catches up and proposes
//!   the rest of its script). Every member of the group must have the same
//!   `updates`. `retain` is the protocol's `Config::retain` (committed entries
//!   kept for repair): a joiner behind more than that gets a snapshot. Results: `state_hash` (of the table and registry),
//!   `committed` (the commit index: updates committed group-wide as this
//!   member saw them), `msgs_sent`, `msgs_received`, `msgs_dropped` (not
//!   sent: to the dead, of an old epoch, on a broken link), `broken_links`
//!   (links found stopped or overflowing), `recv_errors` (receives from a
//!   corrupted channel), `reattach_errors` (failed re-attachments to a
//!   restarted neighbour's channels), `max_rounds` (the
//!   deepest tree path an entry took, as this member saw it; the leader's
//!   is the tree height), and by kind `entries`, `acks`, `proposes`,
//!   `view_msgs` (`STATE`, `READY`, `OPEN`), `snapshot_msgs`, plus
//!   `epochs`, `membership_acks`, `incarnation`.
//! - `shootdown` (args `rounds`, `max_ticks`): member 0 invalidates an address on every
//!   member `rounds` times, waiting each time for every acknowledgement;
//!   then it puts a marker key, which tells the others to finish (once the
//!   commit index covers it, so that no exit can cut off a member that
//!   lacks it). Results:
//!   `rounds`; at member 0 `median_cycles`, `p99_cycles` (TSC cycles per
//!   shootdown); at every member `invalidated` (invalidations it saw) and
//!   `shootdown_msgs` (the `INVALIDATE` and `INVALIDATE_ACK` it sent: the
//!   group's sum over `rounds` is the messages per shootdown).
//!
//! The steady state only polls memory: the exits are one `MEMBERSHIP_ACK`
//! per epoch, the console lines, the result and the exit.

use crate::stats::percentile;
use alloc::format;
use alloc::vec::Vec;
use flotilla_rt::hostile::attack;
use flotilla_rt::replica::script::{all_applied, op};
use flotilla_rt::replica::{Config, Event, MemberId, Phase, Replica};
use flotilla_rt::{time, Context, Failure, Outcome, Report};
// Message kinds, the indices of `Stats::sent_by_kind`.
use flotilla_rt::replica::kind::{
    ACK, ENTRY, INVALIDATE, INVALIDATE_ACK, OPEN, PROPOSE, READY, SNAP_BEGIN, SNAP_CHUNK, SNAP_END,
    STATE,
};

/// Exit code when the partition is in no group, or the group is unusable.
pub const GROUP_EXIT_CODE: u64 = 7;
/// Exit code when the group did not finish in time, or a check failed.
pub const STALL_EXIT_CODE: u64 = 8;
/// Own updates in flight at most.
pub const WINDOW: u32 = 8;
/// Timer ticks (about 1 ms) a run may take in all before it reports a stall,
/// unless the `max_ticks` argument says otherwise (the partition-config
/// catalog's default: below the default run timeout, so that exit code 8
/// and its line come before the run's timeout).
const MAX_TICKS: u64 = 100_000;
/// The key `shootdown`'s member 0 writes when it is done.
const DONE_KEY: u64 = u64::MAX;

/// The run's stall deadline: `max_ticks` from its start, shared by all its
/// phases.
struct Deadline {
    start: u64,
    max: u64,
}

impl Deadline {
    fn new(ctx: &Context) -> Result<Self, Failure> {
        Ok(Deadline {
            start: time::ticks(),
            max: ctx.args().u64_or("max_ticks", MAX_TICKS)?,
        })
    }

    /// Ticks left (0 once passed).
    fn left(&self) -> u64 {
        self.max
            .saturating_sub(time::ticks().wrapping_sub(self.start))
    }
}

fn join(ctx: &mut Context, workload: &str) -> Result<Replica, Failure> {
    Replica::join(ctx).map_err(|e| Failure::new(GROUP_EXIT_CODE, format!("{workload}: {e}")))
}

fn stalled(r: &Replica, what: &str) -> Failure {
    let m = r.monitor().member();
    let mon = r.monitor().stats();
    let t = r.monitor().transport();
    Failure::new(
        STALL_EXIT_CODE,
        format!(
            "stalled {what}: epoch {} phase {:?} logged {} applied {} commit {} pending {} \
             uncommitted {} own committed {} backlog {} dropped {} broken links {:#x} \
             ({} overflowed) recv errors {} reattach errors {}",
            m.epoch(),
            m.phase(),
            m.logged(),
            m.applied(),
            m.commit(),
            m.pending(),
            m.uncommitted(),
            r.committed(),
            r.monitor().backlog(),
            mon.dropped,
            r.monitor().broken_links().0,
            mon.overflows,
            t.recv_errors,
            t.reattach_errors
        ),
    )
}

fn sent(r: &Replica, kinds: &[u8]) -> u64 {
    let s = r.monitor().member().stats();
    kinds
        .iter()
        .filter_map(|&k| s.sent_by_kind.get(usize::from(k)))
        .sum()
}

/// Whether every member's script is applied here (a member gone for good
/// counts with what it has), the commit index covers the log and nothing
/// of this member's is in flight.
fn finished(r: &Replica, updates: u32, n: usize) -> bool {
    let gone = r.monitor().gone();
    let counts: Vec<u32> = (0..n)
        .map(|m| match MemberId::try_from(m) {
            Ok(m) if gone.contains(m) => 0,
            _ => updates,
        })
        .collect();
    let m = r.monitor().member();
    r.state().is_ok_and(|s| all_applied(s, &counts)) && m.pending() == 0 && settled(r)
}

/// Whether the commit index covers this member's whole log (so every
/// member holds it, and nobody depends on this one any more), or the
/// member is cut off from the leader by exits (it holds what it will ever
/// get: the others exit only once everybody holds the whole log).
fn settled(r: &Replica) -> bool {
    let m = r.monitor().member();
    m.phase() == Phase::Isolated || (m.commit() >= m.logged() && m.uncommitted() == 0)
}

pub fn run_replica(ctx: &mut Context) -> Result<Outcome, Failure> {
    let updates = u32::try_from(ctx.args().u64_or("updates", 100)?).unwrap_or(u32::MAX);
    let fault_after = u32::try_from(ctx.args().u64_or("fault_after", 0)?).unwrap_or(u32::MAX);
    let retain = ctx.args().u64_or("retain", Config::default().retain)?;
    let incarnation = ctx.incarnation();
    let deadline = Deadline::new(ctx)?;
    let cfg = Config {
        retain,
        ..Config::default()
    };
    let mut r = Replica::join_with(ctx, cfg)
        .map_err(|e| Failure::new(GROUP_EXIT_CODE, format!("replica: {e}")))?;
    let me = r.member_id();
    let n = usize::try_from(r.group().member_count()).unwrap_or(0);
    if !r.run_until(deadline.left(), |r| r.is_caught_up()) {
        return Err(stalled(&r, "catching up"));
    }
    let caught_up_at = r.monitor().member().applied();
    let fault = incarnation == 0 && fault_after > 0;
    let stop = if fault {
        fault_after.min(updates)
    } else {
        updates
    };
    let mut next = r.committed().saturating_add(1);
    loop {
        r.poll();
        while next <= stop && (next - 1).saturating_sub(r.committed()) < WINDOW {
            match r.propose(op(me, next)) {
                Ok(oseq) if oseq == next => next = next.saturating_add(1),
                Ok(oseq) => {
                    return Err(Failure::new(
                        STALL_EXIT_CODE,
                        format!("update {next} was numbered {oseq}"),
                    ))
                }
                // Isolated, or dead in a membership it has not left yet: retry later.
                Err(_) => break,
            }
        }
        if fault && r.committed() >= stop {
            // The forbidden access right after the k-th update committed.
            attack::write_beyond(ctx.memory(), ctx.memory(), 0x0bad_c0de);
            return Err(Failure::new(3, "the write outside RAM was not stopped"));
        }
        if next > stop && finished(&r, updates, n) {
            break;
        }
        if deadline.left() == 0 {
            return Err(stalled(&r, "replicating"));
        }
    }
    let m = r.monitor().member();
    let s = m.stats();
    let mon = r.monitor().stats();
    let state = r
        .state()
        .map_err(|e| Failure::new(STALL_EXIT_CODE, format!("replica: {e}")))?;
    println!(
        "replica: member {me} of {n}: {} entries applied, commit {}, hash {:#018x}, \
         {} sent, {} received, {} epoch(s)",
        m.applied(),
        m.commit(),
        state.state_hash(),
        mon.sent,
        mon.received,
        mon.epochs + 1
    );
    Ok(Outcome::ok(
        Report::new()
            .with("state_hash", state.state_hash())
            .with("committed", m.commit())
            .with("msgs_sent", mon.sent)
            .with("msgs_received", mon.received)
            .with("msgs_dropped", mon.dropped)
            .with("broken_links", mon.broken)
            .with("recv_errors", r.monitor().transport().recv_errors)
            .with("reattach_errors", r.monitor().transport().reattach_errors)
            .with("max_rounds", u64::from(s.max_hops))
            .with("entries", sent(&r, &[ENTRY]))
            .with("acks", sent(&r, &[ACK]))
            .with("proposes", sent(&r, &[PROPOSE]))
            .with("view_msgs", sent(&r, &[STATE, READY, OPEN]))
            .with(
                "snapshot_msgs",
                sent(&r, &[SNAP_BEGIN, SNAP_CHUNK, SNAP_END]),
            )
            .with("caught_up_at", caught_up_at)
            .with("epochs", mon.epochs + 1)
            .with("membership_acks", mon.acks)
            .with("incarnation", u64::from(incarnation)),
    ))
}

pub fn run_shootdown(ctx: &mut Context) -> Result<Outcome, Failure> {
    let rounds = ctx.args().u64_or("rounds", 100)?;
    let deadline = Deadline::new(ctx)?;
    let mut r = join(ctx, "shootdown")?;
    let me = r.member_id();
    if !r.run_until(deadline.left(), |r| r.is_caught_up() && r.is_open()) {
        return Err(stalled(&r, "opening"));
    }
    let mut invalidated = 0u64;
    let mut cycles = Vec::new();
    let count = |r: &mut Replica, invalidated: &mut u64, want: Option<u32>| {
        let mut done = false;
        while let Some(e) = r.next_event() {
            match e {
                Event::Invalidate { .. } => *invalidated += 1,
                Event::ShootdownDone { id } if Some(id) == want => done = true,
                _ => {}
            }
        }
        done
    };
    if me == 0 {
        for i in 0..rounds {
            let t0 = time::cycles();
            let id = r
                .shootdown(0x1000 * (i + 1))
                .map_err(|e| Failure::new(STALL_EXIT_CODE, format!("shootdown: {e}")))?;
            let mut done = false;
            let ok = r.run_until(deadline.left(), |r| {
                done |= count(r, &mut invalidated, Some(id));
                done
            });
            if !ok {
                return Err(stalled(&r, "in a shootdown"));
            }
            cycles.push(time::cycles().wrapping_sub(t0));
        }
        let oseq = r
            .put(DONE_KEY, rounds)
            .map_err(|e| Failure::new(STALL_EXIT_CODE, format!("put: {e}")))?;
        if !r.run_until(deadline.left(), |r| r.committed() >= oseq) {
            return Err(stalled(&r, "committing the marker"));
        }
    } else {
        let ok = r.run_until(deadline.left(), |r| {
            count(r, &mut invalidated, None);
            r.get(DONE_KEY).ok().flatten() == Some(rounds) && settled(r)
        });
        if !ok {
            return Err(stalled(&r, "waiting for the marker"));
        }
        count(&mut r, &mut invalidated, None);
    }
    cycles.sort_unstable();
    let msgs = sent(&r, &[INVALIDATE, INVALIDATE_ACK]);
    println!("shootdown: member {me}: {invalidated} invalidated, {msgs} shootdown messages sent");
    let mut report = Report::new()
        .with("rounds", rounds)
        .with("invalidated", invalidated)
        .with("shootdown_msgs", msgs);
    if me == 0 {
        report.add("median_cycles", percentile(&cycles, 50));
        report.add("p99_cycles", percentile(&cycles, 99));
    }
    Ok(Outcome::ok(report))
}
