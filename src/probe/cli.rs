//! `rayconform probe ...`: run any probe against any address from the
//! command line, with credentials given as PEM files, so a user can point
//! it at their own ingress when reporting a bug.

use super::spec::{
    BrowserProbe, CellExpectation, GrpcExpectation, HttpProbe, Probe, PrometheusProbe,
    ReachabilityCall, ReachabilityCell, ReachabilityProbe, SeriesExpectation, TcpExpectation,
};
use super::tcp::FollowUp;
use super::{
    browser, grpc_ready, grpc_session::GrpcCall, http, mtls, page, prometheus, reachability, tcp,
};
use crate::tls::{ClientIdentity, ClientTls, TlsVersion};
use crate::verdict::Verdict;
use clap::{Args, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Exit code: the expectation was met.
pub const EXIT_PASSED: i32 = 0;
/// Exit code: the expectation was not met.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: the command line was not usable.
pub const EXIT_USAGE: i32 = 2;

/// Run one probe and print its verdict and evidence.
#[derive(Debug, Clone, Args)]
pub struct ProbeCommand {
    /// Which probe.
    #[command(subcommand)]
    pub probe: ProbeKind,
    /// Give up after this long (e.g. 20s, 1m).
    #[arg(long, global = true, default_value = "20s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// The probes.
#[derive(Debug, Clone, Subcommand)]
pub enum ProbeKind {
    /// The gRPC channel reaches READY and the Ray PING is answered.
    GrpcReady(GrpcReadyArgs),
    /// Plaintext, no cert and a foreign-CA cert refused; the right cert accepted.
    Mtls(MtlsArgs),
    /// One HTTP request and checks on its response.
    Http(HttpArgs),
    /// A page and every asset and API it references, resolved like a browser.
    Page(PageArgs),
    /// A TCP connection, optionally with TLS or a gRPC call on top.
    Tcp(TcpArgs),
    /// The page in headless Chromium: loads, calls its APIs, renders.
    Browser(BrowserArgs),
    /// A Prometheus exposition (e.g. an Envoy sidecar's
    /// :15090/stats/prometheus): the named series, summed, within bounds.
    Prometheus(PrometheusArgs),
    /// A reachability matrix: every cell called, printed as a source × port
    /// table.
    Reachability(ReachabilityArgs),
}

/// `prometheus` flags: one expectation.
#[derive(Debug, Clone, Args)]
pub struct PrometheusArgs {
    /// The exposition URL.
    #[arg(value_parser = http_url)]
    pub url: String,
    /// A metric name whose series count (repeatable: any of them).
    #[arg(long = "metric", value_name = "NAME", required = true)]
    pub metrics: Vec<String>,
    /// A label every counted series carries (repeatable), `KEY=VALUE`.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// The sum must be at least this (default 1 unless --at-most is given).
    #[arg(long)]
    pub at_least: Option<f64>,
    /// The sum must be at most this (0 = absence).
    #[arg(long)]
    pub at_most: Option<f64>,
}

/// `reachability` flags.
#[derive(Debug, Clone, Args)]
pub struct ReachabilityArgs {
    /// The table's title (e.g. the mTLS mode).
    #[arg(long)]
    pub title: Option<String>,
    /// A cell (repeatable): `SOURCE,PORT,HOST:PORT,CALL,EXPECT[,PATH]` with
    /// CALL rayPing, gcsClusterId or http and EXPECT ok or refused.
    #[arg(long = "cell", value_name = "CELL", required = true)]
    pub cells: Vec<String>,
}

/// TLS flags shared by the probes.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// SNI and the name the server certificate must match.
    #[arg(long)]
    pub server_name: Option<String>,
    /// CA certificate (PEM) that verifies the server; TLS needs it, unless
    /// --insecure.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not verify the server's certificate (the verdict says so).
    #[arg(long)]
    pub insecure: bool,
    /// Client certificate (PEM); needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM); needs --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Pin the TLS version: 1.2 or 1.3.
    #[arg(long)]
    pub tls_version: Option<String>,
}

/// Why a probe command cannot run (exit 2): nothing was probed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeCliError {
    /// `--cert` without `--key` or the other way round.
    #[error("--cert and --key go together")]
    CertWithoutKey,
    /// TLS without a CA to verify the server and without `--insecure`.
    #[error(
        "TLS needs --ca FILE to verify the server's certificate; to skip verification, say so with --insecure"
    )]
    NoCa,
    /// A TLS setting that cannot be used (`--tls-version 1.1`), or a
    /// foreign CA that could not be generated.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// No temporary folder for a generated foreign CA.
    #[error("temp dir for a foreign CA: {0}")]
    TempDir(#[source] std::io::Error),
    /// `--header` not written `Name: value`.
    #[error("header `{0}` is not `Name: value`")]
    Header(String),
    /// `--expect-json` not written `KEY=VALUE`.
    #[error("--expect-json `{0}` is not KEY=VALUE")]
    JsonField(String),
    /// `--grpc` names no known call.
    #[error("unknown --grpc call `{0}` (rayPing or gcsClusterId)")]
    GrpcCall(String),
    /// `browser` without a Chromium on this machine.
    #[error(transparent)]
    NoChromium(#[from] super::browser::ChromiumError),
    /// `--label` not written `KEY=VALUE`.
    #[error("--label `{0}` is not KEY=VALUE")]
    Label(String),
    /// `--cell` not written as documented.
    #[error(
        "--cell `{0}` is not SOURCE,PORT,HOST:PORT,CALL,EXPECT[,PATH] (CALL rayPing|gcsClusterId|http, EXPECT ok|refused)"
    )]
    Cell(String),
    /// The probe's own checks (bounds, duplicate cells...).
    #[error("{0}")]
    Invalid(String),
}

