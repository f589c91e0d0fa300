//! Kubernetes objects as the lab understands them.
//!
//! Manifests (JSON after templating) are read into [`LabObject`]s: only the
//! fields the lab acts on are kept. Anything the lab cannot stand in for
//! (an unknown kind, an ingress-nginx annotation it does not implement) is a
//! [`TranslateError::Unsupported`] naming the thing, so the scenario is
//! skipped on lab rather than silently run without it.

use crate::targets::Manifest;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The ingress-nginx annotation prefix.
pub const NGINX_ANNOTATION_PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// Why a manifest cannot be used on lab.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The lab cannot stand in for this (the scenario is skipped on lab).
    #[error("lab cannot stand in for {0}")]
    Unsupported(String),
    /// The manifest is malformed (missing name, wrong types...).
    #[error("invalid manifest: {0}")]
    Invalid(String),
}

/// `kind`, namespace and name of an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// `kind`, e.g. `Service`.
    pub kind: String,
    /// `metadata.namespace` (empty for cluster-scoped objects).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// One object the lab acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum LabObject {
    /// A KubeRay RayCluster: becomes a local Ray head (+ workers).
    RayCluster(RayClusterObject),
    /// A Service: maps its ports onto a RayCluster's local ports.
    Service(ServiceObject),
    /// An Ingress: becomes nginx configuration.
    Ingress(IngressObject),
    /// A Gateway API route (HTTPRoute, GRPCRoute, TLSRoute): becomes nginx
    /// configuration with NGINX Gateway Fabric's semantics.
    GatewayRoute(super::gateway::GatewayRouteObject),
    /// ConfigMaps, Secrets and Namespaces are accepted and have no effect.
    Inert(ObjectKey),
}

impl LabObject {
    /// The object's key.
    pub fn key(&self) -> ObjectKey {
        match self {
            LabObject::RayCluster(c) => key("RayCluster", &c.namespace, &c.name),
            LabObject::Service(s) => key("Service", &s.namespace, &s.name),
            LabObject::Ingress(i) => key("Ingress", &i.namespace, &i.name),
            LabObject::GatewayRoute(r) => r.key(),
            LabObject::Inert(k) => k.clone(),
        }
    }
}

fn key(kind: &str, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey {
        kind: kind.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

/// The Ray head ports KubeRay puts on the head Service, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RayPort {
    /// GCS server (6379).
    Gcs,
    /// Dashboard (8265).
    Dashboard,
    /// Ray client server (10001).
    Client,
    /// Ray Serve HTTP proxy (8000).
    Serve,
    /// Metrics export (8080).
    Metrics,
}

impl RayPort {
    /// Every role, in KubeRay's order.
    pub const ALL: [RayPort; 5] = [
        RayPort::Gcs,
        RayPort::Dashboard,
        RayPort::Client,
        RayPort::Serve,
        RayPort::Metrics,
    ];

    /// KubeRay's default container port for this role.
    pub fn default_number(self) -> u16 {
        match self {
            RayPort::Gcs => 6379,
            RayPort::Dashboard => 8265,
            RayPort::Client => 10001,
            RayPort::Serve => 8000,
            RayPort::Metrics => 8080,
        }
    }

    /// KubeRay's default port name for this role.
    pub fn default_name(self) -> &'static str {
        match self {
            RayPort::Gcs => "gcs-server",
            RayPort::Dashboard => "dashboard",
            RayPort::Client => "client",
            RayPort::Serve => "serve",
            RayPort::Metrics => "metrics",
        }
    }

    /// The role of a head container port number, if it is a default one.
    pub fn from_number(port: u16) -> Option<RayPort> {
        RayPort::ALL
            .into_iter()
            .find(|p| p.default_number() == port)
    }

    /// The role of a head container port name, if it is a default one.
    pub fn from_name(name: &str) -> Option<RayPort> {
        RayPort::ALL.into_iter().find(|p| p.default_name() == name)
    }
}

