//! Replication-group membership as the hypervisor publishes it (boot
//! protocol v3, `docs/replication.md`, "Contract for the hypervisor and
//! guest parts"): which status-page change a partition's end is, whom a
//! change notifies, `MEMBERSHIP_ACK`, and the bounded wait for the
//! acknowledgements before a restart re-formats channels. The page itself
//! (layout, seqlock, writer) is `abi::group`.

use crate::partition::End;
use abi::boot::GroupInfo;
use abi::fault::FaultKind;
use abi::group::{AckError, MemberState, Membership, StatusError, StatusPage};
use abi::hypercall::Error;
use alloc::vec::Vec;

/// How long a restart waits for the live members' acknowledgements of the
/// death epoch before it goes on anyway (and counts it).
pub const ACK_WAIT_US: u64 = 1_000_000;

/// The status-page change of a partition ending for good with `end`
/// (`None`: a timeout, which changes nothing: the run is over).
pub fn final_state(end: &End) -> Option<(MemberState, Option<abi::fault::FaultKind>)> {
    match end {
        End::Exited(_) => Some((MemberState::Exited, None)),
        End::Faulted(f) => Some((MemberState::Faulted, Some(f.kind))),
        End::TimedOut => None,
    }
}

/// The partitions to notify of snapshot `m`: every alive member but
/// `except` (the partition whose change it is).
pub fn to_notify(m: &Membership, except: u32) -> impl Iterator<Item = u32> + '_ {
    (0..m.member_count as usize)
        .filter(move |&i| m.is_alive(i) && m.members[i].partition != except)
        .map(move |i| m.members[i].partition)
}

/// `MEMBERSHIP_ACK(group, epoch)` of a partition whose group records are
/// `records`; `page_of(group)` is that group's status page. Returns the
/// current epoch, `Denied` for a group it is not a member of, `Invalid`
/// for an epoch ahead of the page's.
pub fn ack<'a>(
    records: &[GroupInfo],
    page_of: impl Fn(u32) -> Option<StatusPage<'a>>,
    group: u64,
    epoch: u64,
) -> Result<u64, Error> {
    let record = records
        .iter()
        .find(|g| u64::from(g.group) == group)
        .ok_or(Error::Denied)?;
    let page = page_of(record.group).ok_or(Error::Denied)?;
    let member = usize::try_from(record.member_id).map_err(|_| Error::Denied)?;
    page.ack(member, epoch).map_err(|e| match e {
        AckError::NoMember => Error::Denied,
        AckError::FutureEpoch => Error::Invalid,
    })
}

/// A partition's groups as the hypervisor updates them: each group's
/// status page with the partition's member id in it.
pub type Pages<'a> = [(StatusPage<'a>, usize)];

/// Applies `change` to each of partition `me`'s `pages`, then calls
/// `notify` with every other member alive in the new snapshot (the
/// `MEMBERSHIP_VECTOR` IPI to its core); returns each page with its new
/// epoch, or the first page's error (`Busy`: its writer lock stayed held,
/// and the caller ends the run).
pub fn publish<'a>(
    pages: &Pages<'a>,
    me: u32,
    change: impl Fn(StatusPage<'a>, usize) -> Result<Membership, StatusError>,
    mut notify: impl FnMut(u32),
) -> Result<Vec<(StatusPage<'a>, u64)>, StatusError> {
    let mut out = Vec::new();
    for &(page, member) in pages {
        let m = change(page, member)?;
        to_notify(&m, me).for_each(&mut notify);
        out.push((page, m.epoch));
    }
    Ok(out)
}

/// How the wait for acknowledgements of a restart ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckWait {
    /// Every live member acknowledged the death epoch.
    All,
    /// [`ACK_WAIT_US`] ran out first (counted in the run report).
    TimedOut,
    /// The run is stopping (or a page could not be updated, and the
    /// caller stops it): nothing is reloaded.
    Stopped,
}

