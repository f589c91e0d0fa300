//! The shapes of the `probe` step, as written in scenario files.
//!
//! Every string field may contain `${VAR}` templates; they are resolved by
//! the runner before a probe runs, so probes only ever see final values.

pub use super::http_expect::ExpectJson;
use crate::tls::{CertificateSet, ClientIdentity, ClientTls, TlsError, TlsVersion};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One probe. Exactly one field is set; the loader checks that.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeSpec {
    /// The Ray client's gRPC channel reaches READY and a real Ray RPC is answered.
    pub grpc_ready: Option<GrpcReadyProbe>,
    /// The endpoint refuses plaintext, no client cert and a foreign-CA cert,
    /// and accepts the right cert.
    pub mtls: Option<MtlsProbe>,
    /// One HTTP request and checks on its response.
    pub http: Option<HttpProbe>,
    /// A page loaded the way a browser does, with every asset it references.
    pub page: Option<PageProbe>,
    /// A raw TCP connection, optionally with a protocol check on top.
    pub tcp: Option<TcpProbe>,
    /// The page in a real (headless Chromium) browser.
    pub browser: Option<BrowserProbe>,
    /// A source × port matrix of calls, each expected ok or refused,
    /// printed as a table.
    pub reachability: Option<ReachabilityProbe>,
    /// Series in a Prometheus text exposition (an Envoy sidecar's
    /// `/stats/prometheus`) matched by name and labels, with bounds.
    pub prometheus: Option<PrometheusProbe>,
}

/// TLS settings of a probe. Names refer to certificate authorities generated
/// for the run (`certificates:` in the scenario); `foreign` is always there.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsSpec {
    /// SNI and the name the server certificate must match. Defaults to the
    /// address's host.
    pub server_name: Option<String>,
    /// The authority whose CA certificate verifies the server.
    pub ca: Option<String>,
    /// The authority whose client certificate is presented (none if unset).
    pub client_cert: Option<String>,
    /// Pin the TLS version: `"1.2"` or `"1.3"`; both allowed when unset.
    pub version: Option<String>,
    /// Accept the server's certificate without verifying it. Without `ca`
    /// this must be set, or the probe refuses to run; verdicts then say
    /// "server certificate NOT verified".
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl TlsSpec {
    /// Resolves these settings against the run's certificates.
    pub fn client_tls(&self, certs: Option<&CertificateSet>) -> Result<ClientTls, TlsError> {
        let authority = |name: &str| {
            certs
                .and_then(|c| c.get(name))
                .ok_or_else(|| TlsError::UnknownAuthority(name.to_string()))
        };
        let ca_cert = match &self.ca {
            Some(name) => Some(authority(name)?.ca_cert.clone()),
            None => None,
        };
        let identity = match &self.client_cert {
            Some(name) => {
                let a = authority(name)?;
                Some(ClientIdentity {
                    cert: a.client_cert.clone(),
                    key: a.client_key.clone(),
                    label: format!("client cert of authority `{name}`"),
                })
            }
            None => None,
        };
        let version = self
            .version
            .as_deref()
            .map(str::parse::<TlsVersion>)
            .transpose()?;
        Ok(ClientTls {
            server_name: self.server_name.clone(),
            ca_cert,
            insecure: self.insecure_skip_verify,
            identity,
            version,
        })
    }
}

/// How a gRPC probe is expected to end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GrpcExpectation {
    /// The channel is READY (and the Ray RPC answered when `rayPing`).
    #[default]
    Ready,
    /// The channel must not become READY.
    NotReady,
}

/// `probe.grpcReady`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcReadyProbe {
    /// `host:port` to connect to.
    pub address: String,
    /// TLS settings; plaintext HTTP/2 when absent.
    pub tls: Option<TlsSpec>,
    /// Also call `/ray.rpc.RayletDriver/ClusterInfo` with type PING.
    #[serde(default = "yes")]
    pub ray_ping: bool,
    /// Ready (default) or notReady.
    #[serde(default)]
    pub expect: GrpcExpectation,
    /// After PING, open a Ray client session and ask the head for its node
    /// list (`ClusterInfo(NODES)`): exactly this many must be alive. Needs
    /// `rayPing` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_alive_nodes: Option<u32>,
}

