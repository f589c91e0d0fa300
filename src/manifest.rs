//! The values that pass between the layers while a scenario runs: manifests
//! and live progress messages. A leaf: it depends on no other module.

use std::sync::Arc;

/// A Kubernetes object as JSON, after templating.
pub type Manifest = serde_json::Value;

/// Receives short progress messages during long operations (shown live).
pub type ProgressFn = Arc<dyn Fn(&str) + Send + Sync>;
