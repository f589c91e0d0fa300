//! What the lab can show of live objects and logs (`assert`, `logs`,
//! `delete: {select}`), and the JSON objects it shows.
//!
//! The lab has no API server. It shows:
//! - `ray.io/v1 RayCluster`: the applied manifest plus a status observed
//!   from the real processes (`state: ready` when the head's dashboard and
//!   client port answer; `readyWorkerReplicas` from the head's own node
//!   list; `desiredWorkerReplicas` as declared);
//! - `v1 Pod`: one per Ray node of a RayCluster, named and labelled as
//!   KubeRay names them (`ray.io/cluster`, `ray.io/group`,
//!   `ray.io/node-type`), with the spec of its group's template as applied;
//!   `status.phase` is observed from the node's own process and the `Ready`
//!   condition from the head's node list (a worker is ready when an alive
//!   node offers its group's CPUs and resources);
//! - `v1 Service`: the applied Services as written and the head Service
//!   the lab model derives for each RayCluster (modelled: KubeRay is not
//!   running), labelled with its selector.
//!
//! `logs` of pods in the `ingress-nginx` namespace (the controller, any
//! label selector and container) read the lab nginx's own error log: what
//! nginx logs is observed. The lab runs no ingress-nginx controller: the
//! few lines of the controller's Go code the lab's model reproduces (a
//! tcp-services entry whose Service has no active endpoint) are matched
//! too, and a step they satisfy says `[modelled]` and marks the scenario's
//! pass as modelled.
//!
//! Everything else is unsupported with a reason (a skip, never a pass).

use super::model::objects::{PortRef, ServiceObject, WorkerGroup};
use crate::scenario::{ObjectSelector, PodSelector};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Evidence line of every lab `assert`: what is observed and what modelled.
pub const LAB_OBJECTS_NOTE: &str = "[lab] RayCluster status.state and status.readyWorkerReplicas observed \
     (the head's GCS lists it alive, its client port and any dashboard answer; the GCS's alive nodes \
     labelled as the RayCluster's workers); Pod phase and Ready observed (the node's process; the \
     same node list); metadata and spec as applied; \
     Pods and the head Service [modelled] by the lab (no KubeRay operator runs)";

