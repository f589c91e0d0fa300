//! Why the kind target could not render a config, drive the kind CLI or
//! pick a node image.

use super::versions::UnknownVersion;
use crate::install::command::CommandError;
use crate::scenario::LoadErrors;
use std::path::PathBuf;

/// Why the kind target could not do something.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    /// No node image for the asked Kubernetes version.
    #[error(transparent)]
    UnknownVersion(#[from] UnknownVersion),
    /// The base kind config does not load.
    #[error(transparent)]
    Config(#[from] LoadErrors),
    /// The rendered config breaks kind's rules: one located line each.
    #[error("{}", .0.join("\n"))]
    Rendered(Vec<String>),
    /// The kind CLI failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A file could not be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `kind version` could not be started.
    #[error("cannot run `{} version`: {source}", path.display())]
    Spawn {
        /// The kind binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `kind version` did not answer in time.
    #[error("`{} version` did not answer within {secs}s", path.display())]
    Silent {
        /// The kind binary.
        path: PathBuf,
        /// The bound.
        secs: u64,
    },
    /// `kind version` answered without a release.
    #[error("cannot read a release from `kind version`: {0:?}")]
    NoRelease(String),
}
