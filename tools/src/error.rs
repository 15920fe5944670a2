//! The library's error type.
//!
//! An [`Error`] means Flotilla could not do what was asked (a tool is missing,
//! a build failed, a file could not be written). A run that happened but did
//! not succeed is not an error: it is a [`crate::runner::RunOutcome`] with
//! `success == false`.

use std::io;
use std::path::PathBuf;

use crate::accel::KvmUnavailable;
use crate::system::Missing;

/// Everything that can stop the host tools before or while they run something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system program or file is not installed.
    #[error(transparent)]
    Missing(#[from] Missing),

    /// KVM was asked for but cannot run Flotilla on this host.
    #[error(transparent)]
    Kvm(#[from] KvmUnavailable),

    /// The boot bundle of a layout could not be built (a kernel is missing
    /// or is not a PVH ELF).
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),

    /// `cargo build` of the bare-metal crates failed; `output` is its stderr.
    #[error("building {what} failed (`{command}`):\n{output}")]
    Build {
        /// The packages being built, comma-separated.
        what: String,
        /// The command line that failed, as the user could rerun it.
        command: String,
        /// Its standard error.
        output: String,
    },

    /// A helper program (grub-mkrescue, ...) ran and failed.
    #[error("{program} failed ({status}):\n{output}")]
    Tool {
        /// The program's name.
        program: String,
        /// How it exited, as the OS reports it.
        status: String,
        /// What it printed.
        output: String,
    },

    /// An operating-system call failed; `what` says what Flotilla was doing.
    #[error("{what}: {source}")]
    Io {
        /// What Flotilla was doing ("reading layout.toml", ...).
        what: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The request does not make sense (an option that does not apply, ...).
    #[error("{0}")]
    Invalid(String),

    /// An artifact that a build should have produced is not there.
    #[error("expected build output {} is missing", .0.display())]
    NoArtifact(PathBuf),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what Flotilla was doing when it happened.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
