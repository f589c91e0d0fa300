//! `reachability`: a matrix of calls, source × port, each expected to be
//! answered (ok) or not (refused), run side by side and printed as a table
//! the way Istio's own reachability tests read (a mesh client reaches every
//! port; a naked one only where mTLS is not required).

use super::grpc_session::{GrpcCall, run_session};
use super::http_client::{prepare, request_failure};
use super::spec::{CellExpectation, ReachabilityCall, ReachabilityCell, ReachabilityProbe};
use super::timeline::{Timeline, ms};
use crate::verdict::{Stage, Verdict};
use std::time::Duration;

/// What one cell's call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Answered: the answer in words.
    Ok(String),
    /// Not answered: how it stopped (reset, refused, closed, an error status).
    Refused(String),
    /// No answer before the deadline.
    TimedOut(String),
}

impl Observed {
    /// Whether this matches `expect` (a timeout is not an answer).
    pub fn matches(&self, expect: CellExpectation) -> bool {
        match self {
            Observed::Ok(_) => expect == CellExpectation::Ok,
            Observed::Refused(_) | Observed::TimedOut(_) => expect == CellExpectation::Refused,
        }
    }

    fn word(&self) -> &'static str {
        match self {
            Observed::Ok(_) => "ok",
            Observed::Refused(_) => "refused",
            Observed::TimedOut(_) => "timeout",
        }
    }

    fn detail(&self) -> &str {
        match self {
            Observed::Ok(d) | Observed::Refused(d) | Observed::TimedOut(d) => d,
        }
    }
}

fn expectation_word(expect: CellExpectation) -> &'static str {
    match expect {
        CellExpectation::Ok => "ok",
        CellExpectation::Refused => "refused",
    }
}

/// Runs a `reachability` probe: every cell side by side, each bounded by
/// `timeout`.
pub async fn run(probe: &ReachabilityProbe, timeout: Duration) -> Verdict {
    let started = std::time::Instant::now();
    let calls = probe.cells.iter().map(|cell| call_cell(cell, timeout));
    let observed = futures::future::join_all(calls).await;
    verdict(probe, &observed, started.elapsed())
}

/// The verdict for `observed` (one per cell, in cell order): passed when
/// every cell matched; the evidence is the table and one line per cell.
pub fn verdict(probe: &ReachabilityProbe, observed: &[Observed], took: Duration) -> Verdict {
    let wrong: Vec<String> = probe
        .cells
        .iter()
        .zip(observed)
        .filter(|(cell, seen)| !seen.matches(cell.expect))
        .map(|(cell, seen)| {
            format!(
                "{} → {}: {} (expected {})",
                cell.source,
                cell.port,
                seen.word(),
                expectation_word(cell.expect)
            )
        })
        .collect();
    let mut evidence = table(probe, observed);
    for (cell, seen) in probe.cells.iter().zip(observed) {
        evidence.push(format!(
            "{} → {} via {} ({}): {} — {}",
            cell.source,
            cell.port,
            cell.address,
            call_name(cell),
            seen.word(),
            seen.detail()
        ));
    }
    let expected = format!(
        "{} cell(s) as the matrix says ({} ok, {} refused)",
        probe.cells.len(),
        probe
            .cells
            .iter()
            .filter(|c| c.expect == CellExpectation::Ok)
            .count(),
        probe
            .cells
            .iter()
            .filter(|c| c.expect == CellExpectation::Refused)
            .count()
    );
    let title = probe.title.as_deref().unwrap_or("reachability");
    if wrong.is_empty() {
        Verdict::pass(
            format!(
                "{title}: all {} cells as expected in {}",
                probe.cells.len(),
                ms(took)
            ),
            expected,
            format!("{} cell(s) as expected", probe.cells.len()),
        )
    } else {
        Verdict::fail(
            Stage::Rpc,
            format!(
                "{title}: {} of {} cells differ: {}",
                wrong.len(),
                probe.cells.len(),
                wrong.join("; ")
            ),
            expected,
            wrong.join("; "),
        )
    }
    .with_evidence(evidence)
}

