//! Replication-group membership (boot protocol v3, `docs/boot-protocol.md`
//! §4 and `docs/replication.md`, "Contract for the hypervisor and guest
//! parts"): the group **status page** the hypervisor publishes and its
//! members read.
//!
//! The page is 4 KiB of little-endian `u64` words, mapped read-only into
//! each member of the group (at the `status_gpa` of its
//! [`crate::boot::GroupInfo`] record) and written only by the hypervisor,
//! possibly from two cores at once. It is shared memory that changes while
//! it is read, so it is not a zerocopy record: every access is an atomic
//! load or store of one aligned word, and the membership words are
//! published under a seqlock ([`W_SEQ`]). The writer's side
//! ([`StatusPage`]) and the reader's ([`read`]) both live here, so one
//! crate owns the layout, as `channels` owns the channel region's.
//!
//! Word map (`W_*`: word indices; member `i`'s record is the
//! [`MEMBER_WORDS`] words at [`member_word`]`(i)`):
//!
//! | word | name | value |
//! |---|---|---|
//! | 0 | magic | [`STATUS_MAGIC`] (`FLOTGRP1`) |
//! | 1 | version, members | [`STATUS_VERSION`] in bits 31..0, member count in bits 63..32 |
//! | 2 | seq | seqlock: odd while the hypervisor updates words 3, 4 and the member records' words 0, 1 |
//! | 3 | epoch | 1 at boot, +1 on every death and every restart of a member |
//! | 4 | alive | bit `i` set: member `i` is alive (bits 63..32 zero) |
//! | 5 | group | the group's index in the layout |
//! | 6, 7 | — | zero |
//! | 8 + 4i | state, incarnation | [`MemberState`] in bits 31..0, incarnation in bits 63..32 |
//! | 9 + 4i | restarts, last fault | restarts in bits 31..0; bits 63..32: 0 = no fault yet, else 1 + the `abi::fault::FaultKind` index of its last fault |
//! | 10 + 4i | acked epoch | the highest epoch member `i` acknowledged with `MEMBERSHIP_ACK` (not under the seqlock: it only grows) |
//! | 11 + 4i | partition | member `i`'s partition index |
//!
//! The rest of the page is zero.

use crate::fault::FaultKind;
use core::sync::atomic::{fence, AtomicU64, Ordering};

/// The page's magic: the ASCII bytes `FLOTGRP1` as a little-endian `u64`.
pub const STATUS_MAGIC: u64 = u64::from_le_bytes(*b"FLOTGRP1");
/// Version of the status page layout.
pub const STATUS_VERSION: u32 = 1;
/// Bytes of a status page.
pub const STATUS_PAGE_SIZE: usize = 4096;
/// Words of a status page.
pub const STATUS_WORDS: usize = STATUS_PAGE_SIZE / 8;
/// Most members of a group (the replication protocol's member-set width).
pub const MAX_MEMBERS: usize = 32;

/// Word: magic.
pub const W_MAGIC: usize = 0;
/// Word: version (low half), member count (high half).
pub const W_VERSION: usize = 1;
/// Word: the seqlock.
pub const W_SEQ: usize = 2;
/// Word: the epoch.
pub const W_EPOCH: usize = 3;
/// Word: the alive member bitset.
pub const W_ALIVE: usize = 4;
/// Word: the group's layout index.
pub const W_GROUP: usize = 5;
/// First word of member 0's record.
pub const W_MEMBERS: usize = 8;
/// Words per member record.
pub const MEMBER_WORDS: usize = 4;
/// Member record word: state (low), incarnation (high).
pub const M_STATE: usize = 0;
/// Member record word: restarts (low), last fault (high).
pub const M_FAULT: usize = 1;
/// Member record word: acknowledged epoch.
pub const M_ACKED: usize = 2;
/// Member record word: partition index.
pub const M_PARTITION: usize = 3;

/// First word of member `i`'s record.
pub const fn member_word(i: usize) -> usize {
    W_MEMBERS + MEMBER_WORDS * i
}

/// How many times [`read`] retries a snapshot torn by a concurrent update
/// before giving up with [`StatusError::Busy`].
pub const READ_ATTEMPTS: u32 = 1 << 16;

/// How many times [`StatusPage::update`] looks at a writer lock held by
/// another writer (held for a few stores) before giving up with
/// [`StatusError::Busy`].
pub const WRITE_ATTEMPTS: u32 = 1 << 24;

