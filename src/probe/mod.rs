//! Probes: target-independent checks that take addresses, names and
//! credentials and return a [`Verdict`] with evidence.

pub mod spec;

use crate::scenario::Probe;
use crate::tls::CertificateSet;
use crate::verdict::Verdict;
use std::time::Duration;

/// Runs one probe (its strings already templated) within `timeout`.
pub async fn run(probe: &Probe, certs: Option<&CertificateSet>, timeout: Duration) -> Verdict {
    let _ = (probe, certs, timeout);
    unimplemented!("probes are built in issue 3")
}
