//! From Services, Ingresses and TCP services to concrete routes onto local
//! ports, with ingress-nginx's semantics.
//!
//! This is where the lab decides what a request on the ingress reaches:
//! Service → selector → the RayCluster's local head → the local port of the
//! Ray role the target port names. Where ingress-nginx would not reach a
//! backend, the route says so ([`Upstream::Unreachable`]) instead of
//! silently working.

use super::objects::{
    BackendProtocol, BackendRef, IngressObject, PathType, PortRef, RayPort, ServiceObject,
};
use std::collections::BTreeMap;

/// A Ray head running locally for a RayCluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalHead {
    /// The RayCluster's name.
    pub cluster: String,
    /// The RayCluster's namespace.
    pub namespace: String,
    /// Local ports by Ray role (the lab runs GCS, dashboard and client).
    pub ports: BTreeMap<RayPort, u16>,
}

impl LocalHead {
    /// The labels KubeRay puts on the head pod.
    pub fn labels(&self) -> BTreeMap<String, String> {
        [
            ("ray.io/cluster", self.cluster.as_str()),
            ("ray.io/node-type", "head"),
            ("ray.io/group", "headgroup"),
            ("ray.io/is-ray-node", "yes"),
            ("app.kubernetes.io/name", "kuberay"),
            ("app.kubernetes.io/created-by", "kuberay-operator"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

/// Where a route leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A local port on 127.0.0.1.
    Local(u16),
    /// Nothing answers, as on a cluster: `dial` is what ingress-nginx would
    /// try to reach (e.g. `None:10001`), `why` says why it fails.
    Unreachable {
        /// The address that would be dialled.
        dial: String,
        /// Why nothing answers there.
        why: String,
    },
}

/// One HTTP location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// The Ingress path.
    pub path: String,
    /// Its path type.
    pub path_type: PathType,
    /// `rewrite-target` of the Ingress it comes from.
    pub rewrite_target: Option<String>,
    /// `backend-protocol` of the Ingress it comes from.
    pub protocol: BackendProtocol,
    /// Where it goes.
    pub upstream: Upstream,
    /// `namespace/ingress` it comes from.
    pub source: String,
}

/// Every HTTP location of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoutes {
    /// The host (`server_name`); `None` is the default server.
    pub host: Option<String>,
    /// Some Ingress of this host uses `rewrite-target` or `use-regex`: all
    /// its paths become case-insensitive regexes.
    pub regex: bool,
    /// Locations, longest path first.
    pub routes: Vec<HttpRoute>,
}

/// An SSL-passthrough route: SNI → backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassthroughRoute {
    /// The server name in the ClientHello.
    pub server_name: String,
    /// Where it goes.
    pub upstream: Upstream,
    /// `namespace/ingress` it comes from.
    pub source: String,
}

/// A tcp-services entry: a local listener → backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpRoute {
    /// The port as written in the scenario (`"10001"`).
    pub service_port: String,
    /// The local port nginx listens on.
    pub listen: u16,
    /// Where it goes.
    pub upstream: Upstream,
    /// The entry's value (`namespace/service:port`).
    pub source: String,
}

/// Everything nginx must route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// HTTP servers with a `server_name`, sorted by host.
    pub hosts: Vec<HostRoutes>,
    /// Locations of rules without a host (served by the default server).
    pub default_host: Vec<HttpRoute>,
    /// Whether the default server's paths are regexes.
    pub default_host_regex: bool,
    /// SNI routes, when `--enable-ssl-passthrough` is on.
    pub passthrough: Vec<PassthroughRoute>,
    /// TCP services.
    pub tcp: Vec<TcpRoute>,
    /// What the lab decided and why (goes into diagnostics).
    pub notes: Vec<String>,
    /// Known upstream defects these routes reproduce by the lab's own model
    /// of ingress-nginx, not by running the real controller: a failure they
    /// cause is modelled, and cannot show an upstream fix.
    pub modelled: Vec<String>,
    /// HTTP and gRPC servers of Gateway API routes (NGINX Gateway Fabric's
    /// semantics, `super::gateway`); their TLS passthrough routes are in
    /// `passthrough`.
    pub gateway: super::gateway::GatewayRoutes,
}