/// The matrix as text lines: a title, a header row of ports, one row per
/// source. A cell shows what was observed, with `✗ (expected ...)` where
/// that differs; `-` where the matrix has no cell.
pub fn table(probe: &ReachabilityProbe, observed: &[Observed]) -> Vec<String> {
    let mut sources: Vec<&str> = Vec::new();
    let mut ports: Vec<u16> = Vec::new();
    for cell in &probe.cells {
        if !sources.contains(&cell.source.as_str()) {
            sources.push(&cell.source);
        }
        if !ports.contains(&cell.port) {
            ports.push(cell.port);
        }
    }
    let mut rows: Vec<Vec<String>> = vec![
        std::iter::once("source \\ port".to_string())
            .chain(ports.iter().map(u16::to_string))
            .collect(),
    ];
    for source in &sources {
        let mut row = vec![source.to_string()];
        for port in &ports {
            let found = probe
                .cells
                .iter()
                .zip(observed)
                .find(|(c, _)| c.source == *source && c.port == *port);
            row.push(match found {
                None => "-".to_string(),
                Some((cell, seen)) if seen.matches(cell.expect) => format!("{} ✓", seen.word()),
                Some((cell, seen)) => format!(
                    "{} ✗ (expected {})",
                    seen.word(),
                    expectation_word(cell.expect)
                ),
            });
        }
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut lines = vec![format!(
        "{} (source × port; observed, ✓ as expected)",
        probe.title.as_deref().unwrap_or("reachability")
    )];
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        lines.push(format!("| {} |", cells.join(" | ")));
    }
    lines
}

fn call_name(cell: &ReachabilityCell) -> String {
    match cell.call {
        ReachabilityCall::RayPing => "Ray client PING + session check".into(),
        ReachabilityCall::GcsClusterId => "GCS GetClusterId".into(),
        ReachabilityCall::Http => format!("HTTP GET {}", cell.path.as_deref().unwrap_or("/")),
    }
}

async fn call_cell(cell: &ReachabilityCell, timeout: Duration) -> Observed {
    match cell.call {
        ReachabilityCall::RayPing => call_grpc(&cell.address, GrpcCall::RayPing, timeout).await,
        ReachabilityCall::GcsClusterId => {
            call_grpc(&cell.address, GrpcCall::GcsClusterId, timeout).await
        }
        ReachabilityCall::Http => {
            call_http(&cell.address, cell.path.as_deref().unwrap_or("/"), timeout).await
        }
    }
}

async fn call_grpc(address: &str, call: GrpcCall, timeout: Duration) -> Observed {
    let mut timeline = Timeline::new();
    let deadline = tokio::time::Instant::now() + timeout;
    match run_session(address, None, call, deadline, &mut timeline).await {
        Ok(success) => Observed::Ok(success.answer),
        Err(failure) if failure.timed_out.is_some() => Observed::TimedOut(failure.message),
        Err(failure) => Observed::Refused(format!("stage {}: {}", failure.stage, failure.message)),
    }
}

async fn call_http(address: &str, path: &str, timeout: Duration) -> Observed {
    let url = format!("http://{address}{path}");
    let started = std::time::Instant::now();
    let prepared = match prepare(&url, None, false, timeout).await {
        Ok(p) => p,
        Err(f) => return Observed::Refused(f.message),
    };
    match prepared.client.get(prepared.url).send().await {
        Ok(response) if response.status().is_success() => {
            Observed::Ok(format!("{} from GET {path}", response.status().as_u16()))
        }
        Ok(response) => Observed::Refused(format!(
            "status {} from GET {path}",
            response.status().as_u16()
        )),
        Err(e) => {
            let failure = request_failure(&e, started.elapsed());
            if failure.timed_out.is_some() {
                Observed::TimedOut(failure.message)
            } else {
                Observed::Refused(format!("stage {}: {}", failure.stage, failure.message))
            }
        }
    }
}
