//! Error types. Layout errors come from opening a region; [`Corruption`] is what a misbehaving
//! peer can cause — it stops this endpoint's channel (the error is sticky) and is contained:
//! nothing outside the channel is affected.

use core::fmt;

/// The region cannot be used as a channel (bad mapping or a corrupted identity line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// The region does not start on a 64-byte boundary.
    Misaligned,
    /// The region's length is not a multiple of 8 bytes, or too short for its header.
    BadLength {
        /// Length in bytes.
        len: usize,
    },
    /// The slot count asked for (when formatting) is not a power of two in 2..=4096.
    InvalidSlots {
        /// The slot count asked for.
        slots: u64,
    },
    /// The identity line's magic is wrong.
    BadMagic {
        /// The value found.
        found: u64,
    },
    /// The identity line's version is not [`crate::layout::LAYOUT_VERSION`].
    BadVersion {
        /// The value found.
        found: u64,
    },
    /// The identity line's slot count is not a power of two in 2..=4096.
    BadSlots {
        /// The value found.
        found: u64,
    },
    /// The identity line's slot count disagrees with what this guest was told.
    UnexpectedSlots {
        /// What the caller expected.
        expected: u32,
        /// What the identity line says.
        found: u32,
    },
    /// [`crate::Channel::reopen`] on a region the hypervisor has not re-formatted since it
    /// was opened: the endpoints already handed out are still live, so none are handed out
    /// again.
    NotReformatted {
        /// The generation it was opened with, still in the identity line.
        generation: u64,
    },
    /// The region's length is not `region_size(slots)`.
    SizeMismatch {
        /// `region_size(slots)` for the identity line's slot count.
        expected: usize,
        /// The mapped length.
        found: usize,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Misaligned => write!(f, "channel region is not 64-byte aligned"),
            Self::BadLength { len } => write!(f, "channel region length {len} is unusable"),
            Self::InvalidSlots { slots } => {
                write!(f, "{slots} slots: expected a power of two in 2..=4096")
            }
            Self::BadMagic { found } => write!(f, "channel identity magic {found:#x} is wrong"),
            Self::BadVersion { found } => {
                write!(
                    f,
                    "channel layout version {found} (expected {})",
                    crate::layout::LAYOUT_VERSION
                )
            }
            Self::BadSlots { found } => write!(f, "channel identity slot count {found} is invalid"),
            Self::UnexpectedSlots { expected, found } => {
                write!(f, "channel has {found} slots, expected {expected}")
            }
            Self::NotReformatted { generation } => write!(
                f,
                "channel is still at generation {generation}: it was not re-formatted, so its endpoints stay taken"
            ),
            Self::SizeMismatch { expected, found } => {
                write!(
                    f,
                    "channel region is {found} bytes, layout needs {expected}"
                )
            }
        }
    }
}

impl core::error::Error for LayoutError {}

/// What a misbehaving peer did. Reported by the endpoint that noticed it; sticky.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// The sequence word of the next slot is neither the expected message nor the previous
    /// lap's (or, on the first lap, zero).
    BadSequence {
        /// Position (message index) being received.
        pos: u64,
        /// The word found.
        word: u64,
    },
    /// The sequence word is right but its length field exceeds 56.
    BadLength {
        /// Position (message index) being received.
        pos: u64,
        /// The length found.
        len: u64,
    },
    /// The peer's acknowledgement went backwards or acknowledged messages never sent.
    BadAck {
        /// Messages this side has sent.
        sent: u64,
        /// The acknowledgement found.
        ack: u64,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadSequence { pos, word } => {
                write!(f, "slot for message {pos} has bad sequence word {word:#x}")
            }
            Self::BadLength { pos, len } => write!(f, "message {pos} has bad length {len}"),
            Self::BadAck { sent, ack } => {
                write!(f, "peer acknowledged {ack} messages but {sent} were sent")
            }
        }
    }
}

/// Why a send did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No free slot: the receiver has not acknowledged enough messages yet.
    Full,
    /// The message is longer than [`crate::PAYLOAD_SIZE`] bytes.
    TooLong {
        /// Length asked for.
        len: usize,
    },
    /// The peer corrupted the channel; it is stopped.
    Corrupted(Corruption),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => write!(f, "channel full"),
            Self::TooLong { len } => write!(f, "message of {len} bytes exceeds 56"),
            Self::Corrupted(c) => write!(f, "channel corrupted: {c}"),
        }
    }
}

impl core::error::Error for SendError {}

/// Why a receive produced no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// No message yet.
    Empty,
    /// A typed receive got a message of the wrong size (the message is consumed).
    WrongSize {
        /// Size of the type asked for.
        expected: usize,
        /// Length of the message received.
        found: usize,
    },
    /// The peer corrupted the channel; it is stopped.
    Corrupted(Corruption),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "channel empty"),
            Self::WrongSize { expected, found } => {
                write!(f, "message of {found} bytes, expected {expected}")
            }
            Self::Corrupted(c) => write!(f, "channel corrupted: {c}"),
        }
    }
}

impl core::error::Error for RecvError {}
