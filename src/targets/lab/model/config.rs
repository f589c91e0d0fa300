//! The one builder of the lab's nginx configuration and variables from a
//! scenario's installs and objects, used by both `plan` and the session.

use crate::scenario::{Install, template};
use std::collections::BTreeMap;

/// The ingress listeners of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressPorts {
    /// `INGRESS_HTTP`.
    pub http: u16,
    /// `INGRESS_HTTPS`.
    pub https: u16,
    /// The TLS HTTP servers behind the passthrough front (ingress-nginx's 442).
    pub tls_internal: u16,
    /// tcp-services: scenario port → local port.
    pub tcp: BTreeMap<String, u16>,
}

/// What the scenario's installs ask of the stand-ins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabSettings {
    /// An ingress-nginx controller is installed (else Ingresses do nothing).
    pub ingress_nginx: bool,
    /// `--enable-ssl-passthrough`.
    pub ssl_passthrough: bool,
    /// KubeRay's head Service gets a ClusterIP (`ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE`).
    pub head_cluster_ip_service: bool,
    /// tcp-services entries, templated: port → `namespace/service:port`.
    pub tcp_services: BTreeMap<String, String>,
    /// Controller ConfigMap `enable-underscores-in-headers: "true"`.
    pub underscores_in_headers: bool,
}

impl LabSettings {
    /// Reads the installs; `vars` fills `${NAMESPACE}` in tcp-services.
    pub fn from_installs(
        installs: &[Install],
        vars: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let mut settings = LabSettings::default();
        for install in installs {
            match install {
                Install::IngressNginx(n) => {
                    settings.ingress_nginx = true;
                    settings.ssl_passthrough = n.ssl_passthrough;
                    settings.underscores_in_headers = n
                        .config
                        .get("enable-underscores-in-headers")
                        .is_some_and(|v| v == "true");
                    for (port, value) in &n.tcp_services {
                        let value = template::render(value, vars).map_err(|e| e.to_string())?;
                        settings.tcp_services.insert(port.clone(), value);
                    }
                }
                Install::KuberayOperator(k) => {
                    settings.head_cluster_ip_service = k.head_cluster_ip_service
                }
                Install::KuberayApiserver(_) | Install::Istio(_) => {}
            }
        }
        Ok(settings)
    }
}