/// What the lab keeps of a RayCluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RayClusterObject {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// The head container's env has `RAY_USE_TLS=1`.
    pub tls: bool,
    /// The sum of `replicas` over `workerGroupSpecs`.
    pub worker_replicas: u32,
    /// `rayStartParams.num-cpus` of the head, when set.
    pub head_num_cpus: Option<u32>,
    /// The head container image (for the notes: the lab always runs the
    /// pinned Ray from its venv).
    pub image: Option<String>,
    /// `workerGroupSpecs`, in order: each replica becomes a local worker
    /// node joining the head.
    pub worker_groups: Vec<WorkerGroup>,
}

/// The most worker nodes the lab starts for one RayCluster: each is a real
/// `ray start` (about 0.3 GiB), on a machine shared with other runs.
pub const LAB_MAX_WORKERS: u32 = 4;

/// One `workerGroupSpecs` entry as the lab starts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerGroup {
    /// `groupName`.
    pub name: String,
    /// `replicas` × `numOfHosts`.
    pub replicas: u32,
    /// `rayStartParams.num-cpus` (the lab's default is 1).
    pub num_cpus: Option<u32>,
    /// `rayStartParams.resources`: the JSON object of custom resources,
    /// with the shell quoting KubeRay's samples put around it removed.
    pub resources: Option<String>,
}

impl RayClusterObject {
    /// Whether `other` is this cluster with other worker replica counts
    /// only (the lab then adds or stops workers and keeps the head).
    pub fn differs_only_in_replicas(&self, other: &RayClusterObject) -> bool {
        let shape = |rc: &RayClusterObject| {
            let groups: Vec<WorkerGroup> = rc
                .worker_groups
                .iter()
                .map(|g| WorkerGroup {
                    replicas: 0,
                    ..g.clone()
                })
                .collect();
            RayClusterObject {
                worker_replicas: 0,
                worker_groups: groups,
                ..rc.clone()
            }
        };
        shape(self) == shape(other)
    }
}

/// A Service port reference: a number or a named container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    /// A port number.
    Number(u16),
    /// A port name.
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => f.write_str(n),
        }
    }
}

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `name`.
    pub name: Option<String>,
    /// `port`.
    pub port: u16,
    /// `targetPort` (defaults to `port`).
    pub target_port: PortRef,
}

/// What the lab keeps of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceObject {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `spec.clusterIP: None`.
    pub headless: bool,
    /// `spec.selector`.
    pub selector: BTreeMap<String, String>,
    /// `spec.ports`.
    pub ports: Vec<ServicePort>,
}

impl ServiceObject {
    /// The head Service KubeRay creates for a RayCluster: `<cluster>-head-svc`
    /// selecting the head pod, with Ray's default ports.
    pub fn kuberay_head(cluster: &str, namespace: &str, headless: bool) -> ServiceObject {
        ServiceObject {
            name: format!("{cluster}-head-svc"),
            namespace: namespace.to_string(),
            headless,
            selector: [("ray.io/cluster", cluster), ("ray.io/node-type", "head")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ports: RayPort::ALL
                .into_iter()
                .map(|r| ServicePort {
                    name: Some(r.default_name().to_string()),
                    port: r.default_number(),
                    target_port: PortRef::Number(r.default_number()),
                })
                .collect(),
        }
    }
}

/// `backend-protocol` values the lab implements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BackendProtocol {
    /// Plain HTTP/1.1 proxying (the default).
    #[default]
    Http,
    /// HTTPS to the backend, without verifying it (ingress-nginx's default).
    Https,
    /// gRPC over cleartext HTTP/2 (`grpc_pass grpc://`).
    Grpc,
    /// gRPC over TLS to the backend, no client certificate (`grpc_pass grpcs://`).
    Grpcs,
}

/// The ingress-nginx annotations of one Ingress the lab honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngressAnnotations {
    /// `rewrite-target`.
    pub rewrite_target: Option<String>,
    /// `use-regex: "true"`.
    pub use_regex: bool,
    /// `backend-protocol`.
    pub backend_protocol: BackendProtocol,
    /// `ssl-passthrough: "true"`.
    pub ssl_passthrough: bool,
}

/// `pathType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathType {
    /// `Prefix`: element-wise prefix.
    Prefix,
    /// `Exact`.
    Exact,
    /// `ImplementationSpecific`: an nginx prefix location, or a regex.
    ImplementationSpecific,
}

/// A backend Service and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRef {
    /// Service name (same namespace as the Ingress).
    pub service: String,
    /// Service port.
    pub port: PortRef,
}