/// Evidence line of every lab `logs`: what the log is.
pub const LAB_LOGS_NOTE: &str = "[lab] pods in ingress-nginx map to the lab nginx's own error log \
     (observed nginx lines) and to the lines the lab's model of the controller writes ([modelled]: \
     no ingress-nginx controller process runs)";

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
        ("ray.io/v1", "RayCluster") | ("v1", "Service") | ("v1", "Pod") => None,
        (api_version, kind) => Some(format!(
            "lab cannot observe {kind} objects ({api_version}): it shows RayClusters \
             (status from the real Ray processes), their Pods, and Services only"
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

/// How many workers of each group the head's node list shows alive: each
/// alive worker node counts for the first group, in order, whose CPUs and
/// custom resources it offers and that is not yet full.
pub fn ready_per_group(groups: &[WorkerGroup], nodes: &[Value]) -> BTreeMap<String, u32> {
    let mut ready: BTreeMap<String, u32> = groups.iter().map(|g| (g.name.clone(), 0)).collect();
    for node in nodes {
        let offers = |key: &str, amount: f64| node[key].as_f64() == Some(amount);
        let group = groups.iter().find(|g| {
            let declared: serde_json::Map<String, Value> = g
                .resources
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default();
            ready[&g.name] < g.replicas
                && offers("CPU", f64::from(g.num_cpus.unwrap_or(1).max(1)))
                && declared
                    .iter()
                    .all(|(k, v)| v.as_f64().is_some_and(|a| offers(k, a)))
        });
        if let Some(g) = group {
            *ready.entry(g.name.clone()).or_default() += 1;
        }
    }
    ready
}

/// One Ray node of a RayCluster as a Pod: where it is and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSeen {
    /// The worker group, or `None` for the head.
    pub group: Option<String>,
    /// Its process runs.
    pub running: bool,
    /// The head's node list shows it alive (the head: it answers).
    pub ready: bool,
}

/// The Pods of a RayCluster as the lab shows them (see the module docs).
pub fn pod_objects(manifest: &Value, namespace: &str, nodes: &[NodeSeen]) -> Vec<Value> {
    let cluster = manifest["metadata"]["name"].as_str().unwrap_or("");
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    nodes
        .iter()
        .map(|node| {
            let (name, group, node_type, template) = match &node.group {
                None => (
                    format!("{cluster}-head"),
                    "headgroup",
                    "head",
                    &manifest["spec"]["headGroupSpec"]["template"],
                ),
                Some(group) => {
                    let i = index.entry(group).or_default();
                    *i += 1;
                    let template = manifest["spec"]["workerGroupSpecs"]
                        .as_array()
                        .and_then(|gs| gs.iter().find(|g| g["groupName"] == json!(group)))
                        .map_or(&Value::Null, |g| &g["template"]);
                    (
                        format!("{cluster}-{group}-worker-{}", *i - 1),
                        group.as_str(),
                        "worker",
                        template,
                    )
                }
            };
            let mut labels = template["metadata"]["labels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (k, v) in [
                ("ray.io/cluster", cluster),
                ("ray.io/group", group),
                ("ray.io/node-type", node_type),
                ("ray.io/is-ray-node", "yes"),
            ] {
                labels.insert(k.into(), json!(v));
            }
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": template["spec"],
                "status": {
                    "phase": if node.running { "Running" } else { "Failed" },
                    "conditions": [{"type": "Ready",
                                    "status": if node.ready { "True" } else { "False" }}],
                },
            })
        })
        .collect()
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

    fn group(name: &str, replicas: u32, cpus: u32, resources: Option<&str>) -> WorkerGroup {
        WorkerGroup {
            name: name.into(),
            replicas,
            num_cpus: Some(cpus),
            resources: resources.map(str::to_string),
        }
    }

    #[test]
    fn alive_nodes_count_for_the_group_whose_resources_they_offer() {
        let groups = [
            group("small", 2, 1, Some(r#"{"small": 1}"#)),
            group("large", 1, 2, None),
        ];
        let nodes = [
            json!({"CPU": 2.0, "memory": 1e9}),
            json!({"CPU": 1.0, "small": 1.0}),
            json!({"CPU": 1.0}),
        ];
        let ready = ready_per_group(&groups, &nodes);
        assert_eq!(ready["small"], 1, "a node without `small` is not one");
        assert_eq!(ready["large"], 1);
        let ready = ready_per_group(&groups, &nodes[..1]);
        assert_eq!(ready["small"], 0);
    }

    #[test]
    fn pods_carry_kuberay_labels_their_templates_and_what_was_seen() {
        let manifest = json!({"metadata": {"name": "rc"}, "spec": {
            "headGroupSpec": {"template": {"spec": {"containers": [{"name": "ray-head"}]}}},
            "workerGroupSpecs": [{"groupName": "small", "template": {
                "metadata": {"labels": {"team": "a"}},
                "spec": {"containers": [{"name": "ray-worker",
                                          "resources": {"requests": {"cpu": "250m"}}}]}}}]}});
        let seen = |group: Option<&str>, running, ready| NodeSeen {
            group: group.map(str::to_string),
            running,
            ready,
        };
        let pods = pod_objects(
            &manifest,
            "ns",
            &[
                seen(None, true, true),
                seen(Some("small"), true, true),
                seen(Some("small"), true, false),
            ],
        );
        assert_eq!(pods.len(), 3);
        assert_eq!(pods[0]["metadata"]["labels"]["ray.io/group"], "headgroup");
        assert_eq!(pods[2]["metadata"]["name"], "rc-small-worker-1");
        assert_eq!(pods[2]["metadata"]["labels"]["team"], "a");
        assert_eq!(pods[2]["metadata"]["labels"]["ray.io/node-type"], "worker");
        assert_eq!(
            pods[1]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "250m"
        );
        assert_eq!(pods[1]["status"]["conditions"][0]["status"], "True");
        assert_eq!(pods[2]["status"]["conditions"][0]["status"], "False");
    }

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
