//! The KubeRay apiserver, by its helm chart (pinned chart version), plus a
//! NodePort Service on 31888 so the host reaches it through kind's port
//! mapping.

use super::command;
use super::component::Component;
use super::kuberay_operator::{HELM_REPO, NAMESPACE, kube_flags};
use super::{InstallContext, InstallError, Installed};
use crate::k8s::apply::Applier;
use crate::k8s::wait;
use crate::manifest::Manifest;
use crate::tools::{HELM, Tool};
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The pinned chart version.
pub const CHART_VERSION: &str = "1.7.0";
/// Release name.
pub const RELEASE: &str = "kuberay-apiserver";
/// The chart's Deployment.
pub const DEPLOYMENT: &str = "kuberay-apiserver";
/// The chart's Service (ClusterIP, http 8888 / grpc 8887).
pub const CHART_SERVICE: &str = "kuberay-apiserver-service";
/// Our NodePort Service.
pub const NODEPORT_SERVICE: &str = "kuberay-apiserver-nodeport";
/// The NodePort the kind configs map to the host.
pub const NODE_PORT: u16 = 31888;
const TIMEOUT: Duration = Duration::from_secs(600);

/// `install[].kuberayApiserver`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KuberayApiserverInstall {
    /// Chart version; the pinned default when unset.
    pub version: Option<String>,
}

#[async_trait::async_trait]
impl Component for KuberayApiserverInstall {
    fn name(&self) -> &'static str {
        "kuberayApiserver"
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

    fn lab_skip_reason(&self) -> Option<String> {
        Some("lab cannot stand in for the KubeRay apiserver (install.kuberayApiserver)".into())
    }

    async fn install(&self, ctx: &InstallContext) -> Result<Installed, InstallError> {
        install(self, ctx).await
    }
}

/// `helm upgrade --install` arguments (without kubeconfig flags).
pub fn helm_args(spec: &KuberayApiserverInstall) -> Vec<String> {
    let version = spec.version.clone().unwrap_or_else(|| CHART_VERSION.into());
    [
        "upgrade",
        "--install",
        RELEASE,
        "kuberay-apiserver",
        "--repo",
        HELM_REPO,
        "--version",
        &version,
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--set",
        "security=null",
        "--wait",
        "--timeout",
        "10m",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The NodePort Service selecting what the chart's Service selects.
pub fn nodeport_service(selector: serde_json::Value) -> Manifest {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NODEPORT_SERVICE, "namespace": NAMESPACE},
        "spec": {
            "type": "NodePort",
            "selector": selector,
            "ports": [{"name": "http", "port": 8888, "targetPort": 8888, "nodePort": NODE_PORT, "protocol": "TCP"}]
        }
    })
}

/// The plan text.
pub fn plan(spec: &KuberayApiserverInstall) -> String {
    format!(
        "helm {}\nService {NAMESPACE}/{NODEPORT_SERVICE}: NodePort {NODE_PORT} -> 8888, selector copied from {CHART_SERVICE}\nwait for Deployment {NAMESPACE}/{DEPLOYMENT} rolled out",
        helm_args(spec).join(" ")
    )
}

/// Installs or upgrades the apiserver and waits for it.
pub async fn install(
    spec: &KuberayApiserverInstall,
    ctx: &InstallContext,
) -> Result<Installed, InstallError> {
    let helm = HELM.locate()?;
    let mut args = helm_args(spec);
    args.extend(kube_flags(ctx));
    command::run(&helm, &args, &[], TIMEOUT).await?;
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), NAMESPACE);
    let chart_service = services.get(CHART_SERVICE).await.map_err(|e| {
        InstallError::Artifact(format!("the chart made no Service {CHART_SERVICE}: {e}"))
    })?;
    let selector = chart_service
        .spec
        .and_then(|s| s.selector)
        .map(|s| serde_json::to_value(s).unwrap_or_default())
        .ok_or_else(|| {
            InstallError::Artifact(format!("Service {CHART_SERVICE} has no selector"))
        })?;
    Applier::new(ctx.client.clone())
        .apply(1, &nodeport_service(selector), NAMESPACE)
        .await?;
    wait::deployment_rolled_out(&ctx.client, NAMESPACE, DEPLOYMENT, TIMEOUT).await?;
    let version = spec.version.clone().unwrap_or_else(|| CHART_VERSION.into());
    Ok(Installed {
        component: "kuberayApiserver",
        version: version.clone(),
        summary: format!("KubeRay apiserver chart {version}, NodePort {NODE_PORT}"),
    })
}