/// One path of an Ingress rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressPath {
    /// `path` (defaults to `/`).
    pub path: String,
    /// `pathType`.
    pub path_type: PathType,
    /// `backend.service`.
    pub backend: BackendRef,
}

/// One rule of an Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressRule {
    /// `host`, or `None` for every host.
    pub host: Option<String>,
    /// `http.paths`.
    pub paths: Vec<IngressPath>,
}

/// What the lab keeps of an Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressObject {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// The ingress-nginx annotations.
    pub annotations: IngressAnnotations,
    /// `spec.rules`.
    pub rules: Vec<IngressRule>,
    /// `spec.defaultBackend`.
    pub default_backend: Option<BackendRef>,
    /// Things accepted but not acted on (e.g. `spec.tls`), for the notes.
    pub ignored: Vec<String>,
}

/// Reads one manifest. `default_namespace` fills a missing
/// `metadata.namespace`.
pub fn translate(
    manifest: &Manifest,
    default_namespace: &str,
) -> Result<LabObject, TranslateError> {
    let api_version = str_at(manifest, "/apiVersion").unwrap_or_default();
    let kind = str_at(manifest, "/kind")
        .ok_or_else(|| TranslateError::Invalid("a manifest has no `kind`".into()))?;
    let name = str_at(manifest, "/metadata/name")
        .ok_or_else(|| TranslateError::Invalid(format!("a {kind} has no metadata.name")))?;
    let namespace = str_at(manifest, "/metadata/namespace").unwrap_or(default_namespace);
    match (api_version, kind) {
        ("ray.io/v1", "RayCluster") => {
            ray_cluster(manifest, name, namespace).map(LabObject::RayCluster)
        }
        ("v1", "Service") => service(manifest, name, namespace).map(LabObject::Service),
        ("networking.k8s.io/v1", "Ingress") => {
            ingress(manifest, name, namespace).map(LabObject::Ingress)
        }
        (api, _) if crate::gateway_api::owns(api) => {
            super::gateway::translate(manifest, name, namespace).map(LabObject::GatewayRoute)
        }
        ("v1", "ConfigMap") | ("v1", "Secret") => Ok(LabObject::Inert(key(kind, namespace, name))),
        ("v1", "Namespace") => Ok(LabObject::Inert(key(kind, "", name))),
        _ => Err(TranslateError::Unsupported(format!(
            "{api_version} {kind} `{name}` (the lab implements ray.io/v1 RayCluster, v1 Service, \
             networking.k8s.io/v1 Ingress, gateway.networking.k8s.io/v1 HTTPRoute, GRPCRoute and \
             TLSRoute, ConfigMap, Secret, Namespace)"
        ))),
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn ray_cluster(
    m: &Manifest,
    name: &str,
    namespace: &str,
) -> Result<RayClusterObject, TranslateError> {
    let head = m.pointer("/spec/headGroupSpec").ok_or_else(|| {
        TranslateError::Invalid(format!("RayCluster `{name}` has no spec.headGroupSpec"))
    })?;
    let container = head.pointer("/template/spec/containers/0").ok_or_else(|| {
        TranslateError::Invalid(format!("RayCluster `{name}` has no head container"))
    })?;
    let tls = container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|e| {
            str_at(e, "/name") == Some("RAY_USE_TLS")
                && matches!(str_at(e, "/value"), Some("1") | Some("true") | Some("True"))
        });
    let worker_groups = m
        .pointer("/spec/workerGroupSpecs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|g| worker_group(g, name))
        .collect::<Result<Vec<WorkerGroup>, TranslateError>>()?;
    let worker_replicas = worker_groups.iter().map(|g| g.replicas).sum();
    if worker_replicas > LAB_MAX_WORKERS {
        return Err(TranslateError::Unsupported(format!(
            "RayCluster `{name}` with {worker_replicas} worker replicas (the lab starts at most \
             {LAB_MAX_WORKERS} real worker nodes per RayCluster, ~0.3 GiB each)"
        )));
    }
    if tls && worker_replicas > 0 {
        // Tried by hand with Ray 2.60: with the head's
        // RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (which keeps a TLS head on
        // 127.0.0.1) `ray start --address` refuses multi-node clusters;
        // without it the worker dials the GCS at the machine's address.
        return Err(TranslateError::Unsupported(format!(
            "RayCluster `{name}` with Ray TLS and {worker_replicas} worker replica(s) (the lab's \
             worker nodes do not join a TLS head on loopback; TLS RayClusters run head-only)"
        )));
    }
    let head_num_cpus = head.pointer("/rayStartParams/num-cpus").and_then(count);
    if m.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return Err(TranslateError::Unsupported(format!(
            "RayCluster `{name}` with spec.suspend: true (the lab has no operator to suspend it)"
        )));
    }
    Ok(RayClusterObject {
        name: name.to_string(),
        namespace: namespace.to_string(),
        tls,
        worker_replicas,
        head_num_cpus,
        image: str_at(container, "/image").map(str::to_string),
        worker_groups,
    })
}

/// A whole number written as a string (`"2"`) or a number.
fn count(value: &Value) -> Option<u32> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().map(|n| n as u32),
        _ => None,
    }
}

