//! `mtls`: the four-cell matrix against one endpoint. Plaintext, TLS
//! without a client certificate and TLS with a foreign-CA certificate must
//! be refused; TLS with the right certificate must be accepted.
//!
//! Under TLS 1.3 a rejected client sees the handshake complete and the
//! server close afterwards, so a cell counts as accepted only after the
//! server's SETTINGS and a completed Ray RPC, and as refused only after a
//! close, reset or alert. A timeout is neither.

use super::failure::Failure;
use super::grpc_ready::setup_failure;
use super::grpc_session::{GrpcCall, GrpcSuccess, run_session};
use super::spec::MtlsProbe;
use super::timeline::{Timeline, ms};
use crate::tls::{CertificateSet, ClientIdentity, ClientTls, FOREIGN, TlsError, TlsVersion};
use crate::verdict::{Stage, Verdict};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The credentials the matrix needs, as files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtlsCredentials {
    /// CA that verifies the server.
    pub ca_cert: PathBuf,
    /// The right client certificate (signed by the server's trusted CA).
    pub good: ClientIdentity,
    /// A client certificate from another CA.
    pub foreign: ClientIdentity,
}

impl MtlsCredentials {
    /// From the run's certificates: authority `ca` and [`FOREIGN`].
    pub fn from_set(ca: &str, certs: Option<&CertificateSet>) -> Result<Self, TlsError> {
        let get = |name: &str| {
            certs
                .and_then(|c| c.get(name))
                .ok_or_else(|| TlsError::UnknownAuthority(name.into()))
        };
        let good = get(ca)?;
        let foreign = get(FOREIGN)?;
        Ok(MtlsCredentials {
            ca_cert: good.ca_cert.clone(),
            good: ClientIdentity {
                cert: good.client_cert.clone(),
                key: good.client_key.clone(),
                label: format!("client cert of authority `{ca}`"),
            },
            foreign: ClientIdentity {
                cert: foreign.client_cert.clone(),
                key: foreign.client_key.clone(),
                label: format!("client cert of authority `{FOREIGN}`"),
            },
        })
    }
}

/// What one cell observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellResult {
    /// SETTINGS plus a completed RPC.
    Accepted(String),
    /// Closed, reset or alerted (how), at a stage.
    Refused {
        /// How the peer turned it away.
        how: String,
        /// Where.
        stage: Stage,
    },
    /// The deadline passed first (what, and the stage it was waiting at).
    TimedOut(String, Stage),
    /// Something else (e.g. an RPC error status after SETTINGS, or a local
    /// error), and its stage.
    Unclear(String, Stage),
}

impl CellResult {
    fn describe(&self) -> String {
        match self {
            CellResult::Accepted(answer) => format!("accepted ({answer})"),
            CellResult::Refused { how, stage } => format!("refused at stage {stage}: {how}"),
            CellResult::TimedOut(what, _) => format!("timed out: {what}"),
            CellResult::Unclear(what, _) => format!("neither accepted nor refused: {what}"),
        }
    }
}

/// One row of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Plaintext HTTP/2.
    Plaintext,
    /// TLS, no client certificate.
    NoClientCert,
    /// TLS with the foreign CA's client certificate.
    ForeignCert,
    /// TLS with the right client certificate.
    GoodCert,
}

impl Cell {
    /// All four, in order.
    pub const ALL: [Cell; 4] = [
        Cell::Plaintext,
        Cell::NoClientCert,
        Cell::ForeignCert,
        Cell::GoodCert,
    ];

    fn name(self) -> &'static str {
        match self {
            Cell::Plaintext => "plaintext",
            Cell::NoClientCert => "TLS without client cert",
            Cell::ForeignCert => "TLS with foreign-CA client cert",
            Cell::GoodCert => "TLS with the right client cert",
        }
    }

    fn expects_accept(self) -> bool {
        self == Cell::GoodCert
    }
}

/// Runs an `mtls` probe from a scenario.
pub async fn run(probe: &MtlsProbe, certs: Option<&CertificateSet>, timeout: Duration) -> Verdict {
    let creds = match MtlsCredentials::from_set(&probe.ca, certs) {
        Ok(c) => c,
        Err(e) => return setup_failure(&e.to_string()),
    };
    let version = match probe
        .tls_version
        .as_deref()
        .map(TlsVersion::from_str)
        .transpose()
    {
        Ok(v) => v,
        Err(e) => return setup_failure(&e.to_string()),
    };
    check(
        &probe.address,
        probe.server_name.as_deref(),
        &creds,
        version,
        timeout,
    )
    .await
}

