//! Installing cluster components: one file per component, each implementing
//! [`Component`], all registered in [`registry`]. Every install is
//! idempotent (server-side apply or `helm upgrade --install`), pinned,
//! waited for, and reports the version it installed.

pub mod command;
pub mod component;
pub mod gateway_api;
pub mod ingress_nginx;
pub mod istio;
pub mod kuberay_apiserver;
pub mod kuberay_operator;
pub mod kubernetes_support;
pub mod mesh_client;
pub mod registry;

pub use component::{Component, InvalidField};
pub use registry::Install;

use crate::k8s::apply::ApplyError;
use crate::k8s::wait::WaitError;
use crate::manifest::{Manifest, ProgressFn};
use crate::tools::ToolMissing;
use kube::Client;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why an install did not complete.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A needed program is not on `PATH`.
    #[error(transparent)]
    ToolMissing(#[from] ToolMissing),
    /// A needed program is on `PATH` in another version than the one needed.
    #[error("{0}")]
    ToolVersion(String),
    /// A program failed or timed out.
    #[error(transparent)]
    Command(#[from] command::CommandError),
    /// Downloading or checking a pinned artifact failed.
    #[error("{0}")]
    Artifact(String),
    /// Applying an object failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The component did not become ready.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// What an install needs from the target.
pub struct InstallContext {
    /// The cluster.
    pub client: Client,
    /// Kubeconfig file for helm and istioctl.
    pub kubeconfig: PathBuf,
    /// Kube context within it, if not the current one.
    pub context: Option<String>,
    /// The scenario's namespace (for webhook checks).
    pub namespace: String,
    /// Live progress.
    pub progress: ProgressFn,
    /// Labels of the node(s) the ingress controller must run on (the node
    /// whose ports reach the host); empty to let the scheduler choose.
    pub node_selector: BTreeMap<String, String>,
}

/// What got installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Component name as in scenarios (`ingressNginx`, ...).
    pub component: &'static str,
    /// The installed version.
    pub version: String,
    /// One line: what is running and where.
    pub summary: String,
}

/// The component name as written in scenarios.
pub fn component_name(install: &Install) -> &'static str {
    install.component().name()
}

/// The version an install will put in place.
pub fn version(install: &Install) -> String {
    install.component().version()
}

/// The plan text of one install: its title and what will be run and applied.
pub fn plan(install: &Install, namespace: &str) -> (String, String) {
    let component = install.component();
    let title = format!("install {} {}", component.name(), component.version());
    (title, component.plan(namespace))
}

/// Installs one component and waits until it serves.
pub async fn install(install: &Install, ctx: &InstallContext) -> Result<Installed, InstallError> {
    let component = install.component();
    (ctx.progress)(&format!(
        "installing {} {}",
        component.name(),
        component.version()
    ));
    component.install(ctx).await
}

/// Labels the scenario namespace needs (Istio sidecar injection).
pub fn namespace_labels(installs: &[Install]) -> BTreeMap<String, String> {
    installs
        .iter()
        .flat_map(|i| i.component().namespace_labels())
        .collect()
}

/// Objects to create in the scenario namespace (STRICT PeerAuthentication).
pub fn namespace_manifests(installs: &[Install], namespace: &str) -> Vec<Manifest> {
    installs
        .iter()
        .flat_map(|i| i.component().namespace_manifests(namespace))
        .collect()
}

/// Pod ports the installs want reached from the host by port-forward.
pub fn port_forwards(installs: &[Install]) -> Vec<component::PortForwardRequest> {
    installs
        .iter()
        .flat_map(|i| i.component().port_forwards())
        .collect()
}

/// The install as it is applied for a scenario in `namespace`: templates
/// filled (today `${NAMESPACE}` in ingress-nginx `tcpServices` targets, the
/// only templated install field). Two scenarios share an install only when
/// these are equal: the same text can point at different namespaces.
pub fn as_applied(install: &Install, namespace: &str) -> Install {
    install.as_applied(namespace)
}

/// Installs what the scenario lists that `done` does not already hold (as
/// applied, see [`as_applied`]), then creates the namespace objects
/// installs call for. `done` keeps the applied form of each component.
/// Returns one line per install (with its version) for the report.
pub async fn install_all(
    installs: &[Install],
    ctx: &InstallContext,
    done: &mut Vec<Install>,
) -> Result<Vec<String>, InstallError> {
    let mut lines = Vec::new();
    for item in installs {
        let item = &as_applied(item, &ctx.namespace);
        if done.contains(item) {
            lines.push(format!(
                "{} {} already installed",
                component_name(item),
                version(item)
            ));
            continue;
        }
        let installed = install(item, ctx).await?;
        lines.push(installed.summary);
        // Another spec of the same component replaces the older one.
        done.retain(|d| component_name(d) != component_name(item));
        done.push(item.clone());
    }
    let mut applier = crate::k8s::apply::Applier::new(ctx.client.clone());
    for (i, m) in namespace_manifests(installs, &ctx.namespace)
        .iter()
        .enumerate()
    {
        applier.apply(i + 1, m, &ctx.namespace).await?;
    }
    Ok(lines)
}
