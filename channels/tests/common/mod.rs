//! Host helper shared by the integration tests: the crate's own `HostRegion` (feature
//! `std`), made infallible for the slot counts the tests use.
#![allow(dead_code)]

/// A formatted heap region of `slots` slots (a valid count: the tests pick them).
pub fn host_region(slots: u32) -> channels::HostRegion {
    channels::HostRegion::new(slots).expect("a valid slot count")
}
