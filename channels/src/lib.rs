//! Channels: the only way Flotilla partitions talk (issue #5, contract "channel layout v4",
//! documented in `docs/channels.md`).
//!
//! A channel is one shared region mapped into exactly two partitions: a 4 KiB identity page
//! (written by the hypervisor, read-only for both guests), then one area per endpoint that
//! only that endpoint writes (the nested page tables map it read-only into the peer): a
//! control page and the single-producer ring of 64-byte slots it sends on. Each slot carries up to 56 bytes
//! of payload and a sequence word that the sender writes last with release ordering, so the
//! receiver polls one cache line per message (Barrelfish URPC style) and no index line moves
//! on the hot path. Messages go through a ring in runs from slot 0;
//! request/response traffic between [`Duplex`] endpoints ends runs early and so stays on a few
//! hot lines. Flow control is by credits: acknowledgements piggybacked on the peer's own
//! messages (between `Duplex` endpoints), and a consumed count the receiver publishes in its
//! control line now and then; notification is by a waiting flag with suppression, so an IPI
//! is raised only when the peer said it is about to sleep.
//!
//! The receiving side treats every byte of the region as hostile: a corrupted or malicious
//! peer can stall the channel (the endpoint reports [`Corruption`] and stays stopped) but can
//! never make this side read out of bounds, loop, or panic.
//!
//! Module map: [`layout`] (the byte contract), `region` (the only `unsafe`: turning a raw
//! mapping into a slice of atomic words), `slot` (sequence-word encoding and classification),
//! `channel` (opening a region and handing out endpoints), `sender`, `receiver`, `duplex`
//! (both halves owned together, piggybacking), `notify`, `error`; with feature `std`,
//! `host` (`HostRegion`: an aligned region on the heap for tests and benchmarks).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]
// Cast discipline (see CONTRIBUTING.md): widening goes through `From`,
// narrowing through `try_from` or an `as` with a `// truncation:` comment.
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

mod channel;
mod duplex;
mod error;
#[cfg(feature = "std")]
mod host;
pub mod layout;
mod notify;
mod receiver;
#[allow(unsafe_code)]
mod region;
mod sender;
mod slot;
mod sync;

pub use channel::{Channel, Side};
pub use duplex::Duplex;
pub use error::{Corruption, LayoutError, RecvError, SendError};
#[cfg(feature = "std")]
pub use host::HostRegion;
pub use layout::{region_size, PAYLOAD_SIZE};
pub use notify::{Counters, Notify};
pub use receiver::{Receiver, SlotReader};
pub use region::Region;
pub use sender::{Sender, SlotWriter};
pub use sync::Word;
