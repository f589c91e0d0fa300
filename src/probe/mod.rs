//! Probes: target-independent checks that take addresses, names and
//! credentials and return a [`Verdict`] with evidence.

pub mod browser;
pub mod browser_log;
pub mod browser_process;
pub mod cli;
pub mod connection;
pub mod failure;
pub mod gcs_nodes;
pub mod grpc_ready;
pub mod grpc_session;
pub mod http;
pub mod http_answer;
pub mod http_client;
pub mod http_expect;
pub mod mtls;
pub mod page;
pub mod prometheus;
pub mod prometheus_text;
pub mod ray_nodes;
pub mod ray_proto;
pub mod reachability;
pub mod recorder;
pub mod spec;
pub mod tcp;
pub mod timeline;

use crate::tls::CertificateSet;
use crate::verdict::Verdict;
use spec::Probe;
use std::time::Duration;

/// Runs one probe (its strings already templated) within `timeout`.
pub async fn run(probe: &Probe, certs: Option<&CertificateSet>, timeout: Duration) -> Verdict {
    match probe {
        Probe::GrpcReady(p) => grpc_ready::run(p, certs, timeout).await,
        Probe::Mtls(p) => mtls::run(p, certs, timeout).await,
        Probe::Http(p) => http::run(p, certs, timeout).await,
        Probe::Page(p) => page::run(p, certs, timeout).await,
        Probe::Tcp(p) => tcp::run(p, certs, timeout).await,
        Probe::Reachability(p) => reachability::run(p, timeout).await,
        Probe::Prometheus(p) => prometheus::run(p, timeout).await,
        Probe::Browser(p) => browser::run(p, timeout, None)
            .await
            .unwrap_or_else(|missing| {
                let why = missing.to_string();
                Verdict::fail(crate::verdict::Stage::Render, why.clone(), "a browser", why)
            }),
    }
}

/// Runs one probe as a scenario step does: files it makes (screenshots)
/// go into `artifacts`. `Err` says why the probe cannot run on this
/// machine (no Chromium): the step is skipped with that reason, never
/// passed.
pub async fn run_step_probe(
    probe: &Probe,
    certs: Option<&CertificateSet>,
    timeout: Duration,
    artifacts: Option<&std::path::Path>,
) -> Result<Verdict, String> {
    match probe {
        Probe::Browser(p) => browser::run(p, timeout, artifacts)
            .await
            .map_err(|missing| missing.to_string()),
        other => Ok(run(other, certs, timeout).await),
    }
}
