//! Shared harness of the end-to-end tests (see `tests/tests/`).
#![forbid(unsafe_code)]
