//! The one builder of the lab's nginx configuration and variables from a
//! scenario's installs and objects, used by both `plan` (example ports and
//! placeholders) and the session (live ports, after every apply).
//!
//! ```
//! use rayconform::targets::lab::model::config::{IngressPorts, LabModel, PortText};
//! use std::collections::BTreeMap;
//!
//! let ports = IngressPorts::example(&[]);
//! let lab = LabModel::new("ns", &[], ports, PortText::Placeholder, ("c.crt".into(), "c.key".into()))
//!     .unwrap();
//! assert_eq!(lab.variables["INGRESS_HTTP"], "localhost:<port chosen at run time>");
//! let config = lab.render(std::iter::empty(), &[]);
//! assert!(config.conf.contains("listen 127.0.0.1:18080 default_server;"));
//! ```

use super::gateway::{self, GatewayRouteObject};
use super::nginx_conf::{NginxSettings, STREAM_MODULE, render};
use super::objects::{LabObject, ServiceObject};
use super::routes::{LocalHead, Routes, RoutingInput, compute};
use crate::scenario::template::TemplateError;
use crate::scenario::{Install, template};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How the lab's variables show a listener's port before it is chosen.
pub const PORT_PLACEHOLDER: &str = "<port chosen at run time>";

/// The ingress listeners of a lab nginx.
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
    /// A Gateway API install: its Gateway's routes become nginx config
    /// with NGINX Gateway Fabric's semantics.
    pub gateway_api: bool,
}

impl LabSettings {
    /// Reads the installs; `vars` fills `${NAMESPACE}` in tcp-services.
    pub fn from_installs(
        installs: &[Install],
        vars: &BTreeMap<String, String>,
    ) -> Result<Self, TemplateError> {
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
                        let value = template::render(value, vars)?;
                        settings.tcp_services.insert(port.clone(), value);
                    }
                }
                Install::KuberayOperator(k) => {
                    settings.head_cluster_ip_service = k.head_cluster_ip_service
                }
                Install::GatewayApi(_) => settings.gateway_api = true,
                // Components the lab does not stand in for are refused
                // earlier (`support`), with the reason.
                _ => {}
            }
        }
        Ok(settings)
    }
}

impl IngressPorts {
    /// The example ports a plan shows: http 18080, https 18443, the TLS
    /// hand-off 18442, tcp-services 19000, 19001, ... in port order.
    pub fn example(tcp_service_ports: &[String]) -> IngressPorts {
        IngressPorts {
            http: 18080,
            https: 18443,
            tls_internal: 18442,
            tcp: tcp_service_ports
                .iter()
                .enumerate()
                .map(|(i, port)| (port.clone(), 19000 + i as u16))
                .collect(),
        }
    }
}

