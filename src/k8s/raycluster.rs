//! Our own typed view of a KubeRay `RayCluster`'s status (`ray.io/v1`),
//! with field names as KubeRay writes them.

use kube::discovery::ApiResource;
use serde::Deserialize;

/// The RayCluster resource, known without discovery.
pub fn api_resource() -> ApiResource {
    ApiResource {
        group: "ray.io".into(),
        version: "v1".into(),
        api_version: "ray.io/v1".into(),
        kind: "RayCluster".into(),
        plural: "rayclusters".into(),
    }
}

/// `.status` of a RayCluster (the fields rayconform reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RayClusterStatus {
    /// `ready`, `suspended` or (deprecated) `failed`; empty before the
    /// operator first reports.
    #[serde(default)]
    pub state: String,
    /// Why the state is what it is, when the operator says.
    #[serde(default)]
    pub reason: String,
    /// Status conditions (`HeadPodReady`, `RayClusterProvisioned`, ...).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Workers that are ready.
    #[serde(default)]
    pub ready_worker_replicas: i64,
    /// Workers wanted.
    #[serde(default)]
    pub desired_worker_replicas: i64,
    /// Workers that exist.
    #[serde(default)]
    pub available_worker_replicas: i64,
    /// The head's addresses.
    #[serde(default)]
    pub head: Option<HeadInfo>,
    /// Which generation of the spec the status describes.
    #[serde(default)]
    pub observed_generation: i64,
}

/// `.status.head`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadInfo {
    /// Head pod IP.
    #[serde(default, rename = "podIP")]
    pub pod_ip: String,
    /// Head Service IP (`None` for a headless Service).
    #[serde(default, rename = "serviceIP")]
    pub service_ip: String,
    /// Head pod name.
    #[serde(default)]
    pub pod_name: String,
    /// Head Service name.
    #[serde(default)]
    pub service_name: String,
}

/// One status condition (the shape every Kubernetes condition has).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason.
    #[serde(default)]
    pub reason: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
}

impl RayClusterStatus {
    /// The JSON field names this type reads, for checking against KubeRay's
    /// CRD (`status` properties).
    pub const FIELD_NAMES: &'static [&'static str] = &[
        "state",
        "reason",
        "conditions",
        "readyWorkerReplicas",
        "desiredWorkerReplicas",
        "availableWorkerReplicas",
        "head",
        "observedGeneration",
    ];

    /// The JSON field names of `status.head` this type reads.
    pub const HEAD_FIELD_NAMES: &'static [&'static str] =
        &["podIP", "serviceIP", "podName", "serviceName"];

    /// Reads the status of an object (default when absent or malformed).
    pub fn of(object: &serde_json::Value) -> RayClusterStatus {
        object
            .get("status")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default()
    }

    /// Whether condition `type_` is `True`.
    pub fn condition_true(&self, type_: &str) -> bool {
        self.conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True")
    }

    /// One line: state, conditions and worker counts.
    pub fn describe(&self) -> String {
        let state = if self.state.is_empty() {
            "<none>"
        } else {
            &self.state
        };
        let conditions: Vec<String> = self
            .conditions
            .iter()
            .map(|c| {
                if c.reason.is_empty() {
                    format!("{}={}", c.type_, c.status)
                } else {
                    format!("{}={} ({})", c.type_, c.status, c.reason)
                }
            })
            .collect();
        format!(
            "state={state}, conditions=[{}], readyWorkerReplicas={}/{}",
            conditions.join(", "),
            self.ready_worker_replicas,
            self.desired_worker_replicas
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_kuberay_status() {
        let status = RayClusterStatus::of(&json!({"status": {
            "state": "ready",
            "readyWorkerReplicas": 2, "desiredWorkerReplicas": 2,
            "head": {"podIP": "10.0.0.5", "serviceIP": "None"},
            "conditions": [{"type": "HeadPodReady", "status": "True", "reason": "HeadPodRunningAndReady"}]
        }}));
        assert!(status.condition_true("HeadPodReady"));
        assert!(!status.condition_true("RayClusterProvisioned"));
        assert_eq!(status.head.unwrap().service_ip, "None");
        assert_eq!(
            RayClusterStatus::of(&json!({})).describe(),
            "state=<none>, conditions=[], readyWorkerReplicas=0/0"
        );
    }
}
