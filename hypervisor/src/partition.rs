//! What the hypervisor knows about one running partition (its identity and
//! what the layout allows it), and what it records about its run.

use abi::fault::{ExitReason, FaultKind};
use alloc::string::String;
use alloc::vec::Vec;
use partition_config::manifest::OnFault;

/// A channel endpoint as the partition's policy needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelGrant {
    /// Channel index in the layout.
    pub channel_id: u32,
    /// Whether the channel notifies by IPI.
    pub ipi: bool,
    /// The peer core's x2APIC ID.
    pub peer_apic_id: u32,
    /// The vector the peer receives this channel's IPIs on.
    pub peer_vector: u8,
}

/// One partition's identity and permissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Index in the layout.
    pub id: u32,
    /// Name from the layout.
    pub name: String,
    /// Core index it runs on.
    pub cpu: u32,
    /// That core's x2APIC ID.
    pub apic_id: u32,
    /// RAM size (guest-physical `0..memory`).
    pub memory: u64,
    /// Its channels.
    pub channels: Vec<ChannelGrant>,
    /// Whether it runs on the compat platform of a stock kernel
    /// (`compat = "linux"`, [`crate::compat`]).
    pub compat: bool,
}

impl Partition {
    /// Whether a fixed IPI with `vector` to `apic_id` is allowed: to its own
    /// core, or to a channel peer on the vector that peer expects.
    pub fn may_interrupt(&self, apic_id: u32, vector: u8) -> bool {
        apic_id == self.apic_id
            || self
                .channels
                .iter()
                .any(|c| c.ipi && c.peer_apic_id == apic_id && c.peer_vector == vector)
    }
}

/// Why a partition was stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What it did (the report's stable name: [`FaultKind::as_str`]).
    pub kind: FaultKind,
    /// Guest RIP at the fault.
    pub rip: u64,
    /// Guest-physical address, for nested page faults.
    pub gpa: Option<u64>,
    /// Human-readable detail (port, MSR, ICR value...).
    pub detail: String,
}

/// How a partition ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// It called `EXIT(code)`.
    Exited(u64),
    /// It was stopped for a forbidden action.
    Faulted(Fault),
    /// It did not finish before the run's timeout.
    TimedOut,
}

/// Whether a partition whose vCPU ended with `end` is restarted: it
/// faulted (a failed load is not retried: it would fail again), its policy
/// is `on_fault = "restart"`, and it has used fewer than `max_restarts`.
pub fn restarts_after(end: &End, on_fault: OnFault, max_restarts: u8, restarts: u32) -> bool {
    let faulted = matches!(end, End::Faulted(f) if f.kind != FaultKind::LoadFailed);
    faulted && on_fault == OnFault::Restart && restarts < u32::from(max_restarts)
}

/// How many exit reasons the report counts.
pub const EXIT_REASON_COUNT: usize = ExitReason::ALL.len();

/// What the hypervisor records while a partition runs.
///
/// Exits are counted twice: all of them, and those in steady state — from
/// the partition's first hypercall on. Before it, a kernel is still booting
/// (CPUID probes, the EFER write that enables long mode); the exit budget
/// of `docs/run-report.md` applies to the steady state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunRecord {
    /// VM exits by reason, indexed by [`ExitReason::index`].
    pub exits: [u64; EXIT_REASON_COUNT],
    /// Steady-state VM exits by reason.
    pub steady_exits: [u64; EXIT_REASON_COUNT],
    /// Whether the partition has made its first hypercall.
    pub booted: bool,
    /// Console lines written.
    pub console_lines: u64,
    /// Console lines dropped: over the partition's budget, or its core's
    /// queue full (`docs/console.md`).
    pub console_dropped: u64,
    /// The workload's result text (`key=value` words), if reported.
    pub result: String,
    /// Writes of a periodic APIC timer raised to the minimum period
    /// (`timer_policy`); the first one is announced on the console.
    pub timer_clamps: u64,
    /// The faults of earlier incarnations, oldest first (one per restart).
    pub faults: Vec<Fault>,
    /// Uses of the compat platform (all zero without the opt-in).
    pub compat: crate::compat::CompatCounts,
    /// `MEMBERSHIP_ACK` calls accepted.
    pub membership_acks: u64,
    /// Restarts that went on without every live member's acknowledgement
    /// of the death epoch (`membership::ACK_WAIT_US` ran out).
    pub ack_timeouts: u32,
}

