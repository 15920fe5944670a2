//! `watch`: a member of a replication group that checks the hypervisor's
//! membership contract (`docs/replication.md`, "Contract for the
//! hypervisor and guest parts") from the inside. One member is the victim;
//! every other member is a survivor whose first channel leads to it.
//!
//! - `role = "victim"` (under `on_fault = "restart"`): in incarnation 0 it
//!   sends one ping over each of its channels (generation 0), takes the
//!   answers and writes outside its RAM, which stops it. Restarted
//!   (incarnation 1), it checks the status page (alive, incarnation 1, one
//!   restart) and that its channels are generation 1, exchanges `rounds`
//!   pings over each and exits 0.
//! - `role = "vandal"`: the victim, but its fault is a write into its
//!   group's status page (the epoch word), which is mapped read-only: the
//!   hypervisor must stop it there, with the page unchanged.
//! - `role = "survivor"`: answers the first ping, then waits (in `hlt`) for
//!   the death epoch, checks it (the victim out of `alive`, restarting,
//!   faulted with `npf`) and the notification interrupt, tries two hostile
//!   acknowledgements (a future epoch: `Invalid`; a group it is not in:
//!   `Denied`) and, with `ack = true`, acknowledges the epoch; then waits
//!   for the alive epoch (the victim back, incarnation 1), sees its
//!   endpoint's generation change, re-attaches, answers `rounds` pings and
//!   waits for an epoch in which the victim has exited (with more than two
//!   members, another survivor's exit may come first or with it). With `ack = false` it never
//!   acknowledges: the restart then waits its bounded time and goes on.
//!
//! Every check that fails ends the workload with a line saying which
//! (exit code [`CHECK_EXIT_CODE`]); the result gives the epochs, alive
//! sets and counts the end-to-end test asserts.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use flotilla_rt::hostile::attack;
use flotilla_rt::{
    membership_notifications, time, Context, Endpoint, Failure, Group, HypercallError, MemberState,
    Membership, Outcome, Report,
};

/// Exit code of a failed check.
pub const CHECK_EXIT_CODE: u64 = 6;
/// Timer ticks (about 1 ms each) a wait for a membership change may take.
const MAX_TICKS: u64 = 30_000;
/// What the survivor adds to a ping.
const ANSWER: u64 = 1000;

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(Failure::new(CHECK_EXIT_CODE, what()))
    }
}

fn snapshot(g: &Group) -> Result<Membership, Failure> {
    g.membership()
        .map_err(|e| Failure::new(CHECK_EXIT_CODE, format!("status page: {e}")))
}

fn channel_err(e: impl core::fmt::Display) -> Failure {
    Failure::new(5, format!("channel: {e}"))
}

/// Waits for an epoch after `seen`, then for the `n`-th notification.
fn next_epoch(g: &Group, seen: u64, n: u64) -> Result<Membership, Failure> {
    let epoch = g.wait_change(seen, MAX_TICKS);
    check(epoch.is_some(), || format!("no epoch after {seen}"))?;
    let start = time::ticks();
    while membership_notifications() < n && time::ticks() - start < MAX_TICKS {
        time::wait_for_interrupt();
    }
    check(membership_notifications() >= n, || {
        format!(
            "epoch {epoch:?} but only {} notification(s)",
            membership_notifications()
        )
    })?;
    snapshot(g)
}

pub fn run(ctx: &mut Context) -> Result<Outcome, Failure> {
    let rounds = ctx.args().u64_or("rounds", 10)?;
    let ack = ctx.args().bool_or("ack", true)?;
    let role = ctx.args().str_or("role", "survivor");
    let victim = role != "survivor";
    let g = *ctx
        .groups()
        .first()
        .ok_or_else(|| Failure::new(CHECK_EXIT_CODE, "the partition is in no group"))?;
    let peer_partition = ctx.channel_infos().first().map(|c| c.peer_partition);
    let peer = peer_partition.and_then(|p| g.member_of(p));
    let peer = peer.ok_or_else(|| Failure::new(CHECK_EXIT_CODE, "no channel to a member"))?;
    check(g.neighbours(g.member_id()) & (1 << peer) != 0, || {
        String::from("the adjacency table lacks the channel's link")
    })?;
    let first = snapshot(&g)?;
    if victim {
        let mut eps = Vec::new();
        for i in 0..ctx.channel_infos().len() {
            let ep = ctx
                .take_channel_at(i)
                .map_err(|e| channel_err(format!("{e:?}")))?;
            eps.push(ep);
        }
        run_victim(ctx, &g, &mut eps, rounds, &first, role == "vandal")
    } else {
        let ep = ctx
            .take_channel_at(0)
            .map_err(|e| channel_err(format!("{e:?}")))?;
        run_survivor(&g, ep, peer, rounds, ack, &first)
    }
}

