//! A test-only Kubernetes API double served over real HTTP on 127.0.0.1.
//!
//! kube-rs talks to it unchanged: discovery (`/api`, `/apis`, group
//! versions), GET/LIST with field and label selectors, WATCH as streaming
//! JSON lines replayed from a resourceVersion, server-side apply PATCH
//! (`application/apply-patch+yaml`, with `dryRun`), DELETE, and pod logs.
//! Tests script it: change an object's status (now or after a delay),
//! refuse applies of a kind with an admission webhook message, and read
//! the requests it received. Never part of the shipped binary.

#![allow(dead_code)]

mod websocket;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Body = BoxBody<Bytes, Infallible>;

/// A kind the double serves.
#[derive(Debug, Clone, Copy)]
struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
}

const KINDS: &[Kind] = &[
    Kind {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        namespaced: true,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        namespaced: true,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        namespaced: true,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        namespaced: true,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        namespaced: true,
    },
    Kind {
        group: "networking.k8s.io",
        version: "v1",
        kind: "Ingress",
        plural: "ingresses",
        namespaced: true,
    },
    Kind {
        group: "ray.io",
        version: "v1",
        kind: "RayCluster",
        plural: "rayclusters",
        namespaced: true,
    },
    Kind {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRole",
        plural: "clusterroles",
        namespaced: false,
    },
    Kind {
        group: "security.istio.io",
        version: "v1",
        kind: "PeerAuthentication",
        plural: "peerauthentications",
        namespaced: true,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        namespaced: false,
    },
];

fn api_version(k: &Kind) -> String {
    if k.group.is_empty() {
        k.version.to_string()
    } else {
        format!("{}/{}", k.group, k.version)
    }
}

/// One request the double received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// When it arrived.
    pub at: Instant,
}

/// A scripted admission refusal.
#[derive(Debug, Clone)]
struct Denial {
    kind: String,
    code: u16,
    message: String,
}

struct Watch {
    plural: &'static str,
    namespace: Option<String>,
    name: Option<String>,
    labels: Vec<(String, String)>,
    sender: mpsc::UnboundedSender<Bytes>,
}

/// Counts every stored change and every request received, for scripted
/// actors waiting for one.
struct Changes(tokio::sync::watch::Sender<u64>);

impl Changes {
    fn signal(&self) {
        self.0.send_modify(|n| *n += 1);
    }
}

impl Default for Changes {
    fn default() -> Changes {
        Changes(tokio::sync::watch::channel(0).0)
    }
}

#[derive(Default)]
struct State {
    resource_version: u64,
    /// (plural, namespace, name) -> object.
    objects: BTreeMap<(String, String, String), Value>,
    /// (rv, plural, type, object) for watch replay.
    history: Vec<(u64, &'static str, &'static str, Value)>,
    watches: Vec<Watch>,
    requests: Vec<Recorded>,
    denials: Vec<Denial>,
    logs: BTreeMap<(String, String), String>,
    /// (namespace, pod) -> lines with the time the kubelet stamped them;
    /// `sinceTime` filters these (second precision, like the API).
    timed_logs: BTreeMap<(String, String), Vec<(std::time::SystemTime, String)>>,
    /// (namespace, pod, container, argv joined by spaces) -> stdout.
    exec_outputs: BTreeMap<(String, String, String, String), String>,
    changes: Changes,
    /// When set, a deleted namespace stays Terminating (with its objects)
    /// until [`ApiDouble::finish_namespace_deletion`].
    hold_namespace_deletion: bool,
}

/// The running double.
pub struct ApiDouble {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApiDouble {
    /// Starts the double on a free loopback port.
    pub async fn start() -> ApiDouble {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                // A watch's headers and first event are separate writes:
                // with Nagle's algorithm the event waits for the delayed
                // ACK of the headers (~40 ms), which is the double's
                // artefact, not the code under test's.
                let _ = stream.set_nodelay(true);
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        ApiDouble { url, state, task }
    }

    /// A kube client for the double.
    pub fn client(&self) -> kube::Client {
        rayconform::k8s::client::connect_url(&self.url).expect("client for the double")
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Refuses every apply of `kind` with an admission-style Status.
    pub fn deny(&self, kind: &str, code: u16, message: &str) {
        self.state.lock().unwrap().denials.push(Denial {
            kind: kind.to_string(),
            code,
            message: message.to_string(),
        });
    }

    /// The stored object, if any.
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (plural.to_string(), namespace.to_string(), name.to_string());
        self.state.lock().unwrap().objects.get(&key).cloned()
    }