/// The matrix with credentials already resolved (the CLI's entry point).
/// `timeout` is shared by the four cells.
pub async fn check(
    address: &str,
    server_name: Option<&str>,
    creds: &MtlsCredentials,
    version: Option<TlsVersion>,
    timeout: Duration,
) -> Verdict {
    let per_cell = timeout / 4;
    let mut evidence = Vec::new();
    let mut results = Vec::new();
    let started = std::time::Instant::now();
    for cell in Cell::ALL {
        let tls = match cell {
            Cell::Plaintext => None,
            _ => Some(ClientTls {
                server_name: server_name.map(str::to_string),
                ca_cert: Some(creds.ca_cert.clone()),
                insecure: false,
                identity: match cell {
                    Cell::ForeignCert => Some(creds.foreign.clone()),
                    Cell::GoodCert => Some(creds.good.clone()),
                    _ => None,
                },
                version,
            }),
        };
        let mut timeline = Timeline::new();
        let deadline = tokio::time::Instant::now() + per_cell;
        let outcome = run_session(
            address,
            tls.as_ref(),
            GrpcCall::RayPing,
            deadline,
            &mut timeline,
        )
        .await;
        let result = classify(outcome);
        let ok = match &result {
            CellResult::Accepted(_) => cell.expects_accept(),
            CellResult::Refused { .. } => !cell.expects_accept(),
            _ => false,
        };
        let expected = if cell.expects_accept() {
            "accepted"
        } else {
            "refused"
        };
        let mark = if ok { "ok" } else { "WRONG" };
        evidence.push(format!(
            "[{mark}] {}: expected {expected}, {} (in {})",
            cell.name(),
            result.describe(),
            ms(timeline.elapsed())
        ));
        evidence.extend(
            timeline
                .into_lines()
                .into_iter()
                .map(|l| format!("    {l}")),
        );
        results.push((cell, result, ok));
    }
    let version_text = version
        .map(|v| v.to_string())
        .unwrap_or_else(|| "TLS 1.2 or 1.3".into());
    let expected = format!(
        "over {version_text}: plaintext refused, no client cert refused, foreign-CA cert refused, right cert accepted"
    );
    let actual = results
        .iter()
        .map(|(cell, result, _)| format!("{}={}", cell.name(), short(result)))
        .collect::<Vec<_>>()
        .join(", ");
    let cells = results
        .iter()
        .map(|(cell, result, ok)| headline_cell(*cell, result, *ok))
        .collect::<Vec<_>>()
        .join("; ");
    let verdict = match deciding_cell(&results) {
        None => Verdict::pass(
            format!("mTLS enforced in {}: {cells}", ms(started.elapsed())),
            expected,
            actual,
        ),
        Some((cell, result)) => {
            let stage = stage_of(result);
            Verdict::fail(
                stage,
                format!(
                    "mTLS matrix wrong, decided by {} at stage {stage}: {cells}",
                    cell.name()
                ),
                expected,
                actual,
            )
        }
    };
    verdict.with_evidence(evidence)
}

/// The wrong cell that decides a failed matrix: a refusal cell that was
/// accepted (mTLS not enforced) first, then the right-cert cell not
/// accepted (the path does not work at all), then the first other wrong cell.
fn deciding_cell(results: &[(Cell, CellResult, bool)]) -> Option<(Cell, &CellResult)> {
    let wrong = || results.iter().filter(|(_, _, ok)| !ok);
    wrong()
        .find(|(cell, result, _)| {
            !cell.expects_accept() && matches!(result, CellResult::Accepted(_))
        })
        .or_else(|| wrong().find(|(cell, _, _)| cell.expects_accept()))
        .or_else(|| wrong().next())
        .map(|(cell, result, _)| (*cell, result))
}

/// One cell in the headline: its verdict and stage; a wrong cell with why.
fn headline_cell(cell: Cell, result: &CellResult, ok: bool) -> String {
    let verdict = match result {
        CellResult::Accepted(_) => "accepted".to_string(),
        CellResult::Refused { stage, .. } => format!("refused at {stage}"),
        CellResult::TimedOut(_, stage) => format!("timed out at {stage}"),
        CellResult::Unclear(_, stage) => format!("unclear at {stage}"),
    };
    if ok {
        format!("{} {verdict}", cell.name())
    } else {
        format!("{} {verdict} (WRONG: {})", cell.name(), result.describe())
    }
}

fn classify(outcome: Result<GrpcSuccess, Failure>) -> CellResult {
    match outcome {
        Ok(success) => CellResult::Accepted(success.answer),
        Err(f) if f.is_timeout() => CellResult::TimedOut(f.message, f.stage),
        Err(f) => match f.refusal {
            Some(how) => CellResult::Refused {
                how,
                stage: f.stage,
            },
            None => CellResult::Unclear(format!("stage {}: {}", f.stage, f.message), f.stage),
        },
    }
}

fn short(result: &CellResult) -> &'static str {
    match result {
        CellResult::Accepted(_) => "accepted",
        CellResult::Refused { .. } => "refused",
        CellResult::TimedOut(..) => "timed out",
        CellResult::Unclear(..) => "unclear",
    }
}

/// Where a wrong cell went wrong: a wrongly accepted cell got all the way
/// to the RPC; a wrongly refused or stuck one stopped at its stage.
fn stage_of(result: &CellResult) -> Stage {
    match result {
        CellResult::Accepted(_) => Stage::Rpc,
        CellResult::Refused { stage, .. }
        | CellResult::TimedOut(_, stage)
        | CellResult::Unclear(_, stage) => *stage,
    }
}