/// What routes are computed from.
#[derive(Debug, Clone, Default)]
pub struct RoutingInput<'a> {
    /// Services (user-written and synthesized head Services).
    pub services: Vec<&'a ServiceObject>,
    /// Ingresses.
    pub ingresses: Vec<&'a IngressObject>,
    /// Running heads.
    pub heads: Vec<&'a LocalHead>,
    /// The controller runs with `--enable-ssl-passthrough`.
    pub ssl_passthrough_enabled: bool,
    /// tcp-services: scenario port → (local listen port, `ns/svc:port`).
    pub tcp_services: BTreeMap<String, (u16, String)>,
}

/// The prefix of a route note that is a line the ingress-nginx controller
/// would log, written by the lab's model of it (no controller runs on lab).
pub const MODELLED_CONTROLLER_LOG: &str = "[modelled] ingress-nginx controller: ";

/// The controller's warning for a tcp-services entry whose Service exists
/// but has no active endpoint for the port (no running head matches its
/// selector, or the Service has no such port), or `None`.
fn tcp_service_without_endpoint(input: &RoutingInput<'_>, value: &str) -> Option<String> {
    let (namespace, name, port) = parse_tcp_service(value)?;
    let service = input
        .services
        .iter()
        .find(|s| s.namespace == namespace && s.name == name)?;
    let has_port = service.ports.iter().any(|p| match &port {
        PortRef::Number(n) => p.port == *n,
        PortRef::Name(n) => p.name.as_deref() == Some(n.as_str()),
    });
    let has_head = input.heads.iter().any(|h| {
        h.namespace == namespace
            && !service.selector.is_empty()
            && service
                .selector
                .iter()
                .all(|(k, v)| h.labels().get(k) == Some(v))
    });
    (!has_port || !has_head).then(|| {
        format!(
            "Service \"{namespace}/{name}\" does not have any active Endpoint for TCP port {port}"
        )
    })
}

/// Computes the routes.
pub fn compute(input: &RoutingInput<'_>) -> Routes {
    let mut routes = Routes::default();
    let mut by_host: BTreeMap<Option<String>, (bool, Vec<HttpRoute>)> = BTreeMap::new();
    for ingress in &input.ingresses {
        let source = format!("{}/{}", ingress.namespace, ingress.name);
        let anns = &ingress.annotations;
        if anns.ssl_passthrough && input.ssl_passthrough_enabled {
            passthrough_routes(input, ingress, &source, &mut routes);
            continue;
        }
        if anns.ssl_passthrough {
            routes.notes.push(format!(
                "{source}: ssl-passthrough annotation ignored: the controller runs without \
                 --enable-ssl-passthrough (install.ingressNginx.sslPassthrough is false); \
                 its rules are served as plain HTTP(S) routes"
            ));
        }
        let regex = anns.rewrite_target.is_some() || anns.use_regex;
        for rule in &ingress.rules {
            let entry = by_host.entry(rule.host.clone()).or_default();
            entry.0 |= regex;
            for path in &rule.paths {
                entry.1.push(HttpRoute {
                    path: path.path.clone(),
                    path_type: path.path_type,
                    rewrite_target: anns.rewrite_target.clone(),
                    protocol: anns.backend_protocol,
                    upstream: resolve(input, &ingress.namespace, &path.backend, &mut routes.notes),
                    source: source.clone(),
                });
            }
        }
        if let Some(backend) = &ingress.default_backend {
            let entry = by_host.entry(None).or_default();
            entry.1.push(HttpRoute {
                path: "/".into(),
                path_type: PathType::Prefix,
                rewrite_target: None,
                protocol: anns.backend_protocol,
                upstream: resolve(input, &ingress.namespace, backend, &mut routes.notes),
                source: source.clone(),
            });
        }
    }
    for (host, (regex, mut list)) in by_host {
        // ingress-nginx orders locations by path length, longest first, so
        // the first matching regex is the most specific one.
        list.sort_by(|a, b| b.path.len().cmp(&a.path.len()).then(a.path.cmp(&b.path)));
        match host {
            None => {
                routes.default_host = list;
                routes.default_host_regex = regex;
            }
            Some(host) => routes.hosts.push(HostRoutes {
                host: Some(host),
                regex,
                routes: list,
            }),
        }
    }
    for (port, (listen, value)) in &input.tcp_services {
        if let Some(line) = tcp_service_without_endpoint(input, value) {
            // ingress-nginx v1.15.1 (internal/ingress/controller/controller.go)
            // warns and leaves the entry out: nothing listens on the port.
            routes.notes.push(format!(
                "tcp-services {port} → {value}: not served, as the controller leaves out an entry \
                 whose Service has no active endpoint: nothing listens on its port"
            ));
            routes
                .notes
                .push(format!("{MODELLED_CONTROLLER_LOG}{line}"));
            continue;
        }
        let upstream = match parse_tcp_service(value) {
            Some((ns, svc, svc_port)) => {
                let backend = BackendRef {
                    service: svc.to_string(),
                    port: svc_port,
                };
                resolve(input, ns, &backend, &mut routes.notes)
            }
            None => Upstream::Unreachable {
                dial: value.clone(),
                why: format!("tcp-services entry {port}: {value:?} is not namespace/service:port"),
            },
        };
        if let Upstream::Unreachable { why, .. } = &upstream {
            routes.notes.push(format!(
                "tcp-services {port} → {value}: no active endpoint ({why})"
            ));
        }
        routes.tcp.push(TcpRoute {
            service_port: port.clone(),
            listen: *listen,
            upstream,
            source: value.clone(),
        });
    }
    routes
}

