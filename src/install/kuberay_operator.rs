//! The KubeRay operator, by its helm chart (pinned chart version).

use super::command;
use super::component::Component;
use super::{InstallContext, InstallError, Installed};
use crate::k8s::wait;
use crate::tools::{HELM, Tool};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The pinned chart version.
pub const CHART_VERSION: &str = "1.7.0";
/// KubeRay's helm repository.
pub const HELM_REPO: &str = "https://ray-project.github.io/kuberay-helm/";
/// Release and Deployment name.
pub const RELEASE: &str = "kuberay-operator";
/// Namespace it runs in.
pub const NAMESPACE: &str = "kuberay-system";
/// How long helm and the wait may take.
const TIMEOUT: Duration = Duration::from_secs(600);

/// `install[].kuberayOperator`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KuberayOperatorInstall {
    /// Chart version; the pinned default when unset.
    pub version: Option<String>,
    /// Sets `ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE=true` (non-headless head Service).
    #[serde(default)]
    pub head_cluster_ip_service: bool,
    /// Extra environment for the operator.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[async_trait::async_trait]
impl Component for KuberayOperatorInstall {
    fn name(&self) -> &'static str {
        "kuberayOperator"
    }

    fn version(&self) -> String {
        self.version
            .clone()
            .unwrap_or_else(|| CHART_VERSION.to_string())
    }

    fn plan(&self, _namespace: &str) -> String {
        plan(self)
    }

    fn tools(&self) -> &'static [Tool] {
        &[HELM]
    }

    /// The lab turns each RayCluster into local Ray processes itself.
    fn lab_skip_reason(&self) -> Option<String> {
        None
    }

    async fn install(&self, ctx: &InstallContext) -> Result<Installed, InstallError> {
        install(self, ctx).await
    }
}

/// The operator's environment for this spec.
pub fn env(spec: &KuberayOperatorInstall) -> BTreeMap<String, String> {
    let mut env = spec.env.clone();
    if spec.head_cluster_ip_service {
        env.insert(
            "ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE".to_string(),
            "true".to_string(),
        );
    }
    env
}

/// `helm upgrade --install` arguments (without kubeconfig flags).
pub fn helm_args(spec: &KuberayOperatorInstall) -> Vec<String> {
    let version = spec.version.clone().unwrap_or_else(|| CHART_VERSION.into());
    let env: Vec<serde_json::Value> = env(spec)
        .into_iter()
        .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
        .collect();
    let mut args: Vec<String> = [
        "upgrade",
        "--install",
        RELEASE,
        "kuberay-operator",
        "--repo",
        HELM_REPO,
        "--version",
        &version,
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--wait",
        "--timeout",
        "10m",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !env.is_empty() {
        args.push("--set-json".into());
        args.push(format!("env={}", serde_json::Value::Array(env)));
    }
    args
}

/// The plan text.
pub fn plan(spec: &KuberayOperatorInstall) -> String {
    format!(
        "helm {}\nwait for Deployment {NAMESPACE}/{RELEASE} rolled out",
        helm_args(spec).join(" ")
    )
}

/// Installs or upgrades the operator and waits for it.
pub async fn install(
    spec: &KuberayOperatorInstall,
    ctx: &InstallContext,
) -> Result<Installed, InstallError> {
    let helm = HELM.locate()?;
    let mut args = helm_args(spec);
    args.extend(kube_flags(ctx));
    command::run(&helm, &args, &[], TIMEOUT).await?;
    wait::deployment_rolled_out(&ctx.client, NAMESPACE, RELEASE, TIMEOUT).await?;
    let version = spec.version.clone().unwrap_or_else(|| CHART_VERSION.into());
    Ok(Installed {
        component: "kuberayOperator",
        version: version.clone(),
        summary: format!(
            "KubeRay operator chart {version} in {NAMESPACE}, env {:?}",
            env(spec)
        ),
    })
}

/// `--kubeconfig` (and `--kube-context`) for helm.
pub fn kube_flags(ctx: &InstallContext) -> Vec<String> {
    let mut flags = vec![
        "--kubeconfig".to_string(),
        ctx.kubeconfig.display().to_string(),
    ];
    if let Some(context) = &ctx.context {
        flags.push("--kube-context".into());
        flags.push(context.clone());
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_cluster_ip_service_becomes_operator_env() {
        let spec = KuberayOperatorInstall {
            head_cluster_ip_service: true,
            ..Default::default()
        };
        let args = helm_args(&spec).join(" ");
        assert!(args.contains("--version 1.7.0"), "{args}");
        assert!(
            args.contains(r#"env=[{"name":"ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE","value":"true"}]"#),
            "{args}"
        );
        assert!(
            !helm_args(&KuberayOperatorInstall::default())
                .join(" ")
                .contains("env=")
        );
    }
}
