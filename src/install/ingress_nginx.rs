//! ingress-nginx, the final release (v1.15.1), from its kind deploy manifest.
//!
//! The manifest is fetched at run time from its release tag and checked
//! before use, always (also a local copy named by
//! `RAYCONFORM_INGRESS_NGINX_MANIFEST`, for offline machines): its sha256
//! must be [`MANIFEST_SHA256`], it must name the pinned controller image
//! and the pinned certgen image of its admission Jobs. It is not generated
//! here because upstream's file is the reviewed one. Our changes (passthrough flag, TCP
//! services, controller config) are applied to the parsed objects, then
//! everything is server-side applied.

use super::component::{Component, InvalidField};
use super::kubernetes_support::SupportWindow;
use super::{InstallContext, InstallError, Installed};
use crate::k8s::apply::Applier;
use crate::k8s::wait;
use crate::manifest::Manifest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The pinned release.
pub const VERSION: &str = "v1.15.1";
/// Where its kind manifest lives.
pub const MANIFEST_URL: &str = "https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.15.1/deploy/static/provider/kind/deploy.yaml";
/// The controller image the manifest must name.
pub const CONTROLLER_IMAGE: &str = "registry.k8s.io/ingress-nginx/controller:v1.15.1@sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1";
/// Namespace of the controller.
pub const NAMESPACE: &str = "ingress-nginx";
/// The controller Deployment.
pub const DEPLOYMENT: &str = "ingress-nginx-controller";
/// The ConfigMap holding TCP services.
pub const TCP_SERVICES_CONFIGMAP: &str = "tcp-services";
/// The Service behind the admission webhook.
pub const ADMISSION_SERVICE: &str = "ingress-nginx-controller-admission";
/// Env var: path of a local copy of the manifest.
pub const MANIFEST_ENV: &str = "RAYCONFORM_INGRESS_NGINX_MANIFEST";
/// sha256 of `deploy/static/provider/kind/deploy.yaml` at tag
/// controller-v1.15.1 (checked against the upstream repository).
pub const MANIFEST_SHA256: &str =
    "2a3ae008c8786431115502644e77ab398fdebfb721a5d1195ed3089cde3299df";
/// The image of the manifest's two admission Jobs (create and patch the
/// webhook certificate), as that manifest pins it.
pub const CERTGEN_IMAGE: &str = "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.9@sha256:01038e7de14b78d702d2849c3aad72fd25903c4765af63cf16aa3398f5d5f2dd";

/// `install[].ingressNginx`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressNginxInstall {
    /// Adds `--enable-ssl-passthrough` to the controller.
    #[serde(default)]
    pub ssl_passthrough: bool,
    /// TCP services: `"PORT": "namespace/service:port"`; adds
    /// `--tcp-services-configmap`. `${NAMESPACE}` is allowed.
    #[serde(default)]
    pub tcp_services: BTreeMap<String, String>,
    /// Keys for the controller ConfigMap (e.g. `allow-snippet-annotations`).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// The pinned gateway: the controller pod uses its node's network
    /// (`hostNetwork: true`, with `dnsPolicy: ClusterFirstWithHostNet` so it
    /// still resolves cluster names), so it answers on the node's own IP.
    #[serde(default)]
    pub host_network: bool,
    /// Labels the controller's node must carry (its `nodeSelector`), e.g.
    /// `ingress-ready: "true"`: where a host-network controller may run.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
}

/// The Kubernetes minors the release line supports (ingress-nginx's own
/// support table).
const KUBERNETES_SUPPORT: &[SupportWindow] = &[SupportWindow {
    release: "1.15",
    min_minor: 31,
    max_minor: 35,
}];

/// Ports ingress-nginx itself serves (or rejects as TCP services).
const RESERVED_PORTS: [u16; 3] = [80, 443, 442];