fn worker_group(group: &Value, cluster: &str) -> Result<WorkerGroup, TranslateError> {
    let replicas = group.get("replicas").and_then(Value::as_u64).unwrap_or(0);
    let hosts = group.get("numOfHosts").and_then(Value::as_u64).unwrap_or(1);
    let name = str_at(group, "/groupName").unwrap_or("").to_string();
    let resources = match group.pointer("/rayStartParams/resources") {
        None => None,
        Some(Value::String(text)) => Some(custom_resources(text).ok_or_else(|| {
            TranslateError::Invalid(format!(
                "RayCluster `{cluster}` group `{name}`: rayStartParams.resources {text:?} \
                 is not a JSON object of numbers"
            ))
        })?),
        Some(other) => {
            return Err(TranslateError::Invalid(format!(
                "RayCluster `{cluster}` group `{name}`: rayStartParams.resources must be a string, not {other}"
            )));
        }
    };
    Ok(WorkerGroup {
        replicas: (replicas * hosts) as u32,
        num_cpus: group.pointer("/rayStartParams/num-cpus").and_then(count),
        resources,
        name,
    })
}

/// The JSON object inside a `resources` start parameter as KubeRay's
/// samples write it (`'"{\"A\": 1}"'`): outer quotes and escapes removed.
fn custom_resources(text: &str) -> Option<String> {
    let mut inner = text.trim();
    for quote in ['\'', '"'] {
        if inner.len() >= 2 && inner.starts_with(quote) && inner.ends_with(quote) {
            inner = &inner[1..inner.len() - 1];
        }
    }
    let unescaped = inner.replace("\\\"", "\"");
    let parsed: serde_json::Map<String, Value> = serde_json::from_str(&unescaped).ok()?;
    parsed
        .values()
        .all(Value::is_number)
        .then(|| Value::Object(parsed).to_string())
}

fn port_ref(value: Option<&Value>) -> Option<PortRef> {
    match value? {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .map(PortRef::Number),
        Value::String(s) => Some(match s.parse::<u16>() {
            Ok(n) => PortRef::Number(n),
            Err(_) => PortRef::Name(s.clone()),
        }),
        _ => None,
    }
}

fn service(m: &Manifest, name: &str, namespace: &str) -> Result<ServiceObject, TranslateError> {
    let service_type = str_at(m, "/spec/type").unwrap_or("ClusterIP");
    if service_type == "ExternalName" {
        return Err(TranslateError::Unsupported(format!(
            "Service `{name}` of type ExternalName"
        )));
    }
    let selector = m
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let mut ports = Vec::new();
    for p in m
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(PortRef::Number(port)) = port_ref(p.get("port")) else {
            return Err(TranslateError::Invalid(format!(
                "Service `{name}` has a port without a number"
            )));
        };
        ports.push(ServicePort {
            name: str_at(p, "/name").map(str::to_string),
            port,
            target_port: port_ref(p.get("targetPort")).unwrap_or(PortRef::Number(port)),
        });
    }
    Ok(ServiceObject {
        name: name.to_string(),
        namespace: namespace.to_string(),
        headless: str_at(m, "/spec/clusterIP") == Some("None"),
        selector,
        ports,
    })
}

