//! Gateway API as the ingress: the v1.6.1 standard-channel CRDs, one
//! implementation (Envoy Gateway v1.9.0 today, a parameter so others can
//! join without new scenario files), and one `GatewayClass` + `Gateway`
//! whose listeners every gateway-api scenario attaches its routes to.
//!
//! **CRDs.** Applied by us, not by a chart: the eleven files of
//! `config/crd/standard/` at the commit tag v1.6.1 points to, each fetched
//! from raw.githubusercontent.com at that commit and checked against its
//! sha256 (computed from the repository at the tag). The release asset
//! `standard-install.yaml` is not in the repository, so its digest could
//! not be computed here and it is not used.
//!
//! **No fight over CRDs.** Envoy Gateway v1.9.0's `gateway-helm` chart
//! bundles Gateway API v1.6.1 CRDs of the *experimental* channel (its
//! `crds` subchart, on by default) plus a safe-upgrades
//! ValidatingAdmissionPolicy that refuses experimental CRDs over standard
//! ones. As its install guide says for CRDs managed elsewhere, the chart
//! runs with `crds.enabled=false`, and Envoy Gateway's own CRDs come from
//! `helm template` of `gateway-crds-helm` with
//! `crds.gatewayAPI.enabled=false,crds.envoyGateway.enabled=true`,
//! server-side applied.
//!
//! **Reaching the data plane from the host.** Envoy Gateway creates the
//! Envoy Deployment per Gateway; its container declares no listener ports,
//! and listener ports below 1024 are shifted by 10000 inside the container
//! (`internal/gatewayapi/listener.go`, v1.9.0). The `EnvoyProxy` this
//! install references from the Gateway (`spec.infrastructure.parametersRef`)
//! strategic-merge-patches the Envoy container with **hostPorts** (host 80 →
//! container 10080, 443 → 10443, 10001 → 10001, 6379 → 6379), schedules it
//! on the ingress-ready node and makes its Service `ClusterIP` (kind has no
//! load balancer). kind's `extraPortMappings` then reach it as they reach
//! ingress-nginx's hostPorts, so `INGRESS_HTTP`, `INGRESS_HTTPS` and
//! `INGRESS_TCP_<port>` mean the same on both.

use super::command;
use super::component::Component;
use super::kuberay_operator::kube_flags;
use super::kubernetes_support::SupportWindow;
use super::{InstallContext, InstallError, Installed};
use crate::k8s::apply::Applier;
use crate::k8s::wait;
use crate::manifest::Manifest;
use crate::tools::{HELM, Tool};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The Gateway API release whose CRDs are installed.
pub const GATEWAY_API_VERSION: &str = "v1.6.1";
/// The commit tag v1.6.1 of kubernetes-sigs/gateway-api points to.
pub const GATEWAY_API_COMMIT: &str = "8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3";
/// The standard-channel CRD files at that commit with their sha256.
pub const STANDARD_CRDS: &[(&str, &str)] = &[
    (
        "gateway.networking.k8s.io_backendtlspolicies.yaml",
        "0d48c9e4b53dd9510cf615b9b1192d9d7afb07a1cc0498c9515627cb1c075419",
    ),
    (
        "gateway.networking.k8s.io_gatewayclasses.yaml",
        "53710048ba26f8620eed59d5e51b157ecf040daf5c6eef31a4b991e0808c4be5",
    ),
    (
        "gateway.networking.k8s.io_gateways.yaml",
        "25b885f5870b8fff1ae82efa2628b2761cef3745900c2aecf8fb76629a01255a",
    ),
    (
        "gateway.networking.k8s.io_grpcroutes.yaml",
        "53a8d029da8f07e55d3fa58a5cf6de5950dab19fbb8d6a8082fb5e51ca5ef6fc",
    ),
    (
        "gateway.networking.k8s.io_httproutes.yaml",
        "a424a0d6c953b162e71d1d97bb7e75012d8f1ac264e7274f2763d1b96ab39852",
    ),
    (
        "gateway.networking.k8s.io_listenersets.yaml",
        "bf4d4b02564999b2558b96e31465129895db9b3a8adfb90adb9c80eac52a3a70",
    ),
    (
        "gateway.networking.k8s.io_referencegrants.yaml",
        "8c645e9333cfa67790cc2a53e0c00076f88b2bd4230d2b49688c78bc34f9b2c3",
    ),
    (
        "gateway.networking.k8s.io_tcproutes.yaml",
        "d5104d0cf30e924f5e3c9e2e76abd46876401c34ca33b9e79321523eee78c7f6",
    ),
    (
        "gateway.networking.k8s.io_tlsroutes.yaml",
        "bb8b67926e5d9652cbfd2e19063b7c1d9e78806c9dd671608f57baef2f2e3bbb",
    ),
    (
        "gateway.networking.k8s.io_udproutes.yaml",
        "4b80684c2bf8ef4b0a2a3ab45164ac9f96258fc69912645ff50ced595b0aa6de",
    ),
    (
        "gateway.networking.k8s.io_vap_safeupgrades.yaml",
        "afb0ea1b3cc2e9344d93b0926fbe741aeb48ab4439f9f7b4b77b9ac94faf6c2e",
    ),
];
/// Env var: a folder holding local copies of the CRD files (same names;
/// checked against the same sha256), for offline machines.
pub const CRDS_DIR_ENV: &str = "RAYCONFORM_GATEWAY_API_CRDS_DIR";

