//! Replication in a partition (issue #12's guest side): the monitor that
//! runs the `replication` protocol over the partition's channels to its
//! group neighbours and the hypervisor's status page
//! (`docs/replication.md`, "The monitor"), and the `Replica` API a
//! workload uses (`docs/guest-sdk.md`).
//!
//! Module map: [`monitor`] (host-testable: the protocol over a transport
//! and a membership source), [`script`] (the `replica` workload's
//! deterministic updates and their sequential reference), and bare metal
//! only `bare` (the channel endpoints and the status page behind those
//! traits, and `Replica`).

pub mod monitor;
pub mod script;

#[cfg(target_os = "none")]
mod bare;

#[cfg(target_os = "none")]
pub use bare::{EndpointTransport, GroupMembership, JoinError, Replica};
pub use monitor::{
    queue_limit, MemberView, MembershipSource, Monitor, MonitorError, MonitorStats, Transport,
    TrySend,
};
/// The protocol's types a `Replica` user meets.
pub use replication::wire::kind;
pub use replication::{Config, Error, Event, MemberId, MemberSet, Name, Op, Phase, Service, State};