/// A member's state on the status page.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// Running (alive). The state of every member at boot.
    Running = 1,
    /// Faulted; the hypervisor restarts it (`on_fault = "restart"`): not
    /// alive until an epoch in which it is `Running` again with a higher
    /// incarnation.
    Restarting = 2,
    /// Faulted for good (`on_fault = "stop"`, or no restarts left).
    Faulted = 3,
    /// Ended with the `EXIT` hypercall.
    Exited = 4,
}

impl MemberState {
    /// Decodes a state word's low half.
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Running),
            2 => Some(Self::Restarting),
            3 => Some(Self::Faulted),
            4 => Some(Self::Exited),
            _ => None,
        }
    }
}

/// One member as a snapshot of the page shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MemberStatus {
    /// [`MemberState`] as a number (0 in an unused record).
    pub state: u32,
    /// 0 at the first boot, +1 per restart.
    pub incarnation: u32,
    /// Restarts so far.
    pub restarts: u32,
    /// 0 = no fault yet, else 1 + the [`FaultKind`] index of its last fault.
    pub last_fault: u32,
    /// The highest epoch it acknowledged.
    pub acked_epoch: u64,
    /// Its partition index.
    pub partition: u32,
}

impl MemberStatus {
    /// The state, if the word holds a known one.
    pub fn state(&self) -> Option<MemberState> {
        MemberState::from_u32(self.state)
    }
    /// Its last fault, if any.
    pub fn last_fault(&self) -> Option<FaultKind> {
        let i = usize::try_from(self.last_fault.checked_sub(1)?).ok()?;
        FaultKind::ALL.get(i).copied()
    }
}

/// A consistent snapshot of a status page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The group's layout index.
    pub group: u32,
    /// Members in the group.
    pub member_count: u32,
    /// The epoch.
    pub epoch: u64,
    /// Alive members (bit = member id).
    pub alive: u32,
    /// The member records (`member_count` used, the rest default).
    pub members: [MemberStatus; MAX_MEMBERS],
}

impl Membership {
    /// Incarnation of every member (the rest zero).
    pub fn incarnations(&self) -> [u32; MAX_MEMBERS] {
        self.members.map(|m| m.incarnation)
    }
    /// Whether member `i` is alive.
    pub fn is_alive(&self, i: usize) -> bool {
        i < MAX_MEMBERS && self.alive & (1 << i) != 0
    }
    /// Alive members whose acknowledged epoch is below `epoch`.
    pub fn pending_acks(&self, epoch: u64) -> u32 {
        (0..MAX_MEMBERS)
            .filter(|&i| self.is_alive(i) && self.members[i].acked_epoch < epoch)
            .fold(0, |set, i| set | (1 << i))
    }
}

/// Why a status page could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusError {
    /// Fewer than [`STATUS_WORDS`] words.
    TooShort,
    /// Wrong magic.
    BadMagic,
    /// Unknown version.
    BadVersion(u32),
    /// A member count of 0 or above [`MAX_MEMBERS`].
    BadMemberCount(u32),
    /// Alive bits beyond the member count.
    BadAlive(u64),
    /// Still torn after [`READ_ATTEMPTS`] attempts (updates without pause).
    Busy,
}

impl core::fmt::Display for StatusError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            StatusError::TooShort => write!(f, "status page shorter than 4 KiB"),
            StatusError::BadMagic => write!(f, "bad status page magic"),
            StatusError::BadVersion(v) => write!(f, "status page version {v}"),
            StatusError::BadMemberCount(n) => write!(f, "{n} members on the status page"),
            StatusError::BadAlive(a) => write!(f, "alive set {a:#x} beyond the members"),
            StatusError::Busy => write!(f, "status page kept changing"),
        }
    }
}

/// `(low, high)` halves of a word.
fn half(w: u64) -> (u32, u32) {
    let (high, low) = crate::regs::half::split_u64(w);
    (low, high)
}

fn join(low: u32, high: u32) -> u64 {
    crate::regs::half::join_u32(high, low)
}

fn load(words: &[AtomicU64], i: usize) -> u64 {
    // Relaxed loads only: the page is read-only for the reader (Rust allows
    // relaxed loads of at most 8 bytes there); ordering comes from fences.
    words.get(i).map_or(0, |w| w.load(Ordering::Relaxed))
}