impl TlsArgs {
    fn client_tls(&self) -> Result<ClientTls, ProbeCliError> {
        let version = self
            .tls_version
            .as_deref()
            .map(TlsVersion::from_str)
            .transpose()?;
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some(ClientIdentity {
                cert: cert.clone(),
                key: key.clone(),
                label: cert.display().to_string(),
            }),
            (None, None) => None,
            _ => return Err(ProbeCliError::CertWithoutKey),
        };
        if self.ca.is_none() && !self.insecure {
            return Err(ProbeCliError::NoCa);
        }
        Ok(ClientTls {
            server_name: self.server_name.clone(),
            ca_cert: self.ca.clone(),
            insecure: self.insecure,
            identity,
            version,
        })
    }

    fn any(&self) -> bool {
        self.server_name.is_some()
            || self.ca.is_some()
            || self.cert.is_some()
            || self.tls_version.is_some()
            || self.insecure
    }
}

/// `grpc-ready` flags.
#[derive(Debug, Clone, Args)]
pub struct GrpcReadyArgs {
    /// host:port of the Ray client server (or the ingress in front of it).
    #[arg(value_parser = host_port)]
    pub address: String,
    /// Plaintext HTTP/2 (h2c) instead of TLS.
    #[arg(long, conflicts_with_all = ["server_name", "ca", "insecure", "cert", "key", "tls_version"])]
    pub plaintext: bool,
    /// Only wait for READY (the server's SETTINGS); skip the Ray PING.
    #[arg(long)]
    pub no_ray_ping: bool,
    /// After PING, open a Ray client session and require this many alive
    /// nodes in the head's node list (`ClusterInfo(NODES)`).
    #[arg(long, conflicts_with = "no_ray_ping")]
    pub expect_alive_nodes: Option<u32>,
    /// ready (default) or not-ready.
    #[arg(long, value_enum, default_value = "ready")]
    pub expect: ReadyExpectation,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
}

/// `--expect` of grpc-ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadyExpectation {
    /// The channel becomes READY.
    Ready,
    /// The channel must not become READY.
    NotReady,
}

/// `mtls` flags.
#[derive(Debug, Clone, Args)]
pub struct MtlsArgs {
    /// host:port of the endpoint that must enforce mTLS.
    #[arg(value_parser = host_port)]
    pub address: String,
    /// SNI / server name.
    #[arg(long)]
    pub server_name: Option<String>,
    /// CA certificate (PEM) that verifies the server.
    #[arg(long, value_name = "FILE")]
    pub ca: PathBuf,
    /// The right client certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// The right client key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// A client certificate from another CA; one is generated when omitted.
    #[arg(long, value_name = "FILE", requires = "foreign_key")]
    pub foreign_cert: Option<PathBuf>,
    /// Its key.
    #[arg(long, value_name = "FILE", requires = "foreign_cert")]
    pub foreign_key: Option<PathBuf>,
    /// Pin the TLS version for every cell: 1.2 or 1.3.
    #[arg(long)]
    pub tls_version: Option<String>,
}

