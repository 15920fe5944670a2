//! Channels: cache-line mailboxes between partitions (issue #5; not yet built).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