/// `probe.mtls`: the four-cell matrix against one endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MtlsProbe {
    /// `host:port` to connect to.
    pub address: String,
    /// SNI / server name; defaults to the address's host.
    pub server_name: Option<String>,
    /// The authority that signs the server and the good client certificate.
    pub ca: String,
    /// Pin the TLS version for every cell: `"1.2"` or `"1.3"`.
    pub tls_version: Option<String>,
}

/// `probe.http`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpProbe {
    /// The URL to request.
    pub url: String,
    /// HTTP method; GET when unset.
    pub method: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Follow redirects (default false: the first response is checked).
    #[serde(default)]
    pub follow_redirects: bool,
    /// Expected status code.
    pub expect_status: Option<u16>,
    /// Expected `Location` header (redirects), compared exactly.
    pub expect_location: Option<String>,
    /// Expected content type prefix, e.g. `application/json`.
    pub expect_content_type: Option<String>,
    /// Substring the body must contain.
    pub body_contains: Option<String>,
    /// JSON fields the body must have: a list of matchers
    /// (`{path, equals|contains|exists}`, RFC 9535 JSONPath), or a map whose
    /// keys are JSON pointers (`/ray_version`) or top-level names and whose
    /// values are compared exactly.
    #[serde(default, skip_serializing_if = "ExpectJson::is_empty")]
    pub expect_json: ExpectJson,
    /// A request body sent as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A request body: any value, sent as `application/json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// TLS settings for https URLs.
    pub tls: Option<TlsSpec>,
}

/// `probe.page`: fetch a page and everything it references, like a browser.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PageProbe {
    /// The page URL.
    pub url: String,
    /// Page-relative API paths to resolve against the page's final URL and
    /// fetch (e.g. `api/version`); each must answer 2xx.
    #[serde(default)]
    pub apis: Vec<String>,
    /// TLS settings for https URLs.
    pub tls: Option<TlsSpec>,
}

/// `probe.browser`: the page loaded and rendered by headless Chromium.
///
/// Passes when no script, stylesheet, XHR or fetch failed (status >= 400 or
/// a network error), no uncaught exception or console error happened, the
/// page rendered, and every API in `apis` was called by the page itself
/// and answered 2xx. A screenshot is taken either way.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BrowserProbe {
    /// The page URL (may carry a `#/route` fragment).
    pub url: String,
    /// A CSS selector that must match an element with visible text. When
    /// unset, the app's root (`#root`, else `body`) must have rendered
    /// child elements and visible text.
    pub selector: Option<String>,
    /// Text that must appear in the rendered page.
    pub text: Option<String>,
    /// Page-relative API paths (e.g. `api/cluster_status`), resolved
    /// against the page's URL, that the page itself must have requested
    /// and got a 2xx answer for.
    #[serde(default)]
    pub apis: Vec<String>,
    /// Page-relative paths (resolved like `apis`, query ignored) whose
    /// failure is expected and not held against the page: optional
    /// features the app asks about, e.g. the Ray dashboard's
    /// `api/grafana_health` (500 without Grafana). Each is still listed.
    #[serde(default)]
    pub allow_failed: Vec<String>,
}

/// How a TCP connection is expected to end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TcpExpectation {
    /// The port accepts connections.
    #[default]
    Open,
    /// The connection is refused (or reset at once).
    Refused,
}

/// `probe.tcp`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpProbe {
    /// `host:port` to connect to.
    pub address: String,
    /// open (default) or refused.
    #[serde(default)]
    pub expect: TcpExpectation,
    /// A protocol check over the connection once open.
    pub then: Option<TcpFollowUp>,
}

