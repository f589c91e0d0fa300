//! Our own strict typed model of the Gateway API fields rayconform uses
//! (Gateway API v1.6.1, standard channel) plus the two Envoy Gateway
//! extension kinds it writes. Unknown fields are rejected, and every
//! problem of a file is located (`file:line:column`), so a misspelt field
//! in a fixture fails `cargo test` instead of being pruned silently by the
//! API server's structural schema.
//!
//! `kubernetes-validate` has no schema for these CRDs (it knows only
//! built-in kinds), so this model is the check fixtures get.
//!
//! ```
//! use rayconform::gateway_api::check_text;
//!
//! let bad = "apiVersion: gateway.networking.k8s.io/v1\nkind: TLSRoute\nmetadata: {name: r}\nspec:\n  parentRefs: [{name: g}]\n  hostnames: [localhost]\n  rules: [{backendRefs: [{name: s, port: 1}]}]\n  sni: x\n";
//! let problems = check_text(bad);
//! assert_eq!((problems[0].line, problems[0].column), (8, 3));
//! assert!(problems[0].message.contains("sni"), "{}", problems[0].message);
//! ```

pub mod envoy_gateway;
pub mod gateway;
pub mod meta;
pub mod routes;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The Gateway API group.
pub const GROUP: &str = "gateway.networking.k8s.io";
/// The apiVersion of every Gateway API kind we use in v1.6.1's standard channel.
pub const API_VERSION: &str = "gateway.networking.k8s.io/v1";
/// The apiVersion of Envoy Gateway's extension kinds.
pub const ENVOY_GATEWAY_API_VERSION: &str = "gateway.envoyproxy.io/v1alpha1";

/// Every object this model knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayApiObject {
    /// `GatewayClass`.
    GatewayClass(gateway::GatewayClass),
    /// `Gateway`.
    Gateway(gateway::Gateway),
    /// `HTTPRoute`.
    HttpRoute(routes::HttpRoute),
    /// `GRPCRoute`.
    GrpcRoute(routes::GrpcRoute),
    /// `TLSRoute`.
    TlsRoute(routes::TlsRoute),
    /// `TCPRoute`.
    TcpRoute(routes::TcpRoute),
    /// Envoy Gateway's `ClientTrafficPolicy`.
    ClientTrafficPolicy(envoy_gateway::ClientTrafficPolicy),
    /// Envoy Gateway's `EnvoyProxy`.
    EnvoyProxy(envoy_gateway::EnvoyProxy),
}

/// Whether `api_version` belongs to a group this model owns.
pub fn owns(api_version: &str) -> bool {
    let group = api_version.split('/').next().unwrap_or_default();
    group == GROUP || group == "gateway.envoyproxy.io"
}

/// A problem in a document, located 1-based in the text checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Line (0 when unknown).
    pub line: usize,
    /// Column (0 when unknown).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads one object of a group this model owns from its JSON form (after
/// templating). `Ok(None)` when the group is not ours.
pub fn from_value(value: &Value) -> Result<Option<GatewayApiObject>, String> {
    let api_version = value["apiVersion"].as_str().unwrap_or_default();
    if !owns(api_version) {
        return Ok(None);
    }
    let kind = value["kind"].as_str().unwrap_or_default();
    let parse = Parse::Value(value);
    dispatch(api_version, kind, &parse).map(Some)
}

/// Checks every document of a YAML text: each object of a group this
/// model owns must be a kind and version it knows, with known fields of the
/// right types. Other objects are left to their own checks.
pub fn check_text(text: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (first_line, doc) in documents(text) {
        let head: Value = match serde_saphyr::from_str(&doc) {
            Ok(v) => v,
            Err(e) => {
                problems.push(located(&e, first_line));
                continue;
            }
        };
        let api_version = head["apiVersion"].as_str().unwrap_or_default();
        if head.is_null() || !owns(api_version) {
            continue;
        }
        let kind = head["kind"].as_str().unwrap_or_default();
        match dispatch(api_version, kind, &Parse::Yaml(&doc)) {
            Ok(object) => problems.extend(semantic_problems(&object, first_line)),
            Err(message) => problems.push(decode_location(message, first_line)),
        }
    }
    problems
}

enum Parse<'a> {
    Value(&'a Value),
    Yaml(&'a str),
}

/// Errors from YAML parsing carry `@line:column@` up front until they are
/// turned into a [`Problem`].
fn parse<T: DeserializeOwned>(how: &Parse<'_>) -> Result<T, String> {
    match how {
        Parse::Value(v) => serde_json::from_value((*v).clone()).map_err(|e| e.to_string()),
        Parse::Yaml(text) => serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            format!("@{line}:{column}@{e}")
        }),
    }
}

