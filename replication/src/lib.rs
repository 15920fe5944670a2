//! Replication: OS state replicated by messages among the members of a group (issue #12,
//! contract "replication protocol v2", documented in `docs/replication.md`).
//!
//! A group is a set of partitions (members, numbered `0..n` in the group) joined by the
//! layout's channels. The hypervisor is the group's perfect failure detector: it publishes an
//! epoch and the set of live members, and bumps the epoch on every death and restart. Within
//! an epoch the leader is the lowest live member; it sequences every update into one log,
//! which flows down a spanning tree of the group's channels ([`topology`]) and is acknowledged
//! cumulatively up it; the commit index rides on later entries. An epoch change runs a short
//! view change over the new tree that brings every survivor to the longest surviving log
//! (so an update completes if any survivor applied it) before the new leader sequences again;
//! a restarted member catches up the same way, from a snapshot plus the log suffix.
//!
//! The crate is sans-IO: a [`Member`] is driven by [`Member::handle`] (a message from a
//! neighbour), [`Member::on_membership`] (the hypervisor's epoch and alive set),
//! [`Member::propose`], [`Member::shootdown`] and [`Member::flush`]; it queues messages for
//! its neighbours ([`Member::poll_send`]) and events ([`Member::poll_event`]). In the steady
//! state [`Member::propose_words`] and [`Member::handle_words`] do the same on the channel's
//! payload words, handing the one message they cause straight to the driver. No clock, no
//! randomness, no unsafe code; every message fits one 56-byte channel payload ([`wire`]) and
//! decoding treats bytes as hostile.
//!
//! Module map: [`topology`] (member sets, links, the deterministic spanning tree), [`state`]
//! (the replicated state: service registry and key-value table, snapshots), [`wire`] (the
//! byte contract), `member` (the protocol state machine), `error`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Cast discipline (see CONTRIBUTING.md): widening goes through `From`,
// narrowing through `try_from` or an `as` with a `// truncation:` comment.
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

extern crate alloc;

mod error;
mod member;
pub mod state;
pub mod topology;
pub mod wire;

pub use error::Error;
pub use member::{Config, Event, FastOut, Member, Phase, Stats};
pub use state::{Name, Op, Service, State};
pub use topology::{MemberId, MemberSet, Topology, Tree, MAX_MEMBERS};
pub use wire::{Frame, Message, WireError, Words, PROTOCOL_VERSION};