/// A protocol check on top of a TCP probe. Exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpFollowUp {
    /// A TLS handshake must complete (and, with a client cert, be accepted).
    pub tls: Option<TlsSpec>,
    /// A gRPC call must be answered (the Ray PING over the mapped port).
    pub grpc: Option<GrpcFollowUp>,
}

/// The gRPC call of a TCP follow-up.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcFollowUp {
    /// TLS settings; plaintext HTTP/2 when absent.
    pub tls: Option<TlsSpec>,
    /// Which call: `rayPing` (Ray client port) or `gcsClusterId` (GCS port).
    #[serde(default = "ray_ping_call")]
    pub call: String,
}

/// What a reachability cell calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ReachabilityCall {
    /// The Ray client's PING plus its session check (port 10001).
    RayPing,
    /// The GCS's `GetClusterId` (port 6379).
    GcsClusterId,
    /// An HTTP GET of `path` that must answer 2xx (dashboard, Serve).
    Http,
}

/// How a reachability cell is expected to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CellExpectation {
    /// The call is answered.
    Ok,
    /// The call is not answered (reset, refused, closed, timed out).
    Refused,
}

/// One cell of a reachability matrix: from `source` to `port`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReachabilityCell {
    /// The row: who calls (e.g. `mesh`, `naked`).
    pub source: String,
    /// The column: the destination port the cell stands for.
    pub port: u16,
    /// `host:port` where this source's traffic to that port starts.
    pub address: String,
    /// What is called.
    pub call: ReachabilityCall,
    /// The HTTP path for `call: http` (default `/`).
    pub path: Option<String>,
    /// ok or refused.
    pub expect: CellExpectation,
}

/// `probe.reachability`: every cell is called; the probe passes when each
/// ends as expected. Upstream Istio's reachability tests have this shape
/// (sources × destinations × ports, per mTLS mode).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReachabilityProbe {
    /// A title for the table, e.g. the mTLS mode in force (`STRICT`).
    pub title: Option<String>,
    /// The cells, in any order; rows and columns are taken in first-seen order.
    pub cells: Vec<ReachabilityCell>,
}

/// One expectation on a Prometheus exposition: the series of any of
/// `metrics` whose labels include every pair of `labels`, summed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeriesExpectation {
    /// Metric names; a series of any of them counts.
    pub metrics: Vec<String>,
    /// Labels every counted series must carry with exactly these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The sum of the counted series must be at least this (default 1).
    pub at_least: Option<f64>,
    /// ... and at most this (`atMost: 0` asserts absence).
    pub at_most: Option<f64>,
}

/// `probe.prometheus`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusProbe {
    /// The exposition URL (e.g. `http://HOST:PORT/stats/prometheus`).
    pub url: String,
    /// Every expectation must hold.
    pub expect: Vec<SeriesExpectation>,
}

fn yes() -> bool {
    true
}

fn ray_ping_call() -> String {
    "rayPing".to_string()
}

/// A validated probe: exactly one kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Probe {
    /// See [`GrpcReadyProbe`].
    GrpcReady(GrpcReadyProbe),
    /// See [`MtlsProbe`].
    Mtls(MtlsProbe),
    /// See [`HttpProbe`].
    Http(HttpProbe),
    /// See [`PageProbe`].
    Page(PageProbe),
    /// See [`TcpProbe`].
    Tcp(TcpProbe),
    /// See [`BrowserProbe`].
    Browser(BrowserProbe),
    /// See [`ReachabilityProbe`].
    Reachability(ReachabilityProbe),
    /// See [`PrometheusProbe`].
    Prometheus(PrometheusProbe),
}

/// Where a probe connects: a `host:port` address or an http(s) URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// `host:port`, in the named field (`tcp.address`).
    Address(&'static str, &'a str),
    /// An `http://` or `https://` URL, in the named field (`http.url`).
    Url(&'static str, &'a str),
}

