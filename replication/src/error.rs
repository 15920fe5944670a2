//! What a member refuses. A [`Error::Wire`] or [`Error::Protocol`] from
//! [`crate::Member::handle`] means the neighbour sent something an honest member never sends:
//! the message is dropped and the member's state is unchanged by it (the driver may count it
//! and treat the channel as corrupted). Nothing a neighbour sends makes a member panic.

use crate::topology::MemberId;
use crate::wire::WireError;
use core::fmt;

/// Errors of [`crate::Member`]'s entry points.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
    /// The bytes are not a message.
    Wire(WireError),
    /// The message is from a newer epoch than this member has adopted: read the membership
    /// (status page), call `on_membership`, then hand the message in again.
    FutureEpoch(u32),
    /// The sender is not this member's tree neighbour in the current epoch.
    NotNeighbour(MemberId),
    /// A well-formed message that the protocol never sends in this state.
    Protocol(&'static str),
    /// A restarted member serves no reads and takes no updates before it has caught up.
    NotCaughtUp,
    /// This member is cut off from the leader (the survivors are disconnected): no updates
    /// until a later epoch reconnects it.
    Isolated,
    /// This member is not alive in its current membership.
    NotMember,
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        Self::Wire(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Wire(e) => write!(f, "malformed message: {e:?}"),
            Self::FutureEpoch(e) => write!(f, "message from epoch {e}: read the membership first"),
            Self::NotNeighbour(m) => write!(f, "member {m} is not a tree neighbour"),
            Self::Protocol(what) => write!(f, "protocol violation: {what}"),
            Self::NotCaughtUp => write!(f, "not caught up yet"),
            Self::Isolated => write!(f, "cut off from the leader"),
            Self::NotMember => write!(f, "not a live member"),
        }
    }
}
