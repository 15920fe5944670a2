//! Partition layouts: TOML front end, validation, placement and the binary
//! manifest (issue #3; not yet built).
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
