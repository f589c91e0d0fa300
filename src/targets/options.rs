//! What every target constructor may need.

use std::path::PathBuf;

/// What every target constructor may need.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    /// The project root.
    pub project_root: PathBuf,
    /// Kube context for `existing` (KUBECONFIG's current one when unset).
    pub kube_context: Option<String>,
    /// `--k8s-version`.
    pub k8s_version: Option<String>,
}