/// The tcp-services ports (`"6379"`, ...) the installs ask the ingress for,
/// in the order listeners are chosen for them.
pub fn tcp_service_ports(installs: &[Install]) -> Vec<String> {
    installs
        .iter()
        .filter_map(|i| match i {
            Install::IngressNginx(n) => Some(n.tcp_services.keys().cloned().collect::<Vec<_>>()),
            Install::GatewayApi(g) => Some(
                crate::install::Component::host_tcp_ports(g)
                    .iter()
                    .map(u16::to_string)
                    .collect(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Whether the variables name the listeners' real ports or say they are
/// chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortText {
    /// `localhost:<port>` (a session).
    Live,
    /// `localhost:<port chosen at run time>` (a plan).
    Placeholder,
}

/// The lab of one scenario: its variables and what its installs ask of the
/// stand-ins, ready to render the nginx config for any set of objects.
#[derive(Debug, Clone)]
pub struct LabModel {
    /// The variables steps see (`NAMESPACE`, `INGRESS_HTTP`, ...).
    pub variables: BTreeMap<String, String>,
    /// What the installs ask of the stand-ins.
    pub settings: LabSettings,
    /// The ingress listeners.
    pub ports: IngressPorts,
    /// Certificate and key of the ingress's own TLS servers.
    pub server_cert: (PathBuf, PathBuf),
}

/// An nginx config and what the lab noted while building it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabConfig {
    /// The full nginx.conf.
    pub conf: String,
    /// What the lab decided and why (for diagnostics).
    pub notes: Vec<String>,
    /// Upstream defects the lab's own model stood in for.
    pub modelled: Vec<String>,
}

impl LabModel {
    /// The lab for `installs` in `namespace` with its listeners on `ports`.
    pub fn new(
        namespace: &str,
        installs: &[Install],
        ports: IngressPorts,
        shown: PortText,
        server_cert: (PathBuf, PathBuf),
    ) -> Result<LabModel, TemplateError> {
        let show = |port: u16| match shown {
            PortText::Live => format!("localhost:{port}"),
            PortText::Placeholder => format!("localhost:{PORT_PLACEHOLDER}"),
        };
        let mut variables: BTreeMap<String, String> = [
            ("NAMESPACE", namespace.to_string()),
            ("CLUSTER_NAME", "lab".to_string()),
            ("INGRESS_HOST", "localhost".to_string()),
            ("INGRESS_HTTP", show(ports.http)),
            ("INGRESS_HTTPS", show(ports.https)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (port, local) in &ports.tcp {
            variables.insert(format!("INGRESS_TCP_{port}"), show(*local));
        }
        let settings = LabSettings::from_installs(installs, &variables)?;
        Ok(LabModel {
            variables,
            settings,
            ports,
            server_cert,
        })
    }

    /// The head Service KubeRay creates for a RayCluster: headless unless
    /// the operator runs with `headClusterIpService`.
    pub fn head_service(&self, cluster: &str, namespace: &str) -> ServiceObject {
        ServiceObject::kuberay_head(cluster, namespace, !self.settings.head_cluster_ip_service)
    }

    /// The nginx config for the applied `objects` (RayClusters among them
    /// are ignored: `heads` stand for them, each with its head Service).
    pub fn render<'a>(
        &self,
        objects: impl IntoIterator<Item = &'a LabObject>,
        heads: &[&LocalHead],
    ) -> LabConfig {
        let mut services: Vec<&ServiceObject> = Vec::new();
        let mut ingresses = Vec::new();
        let mut gateway_routes = Vec::new();
        for object in objects {
            match object {
                LabObject::Service(s) => services.push(s),
                LabObject::Ingress(i) => ingresses.push(i),
                LabObject::GatewayRoute(r) => gateway_routes.push(r),
                _ => {}
            }
        }
        let head_services: Vec<ServiceObject> = heads
            .iter()
            .map(|h| self.head_service(&h.cluster, &h.namespace))
            .collect();
        services.extend(&head_services);
        let mut notes = Vec::new();
        let ingresses = if self.settings.ingress_nginx {
            ingresses
        } else {
            for i in &ingresses {
                notes.push(format!(
                    "Ingress {}/{} has no effect: the scenario installs no ingress-nginx",
                    i.namespace, i.name
                ));
            }
            Vec::new()
        };
        for i in &ingresses {
            notes.extend(i.ignored.iter().cloned());
        }
        let tcp_services = self
            .settings
            .tcp_services
            .iter()
            .filter_map(|(port, value)| {
                self.ports
                    .tcp
                    .get(port)
                    .map(|local| (port.clone(), (*local, value.clone())))
            })
            .collect();
        let input = RoutingInput {
            services,
            ingresses,
            heads: heads.to_vec(),
            ssl_passthrough_enabled: self.settings.ssl_passthrough,
            tcp_services,
        };
        let mut routes = compute(&input);
        routes.notes.extend(notes);
        self.add_gateway_routes(&input, &gateway_routes, &mut routes);
        let settings = NginxSettings {
            stream_module: STREAM_MODULE.into(),
            http_port: self.ports.http,
            https_port: self.ports.https,
            tls_internal_port: self.ports.tls_internal,
            ssl_passthrough: self.settings.ssl_passthrough || self.settings.gateway_api,
            server_cert: self.server_cert.0.clone(),
            server_key: self.server_cert.1.clone(),
            underscores_in_headers: self.settings.underscores_in_headers,
        };
        LabConfig {
            conf: render(&settings, &routes),
            notes: routes.notes,
            modelled: routes.modelled,
        }
    }
}

impl LabModel {
    /// The local port of each listener of the install's Gateway: `http` on
    /// the HTTP port, `tls` on the HTTPS port, the others on the TCP ports
    /// chosen for them.
    pub fn gateway_listener_ports(&self) -> BTreeMap<String, u16> {
        crate::install::gateway_api::LISTENERS
            .iter()
            .filter_map(|l| {
                let port = match l.port {
                    80 => Some(self.ports.http),
                    443 => Some(self.ports.https),
                    other => self.ports.tcp.get(&other.to_string()).copied(),
                };
                port.map(|p| (l.name.to_string(), p))
            })
            .collect()
    }

    /// Renders the Gateway API routes into `routes` (NGINX Gateway
    /// Fabric's semantics), or notes they have no effect without a
    /// `gatewayApi` install. Every rendered route is recorded as modelled.
    fn add_gateway_routes(
        &self,
        input: &RoutingInput<'_>,
        objects: &[&GatewayRouteObject],
        routes: &mut Routes,
    ) {
        if objects.is_empty() {
            return;
        }
        if !self.settings.gateway_api {
            for r in objects {
                routes.notes.push(format!(
                    "{} has no effect: the scenario installs no gatewayApi",
                    r.key()
                ));
            }
            return;
        }
        let mut gateway = gateway::compute(input, objects, &self.gateway_listener_ports());
        routes.passthrough.append(&mut gateway.passthrough);
        routes.notes.append(&mut gateway.notes);
        routes.modelled.push(format!(
            "Gateway API routes ({}) are served by the lab's nginx configured with {} semantics, \
             not by the scenario's implementation (Envoy Gateway): a verdict here is modelled",
            objects
                .iter()
                .map(|r| r.key().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            gateway::MODELLED_IMPLEMENTATION
        ));
        routes.gateway = gateway;
    }
}
