//! Gateway API routes as the lab understands them, with **NGINX Gateway
//! Fabric's** semantics (v2.6.7, read from its source at that tag): the
//! lab has no Envoy, so a gateway-api scenario on lab runs real Ray behind
//! real nginx configured the way NGF configures it, and its verdicts are
//! *modelled* — never Envoy Gateway's behaviour.
//!
//! What NGF does, and the lab with it:
//! - a TLS listener in mode Passthrough → a `stream` server with
//!   `ssl_preread` and a map from `$ssl_preread_server_name` to the route's
//!   upstream (`internal/controller/nginx/config/stream_servers_template.go`,
//!   `maps.go`);
//! - upstreams are the Service's EndpointSlices, never its ClusterIP
//!   (`internal/controller/state/resolver/resolver.go`): a headless
//!   Service works;
//! - a GRPCRoute → `grpc_pass` (`servers_template.go`), with no
//!   `underscores_in_headers`, so nginx drops header names with underscores;
//! - an HTTPRoute PathPrefix `/p` → locations `/p/` and `= /p`; URLRewrite
//!   ReplacePrefixMatch → `rewrite <regex> <replacement> break`
//!   (`servers.go` `createMainRewriteForFilters`);
//! - TCPRoute only as v1alpha2 behind its experimental features
//!   (`internal/controller/manager.go`): the v1.6.1 standard channel's
//!   TCPRoute v1 is not read, so the lab skips it with that reason.
//!
//! The Gateway itself is the install's (`install::gateway_api::LISTENERS`):
//! a route attaches to it by `parentRefs` naming that Gateway and listener.

use super::objects::{BackendRef, ObjectKey, PortRef, TranslateError};
use super::routes::{PassthroughRoute, RoutingInput, Upstream, resolve_endpoints};
use crate::gateway_api::routes::{
    BackendRule, HttpRoute, HttpRouteSpec, PathMatchType, PathModifierType,
};
use crate::gateway_api::{GatewayApiObject, from_value, meta};
use crate::install::gateway_api::{GATEWAY_NAME, GATEWAY_NAMESPACE, listener};
use crate::targets::Manifest;
use std::collections::BTreeMap;

/// The NGF release whose behaviour the lab models.
pub const MODELLED_IMPLEMENTATION: &str = "NGINX Gateway Fabric v2.6.7";

/// A Gateway API route the lab renders.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayRouteObject {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// What kind of route, with what the lab acts on.
    pub route: GatewayRoute,
}

/// The route kinds the lab renders.
#[derive(Debug, Clone, PartialEq)]
pub enum GatewayRoute {
    /// `HTTPRoute`.
    Http(HttpRouteSpec),
    /// `GRPCRoute`: parent refs and backends (the lab routes every method).
    Grpc(Vec<meta::ParentRef>, Vec<BackendRule>),
    /// `TLSRoute`: parent refs, SNI names and backends.
    Tls(Vec<meta::ParentRef>, Vec<String>, Vec<BackendRule>),
}

impl GatewayRouteObject {
    /// The object's key.
    pub fn key(&self) -> ObjectKey {
        let kind = match self.route {
            GatewayRoute::Http(_) => "HTTPRoute",
            GatewayRoute::Grpc(..) => "GRPCRoute",
            GatewayRoute::Tls(..) => "TLSRoute",
        };
        ObjectKey {
            kind: kind.to_string(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    fn source(&self) -> String {
        format!("{} {}/{}", self.key().kind, self.namespace, self.name)
    }
}

/// Reads a manifest of a Gateway API (or Envoy Gateway) group.
pub fn translate(
    manifest: &Manifest,
    name: &str,
    namespace: &str,
) -> Result<GatewayRouteObject, TranslateError> {
    let object = from_value(manifest)
        .map_err(TranslateError::Invalid)?
        .ok_or_else(|| TranslateError::Invalid(format!("`{name}` is not a Gateway API object")))?;
    let route = match object {
        GatewayApiObject::HttpRoute(r) => GatewayRoute::Http(r.spec),
        GatewayApiObject::GrpcRoute(r) => GatewayRoute::Grpc(
            r.spec.parent_refs,
            r.spec
                .rules
                .into_iter()
                .map(|rule| BackendRule {
                    name: rule.name,
                    backend_refs: rule.backend_refs,
                })
                .collect(),
        ),
        GatewayApiObject::TlsRoute(r) => {
            GatewayRoute::Tls(r.spec.parent_refs, r.spec.hostnames, r.spec.rules)
        }
        GatewayApiObject::TcpRoute(_) => {
            return Err(TranslateError::Unsupported(format!(
                "TCPRoute `{name}` ({MODELLED_IMPLEMENTATION}, the lab's model, reads TCPRoute \
                 only as v1alpha2 and only with its experimental features on; the v1.6.1 \
                 standard channel serves TCPRoute v1)"
            )));
        }
        other => {
            return Err(TranslateError::Unsupported(format!(
                "{other_kind} `{name}` (the lab's Gateway is the install's; it renders \
                 HTTPRoute, GRPCRoute and TLSRoute)",
                other_kind = kind_name(&other)
            )));
        }
    };
    Ok(GatewayRouteObject {
        name: name.to_string(),
        namespace: namespace.to_string(),
        route,
    })
}

fn kind_name(object: &GatewayApiObject) -> &'static str {
    match object {
        GatewayApiObject::GatewayClass(_) => "GatewayClass",
        GatewayApiObject::Gateway(_) => "Gateway",
        GatewayApiObject::HttpRoute(_) => "HTTPRoute",
        GatewayApiObject::GrpcRoute(_) => "GRPCRoute",
        GatewayApiObject::TlsRoute(_) => "TLSRoute",
        GatewayApiObject::TcpRoute(_) => "TCPRoute",
        GatewayApiObject::ClientTrafficPolicy(_) => "Envoy Gateway ClientTrafficPolicy",
        GatewayApiObject::EnvoyProxy(_) => "Envoy Gateway EnvoyProxy",
    }
}

/// One location of an HTTPRoute rule, NGF-shaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayLocation {
    /// The nginx location selector (`/ray/`, `= /ray`).
    pub selector: String,
    /// `rewrite` arguments for URLRewrite (`<regex> <replacement>`).
    pub rewrite: Option<String>,
    /// Where it goes.
    pub upstream: Upstream,
    /// The route it comes from.
    pub source: String,
}

/// An HTTP server for one set of hostnames on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayHttpServer {
    /// The listener's name (`http`, `ray-client`).
    pub listener: String,
    /// The local port nginx listens on for it.
    pub listen: u16,
    /// `server_name`s (`_` when the route names none).
    pub hostnames: Vec<String>,
    /// Its locations, in route order.
    pub locations: Vec<GatewayLocation>,
    /// A gRPC server (HTTP/2 cleartext, `grpc_pass`).
    pub grpc: bool,
}