fn snapshot(words: &[AtomicU64]) -> Result<Membership, StatusError> {
    let (version, count) = half(load(words, W_VERSION));
    if version != STATUS_VERSION {
        return Err(StatusError::BadVersion(version));
    }
    if count == 0 || count as usize > MAX_MEMBERS {
        return Err(StatusError::BadMemberCount(count));
    }
    let alive = load(words, W_ALIVE);
    if alive >> count != 0 {
        return Err(StatusError::BadAlive(alive));
    }
    let mut members = [MemberStatus::default(); MAX_MEMBERS];
    for (i, m) in members.iter_mut().enumerate().take(count as usize) {
        let at = member_word(i);
        let (state, incarnation) = half(load(words, at + M_STATE));
        let (restarts, last_fault) = half(load(words, at + M_FAULT));
        *m = MemberStatus {
            state,
            incarnation,
            restarts,
            last_fault,
            acked_epoch: load(words, at + M_ACKED),
            partition: half(load(words, at + M_PARTITION)).0,
        };
    }
    Ok(Membership {
        group: half(load(words, W_GROUP)).0,
        member_count: count,
        epoch: load(words, W_EPOCH),
        // Checked above to lie below bit `count` <= 32.
        alive: half(alive).0,
        members,
    })
}

/// Reads a consistent snapshot of the status page in `words` (the reader
/// of the seqlock: retried while an update is in progress or happened
/// during the read, at most [`READ_ATTEMPTS`] times). Exit-free: only
/// loads.
pub fn read(words: &[AtomicU64]) -> Result<Membership, StatusError> {
    if words.len() < STATUS_WORDS {
        return Err(StatusError::TooShort);
    }
    if load(words, W_MAGIC) != STATUS_MAGIC {
        return Err(StatusError::BadMagic);
    }
    let mut torn = false;
    for _ in 0..READ_ATTEMPTS {
        let before = load(words, W_SEQ);
        fence(Ordering::Acquire);
        if before & 1 == 0 {
            let snap = snapshot(words);
            fence(Ordering::Acquire);
            if load(words, W_SEQ) == before {
                // A malformed page is an error only if it is not torn.
                return snap;
            }
        }
        torn = true;
        core::hint::spin_loop();
    }
    debug_assert!(torn);
    Err(StatusError::Busy)
}

/// The epoch word alone (one load: a cheap, exit-free change check).
pub fn epoch(words: &[AtomicU64]) -> u64 {
    let e = load(words, W_EPOCH);
    fence(Ordering::Acquire);
    e
}

/// Why an acknowledgement was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckError {
    /// No such member on this page.
    NoMember,
    /// An epoch the page has not reached.
    FutureEpoch,
}

/// The hypervisor's (writer's) view of a status page. Several cores may
/// hold one for the same page: updates are serialised by the seqlock word
/// itself (a writer makes it odd with a compare-exchange), and every access
/// is atomic, so concurrent writers never race.
#[derive(Clone, Copy, Debug)]
pub struct StatusPage<'a> {
    words: &'a [AtomicU64],
}

impl<'a> StatusPage<'a> {
    /// Wraps `words`; `None` if shorter than a page.
    pub fn new(words: &'a [AtomicU64]) -> Option<Self> {
        (words.len() >= STATUS_WORDS).then_some(Self { words })
    }

    fn store(&self, i: usize, v: u64) {
        if let Some(w) = self.words.get(i) {
            w.store(v, Ordering::Relaxed);
        }
    }

    /// Formats the page for group `group` whose member `i` is partition
    /// `partitions[i]`: epoch 1, every member running, incarnation 0. Call
    /// before any member runs. `None` if the member count is not 1..=32.
    pub fn init(&self, group: u32, partitions: &[u32]) -> Option<()> {
        let count = u32::try_from(partitions.len()).ok()?;
        if count == 0 || count as usize > MAX_MEMBERS {
            return None;
        }
        for w in self.words {
            w.store(0, Ordering::Relaxed);
        }
        self.store(W_VERSION, join(STATUS_VERSION, count));
        self.store(W_EPOCH, 1);
        self.store(W_ALIVE, (1u64 << count) - 1);
        self.store(W_GROUP, u64::from(group));
        for (i, &p) in partitions.iter().enumerate() {
            self.store(
                member_word(i) + M_STATE,
                u64::from(MemberState::Running as u32),
            );
            self.store(member_word(i) + M_PARTITION, u64::from(p));
        }
        fence(Ordering::Release);
        self.store(W_MAGIC, STATUS_MAGIC);
        fence(Ordering::SeqCst);
        Some(())
    }

