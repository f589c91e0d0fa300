//! Choosing and building targets by name.

use super::{Target, TargetOptions};
use crate::scenario::TargetKind;
use std::sync::Arc;

/// Builds the target of this kind.
pub fn build(kind: TargetKind, opts: &TargetOptions) -> Arc<dyn Target> {
    match kind {
        TargetKind::Lab => Arc::new(super::lab::LabTarget::new(opts.project_root.clone())),
        TargetKind::Kind => Arc::new(super::kind::KindTarget::new(opts.clone())),
        TargetKind::Existing => Arc::new(super::existing::ExistingTarget::new(opts.clone())),
        TargetKind::K3s => Arc::new(super::k3s::K3sTarget::new(opts.clone())),
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