    /// Stores an object as if some controller created it (notifies watches).
    pub fn put(&self, plural: &str, object: Value) {
        let mut s = self.state.lock().unwrap();
        let kind = KINDS
            .iter()
            .find(|k| k.plural == plural)
            .expect("known plural");
        store(&mut s, kind, object, None);
    }

    /// Replaces an object's `.status` (as a controller would); returns the
    /// instant the change became visible.
    pub fn set_status(&self, plural: &str, namespace: &str, name: &str, status: Value) -> Instant {
        // Taken before the change is stored, so a delay measured from it
        // never comes out shorter than the real one.
        let now = Instant::now();
        self.modify(plural, namespace, name, |object| object["status"] = status);
        now
    }

    /// Changes a stored object in place (as a controller would: metadata,
    /// spec or status); notifies watches. Panics if it does not exist.
    pub fn modify(
        &self,
        plural: &str,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) {
        let mut s = self.state.lock().unwrap();
        let key = (plural.to_string(), namespace.to_string(), name.to_string());
        let mut object = s
            .objects
            .get(&key)
            .cloned()
            .unwrap_or_else(|| panic!("{plural} {namespace}/{name} to modify does not exist"));
        change(&mut object);
        let kind = KINDS.iter().find(|k| k.plural == plural).unwrap();
        store(&mut s, kind, object, None);
    }

    /// Removes an object at once (as the end of a pod's termination would);
    /// notifies watches. Returns whether it existed.
    pub fn remove(&self, plural: &str, namespace: &str, name: &str) -> bool {
        let mut s = self.state.lock().unwrap();
        let kind = KINDS.iter().find(|k| k.plural == plural).unwrap();
        let key = (plural.to_string(), namespace.to_string(), name.to_string());
        match s.objects.remove(&key) {
            Some(o) => {
                s.resource_version += 1;
                let rv = s.resource_version;
                notify(&mut s, kind.plural, "DELETED", &o, rv);
                true
            }
            None => false,
        }
    }

    /// From now on a deleted namespace stays Terminating, objects and all,
    /// as when pods take their grace period or a finalizer is stuck.
    pub fn hold_namespace_deletion(&self) {
        self.state.lock().unwrap().hold_namespace_deletion = true;
    }

    /// Ends a held namespace deletion: its objects, then the namespace, go.
    pub fn finish_namespace_deletion(&self, namespace: &str) {
        let mut s = self.state.lock().unwrap();
        remove_namespace(&mut s, namespace);
    }

    /// Waits until the object exists (the event itself, not a poll with a
    /// short budget) and returns it. For scripted actors (a "kubelet", a
    /// "controller") that react to what the code under test creates: if it
    /// never appears within `within`, this panics saying so, naming what
    /// was requested meanwhile, instead of letting the actor act on
    /// nothing and the test fail somewhere misleading.
    pub async fn wait_for_object(
        &self,
        plural: &str,
        namespace: &str,
        name: &str,
        within: Duration,
    ) -> Value {
        self.wait_for(
            &format!("{plural} {namespace}/{name} to be created"),
            within,
            || self.get(plural, namespace, name),
        )
        .await
    }

    /// Waits until the double has received a request whose method and URI
    /// satisfy `wanted` (e.g. a wait's watch), and returns its URI.
    pub async fn wait_for_request(
        &self,
        what: &str,
        within: Duration,
        wanted: impl Fn(&str, &str) -> bool,
    ) -> String {
        self.wait_for(what, within, || {
            self.requests()
                .into_iter()
                .find(|r| wanted(&r.method, &r.uri))
                .map(|r| r.uri)
        })
        .await
    }