fn passthrough_routes(
    input: &RoutingInput<'_>,
    ingress: &IngressObject,
    source: &str,
    routes: &mut Routes,
) {
    for rule in &ingress.rules {
        let Some(host) = &rule.host else {
            routes.notes.push(format!(
                "{source}: ssl-passthrough rule without a host ignored (passthrough routes by SNI)"
            ));
            continue;
        };
        for path in &rule.paths {
            if path.path != "/" {
                routes.notes.push(format!(
                    "{source}: ssl-passthrough honours only path `/`; path {} ignored",
                    path.path
                ));
                continue;
            }
            let upstream = passthrough_upstream(
                input,
                &ingress.namespace,
                &path.backend,
                &mut routes.notes,
                &mut routes.modelled,
            );
            routes.passthrough.push(PassthroughRoute {
                server_name: host.clone(),
                upstream,
                source: source.to_string(),
            });
        }
    }
}

/// ingress-nginx's passthrough proxy dials the Service's ClusterIP and port,
/// not its endpoints: a headless Service (`clusterIP: None`) cannot work.
/// The lab models that defect (it has no controller to run), so it is
/// recorded in `modelled`.
fn passthrough_upstream(
    input: &RoutingInput<'_>,
    namespace: &str,
    backend: &BackendRef,
    notes: &mut Vec<String>,
    modelled: &mut Vec<String>,
) -> Upstream {
    let service = input
        .services
        .iter()
        .find(|s| s.namespace == namespace && s.name == backend.service);
    if let Some(service) = service
        && service.headless
    {
        let port = service_port(service, &backend.port)
            .map(|p| p.to_string())
            .unwrap_or_else(|| backend.port.to_string());
        let why = format!(
            "Service {namespace}/{} is headless (clusterIP: None) and ingress-nginx's SSL \
             passthrough dials the ClusterIP, so it dials `None:{port}` and fails \
             (https://github.com/kubernetes/ingress-nginx/issues/1718)",
            service.name
        );
        notes.push(why.clone());
        modelled.push(format!(
            "SSL passthrough to headless Service {namespace}/{} is dropped by the lab's model of \
             ingress-nginx (https://github.com/kubernetes/ingress-nginx/issues/1718), not by a \
             real controller",
            service.name
        ));
        return Upstream::Unreachable {
            dial: format!("None:{port}"),
            why,
        };
    }
    resolve(input, namespace, backend, notes)
}

fn service_port(service: &ServiceObject, port: &PortRef) -> Option<u16> {
    service
        .ports
        .iter()
        .find(|p| match port {
            PortRef::Number(n) => p.port == *n,
            PortRef::Name(n) => p.name.as_deref() == Some(n.as_str()),
        })
        .map(|p| p.port)
}

