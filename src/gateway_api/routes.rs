//! The route kinds rayconform uses: `HTTPRoute` and `GRPCRoute`
//! (gateway.networking.k8s.io/v1), `TLSRoute` and `TCPRoute` (v1 in the
//! v1.6.1 standard channel; their v1alpha2/v1alpha3 versions are no longer
//! served there).

use super::meta::{BackendRef, ObjectMeta, ParentRef};
use serde::{Deserialize, Serialize};

/// Fields every route kind has around its own `spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route<S> {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: S,
}

/// An `HTTPRoute`.
pub type HttpRoute = Route<HttpRouteSpec>;
/// A `GRPCRoute`.
pub type GrpcRoute = Route<GrpcRouteSpec>;
/// A `TLSRoute`.
pub type TlsRoute = Route<TlsRouteSpec>;
/// A `TCPRoute`.
pub type TcpRoute = Route<TcpRouteSpec>;

/// `HTTPRoute.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteSpec {
    /// `parentRefs`.
    pub parent_refs: Vec<ParentRef>,
    /// `hostnames`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// `rules`.
    pub rules: Vec<HttpRouteRule>,
}

/// `HTTPRoute.spec.rules[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRule {
    /// `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `matches` (none: every request, as `PathPrefix /`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpRouteMatch>,
    /// `filters`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<HttpRouteFilter>,
    /// `backendRefs`.
    pub backend_refs: Vec<BackendRef>,
}

/// `rules[].matches[]` (path only: the fields we use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteMatch {
    /// `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
}

/// `matches[].path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpPathMatch {
    /// `type` (default `PathPrefix`).
    #[serde(rename = "type", default)]
    pub match_type: PathMatchType,
    /// `value` (default `/`).
    #[serde(default = "root_path")]
    pub value: String,
}

fn root_path() -> String {
    "/".to_string()
}

/// `path.type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathMatchType {
    /// Element-wise prefix (`/ray` matches `/ray` and `/ray/x`, not `/rayx`).
    #[default]
    PathPrefix,
    /// The exact path.
    Exact,
    /// A regular expression (implementation-specific).
    RegularExpression,
}

/// `rules[].filters[]` (URLRewrite only: the filter we use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteFilter {
    /// `type`.
    #[serde(rename = "type")]
    pub filter_type: HttpFilterType,
    /// `urlRewrite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_rewrite: Option<UrlRewrite>,
}

/// `filters[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpFilterType {
    /// `URLRewrite` (extended: `HTTPRoutePathRewrite`).
    #[serde(rename = "URLRewrite")]
    UrlRewrite,
}

/// `filters[].urlRewrite`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UrlRewrite {
    /// `hostname`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
}

/// `urlRewrite.path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathModifier {
    /// `type`.
    #[serde(rename = "type")]
    pub modifier_type: PathModifierType,
    /// `replacePrefixMatch` (with `ReplacePrefixMatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_prefix_match: Option<String>,
    /// `replaceFullPath` (with `ReplaceFullPath`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_full_path: Option<String>,
}

/// `urlRewrite.path.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathModifierType {
    /// Replace the matched prefix.
    ReplacePrefixMatch,
    /// Replace the whole path.
    ReplaceFullPath,
}

/// `GRPCRoute.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteSpec {
    /// `parentRefs`.
    pub parent_refs: Vec<ParentRef>,
    /// `hostnames`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// `rules`.
    pub rules: Vec<GrpcRouteRule>,
}

/// `GRPCRoute.spec.rules[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteRule {
    /// `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `matches` (none: every method).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<GrpcRouteMatch>,
    /// `backendRefs`.
    pub backend_refs: Vec<BackendRef>,
}

/// `GRPCRoute.spec.rules[].matches[]` (method only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteMatch {
    /// `method`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<GrpcMethodMatch>,
}

/// `matches[].method`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcMethodMatch {
    /// `type`: `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub match_type: Option<String>,
    /// `service`, e.g. `ray.rpc.RayletDriver`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `method`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// `TLSRoute.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsRouteSpec {
    /// `parentRefs`.
    pub parent_refs: Vec<ParentRef>,
    /// `hostnames`: the SNI names routed (required in v1).
    pub hostnames: Vec<String>,
    /// `rules`.
    pub rules: Vec<BackendRule>,
}

/// `TCPRoute.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRouteSpec {
    /// `parentRefs`.
    pub parent_refs: Vec<ParentRef>,
    /// `rules`.
    pub rules: Vec<BackendRule>,
}

/// A TLSRoute or TCPRoute rule: only backends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendRule {
    /// `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `backendRefs`.
    pub backend_refs: Vec<BackendRef>,
}