    /// Re-evaluates `found` on every change or request until it gives a
    /// value; panics after `within` naming `what` and the requests seen.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        within: Duration,
        found: impl Fn() -> Option<T>,
    ) -> T {
        let mut changes = self.state.lock().unwrap().changes.0.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(value) = found() {
                return value;
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                let requests: Vec<String> = self
                    .requests()
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.uri))
                    .collect();
                panic!(
                    "scripted actor: waited {within:?} for {what}; the code under test never got that far. Requests so far:\n{}",
                    requests.join("\n")
                );
            }
        }
    }

    /// Acts as the Deployment controller and kubelet for a stored
    /// Deployment: the pods of its older ReplicaSets removed, a ReplicaSet
    /// of a new revision owning `spec.replicas` Ready pods, the revision
    /// annotation, and a rolled-out status (`observedGeneration`, updated
    /// and available replicas, Available). Returns the revision.
    pub fn roll_out_deployment(&self, namespace: &str, name: &str) -> String {
        let deployment = self
            .get("deployments", namespace, name)
            .unwrap_or_else(|| panic!("Deployment {namespace}/{name} to roll out does not exist"));
        let revision = deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|r| r.parse::<u64>().ok())
            .map_or(1, |r| r + 1)
            .to_string();
        let uid = deployment["metadata"]["uid"].clone();
        let old_pods: Vec<String> = {
            let st = self.state.lock().unwrap();
            let old_sets: Vec<&Value> = st
                .objects
                .iter()
                .filter(|((p, ns, _), rs)| {
                    p == "replicasets"
                        && ns == namespace
                        && rs["metadata"]["ownerReferences"][0]["uid"] == uid
                })
                .map(|(_, rs)| &rs["metadata"]["uid"])
                .collect();
            st.objects
                .iter()
                .filter(|((p, ns, _), pod)| {
                    p == "pods"
                        && ns == namespace
                        && old_sets.contains(&&pod["metadata"]["ownerReferences"][0]["uid"])
                })
                .map(|((_, _, name), _)| name.clone())
                .collect()
        };
        for pod in old_pods {
            self.remove("pods", namespace, &pod);
        }
        let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
        let labels = deployment["spec"]["selector"]["matchLabels"].clone();
        let rs_name = format!("{name}-r{revision}");
        let mut rs_labels = labels.clone();
        rs_labels["pod-template-hash"] = json!(format!("r{revision}"));
        self.put("replicasets", json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": rs_name, "namespace": namespace, "labels": rs_labels,
                         "annotations": {"deployment.kubernetes.io/revision": revision},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                              "uid": deployment["metadata"]["uid"], "controller": true}]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}},
            "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}}));
        let rs_uid =
            self.get("replicasets", namespace, &rs_name).unwrap()["metadata"]["uid"].clone();
        for i in 0..replicas {
            self.put("pods", json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{rs_name}-{i}"), "namespace": namespace, "labels": rs_labels,
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                                                  "uid": rs_uid, "controller": true}]},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}));
        }
        let revision_set = revision.clone();
        self.modify("deployments", namespace, name, move |d| {
            d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!(revision_set);
            let generation = d["metadata"]["generation"].clone();
            d["status"] = json!({"observedGeneration": generation, "replicas": replicas,
                "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                               {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]});
        });
        revision
    }

    /// Scripts what `exec` of `argv` in a pod's container prints.
    pub fn set_exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[&str],
        stdout: &str,
    ) {
        self.state.lock().unwrap().exec_outputs.insert(
            (
                namespace.to_string(),
                pod.to_string(),
                container.to_string(),
                argv.join(" "),
            ),
            stdout.to_string(),
        );
    }

    /// Appends a line to a pod's log, stamped `at`: the log endpoint then
    /// answers with the lines at or after its `sinceTime`.
    pub fn log_line(&self, namespace: &str, pod: &str, at: std::time::SystemTime, line: &str) {
        let mut s = self.state.lock().unwrap();
        s.timed_logs
            .entry((namespace.to_string(), pod.to_string()))
            .or_default()
            .push((at, line.to_string()));
        s.changes.signal();
    }

    /// Sets the text the pod log endpoint returns for a pod.
    pub fn set_log(&self, namespace: &str, pod: &str, text: &str) {
        self.state
            .lock()
            .unwrap()
            .logs
            .insert((namespace.to_string(), pod.to_string()), text.to_string());
    }
}

