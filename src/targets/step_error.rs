//! Why a step did not succeed, as the runner sees it.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// Why a step did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    /// The system under test behaved wrongly (a JUnit `failure`).
    #[error("{message}")]
    Failed {
        /// One line: what was expected and what happened.
        message: String,
        /// Supporting facts (last observed state, refusal text, ...).
        evidence: Vec<String>,
    },
    /// The harness or its infrastructure broke (a JUnit `error`).
    #[error(transparent)]
    Broken(Broken),
    /// The target cannot stand in for this step (the scenario is skipped
    /// on this target with this reason).
    #[error("not supported on this target: {0}")]
    Unsupported(String),
}

impl StepError {
    /// Broken infrastructure described by `context` alone.
    pub fn broken(context: impl Into<String>) -> StepError {
        StepError::Broken(Broken {
            context: context.into(),
            cause: None,
        })
    }

    /// Broken infrastructure: `context` says what was being done, `cause`
    /// is the typed error that stopped it (kept, not flattened, so callers
    /// can still ask what it was).
    pub fn broken_by(
        context: impl Into<String>,
        cause: impl Error + Send + Sync + 'static,
    ) -> StepError {
        StepError::Broken(Broken {
            context: context.into(),
            cause: Some(Arc::new(cause)),
        })
    }
}

/// Broken infrastructure: what the harness was doing and, when known, the
/// typed error that stopped it.
#[derive(Debug, Clone)]
pub struct Broken {
    /// What was being done (`creating namespace rc-1`), or the whole
    /// message when there is no typed cause.
    pub context: String,
    /// The error that stopped it.
    pub cause: Option<Arc<dyn Error + Send + Sync>>,
}

impl Broken {
    /// The typed cause, if it is an `E`.
    pub fn cause_as<E: Error + 'static>(&self) -> Option<&E> {
        self.cause.as_deref()?.downcast_ref::<E>()
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Some(cause) if self.context.is_empty() => write!(f, "{cause}"),
            Some(cause) => write!(f, "{}: {cause}", self.context),
            None => f.write_str(&self.context),
        }
    }
}

impl Error for Broken {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.as_deref().map(|c| c as &(dyn Error + 'static))
    }
}