/// `http` flags.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// The URL.
    #[arg(value_parser = http_url)]
    pub url: String,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Request header `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Follow redirects.
    #[arg(long)]
    pub follow: bool,
    /// Expected status code (default: 2xx, or 3xx with --expect-location).
    #[arg(long)]
    pub expect_status: Option<u16>,
    /// Expected Location header.
    #[arg(long)]
    pub expect_location: Option<String>,
    /// Expected Content-Type prefix.
    #[arg(long)]
    pub expect_content_type: Option<String>,
    /// Substring the body must contain.
    #[arg(long)]
    pub body_contains: Option<String>,
    /// JSON field `KEY=VALUE` (KEY a pointer like /a/b or a top-level name;
    /// VALUE JSON, or a plain string). Repeatable.
    #[arg(long = "expect-json", value_name = "KEY=VALUE")]
    pub expect_json: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
}

/// `page` flags.
#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// The page URL.
    #[arg(value_parser = http_url)]
    pub url: String,
    /// Page-relative API path to fetch too (repeatable), e.g. api/version.
    #[arg(long = "api", value_name = "PATH")]
    pub apis: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
}

/// `browser` flags.
#[derive(Debug, Clone, Args)]
pub struct BrowserArgs {
    /// The page URL.
    #[arg(value_parser = http_url)]
    pub url: String,
    /// A CSS selector that must render with visible text (default: the
    /// app's root, `#root` or `body`, with children and visible text).
    #[arg(long)]
    pub selector: Option<String>,
    /// Text the rendered page must show.
    #[arg(long)]
    pub text: Option<String>,
    /// Page-relative API path the page itself must call with a 2xx
    /// (repeatable), e.g. api/version.
    #[arg(long = "api", value_name = "PATH")]
    pub apis: Vec<String>,
    /// Page-relative path whose failure is expected (repeatable).
    #[arg(long = "allow-failed", value_name = "PATH")]
    pub allow_failed: Vec<String>,
    /// Folder for the PNG screenshot (none without it).
    #[arg(long, value_name = "DIR")]
    pub screenshot_dir: Option<PathBuf>,
}

/// `tcp` flags.
#[derive(Debug, Clone, Args)]
pub struct TcpArgs {
    /// host:port.
    #[arg(value_parser = host_port)]
    pub address: String,
    /// open (default) or refused.
    #[arg(long, value_enum, default_value = "open")]
    pub expect: OpenExpectation,
    /// Then do a TLS handshake (with --cert: the cert must be accepted).
    #[arg(long, conflicts_with = "grpc")]
    pub tls_handshake: bool,
    /// Then make a gRPC call: rayPing or gcsClusterId (TLS when TLS flags are given).
    #[arg(long, value_name = "CALL")]
    pub grpc: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
}

/// `--expect` of tcp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OpenExpectation {
    /// The port accepts connections.
    Open,
    /// The connection is refused.
    Refused,
}

/// Runs the probe, prints the verdict with its evidence, and returns the
/// exit code: 0 expectation met, 1 not met, 2 unusable command line.
pub async fn execute(cmd: ProbeCommand) -> i32 {
    crate::tls::install_crypto_provider();
    match verdict_for(cmd).await {
        Ok(verdict) => {
            println!("{verdict}");
            if verdict.passed {
                EXIT_PASSED
            } else {
                EXIT_FAILED
            }
        }
        Err(usage) => {
            eprintln!("error: {usage}");
            EXIT_USAGE
        }
    }
}