fn dispatch(api_version: &str, kind: &str, how: &Parse<'_>) -> Result<GatewayApiObject, String> {
    use GatewayApiObject as O;
    match (api_version, kind) {
        (API_VERSION, "GatewayClass") => parse(how).map(O::GatewayClass),
        (API_VERSION, "Gateway") => parse(how).map(O::Gateway),
        (API_VERSION, "HTTPRoute") => parse(how).map(O::HttpRoute),
        (API_VERSION, "GRPCRoute") => parse(how).map(O::GrpcRoute),
        (API_VERSION, "TLSRoute") => parse(how).map(O::TlsRoute),
        (API_VERSION, "TCPRoute") => parse(how).map(O::TcpRoute),
        (ENVOY_GATEWAY_API_VERSION, "ClientTrafficPolicy") => {
            parse(how).map(O::ClientTrafficPolicy)
        }
        (ENVOY_GATEWAY_API_VERSION, "EnvoyProxy") => parse(how).map(O::EnvoyProxy),
        _ => Err(format!(
            "{api_version} {kind} is not a kind this model knows: Gateway API v1.6.1's standard \
             channel serves GatewayClass, Gateway, HTTPRoute, GRPCRoute, TLSRoute and TCPRoute \
             as {API_VERSION}; Envoy Gateway's ClientTrafficPolicy and EnvoyProxy are \
             {ENVOY_GATEWAY_API_VERSION}"
        )),
    }
}

/// Checks the types cannot express (the CRDs' own validation rules).
fn semantic_problems(object: &GatewayApiObject, first_line: usize) -> Vec<Problem> {
    let mut out = Vec::new();
    let at_doc = |message: String| Problem {
        line: first_line,
        column: 1,
        message,
    };
    if let GatewayApiObject::HttpRoute(route) = object {
        for (i, rule) in route.spec.rules.iter().enumerate() {
            let prefix_only = !rule.matches.is_empty()
                && rule.matches.iter().all(|m| {
                    m.path
                        .as_ref()
                        .is_some_and(|p| p.match_type == routes::PathMatchType::PathPrefix)
                });
            for f in &rule.filters {
                let Some(path) = f.url_rewrite.as_ref().and_then(|u| u.path.as_ref()) else {
                    continue;
                };
                let prefix = path.modifier_type == routes::PathModifierType::ReplacePrefixMatch;
                if prefix && !prefix_only {
                    out.push(at_doc(format!(
                        "HTTPRoute {}: spec.rules[{i}]: ReplacePrefixMatch needs every match to be a PathPrefix match",
                        route.metadata.name
                    )));
                }
                if prefix != path.replace_prefix_match.is_some()
                    || prefix == path.replace_full_path.is_some()
                {
                    out.push(at_doc(format!(
                        "HTTPRoute {}: spec.rules[{i}]: urlRewrite.path of type {:?} must set exactly its own field",
                        route.metadata.name, path.modifier_type
                    )));
                }
            }
        }
    }
    if let GatewayApiObject::Gateway(gw) = object {
        for l in &gw.spec.listeners {
            let tls_needed = l.protocol == gateway::ListenerProtocol::Tls;
            if tls_needed && l.tls.is_none() {
                out.push(at_doc(format!(
                    "Gateway {}: listener {} of protocol TLS needs tls.mode",
                    gw.metadata.name, l.name
                )));
            }
        }
    }
    out
}

fn located(e: &serde_saphyr::Error, first_line: usize) -> Problem {
    let (line, column) = e
        .location()
        .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
    Problem {
        line: shift(line, first_line),
        column,
        message: e.to_string(),
    }
}

fn decode_location(message: String, first_line: usize) -> Problem {
    let parsed = message.strip_prefix('@').and_then(|rest| {
        let (at, text) = rest.split_once('@')?;
        let (line, column) = at.split_once(':')?;
        Some((line.parse().ok()?, column.parse().ok()?, text.to_string()))
    });
    match parsed {
        Some((line, column, text)) => Problem {
            line: shift(line, first_line),
            column,
            message: text,
        },
        None => Problem {
            line: first_line,
            column: 1,
            message,
        },
    }
}

/// A line of a document (1-based, 0 = unknown) as a line of the file.
fn shift(line: usize, first_line: usize) -> usize {
    if line == 0 { 0 } else { line + first_line - 1 }
}

/// The documents of a multi-document YAML text, each with the file line
/// (1-based) its text starts on.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut start = 1;
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs.retain(|(_, d)| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}