#[async_trait::async_trait]
impl Component for IngressNginxInstall {
    fn name(&self) -> &'static str {
        "ingressNginx"
    }

    fn version(&self) -> String {
        VERSION.to_string()
    }

    fn plan(&self, _namespace: &str) -> String {
        plan(self)
    }

    fn kubernetes_support(&self) -> &'static [SupportWindow] {
        KUBERNETES_SUPPORT
    }

    /// The lab's nginx stands in for it (the lab reads this spec itself).
    fn lab_skip_reason(&self) -> Option<String> {
        (self.host_network || !self.node_selector.is_empty()).then(|| {
            "lab cannot stand in for an ingress controller pinned to a node \
             (ingressNginx.hostNetwork / nodeSelector): the lab has no nodes"
                .to_string()
        })
    }

    fn host_tcp_ports(&self) -> Vec<u16> {
        self.tcp_services
            .keys()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// `${NAMESPACE}` in `tcpServices` targets, its only templated field.
    fn fill_templates(&mut self, namespace: &str) {
        for target in self.tcp_services.values_mut() {
            *target = target.replace("${NAMESPACE}", namespace);
        }
    }

    fn validate(&self) -> Vec<InvalidField> {
        let mut problems = Vec::new();
        for (port, backend) in &self.tcp_services {
            let port_ok = port
                .parse::<u16>()
                .is_ok_and(|p| p != 0 && !RESERVED_PORTS.contains(&p));
            if !port_ok {
                problems.push(InvalidField {
                    field: "tcpServices".into(),
                    message: format!(
                        "port `{port}`: expected a port number other than 80, 443 and 442"
                    ),
                });
            }
            if !backend.contains('/') || !backend.contains(':') {
                problems.push(InvalidField {
                    field: format!("tcpServices.{port}"),
                    message: format!("expected `namespace/service:port`, found `{backend}`"),
                });
            }
        }
        problems
    }

    async fn install(&self, ctx: &InstallContext) -> Result<Installed, InstallError> {
        install(self, ctx).await
    }
}

/// Why the manifest cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// It does not parse as YAML documents.
    #[error("the ingress-nginx manifest does not parse: {0}")]
    Parse(String),
    /// It does not contain the expected objects.
    #[error("the ingress-nginx manifest has no {0}")]
    Missing(String),
    /// It names another controller image than the pinned one.
    #[error("the ingress-nginx manifest runs `{found}`, not the pinned `{CONTROLLER_IMAGE}`")]
    WrongImage {
        /// The image it names.
        found: String,
    },
    /// An admission Job runs another image than the pinned certgen image.
    #[error(
        "the ingress-nginx manifest's Job {job} runs `{found}`, not the pinned `{CERTGEN_IMAGE}`"
    )]
    WrongCertgenImage {
        /// The Job's name.
        job: String,
        /// The image it names.
        found: String,
    },
    /// Its bytes are not the pinned release's.
    #[error(
        "the ingress-nginx manifest from {origin} has sha256 {found}, not the pinned {MANIFEST_SHA256} (controller-v1.15.1 deploy/static/provider/kind/deploy.yaml)"
    )]
    WrongSha256 {
        /// Where it came from (URL or local path).
        origin: String,
        /// Its sha256.
        found: String,
    },
}

