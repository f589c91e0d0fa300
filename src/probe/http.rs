//! `http`: one HTTP request and checks on its response.

use super::failure::Failure;
use super::grpc_ready::setup_failure;
use super::http_client::{prepare, request_failure};
use super::spec::HttpProbe;
use super::timeline::{Timeline, ms};
use crate::tls::{CertificateSet, ClientTls};
use crate::verdict::{Stage, Verdict};
use std::time::Duration;

/// How much of a body evidence shows.
const BODY_PREVIEW: usize = 300;

/// Runs an `http` probe from a scenario.
pub async fn run(probe: &HttpProbe, certs: Option<&CertificateSet>, timeout: Duration) -> Verdict {
    match probe.tls.as_ref().map(|t| t.client_tls(certs)).transpose() {
        Ok(tls) => check(probe, tls.as_ref(), timeout).await,
        Err(e) => setup_failure(&e.to_string()),
    }
}

/// The probe with credentials resolved (the CLI's entry point). Without
/// `expect_status` the status must be 2xx (3xx when `expect_location` is set).
pub async fn check(probe: &HttpProbe, tls: Option<&ClientTls>, timeout: Duration) -> Verdict {
    let unverified = tls.is_some_and(ClientTls::skips_verification);
    exchange(probe, tls, timeout)
        .await
        .server_unverified_if(unverified)
}

async fn exchange(probe: &HttpProbe, tls: Option<&ClientTls>, timeout: Duration) -> Verdict {
    let mut timeline = Timeline::new();
    let expected = describe_expectation(probe);
    let prepared = match prepare(&probe.url, tls, probe.follow_redirects, timeout).await {
        Ok(p) => p,
        Err(f) => return fail(f, &expected, timeline),
    };
    let method_name = probe.method.as_deref().unwrap_or("GET").to_uppercase();
    let method = match reqwest::Method::from_bytes(method_name.as_bytes()) {
        Ok(m) => m,
        Err(_) => {
            return fail(
                Failure::new(Stage::Http, format!("bad method {method_name}")),
                &expected,
                timeline,
            );
        }
    };
    let mut request = prepared.client.request(method, prepared.url.clone());
    for (name, value) in &probe.headers {
        request = request.header(name, value);
    }
    let has_content_type = probe
        .headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("content-type"));
    if let Some(json) = &probe.json {
        if !has_content_type {
            request = request.header("content-type", "application/json");
        }
        request = request.body(json.to_string());
        timeline.note(format!(
            "request body (JSON): {}",
            preview(&json.to_string())
        ));
    } else if let Some(body) = &probe.body {
        request = request.body(body.clone());
        timeline.note(format!("request body: {}", preview(body)));
    }
    timeline.note(format!(
        "{method_name} {} (redirects {})",
        prepared.url,
        if probe.follow_redirects {
            "followed"
        } else {
            "not followed"
        }
    ));
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            let f = request_failure(&e, timeline.elapsed());
            timeline.note(format!("request failed: {}", f.message));
            return fail(f, &expected, timeline);
        }
    };
    let status = response.status();
    let final_url = response.url().clone();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let location = header("location");
    let content_type = header("content-type");
    timeline.note(format!(
        "{} {} from {final_url}{}{}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        location
            .as_ref()
            .map(|l| format!(", Location: {l}"))
            .unwrap_or_default(),
        content_type
            .as_ref()
            .map(|c| format!(", Content-Type: {c}"))
            .unwrap_or_default(),
    ));
    let body = match response.text().await {
        Ok(b) => b,
        Err(e) => return fail(request_failure(&e, timeline.elapsed()), &expected, timeline),
    };
    timeline.note(format!("body ({} bytes): {}", body.len(), preview(&body)));

    let mut problems: Vec<(Stage, String)> = Vec::new();
    let status_ok = match probe.expect_status {
        Some(want) => status.as_u16() == want,
        None if probe.expect_location.is_some() => status.is_redirection(),
        None => status.is_success(),
    };
    if !status_ok {
        problems.push((
            Stage::HttpStatus,
            format!(
                "status {} (expected {})",
                status.as_u16(),
                status_expectation(probe)
            ),
        ));
    }
    if let Some(want) = &probe.expect_location
        && location.as_deref() != Some(want.as_str())
    {
        problems.push((
            Stage::Body,
            format!(
                "Location {:?} (expected {want:?})",
                location.as_deref().unwrap_or("none")
            ),
        ));
    }
    if let Some(want) = &probe.expect_content_type
        && !content_type
            .as_deref()
            .unwrap_or("")
            .starts_with(want.as_str())
    {
        problems.push((
            Stage::Body,
            format!(
                "Content-Type {:?} (expected {want}...)",
                content_type.as_deref().unwrap_or("none")
            ),
        ));
    }
    if let Some(want) = &probe.body_contains
        && !body.contains(want.as_str())
    {
        problems.push((Stage::Body, format!("body does not contain {want:?}")));
    }
    if !probe.expect_json.is_empty() {
        match serde_json::from_str::<serde_json::Value>(&body) {
            Err(e) => problems.push((Stage::Body, format!("body is not JSON: {e}"))),
            Ok(json) => {
                for matcher in probe.expect_json.iter() {
                    match matcher.check(&json) {
                        Ok(check) if check.passed => timeline.note(format!("JSON {}", check.line)),
                        Ok(check) => problems.push((Stage::Body, format!("JSON {}", check.line))),
                        Err(e) => problems.push((Stage::Body, e.to_string())),
                    }
                }
            }
        }
    }
    let actual = format!(
        "{} {}",
        status.as_u16(),
        location
            .map(|l| format!("Location {l}"))
            .unwrap_or_default()
    );
    match problems.first() {
        None => Verdict::pass(
            format!(
                "{} {} in {}",
                status.as_u16(),
                final_url,
                ms(timeline.elapsed())
            ),
            expected,
            actual.trim(),
        ),
        Some((stage, _)) => {
            let all: Vec<String> = problems.iter().map(|(_, p)| p.clone()).collect();
            Verdict::fail(*stage, all.join("; "), expected, actual.trim())
        }
    }
    .with_evidence(timeline.into_lines())
}

fn fail(f: Failure, expected: &str, timeline: Timeline) -> Verdict {
    Verdict::fail(f.stage, f.message.clone(), expected, f.to_string())
        .with_evidence(timeline.into_lines())
}

fn status_expectation(probe: &HttpProbe) -> String {
    match probe.expect_status {
        Some(s) => s.to_string(),
        None if probe.expect_location.is_some() => "3xx".into(),
        None => "2xx".into(),
    }
}

fn describe_expectation(probe: &HttpProbe) -> String {
    let mut parts = vec![format!("status {}", status_expectation(probe))];
    if let Some(l) = &probe.expect_location {
        parts.push(format!("Location {l}"));
    }
    if let Some(c) = &probe.expect_content_type {
        parts.push(format!("Content-Type {c}"));
    }
    if let Some(b) = &probe.body_contains {
        parts.push(format!("body contains {b:?}"));
    }
    for m in probe.expect_json.iter() {
        parts.push(format!("JSON {} {}", m.path, m.expectation()));
    }
    parts.join(", ")
}

fn preview(body: &str) -> String {
    let mut end = body.len().min(BODY_PREVIEW);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let shown = body[..end].replace(['\n', '\r'], " ");
    if end < body.len() {
        format!("{shown}...")
    } else {
        shown
    }
}