/// The verdict for a command, or a usage error.
pub async fn verdict_for(cmd: ProbeCommand) -> Result<Verdict, ProbeCliError> {
    let timeout = cmd.timeout;
    Ok(match cmd.probe {
        ProbeKind::GrpcReady(a) => {
            let tls = if a.plaintext {
                None
            } else {
                Some(a.tls.client_tls()?)
            };
            let expect = match a.expect {
                ReadyExpectation::Ready => GrpcExpectation::Ready,
                ReadyExpectation::NotReady => GrpcExpectation::NotReady,
            };
            let call = match (a.no_ray_ping, a.expect_alive_nodes) {
                (true, _) => GrpcCall::None,
                (false, Some(nodes)) => GrpcCall::RayPingAliveNodes(nodes),
                (false, None) => GrpcCall::RayPing,
            };
            grpc_ready::check_call(&a.address, tls.as_ref(), call, expect, timeout).await
        }
        ProbeKind::Mtls(a) => {
            let version = a
                .tls_version
                .as_deref()
                .map(TlsVersion::from_str)
                .transpose()?;
            // Kept alive until the probe is done when a foreign CA is generated.
            let mut generated = None;
            let foreign = match (a.foreign_cert, a.foreign_key) {
                (Some(cert), Some(key)) => ClientIdentity {
                    label: cert.display().to_string(),
                    cert,
                    key,
                },
                _ => {
                    let dir = tempfile::tempdir().map_err(ProbeCliError::TempDir)?;
                    let set = crate::tls::generate(dir.path(), crate::tls::FOREIGN, &[])?;
                    let a = set.get(crate::tls::FOREIGN).expect("generated").clone();
                    generated = Some(dir);
                    ClientIdentity {
                        cert: a.client_cert,
                        key: a.client_key,
                        label: "a freshly generated foreign CA's client cert".into(),
                    }
                }
            };
            let creds = mtls::MtlsCredentials {
                ca_cert: a.ca,
                good: ClientIdentity {
                    label: a.cert.display().to_string(),
                    cert: a.cert,
                    key: a.key,
                },
                foreign,
            };
            let verdict = mtls::check(
                &a.address,
                a.server_name.as_deref(),
                &creds,
                version,
                timeout,
            )
            .await;
            drop(generated);
            verdict
        }
        ProbeKind::Http(a) => {
            let tls = if a.tls.any() || a.url.starts_with("https:") {
                Some(a.tls.client_tls()?)
            } else {
                None
            };
            let probe = HttpProbe {
                url: a.url,
                method: Some(a.method),
                headers: parse_headers(&a.headers)?,
                follow_redirects: a.follow,
                expect_status: a.expect_status,
                expect_location: a.expect_location,
                expect_content_type: a.expect_content_type,
                body_contains: a.body_contains,
                expect_json: parse_json_fields(&a.expect_json)?.into(),
                body: None,
                json: None,
                tls: None,
            };
            http::check(&probe, tls.as_ref(), timeout).await
        }
        ProbeKind::Page(a) => {
            let tls = if a.tls.any() || a.url.starts_with("https:") {
                Some(a.tls.client_tls()?)
            } else {
                None
            };
            page::check(&a.url, &a.apis, tls.as_ref(), timeout).await
        }
        ProbeKind::Browser(a) => {
            let probe = BrowserProbe {
                url: a.url,
                selector: a.selector,
                text: a.text,
                apis: a.apis,
                allow_failed: a.allow_failed,
            };
            browser::run(&probe, timeout, a.screenshot_dir.as_deref()).await?
        }
        ProbeKind::Tcp(a) => {
            let expect = match a.expect {
                OpenExpectation::Open => TcpExpectation::Open,
                OpenExpectation::Refused => TcpExpectation::Refused,
            };
            let follow_up = match (&a.grpc, a.tls_handshake) {
                (Some(call), _) => {
                    let call = GrpcCall::parse(call)
                        .ok_or_else(|| ProbeCliError::GrpcCall(call.clone()))?;
                    let tls = if a.tls.any() {
                        Some(a.tls.client_tls()?)
                    } else {
                        None
                    };
                    FollowUp::Grpc(tls, call)
                }
                (None, true) => FollowUp::Tls(a.tls.client_tls()?),
                (None, false) => FollowUp::None,
            };
            tcp::check(&a.address, expect, &follow_up, timeout).await
        }
        ProbeKind::Prometheus(a) => {
            let labels = a
                .labels
                .iter()
                .map(|l| {
                    l.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| ProbeCliError::Label(l.clone()))
                })
                .collect::<Result<BTreeMap<_, _>, _>>()?;
            let probe = PrometheusProbe {
                url: a.url,
                expect: vec![SeriesExpectation {
                    metrics: a.metrics,
                    labels,
                    at_least: a.at_least,
                    at_most: a.at_most,
                }],
            };
            checked(Probe::Prometheus(probe.clone()))?;
            prometheus::run(&probe, timeout).await
        }
        ProbeKind::Reachability(a) => {
            let cells = a
                .cells
                .iter()
                .map(|c| parse_cell(c).ok_or_else(|| ProbeCliError::Cell(c.clone())))
                .collect::<Result<Vec<_>, _>>()?;
            let probe = ReachabilityProbe {
                title: a.title,
                cells,
            };
            checked(Probe::Reachability(probe.clone()))?;
            reachability::run(&probe, timeout).await
        }
    })
}