/// Envoy Gateway's release (its helm charts carry the same version).
pub const ENVOY_GATEWAY_VERSION: &str = "v1.9.0";
/// Envoy Gateway's main chart.
pub const ENVOY_GATEWAY_CHART: &str = "oci://docker.io/envoyproxy/gateway-helm";
/// Envoy Gateway's CRD-only chart.
pub const ENVOY_GATEWAY_CRDS_CHART: &str = "oci://docker.io/envoyproxy/gateway-crds-helm";
/// Where the Envoy Gateway controller (and the Envoy proxies) run.
pub const ENVOY_GATEWAY_NAMESPACE: &str = "envoy-gateway-system";
/// The controller's Deployment (and helm release).
pub const ENVOY_GATEWAY_DEPLOYMENT: &str = "envoy-gateway";
/// Envoy Gateway's `GatewayClass` controller name.
pub const ENVOY_GATEWAY_CONTROLLER: &str = "gateway.envoyproxy.io/gatewayclass-controller";

/// The namespace of the shared Gateway (and its EnvoyProxy).
pub const GATEWAY_NAMESPACE: &str = "rayconform-gateway";
/// The shared Gateway's name: routes name it in `parentRefs`.
pub const GATEWAY_NAME: &str = "rayconform";
/// The GatewayClass of the Envoy Gateway implementation.
pub const ENVOY_GATEWAY_CLASS: &str = "rayconform-envoy-gateway";
/// The EnvoyProxy the Gateway references.
pub const ENVOY_PROXY_NAME: &str = "rayconform-host-ports";
/// The ClientTrafficPolicy written when underscores are allowed.
pub const UNDERSCORES_POLICY_NAME: &str = "rayconform-allow-underscores";

/// One listener of the shared Gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayListener {
    /// `name`: routes attach to it by `sectionName`.
    pub name: &'static str,
    /// `port`, also the host port kind maps to it.
    pub port: u16,
    /// `protocol`.
    pub protocol: &'static str,
    /// What it is for.
    pub purpose: &'static str,
}

/// The shared Gateway's listeners.
pub const LISTENERS: [GatewayListener; 4] = [
    GatewayListener {
        name: "http",
        port: 80,
        protocol: "HTTP",
        purpose: "HTTPRoutes (the dashboard)",
    },
    GatewayListener {
        name: "tls",
        port: 443,
        protocol: "TLS",
        purpose: "TLSRoutes, mode Passthrough (the TLS Ray client)",
    },
    GatewayListener {
        name: "ray-client",
        port: 10001,
        protocol: "HTTP",
        purpose: "GRPCRoutes over h2c (the Ray client without TLS)",
    },
    GatewayListener {
        name: "gcs",
        port: 6379,
        protocol: "TCP",
        purpose: "TCPRoutes (raw TCP to GCS)",
    },
];

/// The listener named `name`.
pub fn listener(name: &str) -> Option<GatewayListener> {
    LISTENERS.into_iter().find(|l| l.name == name)
}

/// Which Gateway API implementation serves the Gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Implementation {
    /// Envoy Gateway v1.9.0.
    #[default]
    EnvoyGateway,
}

/// `install[].gatewayApi`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayApiInstall {
    /// The implementation (default `envoyGateway`).
    #[serde(default)]
    pub implementation: Implementation,
    /// Let request headers with underscores (the Ray client's `client_id`)
    /// through on every listener. Off: the implementation's default, which
    /// for Envoy Gateway v1.9.0 is `RejectRequest` (an HTTP/2 stream is
    /// reset).
    #[serde(default)]
    pub allow_underscores_in_headers: bool,
}