/// Everything the Gateway's routes make the lab's nginx do, besides the
/// SNI passthrough routes (rendered with the ingress's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayRoutes {
    /// HTTP and gRPC servers.
    pub servers: Vec<GatewayHttpServer>,
    /// TLS passthrough routes (SNI → upstream).
    pub passthrough: Vec<PassthroughRoute>,
    /// What the lab decided and why.
    pub notes: Vec<String>,
}

/// The listener a parent ref attaches to on the install's Gateway, if it
/// names that Gateway (and, with `sectionName`, one of its listeners).
fn attached_listeners(route: &GatewayRouteObject, parents: &[meta::ParentRef]) -> Vec<String> {
    parents
        .iter()
        .filter(|p| {
            p.name == GATEWAY_NAME
                && p.namespace.as_deref().unwrap_or(&route.namespace) == GATEWAY_NAMESPACE
                && p.kind.as_deref().unwrap_or("Gateway") == "Gateway"
        })
        .filter_map(|p| p.section_name.clone())
        .collect()
}

fn backend(b: &meta::BackendRef) -> Option<BackendRef> {
    Some(BackendRef {
        service: b.name.clone(),
        port: PortRef::Number(b.port?),
    })
}

/// The upstream of a rule's first backend (the lab runs one head per
/// Service, so weights do not matter), through the Service's endpoints.
fn rule_upstream(
    input: &RoutingInput<'_>,
    namespace: &str,
    backends: &[meta::BackendRef],
    notes: &mut Vec<String>,
    source: &str,
) -> Upstream {
    match backends.first().and_then(backend) {
        Some(b) => resolve_endpoints(input, namespace, &b, notes),
        None => {
            let why = format!("{source}: a rule without a Service backend and port");
            notes.push(why.clone());
            Upstream::Unreachable {
                dial: "none".into(),
                why,
            }
        }
    }
}

/// NGF's rewrite for ReplacePrefixMatch of `path` by `replacement`
/// (`servers.go` `createMainRewriteForFilters`, v2.6.7).
pub fn replace_prefix_rewrite(path: &str, replacement: &str) -> String {
    let filter_prefix = if replacement.is_empty() {
        "/"
    } else {
        replacement
    };
    let escaped = path.replace('$', "\\$");
    let mut regex = format!("^{escaped}([^?]*)?");
    let mut replace = format!("{filter_prefix}$1?$args?");
    if filter_prefix.ends_with('/') && !path.ends_with('/') {
        regex = format!("^{escaped}(?:/([^?]*))?");
    }
    if path.ends_with('/') && !filter_prefix.ends_with('/') {
        replace = format!("{filter_prefix}/$1?$args?");
    }
    format!("{regex} {replace}")
}

