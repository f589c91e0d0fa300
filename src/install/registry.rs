//! Every install component, registered once: the `Install` entry of a
//! scenario, its form as written, and which [`Component`] each variant is.
//!
//! Adding a component: its own file (the spec type implementing
//! [`Component`]), then here a variant, a field of [`RawInstall`], its
//! name in [`Install::NAMES`] and its arms below.

use super::component::Component;
use super::gateway_api::GatewayApiInstall;
use super::ingress_nginx::IngressNginxInstall;
use super::istio::IstioInstall;
use super::kuberay_apiserver::KuberayApiserverInstall;
use super::kuberay_operator::KuberayOperatorInstall;
use super::mesh_client::MeshClientInstall;
use serde::{Deserialize, Serialize};

/// One component to install.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Install {
    /// The ingress-nginx controller (pinned final release).
    IngressNginx(IngressNginxInstall),
    /// The KubeRay operator (helm).
    KuberayOperator(KuberayOperatorInstall),
    /// The KubeRay apiserver (helm).
    KuberayApiserver(KuberayApiserverInstall),
    /// Istio.
    Istio(IstioInstall),
    /// Gateway API CRDs, an implementation and the shared Gateway.
    GatewayApi(GatewayApiInstall),
    /// Relay pods in and outside the mesh, reached by port-forward.
    MeshClient(MeshClientInstall),
}

/// One entry of a scenario's `install:` as written: exactly one field
/// should be set (the loader says so when not).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawInstall {
    /// `ingressNginx:`.
    pub ingress_nginx: Option<IngressNginxInstall>,
    /// `kuberayOperator:`.
    pub kuberay_operator: Option<KuberayOperatorInstall>,
    /// `kuberayApiserver:`.
    pub kuberay_apiserver: Option<KuberayApiserverInstall>,
    /// `istio:`.
    pub istio: Option<IstioInstall>,
    /// `gatewayApi:`.
    pub gateway_api: Option<GatewayApiInstall>,
    /// `meshClient:`.
    pub mesh_client: Option<MeshClientInstall>,
}

impl RawInstall {
    /// The components the entry sets, in registry order.
    pub fn into_installs(self) -> Vec<Install> {
        let RawInstall {
            ingress_nginx,
            kuberay_operator,
            kuberay_apiserver,
            istio,
            gateway_api,
            mesh_client,
        } = self;
        let mut found = Vec::new();
        found.extend(ingress_nginx.map(Install::IngressNginx));
        found.extend(kuberay_operator.map(Install::KuberayOperator));
        found.extend(kuberay_apiserver.map(Install::KuberayApiserver));
        found.extend(istio.map(Install::Istio));
        found.extend(gateway_api.map(Install::GatewayApi));
        found.extend(mesh_client.map(Install::MeshClient));
        found
    }
}

impl Install {
    /// Every component's name as written in scenarios, in registry order.
    pub const NAMES: &[&str] = &[
        "ingressNginx",
        "kuberayOperator",
        "kuberayApiserver",
        "istio",
        "gatewayApi",
        "meshClient",
    ];

    /// The component this entry installs: everything else asks it.
    ///
    /// ```
    /// use rayconform::install::Install;
    /// use rayconform::install::istio::IstioInstall;
    ///
    /// let item = Install::Istio(IstioInstall {
    ///     version: Some("1.29.2".into()),
    ///     ..Default::default()
    /// });
    /// let istio = item.component();
    /// assert_eq!((istio.name(), istio.version()), ("istio", "1.29.2".to_string()));
    /// assert_eq!(istio.unsupported_on("1.35"), None);
    /// assert_eq!(
    ///     istio.unsupported_on("1.36").as_deref(),
    ///     Some("istio 1.29.2 supports Kubernetes 1.31–1.35 only, not 1.36")
    /// );
    /// ```
    pub fn component(&self) -> &dyn Component {
        match self {
            Install::IngressNginx(c) => c,
            Install::KuberayOperator(c) => c,
            Install::KuberayApiserver(c) => c,
            Install::Istio(c) => c,
            Install::GatewayApi(c) => c,
            Install::MeshClient(c) => c,
        }
    }

    fn component_mut(&mut self) -> &mut dyn Component {
        match self {
            Install::IngressNginx(c) => c,
            Install::KuberayOperator(c) => c,
            Install::KuberayApiserver(c) => c,
            Install::Istio(c) => c,
            Install::GatewayApi(c) => c,
            Install::MeshClient(c) => c,
        }
    }

    /// The install as it is applied for a scenario in `namespace`:
    /// templates filled. Two scenarios share an install only when these
    /// are equal: the same text can point at different namespaces.
    pub fn as_applied(&self, namespace: &str) -> Install {
        let mut applied = self.clone();
        applied.component_mut().fill_templates(namespace);
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each name reads back (as a `RawInstall` field with an empty spec)
    /// as the component of that name, which serializes under that name.
    #[test]
    fn names_fields_and_components_agree() {
        for name in Install::NAMES {
            let raw: RawInstall =
                serde_json::from_value(serde_json::json!({ *name: {} })).expect(name);
            let installs = raw.into_installs();
            assert_eq!(installs.len(), 1, "{name}");
            assert_eq!(installs[0].component().name(), *name);
            let written = serde_json::to_value(&installs[0]).unwrap();
            assert!(written.get(name).is_some(), "{name}: {written}");
        }
    }
}