    /// A snapshot (what a member would read).
    pub fn read(&self) -> Result<Membership, StatusError> {
        read(self.words)
    }

    /// Applies `change` to the membership under the seqlock and publishes
    /// it; returns the new snapshot. Epoch, alive set, states,
    /// incarnations, restarts and faults are written back (acknowledged
    /// epochs are not: they are [`StatusPage::ack`]'s alone).
    /// [`StatusError::Busy`] if another writer held the lock for
    /// [`WRITE_ATTEMPTS`] looks (the caller ends the run).
    pub fn update(&self, change: impl FnOnce(&mut Membership)) -> Result<Membership, StatusError> {
        self.locked(WRITE_ATTEMPTS, None, change)
    }

    /// [`StatusPage::update`] giving up after `attempts` looks at a held
    /// writer lock; also zeroes member `reset`'s acknowledged epoch.
    fn locked(
        &self,
        attempts: u32,
        reset: Option<usize>,
        change: impl FnOnce(&mut Membership),
    ) -> Result<Membership, StatusError> {
        let Some(seq) = self.words.get(W_SEQ) else {
            return Err(StatusError::TooShort);
        };
        // Take the writer lock: an even seq made odd. Bounded: a holder
        // stopped inside its few stores (a host fault, a stop NMI) must end
        // the run, not hang every core of the group.
        let mut cur = seq.load(Ordering::Relaxed);
        let mut left = attempts;
        loop {
            if cur & 1 == 1 {
                left = left.checked_sub(1).ok_or(StatusError::Busy)?;
                core::hint::spin_loop();
                cur = seq.load(Ordering::Relaxed);
                continue;
            }
            match seq.compare_exchange_weak(cur, cur + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        fence(Ordering::Release);
        let result = snapshot(self.words).map(|mut m| {
            change(&mut m);
            m.alive &= u32::try_from((1u64 << m.member_count) - 1).unwrap_or(u32::MAX);
            self.store(W_EPOCH, m.epoch);
            self.store(W_ALIVE, u64::from(m.alive));
            for (i, s) in m.members.iter().enumerate().take(m.member_count as usize) {
                self.store(member_word(i) + M_STATE, join(s.state, s.incarnation));
                self.store(member_word(i) + M_FAULT, join(s.restarts, s.last_fault));
            }
            if let Some(i) = reset.filter(|&i| i < m.member_count as usize) {
                self.store(member_word(i) + M_ACKED, 0);
                m.members[i].acked_epoch = 0;
            }
            m
        });
        seq.store(cur + 2, Ordering::Release);
        result
    }

    /// Member `member` died: it leaves the alive set with `state`
    /// (`Restarting`, `Faulted` or `Exited`) and its fault, and the epoch
    /// is bumped. Returns the new snapshot.
    pub fn member_ended(
        &self,
        member: usize,
        state: MemberState,
        fault: Option<FaultKind>,
    ) -> Result<Membership, StatusError> {
        self.update(|m| ended(m, member, state, fault))
    }

    /// Member `member` runs again as its next incarnation: alive, the
    /// incarnation and its restarts +1, the epoch bumped. Its acknowledged
    /// epoch is zeroed in the same update: acknowledgements are per
    /// incarnation (the old one's must not count for the new one, which
    /// has not run yet, so no ack of it can race the reset).
    pub fn member_restarted(&self, member: usize) -> Result<Membership, StatusError> {
        self.locked(WRITE_ATTEMPTS, Some(member), |m| restarted(m, member))
    }

    /// Records member `member`'s acknowledgement of `epoch` (which must not
    /// be ahead of the page's); the acknowledged epoch never goes back.
    /// Returns the page's current epoch.
    pub fn ack(&self, member: usize, epoch: u64) -> Result<u64, AckError> {
        let (_, count) = half(load(self.words, W_VERSION));
        if member >= count as usize {
            return Err(AckError::NoMember);
        }
        let current = load(self.words, W_EPOCH);
        if epoch > current {
            return Err(AckError::FutureEpoch);
        }
        if let Some(w) = self.words.get(member_word(member) + M_ACKED) {
            w.fetch_max(epoch, Ordering::AcqRel);
        }
        Ok(current)
    }
}

/// The membership change of a member ending (pure; see
/// [`StatusPage::member_ended`]). A member out of range changes nothing.
pub fn ended(m: &mut Membership, member: usize, state: MemberState, fault: Option<FaultKind>) {
    if member >= m.member_count as usize {
        return;
    }
    m.alive &= !(1 << member);
    let s = &mut m.members[member];
    s.state = state as u32;
    if let Some(kind) = fault {
        s.last_fault = u32::try_from(kind.index() + 1).unwrap_or(0);
    }
    m.epoch += 1;
}

/// The membership change of a member's restart (pure; see
/// [`StatusPage::member_restarted`]): the new incarnation has
/// acknowledged nothing yet.
pub fn restarted(m: &mut Membership, member: usize) {
    if member >= m.member_count as usize {
        return;
    }
    m.alive |= 1 << member;
    let s = &mut m.members[member];
    s.state = MemberState::Running as u32;
    s.incarnation = s.incarnation.saturating_add(1);
    s.restarts = s.restarts.saturating_add(1);
    s.acked_epoch = 0;
    m.epoch += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;

    fn page() -> Box<[AtomicU64; STATUS_WORDS]> {
        Box::new([const { AtomicU64::new(0) }; STATUS_WORDS])
    }

    #[test]
    fn init_then_read_gives_every_member_alive_at_epoch_1() {
        let words = page();
        let p = StatusPage::new(&words[..]).expect("a page");
        assert_eq!(read(&words[..]), Err(StatusError::BadMagic));
        p.init(7, &[2, 5, 6]).expect("3 members");
        let m = read(&words[..]).expect("valid");
        assert_eq!(
            (m.group, m.member_count, m.epoch, m.alive),
            (7, 3, 1, 0b111)
        );
        assert_eq!(m.members[1].partition, 5);
        assert_eq!(m.members[2].state(), Some(MemberState::Running));
        assert_eq!(m.members[3], MemberStatus::default());
        assert_eq!(
            words[W_MAGIC].load(Ordering::Relaxed).to_le_bytes(),
            *b"FLOTGRP1"
        );
        assert!(p.init(0, &[]).is_none());
        assert!(p.init(0, &[0; 33]).is_none());
    }

    #[test]
    fn death_then_restart_bump_the_epoch_with_the_right_alive_set() {
        let words = page();
        let p = StatusPage::new(&words[..]).expect("a page");
        p.init(0, &[0, 1, 2, 3]).expect("4 members");
        let m = p
            .member_ended(2, MemberState::Restarting, Some(FaultKind::Npf))
            .expect("update");
        assert_eq!((m.epoch, m.alive), (2, 0b1011));
        assert_eq!(m.members[2].last_fault(), Some(FaultKind::Npf));
        assert_eq!(m.members[2].state(), Some(MemberState::Restarting));
        assert_eq!(m.pending_acks(2), 0b1011);
        assert_eq!(p.ack(0, 2), Ok(2));
        assert_eq!(p.ack(1, 3), Err(AckError::FutureEpoch));
        assert_eq!(p.ack(4, 1), Err(AckError::NoMember));
        assert_eq!(
            p.ack(0, 1),
            Ok(2),
            "an old epoch is accepted, changes nothing"
        );
        let m = read(&words[..]).expect("valid");
        assert_eq!(m.members[0].acked_epoch, 2);
        assert_eq!(m.pending_acks(2), 0b1010);
        let m = p.member_restarted(2).expect("update");
        assert_eq!((m.epoch, m.alive), (3, 0b1111));
        assert_eq!(m.incarnations()[..4], [0, 0, 1, 0]);
        assert_eq!((m.members[2].restarts, m.members[0].acked_epoch), (1, 2));
        let m = p
            .member_ended(3, MemberState::Exited, None)
            .expect("update");
        assert_eq!((m.epoch, m.alive), (4, 0b0111));
        assert_eq!(m.members[3].last_fault(), None);
        assert_eq!(read(&words[..]), Ok(m));
        assert_eq!(epoch(&words[..]), 4);
    }

    #[test]
    fn an_old_incarnations_ack_does_not_count_for_the_new_one() {
        // {A, B, C}: B dies (2), A acks 2 and dies (3), C acks 3, A returns
        // (4). New A has acknowledged nothing: B's wait must not count it.
        let words = page();
        let p = StatusPage::new(&words[..]).expect("a page");
        p.init(0, &[0, 1, 2]).expect("3 members");
        p.member_ended(1, MemberState::Restarting, None)
            .expect("update");
        assert_eq!(p.ack(0, 2), Ok(2));
        p.member_ended(0, MemberState::Restarting, None)
            .expect("update");
        assert_eq!(p.ack(2, 3), Ok(3));
        let m = p.member_restarted(0).expect("update");
        assert_eq!((m.epoch, m.alive, m.members[0].acked_epoch), (4, 0b101, 0));
        assert_eq!(read(&words[..]), Ok(m));
        assert_eq!(m.pending_acks(2), 0b001, "new A still owes its ack");
        assert_eq!(p.ack(0, 4), Ok(4));
        assert_eq!(p.read().map(|m| m.pending_acks(2)), Ok(0));
    }

    #[test]
    fn a_writer_lock_held_too_long_is_busy_not_a_hang() {
        let words = page();
        let p = StatusPage::new(&words[..]).expect("a page");
        p.init(0, &[0, 1]).expect("2 members");
        words[W_SEQ].store(3, Ordering::Relaxed);
        let bump = |m: &mut Membership| m.epoch += 1;
        assert_eq!(p.locked(1000, None, bump), Err(StatusError::Busy));
        words[W_SEQ].store(4, Ordering::Relaxed);
        assert_eq!(p.locked(1000, None, bump).map(|m| m.epoch), Ok(2));
        assert_eq!(words[W_SEQ].load(Ordering::Relaxed), 6);
    }

    #[test]
    fn a_torn_or_malformed_page_is_an_error_not_a_panic() {
        let words = page();
        let p = StatusPage::new(&words[..]).expect("a page");
        p.init(0, &[0, 1]).expect("2 members");
        words[W_SEQ].store(1, Ordering::Relaxed);
        assert_eq!(read(&words[..]), Err(StatusError::Busy));
        words[W_SEQ].store(2, Ordering::Relaxed);
        words[W_ALIVE].store(0b100, Ordering::Relaxed);
        assert_eq!(read(&words[..]), Err(StatusError::BadAlive(0b100)));
        words[W_VERSION].store(join(1, 40), Ordering::Relaxed);
        assert_eq!(read(&words[..]), Err(StatusError::BadMemberCount(40)));
        words[W_VERSION].store(join(9, 2), Ordering::Relaxed);
        assert_eq!(read(&words[..]), Err(StatusError::BadVersion(9)));
        assert_eq!(read(&words[..10]), Err(StatusError::TooShort));
        assert!(StatusPage::new(&words[..10]).is_none());
    }

    #[test]
    fn concurrent_writers_and_a_reader_never_see_a_torn_snapshot() {
        extern crate std;
        let words: &'static [AtomicU64; STATUS_WORDS] = Box::leak(page());
        let p = StatusPage::new(&words[..]).expect("a page");
        p.init(0, &[0, 1, 2]).expect("3 members");
        let writers: alloc::vec::Vec<_> = (0..2)
            .map(|w| {
                std::thread::spawn(move || {
                    let p = StatusPage::new(&words[..]).expect("a page");
                    for _ in 0..2000 {
                        p.member_ended(w, MemberState::Restarting, Some(FaultKind::Npf))
                            .expect("update");
                        p.member_restarted(w).expect("update");
                    }
                })
            })
            .collect();
        let mut last = 0;
        // Until both writers are done (a panicked writer ends the loop too;
        // its join below fails the test).
        while !writers.iter().all(|w| w.is_finished()) {
            let Ok(m) = read(&words[..]) else { continue };
            // Invariant of every published state: member w is alive exactly
            // when its restarts equal its incarnation and the epoch counts
            // both members' changes.
            let changes: u64 = (0..2)
                .map(|w| 2 * u64::from(m.members[w].restarts) + u64::from(!m.is_alive(w)))
                .sum();
            assert_eq!(m.epoch, 1 + changes);
            assert!(m.epoch >= last);
            last = m.epoch;
        }
        for w in writers {
            w.join().expect("writer");
        }
        assert_eq!(
            read(&words[..]).map(|m| (m.epoch, m.alive)),
            Ok((8001, 0b111))
        );
    }
}