/// The probe's own checks, as the loader makes them, as a usage error.
fn checked(probe: Probe) -> Result<(), ProbeCliError> {
    let problems: Vec<String> = probe
        .problems()
        .into_iter()
        .map(|(field, message)| format!("{field}: {message}"))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ProbeCliError::Invalid(problems.join("; ")))
    }
}

/// `SOURCE,PORT,HOST:PORT,CALL,EXPECT[,PATH]`.
fn parse_cell(text: &str) -> Option<ReachabilityCell> {
    let parts: Vec<&str> = text.split(',').collect();
    let (source, port, address, call, expect, path) = match parts.as_slice() {
        [s, p, a, c, e] => (*s, *p, *a, *c, *e, None),
        [s, p, a, c, e, path] => (*s, *p, *a, *c, *e, Some(path.to_string())),
        _ => return None,
    };
    host_port(address).ok()?;
    Some(ReachabilityCell {
        source: source.to_string(),
        port: port.parse().ok()?,
        address: address.to_string(),
        call: match call {
            "rayPing" => ReachabilityCall::RayPing,
            "gcsClusterId" => ReachabilityCall::GcsClusterId,
            "http" => ReachabilityCall::Http,
            _ => return None,
        },
        path,
        expect: match expect {
            "ok" => CellExpectation::Ok,
            "refused" => CellExpectation::Refused,
            _ => return None,
        },
    })
}

/// A `host:port` argument; anything else is a usage error (exit 2), not a
/// failed probe.
fn host_port(arg: &str) -> Result<String, String> {
    super::connection::split_address(arg)
        .map(|_| arg.to_string())
        .map_err(|_| "expected host:port (e.g. localhost:443 or [::1]:443)".to_string())
}

/// An `http://` or `https://` URL argument with a host.
fn http_url(arg: &str) -> Result<String, String> {
    match url::Url::parse(arg) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(arg.to_string())
        }
        Ok(u) => Err(format!(
            "expected an http:// or https:// URL with a host, found scheme `{}`",
            u.scheme()
        )),
        Err(e) => Err(format!("expected an http:// or https:// URL: {e}")),
    }
}

fn parse_headers(raw: &[String]) -> Result<BTreeMap<String, String>, ProbeCliError> {
    raw.iter()
        .map(|h| {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| ProbeCliError::Header(h.clone()))?;
            Ok((name.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

fn parse_json_fields(raw: &[String]) -> Result<BTreeMap<String, serde_json::Value>, ProbeCliError> {
    raw.iter()
        .map(|field| {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| ProbeCliError::JsonField(field.clone()))?;
            let value = serde_json::from_str(value)
                .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
            Ok((key.to_string(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        probe: ProbeCommand,
    }

    fn parse(args: &[&str]) -> ProbeCommand {
        Cli::try_parse_from(std::iter::once("probe").chain(args.iter().copied()))
            .unwrap()
            .probe
    }

    #[tokio::test]
    async fn exit_codes_follow_the_verdict() {
        // A port that was just free: bound by the kernel, then released.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{closed}");
        assert_eq!(
            execute(parse(&[
                "tcp",
                &address,
                "--expect",
                "refused",
                "--timeout",
                "5s"
            ]))
            .await,
            EXIT_PASSED
        );
        assert_eq!(
            execute(parse(&["tcp", &address, "--timeout", "5s"])).await,
            EXIT_FAILED
        );
        assert_eq!(
            execute(parse(&["grpc-ready", &address, "--plaintext"])).await,
            EXIT_FAILED
        );
        assert_eq!(
            execute(parse(&["tcp", &address, "--grpc", "nonsense"])).await,
            EXIT_USAGE
        );
        assert_eq!(
            execute(parse(&["grpc-ready", &address, "--tls-version", "1.1"])).await,
            EXIT_USAGE
        );
    }

    #[test]
    fn flags_parse() {
        assert!(
            Cli::try_parse_from(["probe", "grpc-ready", "h:1", "--plaintext", "--ca", "x"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["probe", "http", "http://h/", "--cert", "c"]).is_err());
        let fields = parse_json_fields(&["ray_version=2.60.0".into(), "/n=3".into()]).unwrap();
        assert_eq!(fields["ray_version"], serde_json::json!("2.60.0"));
        assert_eq!(fields["/n"], serde_json::json!(3));
    }
}
