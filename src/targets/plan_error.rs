//! Why a target cannot say what running a scenario would do.

/// Why a target cannot say what running a scenario would do (a plan still
/// shows the scenario's steps, with this in place of the target's part).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Something the target's part of the plan needs cannot be resolved:
    /// a kind config that does not render, an unknown Kubernetes version,
    /// install settings the lab cannot model.
    #[error("{0}")]
    Unresolved(String),
}

/// The targets' own helpers still describe problems as text; `?` turns
/// that text into a [`PlanError::Unresolved`].
impl From<String> for PlanError {
    fn from(reason: String) -> Self {
        PlanError::Unresolved(reason)
    }
}