/// Service → endpoints (the head whose labels match the selector) → the
/// local port of the Ray role the target port names.
fn resolve(
    input: &RoutingInput<'_>,
    namespace: &str,
    backend: &BackendRef,
    notes: &mut Vec<String>,
) -> Upstream {
    let unreachable = |why: String, notes: &mut Vec<String>| {
        notes.push(why.clone());
        Upstream::Unreachable {
            dial: format!("{}.{namespace}.svc:{}", backend.service, backend.port),
            why,
        }
    };
    let Some(service) = input
        .services
        .iter()
        .find(|s| s.namespace == namespace && s.name == backend.service)
    else {
        return unreachable(
            format!("Service {namespace}/{} not found", backend.service),
            notes,
        );
    };
    let Some(port) = service.ports.iter().find(|p| match &backend.port {
        PortRef::Number(n) => p.port == *n,
        PortRef::Name(n) => p.name.as_deref() == Some(n.as_str()),
    }) else {
        return unreachable(
            format!(
                "Service {namespace}/{} has no port {}",
                service.name, backend.port
            ),
            notes,
        );
    };
    let head = input.heads.iter().find(|h| {
        h.namespace == namespace
            && !service.selector.is_empty()
            && service
                .selector
                .iter()
                .all(|(k, v)| h.labels().get(k) == Some(v))
    });
    let Some(head) = head else {
        return unreachable(
            format!(
                "Service {namespace}/{} does not have any active Endpoint (no running Ray head matches its selector {:?})",
                service.name, service.selector
            ),
            notes,
        );
    };
    let role = match &port.target_port {
        PortRef::Number(n) => RayPort::from_number(*n),
        PortRef::Name(n) => RayPort::from_name(n),
    };
    match role.and_then(|r| head.ports.get(&r).map(|p| (r, *p))) {
        Some((_, local)) => Upstream::Local(local),
        None => unreachable(
            format!(
                "Service {namespace}/{} port {}: target port {} is not served by the lab's Ray head \
                 (it runs GCS 6379 and client 10001, and dashboard 8265 when a step of the scenario \
                 may reach it: any probe but grpcReady and mtls, or a command)",
                service.name, port.port, port.target_port
            ),
            notes,
        ),
    }
}

/// Service → endpoints → local port, as [`compute`] resolves Ingress
/// backends (not the ClusterIP): for the Gateway API routes
/// (`super::gateway`), whose implementations route to endpoints.
pub fn resolve_endpoints(
    input: &RoutingInput<'_>,
    namespace: &str,
    backend: &BackendRef,
    notes: &mut Vec<String>,
) -> Upstream {
    resolve(input, namespace, backend, notes)
}