fn ingress(m: &Manifest, name: &str, namespace: &str) -> Result<IngressObject, TranslateError> {
    let mut annotations = IngressAnnotations::default();
    let mut ignored = Vec::new();
    for (k, v) in m
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(short) = k.strip_prefix(NGINX_ANNOTATION_PREFIX) else {
            continue;
        };
        let value = v.as_str().unwrap_or_default();
        match short {
            "rewrite-target" => annotations.rewrite_target = Some(value.to_string()),
            "use-regex" => annotations.use_regex = value == "true",
            "ssl-passthrough" => annotations.ssl_passthrough = value == "true",
            "backend-protocol" => {
                annotations.backend_protocol = match value.to_ascii_uppercase().as_str() {
                    "HTTP" => BackendProtocol::Http,
                    "HTTPS" => BackendProtocol::Https,
                    "GRPC" => BackendProtocol::Grpc,
                    "GRPCS" => BackendProtocol::Grpcs,
                    other => {
                        return Err(TranslateError::Unsupported(format!(
                            "annotation {k}: {other} on Ingress `{name}` (the lab implements HTTP, HTTPS, GRPC, GRPCS)"
                        )));
                    }
                }
            }
            _ => {
                return Err(TranslateError::Unsupported(format!(
                    "annotation {k} on Ingress `{name}` (the lab implements rewrite-target, use-regex, \
                     backend-protocol, ssl-passthrough)"
                )));
            }
        }
    }
    if m.pointer("/spec/tls").is_some() {
        ignored.push(format!(
            "Ingress `{name}`: spec.tls ignored; the lab's HTTPS listener serves the run's server certificate"
        ));
    }
    if let Some(class) = str_at(m, "/spec/ingressClassName")
        && class != "nginx"
    {
        return Err(TranslateError::Unsupported(format!(
            "Ingress `{name}` of class `{class}` (the lab stands in for ingress-nginx only)"
        )));
    }
    let mut rules = Vec::new();
    for rule in m
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut paths = Vec::new();
        for p in rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let path_type = match str_at(p, "/pathType").unwrap_or("ImplementationSpecific") {
                "Prefix" => PathType::Prefix,
                "Exact" => PathType::Exact,
                "ImplementationSpecific" => PathType::ImplementationSpecific,
                other => {
                    return Err(TranslateError::Invalid(format!(
                        "Ingress `{name}`: unknown pathType {other}"
                    )));
                }
            };
            paths.push(IngressPath {
                path: str_at(p, "/path").unwrap_or("/").to_string(),
                path_type,
                backend: backend(p.get("backend"), name)?,
            });
        }
        rules.push(IngressRule {
            host: str_at(rule, "/host").map(str::to_string),
            paths,
        });
    }
    let default_backend = match m.pointer("/spec/defaultBackend") {
        Some(b) => Some(backend(Some(b), name)?),
        None => None,
    };
    Ok(IngressObject {
        name: name.to_string(),
        namespace: namespace.to_string(),
        annotations,
        rules,
        default_backend,
        ignored,
    })
}