fn run_victim(
    ctx: &Context,
    g: &Group,
    eps: &mut [Endpoint],
    rounds: u64,
    m: &Membership,
    vandal: bool,
) -> Result<Outcome, Failure> {
    let me = g.member_id() as usize;
    let incarnation = ctx.incarnation();
    check(m.is_alive(me), || format!("not alive in epoch {}", m.epoch))?;
    check(m.members[me].incarnation == incarnation, || {
        format!("page says incarnation {}", m.members[me].incarnation)
    })?;
    for ep in eps.iter() {
        check(ep.generation() == u64::from(incarnation), || {
            format!(
                "generation {} in incarnation {incarnation}",
                ep.generation()
            )
        })?;
    }
    if incarnation == 0 {
        for ep in eps.iter_mut() {
            ep.send(&1u64).map_err(channel_err)?;
            let answer: u64 = ep.recv().map_err(channel_err)?;
            check(answer == 1 + ANSWER, || format!("answer {answer}"))?;
        }
        if vandal {
            let epoch_word = g.info().status_gpa + 8 * abi::group::W_EPOCH as u64;
            attack::write_beyond(epoch_word, ctx.memory(), 1000);
            return Err(Failure::new(
                3,
                "the write into the status page was not stopped",
            ));
        }
        attack::write_beyond(ctx.memory(), ctx.memory(), 0x0bad_c0de);
        return Err(Failure::new(3, "the write outside RAM was not stopped"));
    }
    check(m.members[me].restarts == 1, || {
        format!("{} restarts", m.members[me].restarts)
    })?;
    for ep in eps.iter_mut() {
        for i in 0..rounds {
            ep.send(&i).map_err(channel_err)?;
            let answer: u64 = ep.recv().map_err(channel_err)?;
            check(answer == i + ANSWER, || format!("answer {answer} to {i}"))?;
        }
    }
    let generation = eps.iter().map(Endpoint::generation).min().unwrap_or(0);
    Ok(Outcome::ok(
        Report::new()
            .with("incarnation", u64::from(incarnation))
            .with("generation", generation)
            .with("channels", eps.len())
            .with("epoch", m.epoch)
            .with("rounds", rounds),
    ))
}

fn refusal(r: Result<u64, HypercallError>) -> &'static str {
    match r {
        Ok(_) => "accepted",
        Err(HypercallError::Refused(abi::hypercall::Error::Invalid)) => "invalid",
        Err(HypercallError::Refused(abi::hypercall::Error::Denied)) => "denied",
        Err(_) => "other",
    }
}

fn run_survivor(
    g: &Group,
    mut ep: Endpoint,
    peer: u32,
    rounds: u64,
    ack: bool,
    first: &Membership,
) -> Result<Outcome, Failure> {
    let v = peer as usize;
    let all = u32::try_from((1u64 << g.member_count()) - 1).unwrap_or(u32::MAX);
    check(first.epoch == 1 && first.alive == all, || {
        format!("boot epoch {} alive {:#x}", first.epoch, first.alive)
    })?;
    let mut acks = 0u64;
    let mut acked = |epoch: u64| -> Result<(), Failure> {
        let current = g.ack(epoch);
        check(current.is_ok_and(|c| c >= epoch), || {
            format!("ack of {epoch}: {current:?}")
        })?;
        acks += 1;
        Ok(())
    };

    // Incarnation 0 of the victim: one ping, then it dies.
    let ping: u64 = ep.recv().map_err(channel_err)?;
    ep.send(&(ping + ANSWER)).map_err(channel_err)?;
    let death = next_epoch(g, first.epoch, 1)?;
    let d = &death.members[v];
    check(
        !death.is_alive(v) && d.state() == Some(MemberState::Restarting),
        || {
            format!(
                "death epoch {}: alive {:#x}, state {}",
                death.epoch, death.alive, d.state
            )
        },
    )?;
    check(d.last_fault() == Some(abi::fault::FaultKind::Npf), || {
        format!("last fault {}", d.last_fault)
    })?;
    let future = refusal(g.ack(death.epoch + 100));
    let foreign = refusal(flotilla_rt::hostile::hv::membership_ack(
        g.index() + 100,
        death.epoch,
    ));
    if ack {
        acked(death.epoch)?;
    }

    // The victim's next incarnation.
    let alive = next_epoch(g, death.epoch, 2)?;
    let a = &alive.members[v];
    check(
        alive.is_alive(v) && a.incarnation == 1 && a.restarts == 1,
        || {
            format!(
                "alive epoch {}: alive {:#x}, incarnation {}, restarts {}",
                alive.epoch, alive.alive, a.incarnation, a.restarts
            )
        },
    )?;
    let restarted = ep.peer_restarted();
    let generation = ep.reattach().map_err(|e| channel_err(format!("{e:?}")))?;
    if ack {
        acked(alive.epoch)?;
    }
    for _ in 0..rounds {
        let ping: u64 = ep.recv().map_err(channel_err)?;
        ep.send(&(ping + ANSWER)).map_err(channel_err)?;
    }

    // The victim exits.
    let exit = next_epoch(g, alive.epoch, 3)?;
    let e = &exit.members[v];
    check(
        !exit.is_alive(v) && e.state() == Some(MemberState::Exited),
        || {
            format!(
                "exit epoch {}: alive {:#x}, state {}",
                exit.epoch, exit.alive, e.state
            )
        },
    )?;
    if ack {
        acked(exit.epoch)?;
    }
    Ok(Outcome::ok(
        Report::new()
            .with("death_epoch", death.epoch)
            .with("death_alive", u64::from(death.alive))
            .with("alive_epoch", alive.epoch)
            .with("alive_alive", u64::from(alive.alive))
            .with("incarnation", u64::from(a.incarnation))
            .with("exit_epoch", exit.epoch)
            .with("exit_alive", u64::from(exit.alive))
            .with("notifications", membership_notifications())
            .with("restarted", restarted)
            .with("generation", generation)
            .with("acks", acks)
            .with("future_ack", future)
            .with("foreign_ack", foreign)
            .with("rounds", rounds),
    ))
}