impl RunRecord {
    /// Counts one exit of `reason`.
    pub fn count_exit(&mut self, reason: ExitReason) {
        let i = reason.index();
        self.booted |= reason == ExitReason::Hypercall;
        self.exits[i] = self.exits[i].saturating_add(1);
        if self.booted {
            self.steady_exits[i] = self.steady_exits[i].saturating_add(1);
        }
    }

    /// Steady-state exits.
    pub fn total_steady_exits(&self) -> u64 {
        self.steady_exits.iter().sum()
    }

    /// All exits.
    pub fn total_exits(&self) -> u64 {
        self.exits.iter().sum()
    }

    /// Records a restart after `fault`. Exit and console counts go on
    /// across incarnations; the new one boots again (its exits count as
    /// boot exits until its first hypercall) and reports its own result.
    pub fn restarted(&mut self, fault: Fault) {
        self.faults.push(fault);
        self.booted = false;
        self.result.clear();
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u32 {
        u32::try_from(self.faults.len()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn ipis_only_to_self_or_ipi_peers_on_their_vector() {
        let p = Partition {
            id: 0,
            name: "ping".to_string(),
            cpu: 1,
            apic_id: 1,
            memory: 16 << 20,
            compat: false,
            channels: vec![
                ChannelGrant {
                    channel_id: 0,
                    ipi: true,
                    peer_apic_id: 2,
                    peer_vector: 0x41,
                },
                ChannelGrant {
                    channel_id: 1,
                    ipi: false,
                    peer_apic_id: 3,
                    peer_vector: 0x42,
                },
            ],
        };
        assert!(p.may_interrupt(1, 0x30), "own core");
        assert!(p.may_interrupt(2, 0x41));
        assert!(!p.may_interrupt(2, 0x42), "wrong vector");
        assert!(!p.may_interrupt(3, 0x42), "poll channel grants no IPI");
        assert!(!p.may_interrupt(0, 0x41), "not a peer");
    }

    fn fault(kind: FaultKind) -> End {
        End::Faulted(Fault {
            kind,
            rip: 0x10_0000,
            gpa: None,
            detail: "x".to_string(),
        })
    }

    #[test]
    fn only_faults_under_restart_with_restarts_left_restart() {
        let npf = fault(FaultKind::Npf);
        assert!(restarts_after(&npf, OnFault::Restart, 1, 0));
        assert!(restarts_after(&npf, OnFault::Restart, 2, 1));
        assert!(!restarts_after(&npf, OnFault::Restart, 2, 2), "none left");
        assert!(!restarts_after(&npf, OnFault::Restart, 1, 1), "none left");
        assert!(!restarts_after(&npf, OnFault::Stop, 0, 0), "stop policy");
        assert!(!restarts_after(&npf, OnFault::Stop, 3, 0), "stop policy");
        let load = fault(FaultKind::LoadFailed);
        assert!(
            !restarts_after(&load, OnFault::Restart, 3, 0),
            "a failed load fails again"
        );
        assert!(!restarts_after(&End::Exited(1), OnFault::Restart, 3, 0));
        assert!(!restarts_after(&End::TimedOut, OnFault::Restart, 3, 0));
    }

    #[test]
    fn a_restart_keeps_the_fault_and_the_counts_but_not_the_result() {
        let mut r = RunRecord::default();
        r.count_exit(ExitReason::Hypercall);
        r.count_exit(ExitReason::Cpuid);
        r.result = "a=1".to_string();
        let End::Faulted(f) = fault(FaultKind::Npf) else {
            unreachable!()
        };
        r.restarted(f.clone());
        assert_eq!((r.restarts(), r.faults.as_slice()), (1, &[f][..]));
        assert!(r.result.is_empty() && !r.booted);
        r.count_exit(ExitReason::Cpuid);
        assert_eq!((r.total_exits(), r.total_steady_exits()), (3, 2));
    }

    #[test]
    fn exits_are_counted_by_reason() {
        let mut r = RunRecord::default();
        r.count_exit(ExitReason::Cpuid);
        r.count_exit(ExitReason::Hypercall);
        r.count_exit(ExitReason::Npf);
        r.count_exit(ExitReason::Other);
        assert_eq!(r.exits[ExitReason::Cpuid.index()], 1);
        assert_eq!(r.exits[ExitReason::Hypercall.index()], 1);
        assert_eq!(
            r.total_steady_exits(),
            3,
            "the cpuid before the first hypercall is a boot exit"
        );
        assert_eq!(r.steady_exits[ExitReason::Cpuid.index()], 0);
        assert_eq!(r.exits[ExitReason::Npf.index()], 1);
        assert_eq!(r.exits[ExitReason::Other.index()], 1);
        assert_eq!(r.total_exits(), 4);
    }
}