fn respond(code: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    respond(
        StatusCode::from_u16(code).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn query_map(query: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn matches(object: &Value, name: &Option<String>, labels: &[(String, String)]) -> bool {
    if let Some(n) = name
        && object["metadata"]["name"] != n.as_str()
    {
        return false;
    }
    labels
        .iter()
        .all(|(k, v)| object["metadata"]["labels"][k] == v.as_str())
}

fn selectors(q: &BTreeMap<String, String>) -> (Option<String>, Vec<(String, String)>) {
    let name = q
        .get("fieldSelector")
        .and_then(|f| f.strip_prefix("metadata.name=").map(str::to_string));
    let labels = q
        .get("labelSelector")
        .map(|l| {
            l.split(',')
                .filter_map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    (name, labels)
}

/// Stores `object` (new resourceVersion unless unchanged), records history
/// and notifies watches. Returns (object, created).
fn store(s: &mut State, kind: &Kind, mut object: Value, previous: Option<&Value>) -> (Value, bool) {
    let ns = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let key = (kind.plural.to_string(), ns, name.clone());
    let old = previous.cloned().or_else(|| s.objects.get(&key).cloned());
    if let Some(old) = &old {
        let mut a = old.clone();
        a["metadata"]["resourceVersion"] = Value::Null;
        let mut b = object.clone();
        b["metadata"]["resourceVersion"] = Value::Null;
        for (field, value) in ["uid", "creationTimestamp", "generation"]
            .iter()
            .map(|f| (*f, &old["metadata"][*f]))
        {
            b["metadata"][field] = value.clone();
        }
        if a == b {
            return (old.clone(), false);
        }
    }
    s.resource_version += 1;
    let rv = s.resource_version;
    object["metadata"]["resourceVersion"] = json!(rv.to_string());
    match &old {
        Some(old) => {
            object["metadata"]["uid"] = old["metadata"]["uid"].clone();
            object["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            let bumped = if old.get("spec") != object.get("spec") {
                generation + 1
            } else {
                generation
            };
            object["metadata"]["generation"] = json!(bumped);
        }
        None => {
            object["metadata"]["uid"] = json!(format!("uid-{rv}"));
            object["metadata"]["creationTimestamp"] = json!("2026-11-21T00:00:00Z");
            object["metadata"]["generation"] = json!(1);
        }
    }
    let event = if old.is_some() { "MODIFIED" } else { "ADDED" };
    s.objects.insert(key, object.clone());
    notify(s, kind.plural, event, &object, rv);
    (object, old.is_none())
}

/// Removes every object in `namespace`, then the namespace (notifying
/// watches of each), as the namespace controller finishes a deletion.
fn remove_namespace(s: &mut State, namespace: &str) {
    let keys: Vec<(String, String, String)> = s
        .objects
        .keys()
        .filter(|(_, ns, _)| ns == namespace)
        .cloned()
        .chain(std::iter::once((
            "namespaces".to_string(),
            String::new(),
            namespace.to_string(),
        )))
        .collect();
    for key in keys {
        if let Some(o) = s.objects.remove(&key) {
            let kind = KINDS.iter().find(|k| k.plural == key.0).unwrap();
            s.resource_version += 1;
            let rv = s.resource_version;
            notify(s, kind.plural, "DELETED", &o, rv);
        }
    }
}

fn notify(s: &mut State, plural: &'static str, event: &'static str, object: &Value, rv: u64) {
    s.changes.signal();
    s.history.push((rv, plural, event, object.clone()));
    let line = Bytes::from(format!("{}\n", json!({"type": event, "object": object})));
    let ns = object["metadata"]["namespace"].as_str().map(str::to_string);
    s.watches.retain(|w| {
        let relevant = w.plural == plural
            && (w.namespace.is_none() || w.namespace == ns)
            && matches(object, &w.name, &w.labels);
        !relevant || w.sender.send(line.clone()).is_ok()
    });
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Body> {
    if websocket::is_upgrade(&req) {
        let mut s = state.lock().unwrap();
        s.requests.push(Recorded {
            method: "UPGRADE".into(),
            uri: req.uri().to_string(),
            at: Instant::now(),
        });
        s.changes.signal();
        drop(s);
        return websocket::upgrade(state, req);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = query_map(req.uri().query().unwrap_or(""));
    {
        let mut s = state.lock().unwrap();
        s.requests.push(Recorded {
            method: method.to_string(),
            uri: req.uri().to_string(),
            at: Instant::now(),
        });
        s.changes.signal();
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // Discovery.
    match parts.as_slice() {
        ["api"] => {
            return respond(
                StatusCode::OK,
                json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
            );
        }
        ["apis"] => {
            let mut groups: Vec<Value> = Vec::new();
            for k in KINDS.iter().filter(|k| !k.group.is_empty()) {
                if !groups.iter().any(|g| g["name"] == k.group) {
                    let gv = json!({"groupVersion": api_version(k), "version": k.version});
                    groups.push(
                        json!({"name": k.group, "versions": [gv.clone()], "preferredVersion": gv}),
                    );
                }
            }
            return respond(
                StatusCode::OK,
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            );
        }
        ["api", "v1"] => return resource_list("", "v1"),
        ["apis", group, version] => return resource_list(group, version),
        _ => {}
    }
    // Resource paths: /api/v1/... or /apis/<g>/<v>/...
    let (group, version, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => {
            return status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            );
        }
    };
    let (namespace, plural, name, sub) = match rest {
        ["namespaces", ns, plural, tail @ ..] => (
            Some(ns.to_string()),
            *plural,
            tail.first().map(|s| s.to_string()),
            tail.get(1).copied(),
        ),
        [plural, tail @ ..] => (
            None,
            *plural,
            tail.first().map(|s| s.to_string()),
            tail.get(1).copied(),
        ),
        _ => return status(404, "NotFound", "no resource"),
    };
    // `/api/v1/namespaces/<name>` is the Namespace object itself.
    let (namespace, plural, name) = if rest.len() == 2 && rest[0] == "namespaces" {
        (None, "namespaces", Some(rest[1].to_string()))
    } else {
        (namespace, plural, name)
    };
    let Some(kind) = KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
    else {
        return status(
            404,
            "NotFound",
            &format!(
                "the server could not find the requested resource ({group}/{version} {plural})"
            ),
        );
    };
    let ns_key = namespace.clone().unwrap_or_default();
    match (method, name, sub) {
        (Method::GET, Some(name), Some("log")) => {
            let s = state.lock().unwrap();
            if query.get("previous").map(String::as_str) == Some("true") {
                return status(400, "BadRequest", "previous terminated container not found");
            }
            if let Some(lines) = s.timed_logs.get(&(ns_key.clone(), name.clone())) {
                let since = query
                    .get("sinceTime")
                    .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                    .map(std::time::SystemTime::from);
                let text: String = lines
                    .iter()
                    .filter(|(at, _)| since.is_none_or(|since| *at >= since))
                    .map(|(_, line)| format!("{line}\n"))
                    .collect();
                return Response::new(Full::new(Bytes::from(text)).boxed());
            }
            match s.logs.get(&(ns_key, name.clone())) {
                Some(text) => Response::new(Full::new(Bytes::from(text.clone())).boxed()),
                None => status(404, "NotFound", &format!("pods \"{name}\" not found")),
            }
        }
        (Method::GET, Some(name), None) => {
            let s = state.lock().unwrap();
            match s
                .objects
                .get(&(kind.plural.to_string(), ns_key, name.clone()))
            {
                Some(o) => respond(StatusCode::OK, o.clone()),
                None => status(
                    404,
                    "NotFound",
                    &format!("{} \"{name}\" not found", kind.plural),
                ),
            }
        }
        (Method::GET, None, None)
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") =>
        {
            watch(state, kind, namespace, &query)
        }
        (Method::GET, None, None) => {
            let (field_name, labels) = selectors(&query);
            let s = state.lock().unwrap();
            let items: Vec<Value> = s
                .objects
                .iter()
                .filter(|((p, ns, _), o)| {
                    p == kind.plural
                        && (namespace.is_none() || Some(ns) == namespace.as_ref())
                        && matches(o, &field_name, &labels)
                })
                .map(|(_, o)| o.clone())
                .collect();
            respond(
                StatusCode::OK,
                json!({
                    "kind": format!("{}List", kind.kind), "apiVersion": api_version(kind),
                    "metadata": {"resourceVersion": s.resource_version.to_string()},
                    "items": items
                }),
            )
        }
        (Method::PATCH, Some(name), None) => {
            let Ok(mut applied) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "body is not JSON");
            };
            if applied["metadata"]["name"] != name.as_str() {
                return status(
                    400,
                    "BadRequest",
                    "the name of the object does not match the name on the URL",
                );
            }
            let mut s = state.lock().unwrap();
            if let Some(d) = s.denials.iter().find(|d| d.kind == kind.kind).cloned() {
                let reason = if d.code == 403 {
                    "Forbidden"
                } else {
                    "BadRequest"
                };
                return status(d.code, reason, &d.message);
            }
            if kind.namespaced {
                applied["metadata"]["namespace"] = json!(ns_key);
            }
            let key = (kind.plural.to_string(), ns_key, name.clone());
            let old = s.objects.get(&key).cloned();
            // Server-side apply, simplified: the applier owns every field it
            // sends; status stays the controller's.
            let mut merged = old.clone().unwrap_or_else(|| json!({}));
            for (field, value) in applied.as_object().unwrap() {
                if field == "metadata" {
                    for (m, v) in value.as_object().unwrap() {
                        merged["metadata"][m] = v.clone();
                    }
                } else if field != "status" {
                    merged[field] = value.clone();
                }
            }
            if query.contains_key("dryRun") {
                return respond(StatusCode::OK, merged);
            }
            let (stored, created) = store(&mut s, kind, merged, old.as_ref());
            respond(
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                stored,
            )
        }
        (Method::DELETE, Some(name), None) if kind.plural == "namespaces" => {
            let mut s = state.lock().unwrap();
            let key = ("namespaces".to_string(), String::new(), name.clone());
            match s.objects.get(&key).cloned() {
                None => status(404, "NotFound", &format!("namespaces \"{name}\" not found")),
                Some(mut ns) if s.hold_namespace_deletion => {
                    // What the namespace controller shows while content remains.
                    ns["metadata"]["deletionTimestamp"] = json!("2026-11-21T00:00:30Z");
                    ns["status"] = json!({"phase": "Terminating", "conditions": [
                        {"type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
                         "message": "Some resources are remaining: pods. has 1 resource instances"}]});
                    let (stored, _) = store(&mut s, kind, ns, None);
                    respond(StatusCode::OK, stored)
                }
                Some(ns) => {
                    remove_namespace(&mut s, &name);
                    respond(StatusCode::OK, ns)
                }
            }
        }
        (Method::DELETE, Some(name), None) => {
            let mut s = state.lock().unwrap();
            let key = (kind.plural.to_string(), ns_key, name.clone());
            match s.objects.remove(&key) {
                Some(o) => {
                    s.resource_version += 1;
                    let rv = s.resource_version;
                    notify(&mut s, kind.plural, "DELETED", &o, rv);
                    respond(StatusCode::OK, o)
                }
                None => status(
                    404,
                    "NotFound",
                    &format!("{} \"{name}\" not found", kind.plural),
                ),
            }
        }
        _ => status(405, "MethodNotAllowed", "not supported by the API double"),
    }
}

fn resource_list(group: &str, version: &str) -> Response<Body> {
    let resources: Vec<Value> = KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .map(|k| json!({
            "name": k.plural, "singularName": k.kind.to_lowercase(), "namespaced": k.namespaced,
            "kind": k.kind, "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]
        }))
        .collect();
    if resources.is_empty() {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    respond(
        StatusCode::OK,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn watch(
    state: Arc<Mutex<State>>,
    kind: &'static Kind,
    namespace: Option<String>,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let (name, labels) = selectors(query);
    let since: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (sender, mut receiver) = mpsc::unbounded_channel::<Bytes>();
    {
        let mut s = state.lock().unwrap();
        // Replay what happened after the list the client saw.
        for (rv, plural, event, object) in s.history.iter() {
            let ns = object["metadata"]["namespace"].as_str().map(str::to_string);
            if *rv > since
                && *plural == kind.plural
                && (namespace.is_none() || namespace == ns)
                && matches(object, &name, &labels)
            {
                let _ = sender.send(Bytes::from(format!(
                    "{}\n",
                    json!({"type": event, "object": object})
                )));
            }
        }
        s.watches.push(Watch {
            plural: kind.plural,
            namespace,
            name,
            labels,
            sender,
        });
    }
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(290u64);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let stream = async_stream(move |tx| async move {
        loop {
            tokio::select! {
                line = receiver.recv() => match line {
                    Some(line) => { if tx.send(line).is_err() { break } }
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(StreamBody::new(stream).boxed())
        .unwrap()
}

/// A body stream fed by a task.
fn async_stream<F, Fut>(
    f: F,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static
where
    F: FnOnce(mpsc::UnboundedSender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(f(tx));
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(Frame::data(b)), rx))
    })
}