fn backend(value: Option<&Value>, ingress: &str) -> Result<BackendRef, TranslateError> {
    let value = value.ok_or_else(|| {
        TranslateError::Invalid(format!("Ingress `{ingress}`: a path has no backend"))
    })?;
    if value.get("resource").is_some() {
        return Err(TranslateError::Unsupported(format!(
            "a resource backend on Ingress `{ingress}`"
        )));
    }
    let service = str_at(value, "/service/name").ok_or_else(|| {
        TranslateError::Invalid(format!("Ingress `{ingress}`: backend without service.name"))
    })?;
    let port = match (
        value.pointer("/service/port/number"),
        str_at(value, "/service/port/name"),
    ) {
        (Some(n), _) => port_ref(Some(n)),
        (None, Some(n)) => Some(PortRef::Name(n.to_string())),
        (None, None) => None,
    }
    .ok_or_else(|| {
        TranslateError::Invalid(format!("Ingress `{ingress}`: backend without service.port"))
    })?;
    Ok(BackendRef {
        service: service.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ray_cluster_tls_is_read_and_tls_with_workers_refused() {
        let m = json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "rc"},
            "spec": {
                "headGroupSpec": {"rayStartParams": {"num-cpus": "2"}, "template": {"spec": {"containers": [
                    {"name": "ray-head", "image": "rayproject/ray:2.60.0",
                     "env": [{"name": "RAY_USE_TLS", "value": "1"}]}]}}},
                "workerGroupSpecs": [{"replicas": 2, "groupName": "w"}]
            }
        });
        let err = translate(&m, "ns").unwrap_err().to_string();
        assert!(
            err.contains("lab cannot stand in for RayCluster `rc` with Ray TLS and 2 worker"),
            "{err}"
        );
        let mut head_only = m.clone();
        head_only["spec"]["workerGroupSpecs"][0]["replicas"] = json!(0);
        let LabObject::RayCluster(rc) = translate(&head_only, "ns").unwrap() else {
            panic!("not a RayCluster")
        };
        assert!(rc.tls);
        assert_eq!(rc.worker_replicas, 0);
        assert_eq!(rc.head_num_cpus, Some(2));
        assert_eq!(rc.namespace, "ns");
    }

    #[test]
    fn worker_groups_keep_their_cpus_and_resources_and_are_capped() {
        let rc = |small: u64| {
            json!({
                "apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "rc"},
                "spec": {
                    "headGroupSpec": {"template": {"spec": {"containers": [{"name": "h"}]}}},
                    "workerGroupSpecs": [
                        {"groupName": "small", "replicas": small,
                         "rayStartParams": {"num-cpus": "1", "resources": "'\"{\\\"small\\\": 1}\"'"}},
                        {"groupName": "large", "replicas": 1, "rayStartParams": {"num-cpus": 2}}
                    ]
                }
            })
        };
        let LabObject::RayCluster(one) = translate(&rc(1), "ns").unwrap() else {
            panic!("not a RayCluster")
        };
        assert_eq!(one.worker_replicas, 2);
        assert_eq!(
            one.worker_groups,
            [
                WorkerGroup {
                    name: "small".into(),
                    replicas: 1,
                    num_cpus: Some(1),
                    resources: Some("{\"small\":1}".into()),
                },
                WorkerGroup {
                    name: "large".into(),
                    replicas: 1,
                    num_cpus: Some(2),
                    resources: None,
                },
            ]
        );
        let LabObject::RayCluster(two) = translate(&rc(2), "ns").unwrap() else {
            panic!("not a RayCluster")
        };
        assert!(one.differs_only_in_replicas(&two));
        assert!(!one.differs_only_in_replicas(&RayClusterObject {
            tls: true,
            ..two.clone()
        }));
        let err = translate(&rc(4), "ns").unwrap_err();
        assert!(matches!(err, TranslateError::Unsupported(_)), "{err}");
        assert!(
            err.to_string().contains("at most 4 real worker nodes"),
            "{err}"
        );
        let mut bad = rc(1);
        bad["spec"]["workerGroupSpecs"][0]["rayStartParams"]["resources"] = json!("{small: 1}");
        assert!(matches!(
            translate(&bad, "ns"),
            Err(TranslateError::Invalid(_))
        ));
    }

    #[test]
    fn unknown_annotation_and_kind_are_unsupported_and_named() {
        let m = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "i", "annotations": {
                "nginx.ingress.kubernetes.io/configuration-snippet": "more_set_headers x;"}},
            "spec": {}
        });
        let err = translate(&m, "ns").unwrap_err();
        assert!(err.to_string().contains("configuration-snippet"), "{err}");
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        let err = translate(&d, "ns").unwrap_err();
        assert!(matches!(err, TranslateError::Unsupported(_)));
        assert!(err.to_string().contains("apps/v1 Deployment `d`"), "{err}");
    }

    #[test]
    fn service_ports_and_headless_are_read() {
        let m = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "x"},
            "spec": {"clusterIP": "None", "selector": {"ray.io/cluster": "rc"},
                     "ports": [{"name": "client", "port": 10001, "targetPort": "client"}, {"port": 6379}]}
        });
        let LabObject::Service(s) = translate(&m, "ns").unwrap() else {
            panic!("not a Service")
        };
        assert!(s.headless);
        assert_eq!(s.namespace, "x");
        assert_eq!(s.ports[0].target_port, PortRef::Name("client".into()));
        assert_eq!(s.ports[1].target_port, PortRef::Number(6379));
    }
}
