//! Choosing and building targets by name.

use super::Target;
use crate::scenario::TargetKind;
use std::path::PathBuf;
use std::sync::Arc;

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

/// Builds the target of this kind.
pub fn build(kind: TargetKind, opts: &TargetOptions) -> Arc<dyn Target> {
    match kind {
        TargetKind::Kind => Arc::new(super::kind::KindTarget::new(opts.clone())),
        TargetKind::Existing => Arc::new(super::existing::ExistingTarget::new(opts.clone())),
        TargetKind::Lab => Arc::new(pending::Pending(kind)), // MERGE: replace with the real constructor
    }
}

/// What `--target auto` means here: kind when a Docker engine and kind are
/// present, else lab; with the reason kind was not chosen.
pub fn auto(opts: &TargetOptions) -> (TargetKind, Option<String>) {
    match build(TargetKind::Kind, opts).unavailable_reason() {
        None => (TargetKind::Kind, None),
        Some(reason) => (TargetKind::Lab, Some(reason)),
    }
}

mod pending {
    use crate::scenario::{Scenario, TargetKind};
    use crate::target::*;
    pub struct Pending(pub TargetKind);
    #[async_trait::async_trait]
    impl Target for Pending {
        fn kind(&self) -> TargetKind {
            self.0
        }
        fn unavailable_reason(&self) -> Option<String> {
            Some("not merged yet".into())
        }
        fn unsupported_reason(&self, _: &Scenario, _: &Path) -> Option<String> {
            None
        }
        fn plan(&self, _: &Scenario, _: &Path, _: Option<&str>) -> Result<TargetPlan, String> {
            Ok(TargetPlan::default())
        }
        async fn open(&self, _: &ScenarioRun) -> Result<Box<dyn Session>, StepError> {
            Err(StepError::Broken("pending".into()))
        }
        async fn shutdown(&self, _: bool) -> Vec<String> {
            Vec::new()
        }
    }
}
