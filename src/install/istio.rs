//! Istio by `istioctl install --set profile=minimal` (pinned istioctl),
//! sidecar injection for the scenario namespace, and a STRICT
//! PeerAuthentication when the scenario asks.

use super::command;
use super::component::Component;
use super::kubernetes_support::SupportWindow;
use super::{InstallContext, InstallError, Installed};
use crate::k8s::wait;
use crate::manifest::Manifest;
use crate::tools::{ISTIOCTL, Tool};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The pinned Istio release (istioctl must be this version).
pub const VERSION: &str = "1.30.4";
/// Where istiod runs.
pub const NAMESPACE: &str = "istio-system";
const TIMEOUT: Duration = Duration::from_secs(600);

/// `install[].istio`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioInstall {
    /// Istio version; the pinned default when unset.
    pub version: Option<String>,
    /// Label the scenario namespace for sidecar injection.
    #[serde(default = "yes")]
    pub inject_namespace: bool,
    /// Apply a STRICT PeerAuthentication to the scenario namespace.
    #[serde(default)]
    pub strict_mtls: bool,
}

fn yes() -> bool {
    true
}

/// The Kubernetes minors each release line supports (Istio's own support
/// table).
const KUBERNETES_SUPPORT: &[SupportWindow] = &[
    SupportWindow {
        release: "1.30",
        min_minor: 32,
        max_minor: 36,
    },
    SupportWindow {
        release: "1.29",
        min_minor: 31,
        max_minor: 35,
    },
];

#[async_trait::async_trait]
impl Component for IstioInstall {
    fn name(&self) -> &'static str {
        "istio"
    }

    fn version(&self) -> String {
        self.version.clone().unwrap_or_else(|| VERSION.to_string())
    }

    fn plan(&self, namespace: &str) -> String {
        plan(self, namespace)
    }

    fn kubernetes_support(&self) -> &'static [SupportWindow] {
        KUBERNETES_SUPPORT
    }

    fn tools(&self) -> &'static [Tool] {
        &[ISTIOCTL]
    }

    fn lab_skip_reason(&self) -> Option<String> {
        Some(
            "lab cannot stand in for Istio (install.istio): there is no service mesh or \
             sidecar on loopback"
                .into(),
        )
    }

    fn namespace_labels(&self) -> Vec<(String, String)> {
        if self.inject_namespace {
            vec![("istio-injection".to_string(), "enabled".to_string())]
        } else {
            Vec::new()
        }
    }

    fn namespace_manifests(&self, namespace: &str) -> Vec<Manifest> {
        if self.strict_mtls {
            vec![strict_peer_authentication(namespace)]
        } else {
            Vec::new()
        }
    }

    async fn install(&self, ctx: &InstallContext) -> Result<Installed, InstallError> {
        install(self, ctx).await
    }
}

/// `istioctl install` arguments (without kubeconfig flags).
pub fn istioctl_args() -> Vec<String> {
    ["install", "--set", "profile=minimal", "-y"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The STRICT PeerAuthentication for a namespace.
pub fn strict_peer_authentication(namespace: &str) -> Manifest {
    serde_json::json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {"mtls": {"mode": "STRICT"}}
    })
}

/// The plan text.
pub fn plan(spec: &IstioInstall, namespace: &str) -> String {
    let mut lines = vec![
        format!(
            "check: istioctl version is {}",
            spec.version.as_deref().unwrap_or(VERSION)
        ),
        format!("istioctl {}", istioctl_args().join(" ")),
        format!("wait for Deployment {NAMESPACE}/istiod rolled out"),
    ];
    if spec.inject_namespace {
        lines.push(format!(
            "label namespace {namespace}: istio-injection=enabled"
        ));
    }
    if spec.strict_mtls {
        lines.push(format!(
            "PeerAuthentication {namespace}/default: mtls.mode STRICT"
        ));
    }
    lines.join("\n")
}

/// The client version `istioctl version --remote=false` prints.
pub fn parse_client_version(output: &str) -> Option<String> {
    output
        .lines()
        .map(str::trim)
        .find_map(|l| {
            l.strip_prefix("client version: ")
                .or_else(|| (!l.is_empty() && !l.contains(' ')).then_some(l))
        })
        .map(str::to_string)
}

/// Installs Istio (idempotent: istioctl reconciles) and waits for istiod.
pub async fn install(spec: &IstioInstall, ctx: &InstallContext) -> Result<Installed, InstallError> {
    let istioctl = ISTIOCTL.locate()?;
    let wanted = spec.version.clone().unwrap_or_else(|| VERSION.to_string());
    let out = command::run(
        &istioctl,
        &["version".into(), "--remote=false".into()],
        &[],
        Duration::from_secs(30),
    )
    .await?;
    let found = parse_client_version(&out.stdout).unwrap_or_default();
    if found != wanted {
        return Err(InstallError::ToolVersion(format!(
            "istioctl on PATH is `{found}`, the scenario needs {wanted}: {}",
            ISTIOCTL.install_hint
        )));
    }
    let mut args = istioctl_args();
    args.push("--kubeconfig".into());
    args.push(ctx.kubeconfig.display().to_string());
    if let Some(context) = &ctx.context {
        args.push("--context".into());
        args.push(context.clone());
    }
    command::run(&istioctl, &args, &[], TIMEOUT).await?;
    wait::deployment_rolled_out(&ctx.client, NAMESPACE, "istiod", TIMEOUT).await?;
    Ok(Installed {
        component: "istio",
        version: wanted.clone(),
        summary: format!("Istio {wanted} (minimal profile)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_istioctl_client_versions() {
        assert_eq!(
            parse_client_version("client version: 1.30.4\n").as_deref(),
            Some("1.30.4")
        );
        assert_eq!(parse_client_version("1.30.4\n").as_deref(), Some("1.30.4"));
        assert_eq!(parse_client_version(""), None);
    }
}