/// Envoy Gateway's compatibility matrix at v1.9.0
/// (`site/content/en/news/releases/matrix.md`): v1.9 supports Kubernetes
/// v1.33, v1.34, v1.35 and v1.36.
const ENVOY_GATEWAY_SUPPORT: &[SupportWindow] = &[SupportWindow {
    release: "1.9",
    min_minor: 33,
    max_minor: 36,
}];

#[async_trait::async_trait]
impl Component for GatewayApiInstall {
    fn name(&self) -> &'static str {
        "gatewayApi"
    }

    fn version(&self) -> String {
        match self.implementation {
            Implementation::EnvoyGateway => ENVOY_GATEWAY_VERSION.to_string(),
        }
    }

    fn plan(&self, _namespace: &str) -> String {
        plan(self)
    }

    fn kubernetes_support(&self) -> &'static [SupportWindow] {
        match self.implementation {
            Implementation::EnvoyGateway => ENVOY_GATEWAY_SUPPORT,
        }
    }

    fn tools(&self) -> &'static [Tool] {
        &[HELM]
    }

    /// The lab stands in with NGINX Gateway Fabric's semantics on real
    /// nginx (it reads this spec itself), except for what NGF has no
    /// setting for.
    fn lab_skip_reason(&self) -> Option<String> {
        self.allow_underscores_in_headers.then(|| {
            "lab cannot stand in for install.gatewayApi.allowUnderscoresInHeaders: the lab models \
             NGINX Gateway Fabric (v2.6.7), which has no setting for request headers with \
             underscores (its nginx drops them)"
                .to_string()
        })
    }

    /// The raw-TCP listeners (the Ray client over h2c and GCS) need host
    /// port mappings like 80 and 443.
    fn host_tcp_ports(&self) -> Vec<u16> {
        LISTENERS
            .iter()
            .map(|l| l.port)
            .filter(|p| *p != 80 && *p != 443)
            .collect()
    }

    async fn install(&self, ctx: &InstallContext) -> Result<Installed, InstallError> {
        install(self, ctx).await
    }
}

/// Where a standard-channel CRD file is fetched.
pub fn crd_url(file: &str) -> String {
    format!(
        "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/{GATEWAY_API_COMMIT}/config/crd/standard/{file}"
    )
}

