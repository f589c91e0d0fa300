//! What a `wait` step waits for: the validated shape the scenario format
//! produces and the waits in [`super::wait`] (and the lab) act on.

use serde::{Deserialize, Serialize};

/// What a `wait` waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WaitTarget {
    /// A RayCluster by name.
    RayCluster(String),
    /// A Deployment by name.
    Deployment(String),
    /// Pods by label selector.
    Pods(String),
    /// An Endpoints object by name.
    Endpoints(String),
}

/// A RayCluster condition to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RayClusterCondition {
    /// `status.state == ready`.
    Ready,
    /// Condition `HeadPodReady` is True.
    HeadPodReady,
    /// Condition `RayClusterProvisioned` is True.
    RayClusterProvisioned,
}

/// A validated `wait`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitSpec {
    /// The object waited for.
    pub target: WaitTarget,
    /// For RayClusters: the condition (default `Ready`).
    pub condition: Option<RayClusterCondition>,
    /// Namespace; the scenario's own when unset.
    pub namespace: Option<String>,
    /// For RayClusters: at least this many ready workers.
    pub ready_workers: Option<u32>,
}
