//! `flotilla`: the one entry point for humans and CI.
#![forbid(unsafe_code)]

fn main() {}
