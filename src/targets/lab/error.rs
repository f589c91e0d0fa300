//! Errors of the lab's real-process layer.

use std::path::PathBuf;

/// Why a lab process or tool could not be prepared, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A file-system or process-spawn operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A required program or folder is missing.
    #[error("{0}")]
    Missing(String),
    /// A process did not become ready in time or exited early.
    #[error("{what} did not start: {reason}\n--- log tail ({log_dir}) ---\n{log_tail}")]
    StartFailed {
        /// Which process.
        what: String,
        /// Why (timed out, exited with status ...).
        reason: String,
        /// Where its logs are.
        log_dir: PathBuf,
        /// The last lines of its logs.
        log_tail: String,
    },
    /// A process runs but is not (yet) in the wanted state: what was last
    /// observed.
    #[error("{0}")]
    NotReady(String),
    /// nginx refused the configuration (`nginx -t`).
    #[error("nginx rejected the configuration:\n{0}")]
    BadConfig(String),
    /// A command ran but failed.
    #[error("{command} failed: {message}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status and output tail.
        message: String,
    },
}

impl LabError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            context: context.into(),
            source,
        }
    }
}
