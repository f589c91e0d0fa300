//! What the lab can show of live objects and logs (`assert`, `logs`,
//! `delete: {select}`), and the JSON objects it shows.
//!
//! The lab has no API server. It shows:
//! - `ray.io/v1 RayCluster`: the applied manifest plus a status observed
//!   from the real processes (`state: ready` when the head's dashboard and
//!   client port answer; `readyWorkerReplicas` from the head's own node
//!   list; `desiredWorkerReplicas` as declared);
//! - `v1 Service`: the applied Services as written and the head Service
//!   the lab model derives for each RayCluster (modelled: KubeRay is not
//!   running), labelled with its selector.
//!
//! `logs` of pods in the `ingress-nginx` namespace (the controller, any
//! label selector and container) read the lab nginx's own error log: what
//! nginx logs is observed; the lab runs no ingress-nginx controller, so
//! lines only the controller's Go code writes never appear there.
//!
//! Everything else is unsupported with a reason (a skip, never a pass).

use super::model::objects::{PortRef, ServiceObject};
use crate::scenario::{ObjectSelector, PodSelector};
use serde_json::{Value, json};

/// Evidence line of every lab `assert`: what is observed and what modelled.
pub const LAB_OBJECTS_NOTE: &str = "[lab] RayCluster status.state and status.readyWorkerReplicas observed \
     (head dashboard and client port answer; the head's own node list); metadata and spec as applied; \
     the head Service [modelled] by the lab (no KubeRay operator runs)";

/// Evidence line of every lab `logs`: what the log is.
pub const LAB_LOGS_NOTE: &str = "[lab] pods in ingress-nginx map to the lab nginx's own error log \
     (observed nginx lines; no ingress-nginx controller process runs)";

/// The text of the log file from byte `from` on (empty when unreadable).
pub fn log_since(path: &std::path::Path, from: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path)
        && file.seek(SeekFrom::Start(from)).is_ok()
    {
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_ok() {
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    text
}

/// The namespace whose pods' logs map to the lab nginx's error log.
pub const INGRESS_NAMESPACE: &str = "ingress-nginx";

/// Why the lab cannot observe the selected objects, or `None`.
pub fn assert_reason(selector: &ObjectSelector) -> Option<String> {
    match (selector.api_version.as_str(), selector.kind.as_str()) {
        ("ray.io/v1", "RayCluster") | ("v1", "Service") => None,
        (api_version, kind) => Some(format!(
            "lab cannot observe {kind} objects ({api_version}): it shows RayClusters \
             (status from the real Ray processes) and Services only"
        )),
    }
}

/// Why the lab cannot read the selected pods' logs, or `None`.
pub fn logs_reason(pods: &PodSelector) -> Option<String> {
    match pods.namespace.as_deref() {
        Some(INGRESS_NAMESPACE) => None,
        other => Some(format!(
            "lab cannot read logs of pods in {}: only the ingress controller's \
             (namespace {INGRESS_NAMESPACE}), which maps to the lab nginx's error log",
            other.unwrap_or("the scenario namespace")
        )),
    }
}

/// Why the lab cannot delete the selected objects, or `None`.
pub fn delete_reason(selector: &ObjectSelector) -> Option<String> {
    match (selector.api_version.as_str(), selector.kind.as_str()) {
        ("ray.io/v1", "RayCluster") => None,
        (_, kind) => Some(format!(
            "lab cannot delete {kind} objects by selector: only RayClusters (their processes stop)"
        )),
    }
}

/// Whether `object`'s labels satisfy a `key=value,key2=value2` selector
/// (the equality form; set-based selectors are refused by the caller).
pub fn labels_match(object: &Value, selector: Option<&str>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    selector
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .all(|pair| match pair.split_once('=') {
            Some((k, v)) => {
                let k = k.trim_end_matches('=').trim();
                object["metadata"]["labels"][k].as_str() == Some(v.trim_start_matches('='))
            }
            None => false,
        })
}

/// Whether `object` is one the selector names (namespace, name, labels).
pub fn selected(object: &Value, selector: &ObjectSelector, default_namespace: &str) -> bool {
    let namespace = selector.namespace.as_deref().unwrap_or(default_namespace);
    object["metadata"]["namespace"].as_str() == Some(namespace)
        && selector
            .name
            .as_deref()
            .is_none_or(|n| object["metadata"]["name"].as_str() == Some(n))
        && labels_match(object, selector.label_selector.as_deref())
}

/// What the lab shows of a RayCluster: the applied manifest with a status.
pub fn raycluster_object(
    manifest: &Value,
    namespace: &str,
    ready: bool,
    ready_workers: u32,
    desired_workers: u32,
) -> Value {
    let mut object = applied_object(manifest, namespace);
    object["status"] = json!({
        "state": if ready { "ready" } else { "unhealthy" },
        "readyWorkerReplicas": ready_workers,
        "desiredWorkerReplicas": desired_workers,
    });
    object
}

/// An applied object as the lab shows it: the manifest as written, in its
/// namespace.
pub fn applied_object(manifest: &Value, namespace: &str) -> Value {
    let mut object = manifest.clone();
    object["metadata"]["namespace"] = json!(namespace);
    object
}

/// The head Service the lab models for a RayCluster, labelled with its own
/// selector (as KubeRay labels the head Service with the head's labels).
pub fn head_service_object(service: &ServiceObject) -> Value {
    let mut object = service_object(service);
    object["metadata"]["labels"] = json!(service.selector);
    object
}

/// A Service as JSON.
pub fn service_object(service: &ServiceObject) -> Value {
    let ports: Vec<Value> = service
        .ports
        .iter()
        .map(|p| {
            let mut port = json!({"port": p.port, "protocol": "TCP"});
            if let Some(name) = &p.name {
                port["name"] = json!(name);
            }
            port["targetPort"] = match &p.target_port {
                PortRef::Number(n) => json!(n),
                PortRef::Name(n) => json!(n),
            };
            port
        })
        .collect();
    let mut spec = json!({"selector": service.selector, "ports": ports});
    if service.headless {
        spec["clusterIP"] = json!("None");
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service.name, "namespace": service.namespace},
        "spec": spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_of_the_equality_form() {
        let o = json!({"metadata": {"labels": {"a": "1", "b": "x"}}});
        assert!(labels_match(&o, None));
        assert!(labels_match(&o, Some("a=1")));
        assert!(labels_match(&o, Some("a=1,b==x")));
        assert!(!labels_match(&o, Some("a=2")));
        assert!(!labels_match(&o, Some("c=1")));
        assert!(!labels_match(&o, Some("a")));
    }
}
