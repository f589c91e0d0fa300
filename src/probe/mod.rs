//! Probes: target-independent checks that take addresses, names and
//! credentials and return a [`Verdict`] with evidence.

pub mod cli;
pub mod connection;
pub mod failure;
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
    }
}
