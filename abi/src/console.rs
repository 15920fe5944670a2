//! Console markers: the fixed-format lines the hypervisor prints that host
//! tools and tests parse. Everything else on the console is for humans.
//!
//! Every marker line starts with `flotilla:`; the word after it says what the
//! line is. Documented in `docs/console.md`.

/// Prefix of every line the hypervisor itself prints.
pub const PREFIX: &str = "flotilla:";

/// `flotilla: cpu <index> apic <id> online <virtualization summary>` — one per core.
pub const CPU_ONLINE: &str = "flotilla: cpu ";

/// `flotilla: cores online <n>/<expected>` — printed once by the bootstrap core.
pub const CORES_ONLINE: &str = "flotilla: cores online ";

/// `flotilla: run succeeded` — the last line of a successful run.
pub const RUN_SUCCEEDED: &str = "flotilla: run succeeded";

/// `flotilla: run failed: <reason>` — the last line of a failed run.
pub const RUN_FAILED: &str = "flotilla: run failed: ";

/// `flotilla: exception ...` — a CPU exception inside the hypervisor.
pub const EXCEPTION: &str = "flotilla: exception ";

/// `flotilla: partition <name> console dropping lines: <why>` — printed once
/// per partition, when its console first drops a line (over its budget, or
/// its core's queue full); the report's `console_dropped` counts them. The
/// words after the partition's name.
pub const PARTITION_DROPPING: &str = "console dropping lines";