/// The restart of partition `me` after a fault of `kind`, in order
/// (`docs/replication.md`, "Restart, in order"): the death epoch
/// (restarting, `kind`) on every page, notified; the wait for every live
/// member's acknowledgement of it (`wait`, e.g. [`bounded_wait`]); then
/// `reload` (re-format the channels, reload the image), so no survivor that
/// acknowledged writes into a channel being re-formatted; then, if it
/// succeeded, the alive epoch (incarnation + 1), notified. A failed reload
/// publishes nothing more: the partition's end does. `None` (with
/// [`AckWait::Stopped`]) when the run stops during the wait or a page
/// update fails: no reload, or no alive epoch; the partition ends.
pub fn restart<'a, T, E>(
    pages: &Pages<'a>,
    me: u32,
    kind: FaultKind,
    mut notify: impl FnMut(u32),
    wait: impl FnOnce(&[(StatusPage<'a>, u64)]) -> AckWait,
    reload: impl FnOnce() -> Result<T, E>,
) -> (Option<Result<T, E>>, AckWait) {
    let died = |page: StatusPage<'a>, m| page.member_ended(m, MemberState::Restarting, Some(kind));
    let Ok(died) = publish(pages, me, died, &mut notify) else {
        return (None, AckWait::Stopped);
    };
    let wait = wait(&died);
    if wait == AckWait::Stopped {
        return (None, wait);
    }
    let loaded = reload();
    if loaded.is_ok() && publish(pages, me, |page, m| page.member_restarted(m), notify).is_err() {
        return (None, AckWait::Stopped);
    }
    (Some(loaded), wait)
}

/// The wait of a restart: [`wait_acks`] until `deadline_us` (by `now_us`)
/// or `stop()`, and how it ended.
pub fn bounded_wait<'a>(
    now_us: impl FnMut() -> u64,
    deadline_us: u64,
    stop: impl Fn() -> bool,
) -> impl FnOnce(&[(StatusPage<'a>, u64)]) -> AckWait {
    move |pending| {
        if wait_acks(pending, now_us, deadline_us, &stop) {
            AckWait::All
        } else if stop() {
            AckWait::Stopped
        } else {
            AckWait::TimedOut
        }
    }
}

/// Waits until every member alive on each `(page, epoch)` has acknowledged
/// that epoch, re-reading the pages (a member that dies meanwhile is no
/// longer waited for). Gives up when `now_us()` passes `deadline_us` or
/// `stop()` says the run is stopping. Returns whether every
/// acknowledgement came.
pub fn wait_acks(
    pending: &[(StatusPage<'_>, u64)],
    mut now_us: impl FnMut() -> u64,
    deadline_us: u64,
    stop: impl Fn() -> bool,
) -> bool {
    loop {
        let done = pending
            .iter()
            .all(|(page, epoch)| page.read().is_ok_and(|m| m.pending_acks(*epoch) == 0));
        if done {
            return true;
        }
        if stop() || now_us() > deadline_us {
            return false;
        }
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Fault;
    use abi::fault::FaultKind;
    use abi::group::STATUS_WORDS;
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use core::cell::Cell;
    use core::sync::atomic::AtomicU64;

    fn page(partitions: &[u32]) -> &'static [AtomicU64] {
        let words: &'static [AtomicU64; STATUS_WORDS] =
            Box::leak(Box::new([const { AtomicU64::new(0) }; STATUS_WORDS]));
        StatusPage::new(words)
            .and_then(|p| p.init(3, partitions))
            .expect("a page");
        words
    }

    fn record(group: u32, member_id: u32) -> GroupInfo {
        GroupInfo {
            group,
            member_id,
            member_count: 3,
            vector: 0xf0,
            members: 0b1011,
            status_gpa: 0,
            name: [0; 32],
            adjacency: [0; 32],
        }
    }

    #[test]
    fn an_end_is_a_final_state_except_a_timeout() {
        let fault = Fault {
            kind: FaultKind::Npf,
            rip: 0,
            gpa: None,
            detail: alloc::string::String::new(),
        };
        assert_eq!(
            final_state(&End::Faulted(fault)),
            Some((MemberState::Faulted, Some(FaultKind::Npf)))
        );
        assert_eq!(
            final_state(&End::Exited(0)),
            Some((MemberState::Exited, None))
        );
        assert_eq!(final_state(&End::TimedOut), None);
    }

    #[test]
    fn the_live_members_but_the_changed_one_are_notified() {
        let p = StatusPage::new(page(&[0, 1, 3])).expect("page");
        let m = p
            .member_ended(1, MemberState::Restarting, Some(FaultKind::Npf))
            .expect("update");
        assert_eq!(to_notify(&m, 1).collect::<Vec<_>>(), [0, 3]);
        let m = p.member_restarted(1).expect("update");
        assert_eq!(to_notify(&m, 1).collect::<Vec<_>>(), [0, 3]);
        assert_eq!(to_notify(&m, 7).collect::<Vec<_>>(), [0, 1, 3]);
    }

    #[test]
    fn acks_are_checked_against_the_callers_groups_and_the_epoch() {
        let words = page(&[0, 1, 3]);
        let page_of = |g: u32| (g == 3).then(|| StatusPage::new(words).expect("page"));
        let mine = [record(3, 1)];
        assert_eq!(ack(&mine, page_of, 3, 1), Ok(1));
        assert_eq!(ack(&mine, page_of, 3, 2), Err(Error::Invalid));
        assert_eq!(ack(&mine, page_of, 4, 1), Err(Error::Denied));
        assert_eq!(ack(&mine, page_of, u64::MAX, 0), Err(Error::Denied));
        assert_eq!(ack(&[], page_of, 3, 1), Err(Error::Denied));
        assert_eq!(ack(&[record(3, 9)], page_of, 3, 1), Err(Error::Denied));
        assert_eq!(ack(&[record(5, 0)], page_of, 5, 1), Err(Error::Denied));
        let m = abi::group::read(words).expect("valid");
        assert_eq!(m.members[1].acked_epoch, 1);
    }

    #[test]
    fn a_restart_reloads_only_after_the_acks_and_publishes_alive_only_after_the_reload() {
        // Partition 1 is member 1 of a group {0, 1, 3}.
        let words = page(&[0, 1, 3]);
        let p = StatusPage::new(words).expect("page");
        let notified = core::cell::RefCell::new(Vec::new());
        let notify = |q: u32| {
            notified
                .borrow_mut()
                .push((q, p.read().expect("valid").epoch))
        };
        // The survivors acknowledge as soon as they see the death epoch:
        // here, on the first look at the clock.
        let now = || {
            for m in [0, 2] {
                let _ = p.ack(m, 2);
            }
            0
        };
        let reload = || {
            let m = p.read().expect("valid");
            assert_eq!(
                (m.epoch, m.alive),
                (2, 0b101),
                "reloaded in the death epoch"
            );
            assert_eq!(m.members[1].state(), Some(MemberState::Restarting));
            assert_eq!(m.pending_acks(2), 0, "after every live member's ack");
            Ok::<_, ()>(7)
        };
        let (loaded, wait) = restart(
            &[(p, 1)],
            1,
            FaultKind::Npf,
            notify,
            bounded_wait(now, 10, || false),
            reload,
        );
        assert_eq!((loaded, wait), (Some(Ok(7)), AckWait::All));
        let m = p.read().expect("valid");
        assert_eq!((m.epoch, m.alive, m.members[1].incarnation), (3, 0b111, 1));
        assert_eq!(*notified.borrow(), [(0, 2), (3, 2), (0, 3), (3, 3)]);

        // Nobody acknowledges: the wait runs out, the restart goes on; a
        // failed reload publishes no alive epoch.
        let clock = Cell::new(0u64);
        let tick = || {
            clock.set(clock.get() + 1);
            clock.get()
        };
        let failed = || Err::<(), _>("no image");
        let (loaded, wait) = restart(
            &[(p, 1)],
            1,
            FaultKind::Npf,
            |_| {},
            bounded_wait(tick, 5, || false),
            failed,
        );
        assert_eq!((loaded, wait), (Some(Err("no image")), AckWait::TimedOut));
        let m = p.read().expect("valid");
        assert_eq!((m.epoch, m.alive), (4, 0b101));
        // The run stops during the wait: no reload, no alive epoch.
        let (loaded, wait) = restart(
            &[(p, 1)],
            1,
            FaultKind::Npf,
            |_| {},
            bounded_wait(|| 0, 5, || true),
            || -> Result<(), ()> { panic!("reloaded after a stop") },
        );
        assert_eq!((loaded, wait), (None, AckWait::Stopped));
        let m = p.read().expect("valid");
        assert_eq!((m.epoch, m.alive), (5, 0b101), "death epoch only");
        // A page whose writer lock stays held: nothing reloaded either.
        words[abi::group::W_SEQ].fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        let (loaded, wait) = restart(
            &[(p, 1)],
            1,
            FaultKind::Npf,
            |_| panic!("notified without an update"),
            |_| panic!("waited without a death epoch"),
            || -> Result<(), ()> { panic!("reloaded") },
        );
        assert_eq!((loaded, wait), (None, AckWait::Stopped));
    }

    #[test]
    fn the_wait_ends_on_the_last_ack_on_a_death_or_at_the_deadline() {
        let words = page(&[0, 1, 3]);
        let p = StatusPage::new(words).expect("page");
        let m = p
            .member_ended(0, MemberState::Restarting, Some(FaultKind::Npf))
            .expect("update");
        let clock = Cell::new(0u64);
        let tick = || {
            clock.set(clock.get() + 1);
            clock.get()
        };
        assert!(!wait_acks(&[(p, m.epoch)], tick, 10, || false));
        assert_eq!(clock.get(), 11, "gave up after the deadline");
        assert!(!wait_acks(&[(p, m.epoch)], || 0, 10, || true), "stopping");
        p.ack(1, m.epoch).expect("ack");
        assert!(!wait_acks(&[(p, m.epoch)], || 99, 10, || false));
        // Member 2 dies: it is no longer waited for.
        p.member_ended(2, MemberState::Faulted, None)
            .expect("update");
        assert!(wait_acks(&[(p, m.epoch)], || 99, 10, || false));
    }
}