/// Checks the manifest's bytes against [`MANIFEST_SHA256`] and its Jobs'
/// images against [`CERTGEN_IMAGE`]; returns the sha256.
pub fn check_pinned(bytes: &[u8], origin: &str) -> Result<String, ManifestError> {
    let sha = sha256_hex(bytes);
    if sha != MANIFEST_SHA256 {
        return Err(ManifestError::WrongSha256 {
            origin: origin.to_string(),
            found: sha,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| ManifestError::Parse(e.to_string()))?;
    let docs: Vec<Value> =
        serde_saphyr::from_str_multiple(text).map_err(|e| ManifestError::Parse(e.to_string()))?;
    check_certgen_images(&docs)?;
    Ok(sha)
}

/// Every Job container must run [`CERTGEN_IMAGE`], and there must be one.
pub fn check_certgen_images(docs: &[Value]) -> Result<(), ManifestError> {
    let mut seen = 0;
    for job in docs.iter().filter(|d| d["kind"] == "Job") {
        let name = job["metadata"]["name"].as_str().unwrap_or("?").to_string();
        let containers = job
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for c in containers {
            let image = c["image"].as_str().unwrap_or_default();
            if image != CERTGEN_IMAGE {
                return Err(ManifestError::WrongCertgenImage {
                    job: name,
                    found: image.to_string(),
                });
            }
            seen += 1;
        }
    }
    if seen == 0 {
        return Err(ManifestError::Missing("admission Job".into()));
    }
    Ok(())
}

/// The plan text.
pub fn plan(spec: &IngressNginxInstall) -> String {
    let mut lines = vec![
        format!("fetch {MANIFEST_URL}"),
        format!("check: sha256 is {MANIFEST_SHA256} (also for a local copy)"),
        format!("check: controller image is {CONTROLLER_IMAGE}"),
        format!("check: admission Jobs run {CERTGEN_IMAGE}"),
        format!(
            "controller args added: {}",
            if extra_args(spec).is_empty() {
                "none".to_string()
            } else {
                extra_args(spec).join(" ")
            }
        ),
    ];
    if !spec.tcp_services.is_empty() {
        lines.push(format!(
            "ConfigMap {NAMESPACE}/{TCP_SERVICES_CONFIGMAP}: {}",
            spec.tcp_services
                .iter()
                .map(|(p, s)| format!("{p} -> {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        lines.push(format!(
            "hostPorts added to the controller: {}",
            spec.tcp_services
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if spec.host_network {
        lines.push(
            "controller pod: hostNetwork: true, dnsPolicy: ClusterFirstWithHostNet".to_string(),
        );
    }
    if !spec.node_selector.is_empty() {
        lines.push(format!(
            "controller pod nodeSelector: {}",
            spec.node_selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !spec.config.is_empty() {
        lines.push(format!(
            "ConfigMap {NAMESPACE}/ingress-nginx-controller data: {}",
            spec.config
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines.push(format!(
        "server-side apply; wait for Deployment {NAMESPACE}/{DEPLOYMENT} rolled out, Endpoints {ADMISSION_SERVICE}, and the admission webhook answering a dry-run Ingress"
    ));
    lines.join("\n")
}

/// The controller flags rayconform adds.
pub fn extra_args(spec: &IngressNginxInstall) -> Vec<String> {
    let mut args = Vec::new();
    if spec.ssl_passthrough {
        args.push("--enable-ssl-passthrough".to_string());
    }
    if !spec.tcp_services.is_empty() {
        args.push(format!(
            "--tcp-services-configmap={NAMESPACE}/{TCP_SERVICES_CONFIGMAP}"
        ));
    }
    args
}

/// Parses the upstream manifest, checks it, and applies the scenario's
/// changes. `namespace` fills `${NAMESPACE}` in TCP service targets.
pub fn customize(
    manifest_text: &str,
    spec: &IngressNginxInstall,
    namespace: &str,
) -> Result<Vec<Manifest>, ManifestError> {
    let mut docs: Vec<Value> = serde_saphyr::from_str_multiple(manifest_text)
        .map_err(|e| ManifestError::Parse(e.to_string()))?;
    docs.retain(|d| !d.is_null());
    let deployment = docs
        .iter_mut()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == DEPLOYMENT)
        .ok_or_else(|| ManifestError::Missing(format!("Deployment {DEPLOYMENT}")))?;
    let container = deployment
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
        .and_then(|cs| cs.iter_mut().find(|c| c["name"] == "controller"))
        .ok_or_else(|| ManifestError::Missing("controller container".into()))?;
    let image = container["image"].as_str().unwrap_or_default().to_string();
    if image != CONTROLLER_IMAGE {
        return Err(ManifestError::WrongImage { found: image });
    }
    let args = container["args"]
        .as_array_mut()
        .ok_or_else(|| ManifestError::Missing("controller args".into()))?;
    for arg in extra_args(spec) {
        let flag = arg.split('=').next().unwrap_or_default().to_string();
        args.retain(|a| {
            a.as_str()
                .is_none_or(|a| a.split('=').next() != Some(&flag))
        });
        args.push(Value::String(arg));
    }
    if !spec.tcp_services.is_empty() {
        let ports = container["ports"]
            .as_array_mut()
            .ok_or_else(|| ManifestError::Missing("controller ports".into()))?;
        for port in spec
            .tcp_services
            .keys()
            .filter_map(|p| p.parse::<u16>().ok())
        {
            ports.retain(|p| p["containerPort"] != port);
            ports.push(json!({
                "name": format!("tcp-{port}"),
                "containerPort": port,
                "hostPort": port,
                "protocol": "TCP"
            }));
        }
        let data: serde_json::Map<String, Value> = spec
            .tcp_services
            .iter()
            .map(|(port, target)| {
                (
                    port.clone(),
                    Value::String(target.replace("${NAMESPACE}", namespace)),
                )
            })
            .collect();
        docs.push(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": TCP_SERVICES_CONFIGMAP, "namespace": NAMESPACE},
            "data": data
        }));
    }
    pin_gateway(&mut docs, spec);
    if !spec.config.is_empty() {
        let config = docs
            .iter_mut()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == DEPLOYMENT)
            .ok_or_else(|| ManifestError::Missing(format!("ConfigMap {DEPLOYMENT}")))?;
        if !config["data"].is_object() {
            config["data"] = json!({});
        }
        for (k, v) in &spec.config {
            config["data"][k] = Value::String(v.clone());
        }
    }
    Ok(docs)
}

/// The pinned-gateway settings of the controller pod: host network (and
/// the DNS policy a host-network pod needs to resolve cluster names) and
/// the node labels it must run on.
fn pin_gateway(docs: &mut [Manifest], spec: &IngressNginxInstall) {
    let Some(pod_spec) = docs
        .iter_mut()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == DEPLOYMENT)
        .and_then(|d| d.pointer_mut("/spec/template/spec"))
    else {
        return;
    };
    if spec.host_network {
        pod_spec["hostNetwork"] = Value::Bool(true);
        pod_spec["dnsPolicy"] = Value::String("ClusterFirstWithHostNet".into());
    }
    for (k, v) in &spec.node_selector {
        pod_spec["nodeSelector"][k] = Value::String(v.clone());
    }
}

/// Schedules the controller onto nodes with these labels (on kind: the
/// `ingress-ready=true` control plane, the only node whose ports are
/// mapped to the host), tolerating the control-plane taint kind sets on
/// multi-node clusters.
pub fn pin_to_nodes(docs: &mut [Manifest], node_selector: &BTreeMap<String, String>) {
    if node_selector.is_empty() {
        return;
    }
    let Some(pod_spec) = docs
        .iter_mut()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == DEPLOYMENT)
        .and_then(|d| d.pointer_mut("/spec/template/spec"))
    else {
        return;
    };
    for (k, v) in node_selector {
        pod_spec["nodeSelector"][k] = Value::String(v.clone());
    }
    let toleration = json!({"key": "node-role.kubernetes.io/control-plane", "operator": "Equal", "effect": "NoSchedule"});
    if !pod_spec["tolerations"].is_array() {
        pod_spec["tolerations"] = json!([]);
    }
    if let Some(list) = pod_spec["tolerations"].as_array_mut()
        && !list
            .iter()
            .any(|t| t["key"] == "node-role.kubernetes.io/control-plane")
    {
        list.push(toleration);
    }
}

/// SHA-256 of `bytes` as hex, with the ring provider rustls already uses.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let hash = suite
        .tls13()
        .map(|s| s.common.hash_provider.hash(bytes))
        .expect("TLS13_AES_128_GCM_SHA256 is a TLS 1.3 suite");
    hash.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Manifest text that replaces the download and its pin check, for tests
/// against the API double only (the command line never sets it).
static TEST_MANIFEST: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Makes installs in this process use `text` instead of the pinned
/// manifest, unchecked: for tests against the API double, which cannot
/// carry upstream's file. `None` restores the pinned download.
pub fn replace_manifest_for_tests(text: Option<String>) {
    *TEST_MANIFEST.lock().unwrap_or_else(|e| e.into_inner()) = text;
}

async fn fetch_manifest() -> Result<(String, String), InstallError> {
    if let Some(text) = TEST_MANIFEST
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        let sha = sha256_hex(text.as_bytes());
        return Ok((text, sha));
    }
    let (bytes, origin) = if let Ok(path) = std::env::var(MANIFEST_ENV) {
        let bytes = std::fs::read(&path)
            .map_err(|e| InstallError::Artifact(format!("{MANIFEST_ENV}={path}: {e}")))?;
        (bytes, format!("{MANIFEST_ENV}={path}"))
    } else {
        (download().await?, MANIFEST_URL.to_string())
    };
    let sha = check_pinned(&bytes, &origin).map_err(|e| InstallError::Artifact(e.to_string()))?;
    let text =
        String::from_utf8(bytes).map_err(|e| InstallError::Artifact(format!("{origin}: {e}")))?;
    Ok((text, sha))
}

async fn download() -> Result<Vec<u8>, InstallError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| InstallError::Artifact(e.to_string()))?;
    let response = client
        .get(MANIFEST_URL)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| InstallError::Artifact(format!("fetch {MANIFEST_URL}: {e}")))?;
    let bytes = response
        .bytes()
        .await
        .map_err(|e| InstallError::Artifact(format!("fetch {MANIFEST_URL}: {e}")))?;
    Ok(bytes.to_vec())
}

/// A harmless Ingress the admission webhook must accept (dry run only).
pub fn webhook_probe_ingress(namespace: &str) -> Manifest {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "rayconform-webhook-probe", "namespace": namespace},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "webhook-probe.invalid", "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "rayconform-webhook-probe", "port": {"number": 80}}}
            }]}}]
        }
    })
}