fn http_locations(
    input: &RoutingInput<'_>,
    route: &GatewayRouteObject,
    spec: &HttpRoute,
    notes: &mut Vec<String>,
) -> Vec<GatewayLocation> {
    let source = route.source();
    let mut out = Vec::new();
    for rule in &spec.spec.rules {
        let upstream = rule_upstream(input, &route.namespace, &rule.backend_refs, notes, &source);
        let prefix_rewrite = rule
            .filters
            .iter()
            .filter_map(|f| f.url_rewrite.as_ref()?.path.as_ref())
            .find(|p| p.modifier_type == PathModifierType::ReplacePrefixMatch)
            .and_then(|p| p.replace_prefix_match.clone());
        let default_match = [crate::gateway_api::routes::HttpRouteMatch {
            path: Some(crate::gateway_api::routes::HttpPathMatch {
                match_type: PathMatchType::PathPrefix,
                value: "/".into(),
            }),
        }];
        let matches = if rule.matches.is_empty() {
            &default_match[..]
        } else {
            &rule.matches[..]
        };
        for m in matches {
            let Some(path) = &m.path else { continue };
            let selectors = match path.match_type {
                PathMatchType::Exact => vec![format!("= {}", path.value)],
                PathMatchType::PathPrefix if path.value.ends_with('/') => {
                    vec![path.value.clone()]
                }
                PathMatchType::PathPrefix => {
                    vec![format!("{}/", path.value), format!("= {}", path.value)]
                }
                PathMatchType::RegularExpression => vec![format!("~ ^{}", path.value)],
            };
            let rewrite = match (&prefix_rewrite, path.match_type) {
                (Some(r), PathMatchType::PathPrefix) => {
                    Some(replace_prefix_rewrite(&path.value, r))
                }
                _ => None,
            };
            for selector in selectors {
                out.push(GatewayLocation {
                    selector,
                    rewrite: rewrite.clone(),
                    upstream: upstream.clone(),
                    source: source.clone(),
                });
            }
        }
    }
    out
}

/// Computes what the routes attached to the install's Gateway make nginx
/// do; `listen` gives the local port of each listener by name.
pub fn compute(
    input: &RoutingInput<'_>,
    routes: &[&GatewayRouteObject],
    listen: &BTreeMap<String, u16>,
) -> GatewayRoutes {
    let mut out = GatewayRoutes::default();
    for route in routes {
        let source = route.source();
        let parents = match &route.route {
            GatewayRoute::Http(spec) => &spec.parent_refs,
            GatewayRoute::Grpc(parents, _) => parents,
            GatewayRoute::Tls(parents, _, _) => parents,
        };
        let attached = attached_listeners(route, parents);
        if attached.is_empty() {
            out.notes.push(format!(
                "{source} is not attached: it names no listener (sectionName) of Gateway \
                 {GATEWAY_NAMESPACE}/{GATEWAY_NAME}"
            ));
            continue;
        }
        for name in attached {
            let (Some(l), Some(&port)) = (listener(&name), listen.get(&name)) else {
                out.notes.push(format!(
                    "{source}: Gateway {GATEWAY_NAMESPACE}/{GATEWAY_NAME} has no listener `{name}`"
                ));
                continue;
            };
            match (&route.route, l.protocol) {
                (GatewayRoute::Tls(_, hostnames, rules), "TLS") => {
                    let upstream = match rules.first() {
                        Some(rule) => rule_upstream(
                            input,
                            &route.namespace,
                            &rule.backend_refs,
                            &mut out.notes,
                            &source,
                        ),
                        None => continue,
                    };
                    for host in hostnames {
                        out.passthrough.push(PassthroughRoute {
                            server_name: host.clone(),
                            upstream: upstream.clone(),
                            source: source.clone(),
                        });
                    }
                }
                (GatewayRoute::Grpc(_, rules), "HTTP") => {
                    let upstream = match rules.first() {
                        Some(rule) => rule_upstream(
                            input,
                            &route.namespace,
                            &rule.backend_refs,
                            &mut out.notes,
                            &source,
                        ),
                        None => continue,
                    };
                    out.servers.push(GatewayHttpServer {
                        listener: name.clone(),
                        listen: port,
                        hostnames: vec!["_".into()],
                        locations: vec![GatewayLocation {
                            selector: "/".into(),
                            rewrite: None,
                            upstream,
                            source: source.clone(),
                        }],
                        grpc: true,
                    });
                }
                (GatewayRoute::Http(spec), "HTTP") => {
                    let typed = HttpRoute {
                        api_version: String::new(),
                        kind: String::new(),
                        metadata: meta::ObjectMeta::default(),
                        spec: spec.clone(),
                    };
                    let hostnames = if spec.hostnames.is_empty() {
                        vec!["_".to_string()]
                    } else {
                        spec.hostnames.clone()
                    };
                    out.servers.push(GatewayHttpServer {
                        listener: name.clone(),
                        listen: port,
                        hostnames,
                        locations: http_locations(input, route, &typed, &mut out.notes),
                        grpc: false,
                    });
                }
                (_, protocol) => out.notes.push(format!(
                    "{source}: listener `{name}` speaks {protocol}, which this route kind cannot attach to"
                )),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_prefix_match_follows_ngf() {
        assert_eq!(
            replace_prefix_rewrite("/ray", "/"),
            "^/ray(?:/([^?]*))? /$1?$args?"
        );
        assert_eq!(
            replace_prefix_rewrite("/rayslash/", "/"),
            "^/rayslash/([^?]*)? /$1?$args?"
        );
        assert_eq!(
            replace_prefix_rewrite("/ray/", "/x"),
            "^/ray/([^?]*)? /x/$1?$args?"
        );
    }
}
