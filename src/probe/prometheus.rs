//! `prometheus`: fetch a Prometheus text exposition (an Envoy sidecar's
//! `:15090/stats/prometheus`) and check that the series of the named
//! metrics carrying the given labels add up to what is expected — e.g.
//! `istio_tcp_connections_opened_total` with
//! `connection_security_policy="mutual_tls"` on the destination side.

use super::http_client::{prepare, request_failure};
use super::prometheus_text::{Sample, parse};
use super::spec::{PrometheusProbe, SeriesExpectation};
use super::timeline::{Timeline, ms};
use crate::verdict::{Stage, Verdict};
use std::time::Duration;

/// How many matching series the evidence lists per expectation.
const SHOWN_SERIES: usize = 8;

/// Runs a `prometheus` probe.
pub async fn run(probe: &PrometheusProbe, timeout: Duration) -> Verdict {
    let mut timeline = Timeline::new();
    let expected = probe
        .expect
        .iter()
        .map(describe)
        .collect::<Vec<_>>()
        .join("; ");
    let prepared = match prepare(&probe.url, None, false, timeout).await {
        Ok(p) => p,
        Err(f) => return Verdict::fail(f.stage, f.message.clone(), expected, f.to_string()),
    };
    timeline.note(format!("GET {}", prepared.url));
    let body = match prepared.client.get(prepared.url.clone()).send().await {
        Ok(response) if response.status().is_success() => match response.text().await {
            Ok(body) => body,
            Err(e) => {
                let f = request_failure(&e, timeline.elapsed());
                return Verdict::fail(f.stage, f.message.clone(), expected, f.to_string())
                    .with_evidence(timeline.into_lines());
            }
        },
        Ok(response) => {
            let status = response.status().as_u16();
            return Verdict::fail(
                Stage::HttpStatus,
                format!("the exposition answered status {status}"),
                expected,
                format!("status {status}"),
            )
            .with_evidence(timeline.into_lines());
        }
        Err(e) => {
            let f = request_failure(&e, timeline.elapsed());
            return Verdict::fail(f.stage, f.message.clone(), expected, f.to_string())
                .with_evidence(timeline.into_lines());
        }
    };
    timeline.note(format!(
        "{} bytes in {}",
        body.len(),
        ms(timeline.elapsed())
    ));
    let mut verdict = evaluate(probe, &body);
    let mut lines = timeline.into_lines();
    lines.append(&mut verdict.evidence);
    verdict.evidence = lines;
    verdict
}

/// The verdict for an exposition `text`: every expectation checked, each
/// with the series it counted as evidence.
pub fn evaluate(probe: &PrometheusProbe, text: &str) -> Verdict {
    let expected = probe
        .expect
        .iter()
        .map(describe)
        .collect::<Vec<_>>()
        .join("; ");
    let samples = match parse(text) {
        Ok(s) => s,
        Err(e) => {
            return Verdict::fail(
                Stage::Body,
                format!("not a Prometheus text exposition: {e}"),
                expected,
                e,
            );
        }
    };
    let mut evidence = vec![format!("{} samples read", samples.len())];
    let mut problems = Vec::new();
    let mut observed = Vec::new();
    for want in &probe.expect {
        let counted: Vec<&Sample> = samples.iter().filter(|s| counts(want, s)).collect();
        let sum: f64 = counted.iter().map(|s| s.value).sum();
        let what = describe(want);
        evidence.push(format!("{what}: {} series, sum {sum}", counted.len()));
        evidence.extend(
            counted
                .iter()
                .take(SHOWN_SERIES)
                .map(|s| format!("  {}", s.show())),
        );
        if counted.len() > SHOWN_SERIES {
            evidence.push(format!("  ... {} more", counted.len() - SHOWN_SERIES));
        }
        if counted.is_empty() {
            // Say which of the metrics exist at all, with which label values,
            // so a wrong label reads as such.
            for name in &want.metrics {
                let same_name: Vec<&Sample> = samples.iter().filter(|s| &s.name == name).collect();
                evidence.push(format!(
                    "  {name}: {} series in the exposition",
                    same_name.len()
                ));
                for (key, value) in &want.labels {
                    let mut seen: Vec<&str> = same_name
                        .iter()
                        .filter_map(|s| s.labels.get(key).map(String::as_str))
                        .collect();
                    seen.sort_unstable();
                    seen.dedup();
                    if !seen.is_empty() && !seen.contains(&value.as_str()) {
                        evidence.push(format!("  {name}: {key} is only {seen:?}"));
                    }
                }
            }
        }
        observed.push(format!("sum {sum} over {} series", counted.len()));
        let low = want.at_least.unwrap_or(if want.at_most.is_some() {
            f64::NEG_INFINITY
        } else {
            1.0
        });
        if sum < low {
            problems.push(format!("{what}: sum {sum} is below {low}"));
        }
        if let Some(high) = want.at_most
            && sum > high
        {
            problems.push(format!("{what}: sum {sum} is above {high}"));
        }
    }
    let actual = observed.join("; ");
    if problems.is_empty() {
        Verdict::pass(
            format!("{} expectation(s) hold: {actual}", probe.expect.len()),
            expected,
            actual,
        )
    } else {
        Verdict::fail(Stage::Body, problems.join("; "), expected, actual)
    }
    .with_evidence(evidence)
}

fn counts(want: &SeriesExpectation, sample: &Sample) -> bool {
    want.metrics.contains(&sample.name)
        && want
            .labels
            .iter()
            .all(|(k, v)| sample.labels.get(k) == Some(v))
}

fn describe(want: &SeriesExpectation) -> String {
    let labels: Vec<String> = want
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    let bounds = match (want.at_least, want.at_most) {
        (None, None) => ">= 1".to_string(),
        (Some(low), None) => format!(">= {low}"),
        (None, Some(high)) => format!("<= {high}"),
        (Some(low), Some(high)) => format!("in [{low}, {high}]"),
    };
    format!(
        "{}{{{}}} {bounds}",
        want.metrics.join("|"),
        labels.join(",")
    )
}