impl<'a> Target<'a> {
    /// The address or URL.
    pub fn value(self) -> &'a str {
        match self {
            Target::Address(_, value) | Target::Url(_, value) => value,
        }
    }
}

impl ProbeSpec {
    /// The probe kinds a step may name, as written in scenarios.
    pub const KINDS: &'static str =
        "grpcReady, mtls, http, page, tcp, browser, reachability, prometheus";

    /// Every probe the spec sets (the loader requires exactly one).
    pub fn into_probes(self) -> Vec<Probe> {
        let ProbeSpec {
            grpc_ready,
            mtls,
            http,
            page,
            tcp,
            browser,
            reachability,
            prometheus,
        } = self;
        let mut found = Vec::new();
        found.extend(grpc_ready.map(Probe::GrpcReady));
        found.extend(mtls.map(Probe::Mtls));
        found.extend(http.map(Probe::Http));
        found.extend(page.map(Probe::Page));
        found.extend(tcp.map(Probe::Tcp));
        found.extend(browser.map(Probe::Browser));
        found.extend(reachability.map(Probe::Reachability));
        found.extend(prometheus.map(Probe::Prometheus));
        found
    }
}

impl Probe {
    /// Where the probe connects, with the field that says so.
    pub fn target(&self) -> Target<'_> {
        match self {
            Probe::GrpcReady(p) => Target::Address("grpcReady.address", &p.address),
            Probe::Mtls(p) => Target::Address("mtls.address", &p.address),
            Probe::Tcp(p) => Target::Address("tcp.address", &p.address),
            Probe::Http(p) => Target::Url("http.url", &p.url),
            Probe::Page(p) => Target::Url("page.url", &p.url),
            Probe::Browser(p) => Target::Url("browser.url", &p.url),
            // Every cell's address is checked by `problems`.
            Probe::Reachability(p) => Target::Address(
                "reachability.cells[0].address",
                p.cells.first().map_or("", |c| c.address.as_str()),
            ),
            Probe::Prometheus(p) => Target::Url("prometheus.url", &p.url),
        }
    }

    /// Every TLS setting of the probe, with the field it is in
    /// (`tcp.then.grpc.tls`).
    pub fn tls_specs(&self) -> Vec<(&'static str, &TlsSpec)> {
        let mut specs = Vec::new();
        match self {
            Probe::GrpcReady(p) => specs.extend(p.tls.as_ref().map(|t| ("grpcReady.tls", t))),
            Probe::Mtls(_) | Probe::Reachability(_) | Probe::Prometheus(_) => {}
            Probe::Browser(_) => {}
            Probe::Http(p) => specs.extend(p.tls.as_ref().map(|t| ("http.tls", t))),
            Probe::Page(p) => specs.extend(p.tls.as_ref().map(|t| ("page.tls", t))),
            Probe::Tcp(p) => {
                let then = p.then.as_ref();
                specs.extend(
                    then.and_then(|t| t.tls.as_ref())
                        .map(|t| ("tcp.then.tls", t)),
                );
                let grpc = then.and_then(|t| t.grpc.as_ref());
                specs.extend(
                    grpc.and_then(|g| g.tls.as_ref())
                        .map(|t| ("tcp.then.grpc.tls", t)),
                );
            }
        }
        specs
    }

    /// Whether the probe speaks only Ray's gRPC (`grpcReady`, `mtls`),
    /// which no Ray dashboard serves.
    pub fn speaks_only_rays_grpc(&self) -> bool {
        matches!(self, Probe::GrpcReady(_) | Probe::Mtls(_))
    }

    /// Whether the probe reads a Ray head's node list
    /// (`grpcReady.expectAliveNodes`).
    pub fn reads_ray_node_list(&self) -> bool {
        matches!(self, Probe::GrpcReady(p) if p.expect_alive_nodes.is_some())
    }

    /// The probe's kind as written in scenarios (`grpcReady`, `mtls`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::GrpcReady(_) => "grpcReady",
            Probe::Mtls(_) => "mtls",
            Probe::Http(_) => "http",
            Probe::Page(_) => "page",
            Probe::Tcp(_) => "tcp",
            Probe::Browser(_) => "browser",
            Probe::Reachability(_) => "reachability",
            Probe::Prometheus(_) => "prometheus",
        }
    }

    /// Problems with the probe's own fields that its shape cannot rule out,
    /// as (field below the probe, message); the loader reports each.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        match self {
            Probe::GrpcReady(p) if p.expect_alive_nodes.is_some() && !p.ray_ping => {
                found.push((
                    "grpcReady.expectAliveNodes".to_string(),
                    "expectAliveNodes asks the head through a Ray client session: it needs rayPing: true"
                        .to_string(),
                ));
            }
            Probe::Reachability(p) => {
                if p.cells.is_empty() {
                    found.push((
                        "reachability.cells".to_string(),
                        "expected at least one cell".to_string(),
                    ));
                }
                for (i, cell) in p.cells.iter().enumerate() {
                    // The first cell's address is the probe's target, which
                    // the loader checks already.
                    if i > 0
                        && !cell.address.contains('$')
                        && crate::probe::connection::split_address(&cell.address).is_err()
                    {
                        found.push((
                            format!("reachability.cells[{i}].address"),
                            format!("expected host:port, found `{}`", cell.address),
                        ));
                    }
                    if cell.path.is_some() && cell.call != ReachabilityCall::Http {
                        found.push((
                            format!("reachability.cells[{i}].path"),
                            "path is only used by call: http".to_string(),
                        ));
                    }
                    let twin = p.cells[..i]
                        .iter()
                        .any(|c| c.source == cell.source && c.port == cell.port);
                    if twin {
                        found.push((
                            format!("reachability.cells[{i}]"),
                            format!(
                                "a second cell for source `{}` and port {}",
                                cell.source, cell.port
                            ),
                        ));
                    }
                }
            }
            Probe::Prometheus(p) => {
                if p.expect.is_empty() {
                    found.push((
                        "prometheus.expect".to_string(),
                        "expected at least one expectation".to_string(),
                    ));
                }
                for (i, e) in p.expect.iter().enumerate() {
                    if e.metrics.is_empty() {
                        found.push((
                            format!("prometheus.expect[{i}].metrics"),
                            "expected at least one metric name".to_string(),
                        ));
                    }
                    if let (Some(low), Some(high)) = (e.at_least, e.at_most)
                        && low > high
                    {
                        found.push((
                            format!("prometheus.expect[{i}]"),
                            format!("atLeast {low} is above atMost {high}"),
                        ));
                    }
                }
            }
            _ => {}
        }
        found
    }
}

/// A problem with a probe's own request fields: which field, the text to
/// point at in the file (empty: the probe itself), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field, relative to the probe (`http.expectJson[0]`).
    pub field: String,
    /// The text the error points at when found in the file.
    pub near: String,
    /// What is wrong.
    pub message: String,
}

impl Probe {
    /// Problems of an `http` probe's body and JSON matchers (at most one of
    /// `body` and `json`; every `expectJson` matcher well formed).
    pub fn request_problems(&self) -> Vec<FieldProblem> {
        let Probe::Http(http) = self else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        if http.body.is_some() && http.json.is_some() {
            problems.push(FieldProblem {
                field: "http".into(),
                near: String::new(),
                message: "expected at most one of body, json".into(),
            });
        }
        for (i, matcher) in http.expect_json.iter().enumerate() {
            if let Err(e) = matcher.validate() {
                problems.push(FieldProblem {
                    field: format!("http.expectJson[{i}]"),
                    near: matcher.path.clone(),
                    message: e.to_string(),
                });
            }
        }
        problems
    }
}
