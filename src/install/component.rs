//! The one trait every install component implements: everything the rest
//! of rayconform asks of a component goes through it, so a component is
//! its own file plus its line in [`super::registry`].

use super::kubernetes_support::{self, SupportWindow};
use super::{InstallContext, InstallError, Installed};
use crate::manifest::Manifest;
use crate::tools::Tool;

/// A field of a component's spec that fails a check beyond its type
/// (found while loading a scenario, reported at the install entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// The field's path below the component, e.g. `tcpServices.443`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// A pod port the harness reaches from the host through a port-forward
/// for as long as the scenario's session is open, published as the
/// template variable `variable` (`127.0.0.1:<local port>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForwardRequest {
    /// The template variable that holds the local address.
    pub variable: String,
    /// Label selector of the pod (in the scenario namespace), looked up per
    /// connection.
    pub label_selector: String,
    /// The pod's port.
    pub port: u16,
}

/// One installable component, as a scenario's `install:` entry specifies
/// it (the spec type implements this trait).
#[async_trait::async_trait]
pub trait Component: Send + Sync {
    /// The name as written in scenarios (`ingressNginx`, `istio`).
    fn name(&self) -> &'static str;

    /// The version this spec installs (the pinned one unless it names one).
    fn version(&self) -> String;

    /// What will be run and applied, for `rayconform plan`; `namespace` is
    /// the scenario's.
    fn plan(&self, namespace: &str) -> String;

    /// The Kubernetes minors each release line supports, from the project's
    /// own support table; empty when it states no bound (then every
    /// version is taken as supported).
    fn kubernetes_support(&self) -> &'static [SupportWindow] {
        &[]
    }

    /// The external programs installing it needs.
    fn tools(&self) -> &'static [Tool] {
        &[]
    }

    /// Why the lab (no cluster) cannot stand in for it, or `None` when it
    /// can. The lab's own stand-ins read their component's spec themselves.
    fn lab_skip_reason(&self) -> Option<String> {
        Some(format!(
            "lab cannot stand in for {name} (install.{name})",
            name = self.name()
        ))
    }

    /// Labels the scenario namespace needs (e.g. sidecar injection).
    fn namespace_labels(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Objects to create in the scenario namespace once it is installed.
    fn namespace_manifests(&self, _namespace: &str) -> Vec<Manifest> {
        Vec::new()
    }

    /// Ports it serves raw TCP on at the ingress node (they need host
    /// port mappings).
    fn host_tcp_ports(&self) -> Vec<u16> {
        Vec::new()
    }

    /// Pod ports of the scenario namespace the harness reaches from the
    /// host through port-forwards (e.g. a mesh client's relay).
    fn port_forwards(&self) -> Vec<PortForwardRequest> {
        Vec::new()
    }

    /// Fills the templates its fields may hold (`${NAMESPACE}`) for a
    /// scenario in `namespace`.
    fn fill_templates(&mut self, _namespace: &str) {}

    /// Checks beyond the field types, each problem at its field.
    fn validate(&self) -> Vec<InvalidField> {
        Vec::new()
    }

    /// Installs it (idempotently) and waits until it serves.
    async fn install(&self, ctx: &InstallContext) -> Result<Installed, InstallError>;

    /// Why this version cannot run on Kubernetes `k8s_version`, or `None`
    /// when it can (or when no support window is known).
    fn unsupported_on(&self, k8s_version: &str) -> Option<String> {
        kubernetes_support::unsupported(
            self.name(),
            &self.version(),
            self.kubernetes_support(),
            k8s_version,
        )
    }
}
