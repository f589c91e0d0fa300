//! Istio by `istioctl install --set profile=minimal` (pinned istioctl),
//! sidecar injection for the scenario namespace, and a STRICT
//! PeerAuthentication when the scenario asks.

use super::command;
use super::{InstallContext, InstallError, Installed};
use crate::k8s::wait;
use crate::manifest::Manifest;
use crate::scenario::IstioInstall;
use crate::tools::ISTIOCTL;
use std::time::Duration;

/// The pinned Istio release (istioctl must be this version).
pub const VERSION: &str = "1.30.4";
/// Where istiod runs.
pub const NAMESPACE: &str = "istio-system";
const TIMEOUT: Duration = Duration::from_secs(600);

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
    let istioctl = ISTIOCTL.find().map_err(InstallError::MissingTool)?;
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
        return Err(InstallError::MissingTool(format!(
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