/// Installs (or updates) the controller and waits until it and its
/// admission webhook answer.
pub async fn install(
    spec: &IngressNginxInstall,
    ctx: &InstallContext,
) -> Result<Installed, InstallError> {
    let (text, sha) = fetch_manifest().await?;
    let mut docs = customize(&text, spec, &ctx.namespace)
        .map_err(|e| InstallError::Artifact(e.to_string()))?;
    pin_to_nodes(&mut docs, &ctx.node_selector);
    let mut applier = Applier::new(ctx.client.clone());
    for (i, doc) in docs.iter().enumerate() {
        applier.apply(i + 1, doc, NAMESPACE).await?;
    }
    (ctx.progress)("waiting for the ingress-nginx controller");
    wait::deployment_rolled_out(&ctx.client, NAMESPACE, DEPLOYMENT, Duration::from_secs(300))
        .await?;
    wait::endpoints_populated(
        &ctx.client,
        NAMESPACE,
        ADMISSION_SERVICE,
        Duration::from_secs(120),
    )
    .await?;
    // The webhook's readiness is not visible as an object: ask it, with
    // backoff, until it accepts a harmless Ingress.
    let probe = webhook_probe_ingress(&ctx.namespace);
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        match applier.apply_dry_run(&probe, &ctx.namespace).await {
            Ok(()) => break,
            Err(e) if started.elapsed() > Duration::from_secs(120) => {
                return Err(InstallError::Artifact(format!(
                    "the admission webhook did not accept a dry-run Ingress within 120s: {e}"
                )));
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(4));
            }
        }
    }
    Ok(Installed {
        component: "ingressNginx",
        version: VERSION.to_string(),
        summary: format!(
            "ingress-nginx {VERSION} ({}), manifest sha256 {sha}",
            extra_args(spec).join(" ")
        ),
    })
}
