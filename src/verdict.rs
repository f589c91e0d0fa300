//! Verdicts: what a probe or a check concluded, with the evidence for it.

use serde::Serialize;
use std::fmt;

/// The stage of a connection or check at which a probe stopped.
///
/// Stages are ordered the way a connection progresses, so "how far did it
/// get" can be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Turning a host name into addresses.
    Resolve,
    /// The TCP connection.
    Tcp,
    /// The TLS handshake (certificates, alerts).
    Tls,
    /// The protocol negotiated by ALPN.
    Alpn,
    /// The HTTP/2 connection preface and the server's SETTINGS.
    Http2,
    /// A gRPC call and its status.
    Rpc,
    /// An HTTP request/response exchange.
    Http,
    /// The HTTP status code.
    HttpStatus,
    /// The response headers or body (content type, JSON, substring).
    Body,
    /// A sub-resource of a page (script, stylesheet, icon, image, API path).
    Asset,
    /// What a real browser made of the page: scripts that threw, console
    /// errors, nothing rendered (or the browser itself did not start).
    Render,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Stage::Resolve => "resolve",
            Stage::Tcp => "TCP",
            Stage::Tls => "TLS",
            Stage::Alpn => "ALPN",
            Stage::Http2 => "HTTP/2",
            Stage::Rpc => "RPC",
            Stage::Http => "HTTP",
            Stage::HttpStatus => "HTTP status",
            Stage::Body => "body",
            Stage::Asset => "asset",
            Stage::Render => "render",
        };
        f.write_str(name)
    }
}

/// The conclusion of one probe: did reality match the expectation, and why
/// we think so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether the observed behaviour matched the expectation.
    pub passed: bool,
    /// One line a human reads first, e.g. `READY: ClusterInfo(PING) answered in 12 ms`.
    pub summary: String,
    /// Where the observed behaviour diverged from the expectation (or where
    /// the connection stopped, for an expected refusal).
    pub stage: Option<Stage>,
    /// What the scenario expected, in words.
    pub expected: String,
    /// What was observed, in words.
    pub actual: String,
    /// The step-by-step record that supports the verdict, one fact per line.
    pub evidence: Vec<String>,
}

impl Verdict {
    /// A verdict whose expectation was met.
    pub fn pass(
        summary: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Verdict {
            passed: true,
            summary: summary.into(),
            stage: None,
            expected: expected.into(),
            actual: actual.into(),
            evidence: Vec::new(),
        }
    }

    /// A verdict whose expectation was not met, stopped at `stage`.
    pub fn fail(
        stage: Stage,
        summary: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Verdict {
            passed: false,
            summary: summary.into(),
            stage: Some(stage),
            expected: expected.into(),
            actual: actual.into(),
            evidence: Vec::new(),
        }
    }

    /// When `unverified`, says on the verdict line that the server's
    /// certificate was not verified (TLS with `insecure`, asked for by name).
    pub fn server_unverified_if(mut self, unverified: bool) -> Self {
        if unverified {
            self.summary.push_str(" (server certificate NOT verified)");
        }
        self
    }

    /// Adds evidence lines, returning the verdict.
    pub fn with_evidence(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.evidence.extend(lines);
        self
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "PASS" } else { "FAIL" };
        write!(f, "{mark}: {}", self.summary)?;
        if let Some(stage) = self.stage {
            write!(f, " [stage: {stage}]")?;
        }
        write!(
            f,
            "\n  expected: {}\n  actual:   {}",
            self.expected, self.actual
        )?;
        for line in &self.evidence {
            write!(f, "\n  - {line}")?;
        }
        Ok(())
    }
}