/// `helm template` arguments for Envoy Gateway's own CRDs (no Gateway API
/// CRDs), without kubeconfig flags.
pub fn envoy_gateway_crds_args() -> Vec<String> {
    [
        "template",
        "eg-crds",
        ENVOY_GATEWAY_CRDS_CHART,
        "--version",
        ENVOY_GATEWAY_VERSION,
        "--set",
        "crds.gatewayAPI.enabled=false",
        "--set",
        "crds.envoyGateway.enabled=true",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `helm upgrade --install` arguments for the controller, without
/// kubeconfig flags.
pub fn envoy_gateway_args() -> Vec<String> {
    [
        "upgrade",
        "--install",
        ENVOY_GATEWAY_DEPLOYMENT,
        ENVOY_GATEWAY_CHART,
        "--version",
        ENVOY_GATEWAY_VERSION,
        "--namespace",
        ENVOY_GATEWAY_NAMESPACE,
        "--create-namespace",
        "--set",
        "crds.enabled=false",
        "--wait",
        "--timeout",
        "10m",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The plan text.
pub fn plan(spec: &GatewayApiInstall) -> String {
    let mut lines = vec![format!(
        "Gateway API {GATEWAY_API_VERSION} CRDs, standard channel (kubernetes-sigs/gateway-api@{GATEWAY_API_COMMIT}):"
    )];
    for (file, sha) in STANDARD_CRDS {
        lines.push(format!("  fetch {} — check sha256 {sha}", crd_url(file)));
    }
    lines.push(format!(
        "  (or the same files from ${CRDS_DIR_ENV}, same checks); server-side apply"
    ));
    match spec.implementation {
        Implementation::EnvoyGateway => {
            lines.push(format!(
                "helm {} | server-side apply   (Envoy Gateway's own CRDs only)",
                envoy_gateway_crds_args().join(" ")
            ));
            lines.push(format!(
                "helm {}   (chart pinned by version; its bundled experimental-channel Gateway API CRDs are off)",
                envoy_gateway_args().join(" ")
            ));
            lines.push(format!(
                "wait for Deployment {ENVOY_GATEWAY_NAMESPACE}/{ENVOY_GATEWAY_DEPLOYMENT} rolled out"
            ));
        }
    }
    lines.push(format!(
        "EnvoyProxy {GATEWAY_NAMESPACE}/{ENVOY_PROXY_NAME}: Service ClusterIP, Envoy on the ingress node with hostPorts {}",
        host_port_pairs()
            .iter()
            .map(|(host, container)| format!("{host}→{container}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    lines.push(format!(
        "GatewayClass {} ({ENVOY_GATEWAY_CONTROLLER}); Gateway {GATEWAY_NAMESPACE}/{GATEWAY_NAME} listeners: {}",
        ENVOY_GATEWAY_CLASS,
        LISTENERS
            .iter()
            .map(|l| format!("{} {} {}", l.name, l.protocol, l.port))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    lines.push(if spec.allow_underscores_in_headers {
        format!(
            "ClientTrafficPolicy {GATEWAY_NAMESPACE}/{UNDERSCORES_POLICY_NAME}: headers.withUnderscoresAction Allow"
        )
    } else {
        format!(
            "headers with underscores: the implementation's default (Envoy Gateway v1.9.0: RejectRequest); ClientTrafficPolicy {GATEWAY_NAMESPACE}/{UNDERSCORES_POLICY_NAME} deleted if an earlier install made it"
        )
    });
    lines.push(format!(
        "wait for the Gateway's Envoy pods Ready ({})",
        envoy_pod_selector()
    ));
    lines.join("\n")
}

/// Host port → Envoy container port for every listener (ports below 1024
/// are shifted by 10000 inside the container).
pub fn host_port_pairs() -> Vec<(u16, u16)> {
    LISTENERS
        .iter()
        .map(|l| {
            let container = if l.port < 1024 {
                l.port + 10000
            } else {
                l.port
            };
            (l.port, container)
        })
        .collect()
}

/// The label selector of the shared Gateway's Envoy pods.
pub fn envoy_pod_selector() -> String {
    format!(
        "gateway.envoyproxy.io/owning-gateway-name={GATEWAY_NAME},gateway.envoyproxy.io/owning-gateway-namespace={GATEWAY_NAMESPACE}"
    )
}

/// The objects that make the shared Gateway: its namespace, EnvoyProxy,
/// GatewayClass, Gateway and, when asked, the underscores policy.
/// `node_selector` places Envoy on the node whose ports reach the host.
pub fn gateway_objects(
    spec: &GatewayApiInstall,
    node_selector: &BTreeMap<String, String>,
) -> Vec<Manifest> {
    let ports: Vec<Value> = host_port_pairs()
        .into_iter()
        .map(|(host, container)| {
            json!({"containerPort": container, "hostPort": host, "protocol": "TCP"})
        })
        .collect();
    let mut pod = json!({});
    if !node_selector.is_empty() {
        pod["nodeSelector"] = json!(node_selector);
        pod["tolerations"] = json!([{
            "key": "node-role.kubernetes.io/control-plane",
            "operator": "Equal",
            "effect": "NoSchedule"
        }]);
    }
    let listeners: Vec<Value> = LISTENERS
        .iter()
        .map(|l| {
            let mut listener = json!({
                "name": l.name,
                "port": l.port,
                "protocol": l.protocol,
                "allowedRoutes": {"namespaces": {"from": "All"}}
            });
            if l.protocol == "TLS" {
                listener["tls"] = json!({"mode": "Passthrough"});
            }
            listener
        })
        .collect();
    let mut objects = vec![
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": GATEWAY_NAMESPACE}
        }),
        json!({
            "apiVersion": crate::gateway_api::ENVOY_GATEWAY_API_VERSION,
            "kind": "EnvoyProxy",
            "metadata": {"name": ENVOY_PROXY_NAME, "namespace": GATEWAY_NAMESPACE},
            "spec": {"provider": {"type": "Kubernetes", "kubernetes": {
                "envoyDeployment": {
                    "replicas": 1,
                    "pod": pod,
                    "patch": {"type": "StrategicMerge", "value": {"spec": {"template": {"spec": {
                        "containers": [{"name": "envoy", "ports": ports}]
                    }}}}}
                },
                "envoyService": {"type": "ClusterIP"}
            }}}
        }),
        json!({
            "apiVersion": crate::gateway_api::API_VERSION,
            "kind": "GatewayClass",
            "metadata": {"name": ENVOY_GATEWAY_CLASS},
            "spec": {"controllerName": ENVOY_GATEWAY_CONTROLLER}
        }),
        json!({
            "apiVersion": crate::gateway_api::API_VERSION,
            "kind": "Gateway",
            "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
            "spec": {
                "gatewayClassName": ENVOY_GATEWAY_CLASS,
                "infrastructure": {"parametersRef": {
                    "group": "gateway.envoyproxy.io",
                    "kind": "EnvoyProxy",
                    "name": ENVOY_PROXY_NAME
                }},
                "listeners": listeners
            }
        }),
    ];
    if spec.allow_underscores_in_headers {
        objects.push(underscores_policy());
    }
    objects
}

/// The ClientTrafficPolicy that lets header names with underscores through
/// every listener of the shared Gateway.
pub fn underscores_policy() -> Manifest {
    json!({
        "apiVersion": crate::gateway_api::ENVOY_GATEWAY_API_VERSION,
        "kind": "ClientTrafficPolicy",
        "metadata": {"name": UNDERSCORES_POLICY_NAME, "namespace": GATEWAY_NAMESPACE},
        "spec": {
            "targetRefs": [{"group": crate::gateway_api::GROUP, "kind": "Gateway", "name": GATEWAY_NAME}],
            "headers": {"withUnderscoresAction": "Allow"}
        }
    })
}

/// Checks one CRD file's bytes against its pinned sha256.
pub fn check_crd(file: &str, bytes: &[u8], origin: &str) -> Result<(), String> {
    let Some((_, pinned)) = STANDARD_CRDS.iter().find(|(f, _)| *f == file) else {
        return Err(format!("{file} is not a pinned Gateway API CRD file"));
    };
    let found = super::ingress_nginx::sha256_hex(bytes);
    if found == *pinned {
        Ok(())
    } else {
        Err(format!(
            "{origin}: sha256 {found}, not the pinned {pinned} (gateway-api {GATEWAY_API_VERSION} config/crd/standard/{file})"
        ))
    }
}

async fn fetch_crd(file: &str) -> Result<String, InstallError> {
    let (bytes, origin) = if let Ok(dir) = std::env::var(CRDS_DIR_ENV) {
        let path = std::path::Path::new(&dir).join(file);
        let bytes = std::fs::read(&path)
            .map_err(|e| InstallError::Artifact(format!("{}: {e}", path.display())))?;
        (bytes, path.display().to_string())
    } else {
        let url = crd_url(file);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| InstallError::Artifact(e.to_string()))?;
        let bytes = client
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| InstallError::Artifact(format!("fetch {url}: {e}")))?
            .bytes()
            .await
            .map_err(|e| InstallError::Artifact(format!("fetch {url}: {e}")))?;
        (bytes.to_vec(), url)
    };
    check_crd(file, &bytes, &origin).map_err(InstallError::Artifact)?;
    String::from_utf8(bytes).map_err(|e| InstallError::Artifact(format!("{origin}: {e}")))
}

/// The YAML documents of `text`; the error is an [`InstallError::Artifact`]
/// message.
fn parse_documents(text: &str, origin: &str) -> Result<Vec<Manifest>, String> {
    let mut docs: Vec<Value> = serde_saphyr::from_str_multiple(text)
        .map_err(|e| format!("{origin} does not parse: {e}"))?;
    docs.retain(|d| !d.is_null());
    Ok(docs)
}

/// Applies `docs`, retrying while the API server does not serve their
/// kinds yet (CRDs just created are not established at once).
async fn apply_when_served(ctx: &InstallContext, docs: &[Manifest]) -> Result<(), InstallError> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let mut applier = Applier::new(ctx.client.clone());
        let mut failed = None;
        for (i, doc) in docs.iter().enumerate() {
            if let Err(e) = applier.apply(i + 1, doc, GATEWAY_NAMESPACE).await {
                failed = Some(e);
                break;
            }
        }
        match failed {
            None => return Ok(()),
            Some(e) if started.elapsed() > Duration::from_secs(120) => return Err(e.into()),
            Some(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
        }
    }
}

/// Installs the CRDs, the implementation and the shared Gateway, and waits
/// until its Envoy pods are Ready.
pub async fn install(
    spec: &GatewayApiInstall,
    ctx: &InstallContext,
) -> Result<Installed, InstallError> {
    let helm = HELM.locate()?;
    let timeout = Duration::from_secs(600);
    let mut crds = Vec::new();
    for (file, _) in STANDARD_CRDS {
        crds.extend(
            parse_documents(&fetch_crd(file).await?, file).map_err(InstallError::Artifact)?,
        );
    }
    (ctx.progress)("applying Gateway API v1.6.1 standard CRDs");
    apply_when_served(ctx, &crds).await?;
    let mut args = envoy_gateway_crds_args();
    args.extend(kube_flags(ctx));
    let rendered = command::run(&helm, &args, &[], timeout).await?;
    apply_when_served(
        ctx,
        &parse_documents(&rendered.stdout, "helm template gateway-crds-helm")
            .map_err(InstallError::Artifact)?,
    )
    .await?;
    let mut args = envoy_gateway_args();
    args.extend(kube_flags(ctx));
    (ctx.progress)("installing Envoy Gateway");
    command::run(&helm, &args, &[], timeout).await?;
    wait::deployment_rolled_out(
        &ctx.client,
        ENVOY_GATEWAY_NAMESPACE,
        ENVOY_GATEWAY_DEPLOYMENT,
        timeout,
    )
    .await?;
    apply_when_served(ctx, &gateway_objects(spec, &ctx.node_selector)).await?;
    if !spec.allow_underscores_in_headers {
        // An earlier install on this cluster may have allowed them: the
        // implementation's default holds only without the policy.
        Applier::new(ctx.client.clone())
            .delete(1, &underscores_policy(), GATEWAY_NAMESPACE)
            .await?;
    }
    (ctx.progress)("waiting for the Gateway's Envoy pods");
    wait::pods_ready(
        &ctx.client,
        ENVOY_GATEWAY_NAMESPACE,
        &envoy_pod_selector(),
        timeout,
    )
    .await?;
    Ok(Installed {
        component: "gatewayApi",
        version: ENVOY_GATEWAY_VERSION.to_string(),
        summary: format!(
            "Gateway API {GATEWAY_API_VERSION} standard CRDs (sha256-checked), Envoy Gateway {ENVOY_GATEWAY_VERSION}, Gateway {GATEWAY_NAMESPACE}/{GATEWAY_NAME}{}",
            if spec.allow_underscores_in_headers {
                ", headers with underscores allowed"
            } else {
                ""
            }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway_api::{GatewayApiObject, from_value};

    #[test]
    fn generated_gateway_objects_pass_the_typed_model() {
        let spec = GatewayApiInstall {
            allow_underscores_in_headers: true,
            ..Default::default()
        };
        let selector = BTreeMap::from([("ingress-ready".to_string(), "true".to_string())]);
        let objects = gateway_objects(&spec, &selector);
        let typed: Vec<GatewayApiObject> = objects
            .iter()
            .filter_map(|o| from_value(o).unwrap_or_else(|e| panic!("{e}: {o}")))
            .collect();
        assert_eq!(typed.len(), 4, "EnvoyProxy, GatewayClass, Gateway, policy");
        let gateway = typed
            .iter()
            .find_map(|o| match o {
                GatewayApiObject::Gateway(g) => Some(g),
                _ => None,
            })
            .unwrap();
        let names: Vec<(&str, u16)> = gateway
            .spec
            .listeners
            .iter()
            .map(|l| (l.name.as_str(), l.port))
            .collect();
        assert_eq!(
            names,
            [
                ("http", 80),
                ("tls", 443),
                ("ray-client", 10001),
                ("gcs", 6379)
            ]
        );
        assert_eq!(
            host_port_pairs(),
            [(80, 10080), (443, 10443), (10001, 10001), (6379, 6379)]
        );
    }

    #[test]
    fn crd_pins_are_checked() {
        let err = check_crd("gateway.networking.k8s.io_gateways.yaml", b"x", "here").unwrap_err();
        assert!(err.contains("not the pinned 25b885f5"), "{err}");
        assert_eq!(STANDARD_CRDS.len(), 11);
        assert!(crd_url("a.yaml").contains(GATEWAY_API_COMMIT));
    }

    #[test]
    fn envoy_gateway_supports_kubernetes_1_33_to_1_36() {
        let spec = GatewayApiInstall::default();
        assert_eq!(spec.unsupported_on("1.36"), None);
        assert_eq!(spec.unsupported_on("1.33"), None);
        let why = spec.unsupported_on("1.37").unwrap();
        assert!(why.contains("1.33–1.36"), "{why}");
        assert!(spec.unsupported_on("1.32").is_some());
    }
}