/// Splits `namespace/service:port` (an optional `:PROXY` suffix is not
/// accepted here; the support check rejects it earlier).
pub fn parse_tcp_service(value: &str) -> Option<(&str, &str, PortRef)> {
    let (ns, rest) = value.split_once('/')?;
    let (svc, port) = rest.split_once(':')?;
    if ns.is_empty() || svc.is_empty() || port.contains(':') {
        return None;
    }
    let port = match port.parse::<u16>() {
        Ok(n) => PortRef::Number(n),
        Err(_) => PortRef::Name(port.to_string()),
    };
    Some((ns, svc, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::lab::model::objects::{IngressAnnotations, IngressPath, IngressRule};

    fn head() -> LocalHead {
        LocalHead {
            cluster: "rc".into(),
            namespace: "ns".into(),
            ports: [
                (RayPort::Client, 41001),
                (RayPort::Gcs, 46379),
                (RayPort::Dashboard, 48265),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn head_service(headless: bool) -> ServiceObject {
        ServiceObject::kuberay_head("rc", "ns", headless)
    }

    fn passthrough_ingress() -> IngressObject {
        IngressObject {
            name: "rayclient".into(),
            namespace: "ns".into(),
            annotations: IngressAnnotations {
                ssl_passthrough: true,
                ..Default::default()
            },
            rules: vec![IngressRule {
                host: Some("localhost".into()),
                paths: vec![IngressPath {
                    path: "/".into(),
                    path_type: PathType::Prefix,
                    backend: BackendRef {
                        service: "rc-head-svc".into(),
                        port: PortRef::Number(10001),
                    },
                }],
            }],
            default_backend: None,
            ignored: vec![],
        }
    }

    /// Routes for the passthrough Ingress on the head Service.
    fn passthrough_routes(headless: bool, ssl_passthrough_enabled: bool) -> Routes {
        let (h, s, i) = (head(), head_service(headless), passthrough_ingress());
        compute(&RoutingInput {
            services: vec![&s],
            ingresses: vec![&i],
            heads: vec![&h],
            ssl_passthrough_enabled,
            ..Default::default()
        })
    }

    #[test]
    fn passthrough_reaches_the_client_port_of_a_cluster_ip_service() {
        let routes = passthrough_routes(false, true);
        assert_eq!(routes.passthrough.len(), 1);
        assert_eq!(routes.passthrough[0].upstream, Upstream::Local(41001));
        assert!(routes.hosts.is_empty());
    }

    #[test]
    fn passthrough_to_a_headless_service_dials_none() {
        let routes = passthrough_routes(true, true);
        match &routes.passthrough[0].upstream {
            Upstream::Unreachable { dial, why } => {
                assert_eq!(dial, "None:10001");
                assert!(why.contains("1718"), "{why}");
            }
            other => panic!("expected unreachable, got {other:?}"),
        }
    }

    #[test]
    fn passthrough_annotation_without_the_flag_becomes_http_routes_with_a_note() {
        let routes = passthrough_routes(false, false);
        assert!(routes.passthrough.is_empty());
        assert_eq!(routes.hosts.len(), 1);
        assert!(
            routes
                .notes
                .iter()
                .any(|n| n.contains("--enable-ssl-passthrough"))
        );
    }

    #[test]
    fn tcp_services_resolve_through_a_headless_service_and_name_missing_ones() {
        let (h, s) = (head(), head_service(true));
        let tcp = [
            (
                "10001".to_string(),
                (50001, "ns/rc-head-svc:10001".to_string()),
            ),
            ("6379".to_string(), (50002, "ns/missing:6379".to_string())),
            (
                "8000".to_string(),
                (50003, "ns/rc-head-svc:8000".to_string()),
            ),
        ]
        .into_iter()
        .collect();
        let routes = compute(&RoutingInput {
            services: vec![&s],
            heads: vec![&h],
            tcp_services: tcp,
            ..Default::default()
        });
        let by_port: BTreeMap<_, _> = routes
            .tcp
            .iter()
            .map(|t| (t.service_port.as_str(), &t.upstream))
            .collect();
        assert_eq!(by_port["10001"], &Upstream::Local(41001));
        assert!(
            matches!(by_port["6379"], Upstream::Unreachable { why, .. } if why.contains("not found"))
        );
        assert!(
            matches!(by_port["8000"], Upstream::Unreachable { why, .. } if why.contains("not served"))
        );
    }

    #[test]
    fn a_tcp_service_without_endpoint_is_left_out_with_the_controllers_warning() {
        let svc = ServiceObject {
            name: "rc-head-svc".into(),
            namespace: "ns".into(),
            headless: false,
            selector: [("ray.io/cluster".to_string(), "rc".to_string())].into(),
            ports: vec![crate::targets::lab::model::objects::ServicePort {
                name: None,
                port: 9000,
                target_port: PortRef::Number(9000),
            }],
        };
        let tcp = [(
            "9000".to_string(),
            (19000, "ns/rc-head-svc:9000".to_string()),
        )]
        .into();
        let routes = compute(&RoutingInput {
            services: vec![&svc],
            tcp_services: tcp,
            ..RoutingInput::default()
        });
        assert!(routes.tcp.is_empty(), "{:?}", routes.tcp);
        assert!(
            routes.notes.contains(&format!(
                "{MODELLED_CONTROLLER_LOG}Service \"ns/rc-head-svc\" does not have any active Endpoint for TCP port 9000"
            )),
            "{:?}",
            routes.notes
        );
    }

    #[test]
    fn tcp_service_values_are_parsed() {
        assert_eq!(
            parse_tcp_service("ns/svc:10001"),
            Some(("ns", "svc", PortRef::Number(10001)))
        );
        assert_eq!(parse_tcp_service("ns/svc:10001:PROXY"), None);
        assert_eq!(parse_tcp_service("svc:10001"), None);
    }
}
