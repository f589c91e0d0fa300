//! The reqwest client the HTTP probes share: rustls with the run's CA,
//! redirects followed or not, no proxies (probes target loopback).

use super::failure::Failure;
use crate::tls::{ClientTls, install_crypto_provider};
use crate::verdict::Stage;
use std::error::Error as _;
use std::time::Duration;
use url::Url;

/// A client plus the URL to use (rewritten when a server name override
/// applies: the request then goes to the override's name, resolved to the
/// original host's address, so SNI, Host and verification all use it).
#[derive(Debug, Clone)]
pub struct PreparedClient {
    /// The client.
    pub client: reqwest::Client,
    /// The URL to request.
    pub url: Url,
}

/// Builds the client for `url`.
pub async fn prepare(
    url: &str,
    tls: Option<&ClientTls>,
    follow_redirects: bool,
    timeout: Duration,
) -> Result<PreparedClient, Failure> {
    install_crypto_provider();
    let mut url =
        Url::parse(url).map_err(|e| Failure::new(Stage::Http, format!("bad URL `{url}`: {e}")))?;
    let policy = if follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    let mut builder = reqwest::Client::builder()
        .redirect(policy)
        .timeout(timeout)
        .no_proxy();
    if let Some(tls) = tls {
        let config = tls
            .config(&[b"h2", b"http/1.1"])
            .map_err(|e| Failure::new(Stage::Tls, format!("TLS client setup: {e}")))?;
        builder = builder.tls_backend_preconfigured(config);
        if let Some(name) = tls.server_name.as_deref()
            && Some(name) != url.host_str()
        {
            let host = url.host_str().unwrap_or_default().to_string();
            let port = url.port_or_known_default().unwrap_or(443);
            let addr = tokio::net::lookup_host((host.as_str(), port))
                .await
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| Failure::new(Stage::Resolve, format!("resolving {host}")))?;
            builder = builder.resolve(name, addr);
            url.set_host(Some(name))
                .map_err(|e| Failure::new(Stage::Http, format!("server name {name}: {e}")))?;
        }
    }
    let client = builder
        .build()
        .map_err(|e| Failure::new(Stage::Http, format!("building HTTP client: {e}")))?;
    Ok(PreparedClient { client, url })
}

/// A reqwest error as a failure at the stage it happened, with its causes.
pub fn request_failure(e: &reqwest::Error, elapsed: Duration) -> Failure {
    if e.is_timeout() {
        return Failure::timeout(Stage::Http, elapsed);
    }
    let text = error_chain(e);
    let stage = if e.is_connect() {
        let lower = text.to_lowercase();
        if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("alert")
            || lower.contains("handshake")
        {
            Stage::Tls
        } else {
            Stage::Tcp
        }
    } else {
        Stage::Http
    };
    Failure::new(stage, text)
}

/// An error and all its sources on one line.
pub fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
