//! Notification: the [`Notify`] trait a guest kernel implements (a hypercall or an ICR write
//! along the channel, validated by the hypervisor) and the per-endpoint [`Counters`].
//!
//! Protocol (both directions use it; see `docs/channels.md`): a side about to sleep writes
//! `(epoch << 1) | 1` to its own wait word, issues a full fence, and looks once more for work;
//! a side that just produced work for the peer (messages, or freed slots) issues a full fence
//! and reads the peer's wait word, raising an IPI only if the waiting bit is set and it has not
//! already notified that epoch. The two fences make the Dekker-style handshake lose no wake-up.

/// Raises a notification (an IPI) to the peer partition of a channel.
pub trait Notify {
    /// Wakes the peer. Called at most once per wait epoch of the peer.
    fn notify(&mut self);
}

impl<F: FnMut()> Notify for F {
    fn notify(&mut self) {
        self()
    }
}

/// Counters kept by each endpoint half (for the run report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages sent (by a `Sender`) or received (by a `Receiver`).
    pub messages: u64,
    /// Notifications raised (IPIs asked for).
    pub notifications_raised: u64,
    /// Kicks that raised nothing because the peer was not waiting (or was already notified).
    pub notifications_suppressed: u64,
}

/// The wait word for `epoch` while waiting.
pub(crate) const fn waiting_word(epoch: u64) -> u64 {
    (epoch << 1) | 1
}

/// The wait word for `epoch` after the wait ended.
pub(crate) const fn awake_word(epoch: u64) -> u64 {
    epoch << 1
}

/// Tracks the peer's wait epochs already notified, so one wait gets at most one IPI.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Suppressor {
    notified: Option<u64>,
}

impl Suppressor {
    /// Given the peer's wait word, decide whether to notify (and remember it).
    pub(crate) fn should_notify(&mut self, wait_word: u64) -> bool {
        if wait_word & 1 == 0 {
            return false;
        }
        let epoch = wait_word >> 1;
        if self.notified == Some(epoch) {
            return false;
        }
        self.notified = Some(epoch);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_notification_per_epoch() {
        let mut s = Suppressor::default();
        assert!(!s.should_notify(awake_word(0)));
        assert!(s.should_notify(waiting_word(1)));
        assert!(!s.should_notify(waiting_word(1)));
        assert!(!s.should_notify(awake_word(1)));
        assert!(s.should_notify(waiting_word(2)));
    }
}
