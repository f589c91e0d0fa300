//! Where and why a probe's connection stopped.

use crate::verdict::Stage;
use std::fmt;
use std::time::Duration;

/// A connection or exchange that stopped at `stage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The stage it stopped at.
    pub stage: Stage,
    /// What happened, in words (error text, alert, close).
    pub message: String,
    /// Set when the stop was the probe's deadline, not the peer.
    pub timed_out: Option<Duration>,
    /// Set when the peer turned the connection away: how (refused, reset,
    /// closed, TLS alert). A refusal is what an mTLS cell expects.
    pub refusal: Option<String>,
}

impl Failure {
    /// A failure the peer (or the network) caused.
    pub fn new(stage: Stage, message: impl Into<String>) -> Self {
        Failure {
            stage,
            message: message.into(),
            timed_out: None,
            refusal: None,
        }
    }

    /// The probe's deadline passed during `stage`.
    pub fn timeout(stage: Stage, after: Duration) -> Self {
        Failure {
            stage,
            message: format!(
                "timed out after {} at stage {stage}",
                super::timeline::ms(after)
            ),
            timed_out: Some(after),
            refusal: None,
        }
    }

    /// Marks the failure as the peer's refusal, described as `how`.
    pub fn refused(mut self, how: impl Into<String>) -> Self {
        self.refusal = Some(how.into());
        self
    }

    /// Whether this is a timeout rather than an answer from the peer.
    pub fn is_timeout(&self) -> bool {
        self.timed_out.is_some()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (stage {})", self.message, self.stage)
    }
}

/// Runs `fut` until `deadline`; a timeout becomes [`Failure::timeout`] at `stage`.
pub async fn before<T>(
    deadline: tokio::time::Instant,
    started: std::time::Instant,
    stage: Stage,
    fut: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(result) => result,
        Err(_) => Err(Failure::timeout(stage, started.elapsed())),
    }
}
