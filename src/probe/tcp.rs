//! `tcp`: a raw TCP connection (open or refused), optionally with a TLS
//! handshake or a gRPC call on top.

use super::connection::{ByteStream, split_address, tcp_connect, tls_handshake};
use super::failure::{Failure, before};
use super::grpc_ready::setup_failure;
use super::grpc_session::{GrpcCall, run_session};
use super::recorder::{FRAME_SETTINGS, show_bytes};
use super::spec::{TcpExpectation, TcpProbe};
use super::timeline::{Timeline, ms};
use crate::tls::{CertificateSet, ClientTls};
use crate::verdict::{Stage, Verdict};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The HTTP/2 client connection preface followed by an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// How long a non-HTTP/2 TLS connection with a client cert must stay open
/// (no close or alert) to count as accepted.
const QUIET_ACCEPT: Duration = Duration::from_secs(1);

/// The follow-up with credentials resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Only the TCP connection.
    None,
    /// A TLS handshake (accepted, when a client cert is presented).
    Tls(ClientTls),
    /// A gRPC call, over TLS when set.
    Grpc(Option<ClientTls>, GrpcCall),
}

/// Runs a `tcp` probe from a scenario.
pub async fn run(probe: &TcpProbe, certs: Option<&CertificateSet>, timeout: Duration) -> Verdict {
    let follow_up = match &probe.then {
        None => FollowUp::None,
        Some(then) => match (&then.tls, &then.grpc) {
            (Some(tls), _) => match tls.client_tls(certs) {
                Ok(t) => FollowUp::Tls(t),
                Err(e) => return setup_failure(&e.to_string()),
            },
            (None, Some(grpc)) => {
                let Some(call) = GrpcCall::parse(&grpc.call) else {
                    return setup_failure(&format!(
                        "unknown gRPC call `{}` (rayPing or gcsClusterId)",
                        grpc.call
                    ));
                };
                match grpc.tls.as_ref().map(|t| t.client_tls(certs)).transpose() {
                    Ok(tls) => FollowUp::Grpc(tls, call),
                    Err(e) => return setup_failure(&e.to_string()),
                }
            }
            (None, None) => FollowUp::None,
        },
    };
    check(&probe.address, probe.expect, &follow_up, timeout).await
}

/// The probe with credentials resolved (the CLI's entry point).
pub async fn check(
    address: &str,
    expect: TcpExpectation,
    follow_up: &FollowUp,
    timeout: Duration,
) -> Verdict {
    let unverified = match follow_up {
        FollowUp::Tls(tls) => tls.skips_verification(),
        FollowUp::Grpc(tls, _) => tls.as_ref().is_some_and(ClientTls::skips_verification),
        FollowUp::None => false,
    };
    connect(address, expect, follow_up, timeout)
        .await
        .server_unverified_if(unverified)
}

async fn connect(
    address: &str,
    expect: TcpExpectation,
    follow_up: &FollowUp,
    timeout: Duration,
) -> Verdict {
    let mut timeline = Timeline::new();
    let started = timeline.start();
    let deadline = tokio::time::Instant::now() + timeout;
    let connected = before(
        deadline,
        started,
        Stage::Tcp,
        tcp_connect(address, &mut timeline),
    )
    .await;
    match (expect, connected) {
        (TcpExpectation::Refused, Err(f)) if f.refusal.is_some() && f.stage == Stage::Tcp => {
            let mut v = Verdict::pass(
                format!("refused, as expected: {}", f.message),
                "connection refused",
                f.message,
            );
            v.stage = Some(Stage::Tcp);
            v.with_evidence(timeline.into_lines())
        }
        (TcpExpectation::Refused, Err(f)) => Verdict::fail(
            f.stage,
            format!("not refused: {}", f.message),
            "connection refused",
            f.message,
        )
        .with_evidence(timeline.into_lines()),
        (TcpExpectation::Refused, Ok(_)) => Verdict::fail(
            Stage::Tcp,
            format!("{address} accepted the connection"),
            "connection refused",
            "connection accepted",
        )
        .with_evidence(timeline.into_lines()),
        (TcpExpectation::Open, Err(f)) => Verdict::fail(
            f.stage,
            format!("not open: {}", f.message),
            "connection accepted",
            f.message,
        )
        .with_evidence(timeline.into_lines()),
        (TcpExpectation::Open, Ok(tcp)) => {
            let result = match follow_up {
                FollowUp::None => Ok("connection accepted".to_string()),
                FollowUp::Tls(tls) => {
                    drop(tcp);
                    timeline.note("follow-up TLS check on a fresh connection");
                    tls_follow_up(address, tls, deadline, &mut timeline).await
                }
                FollowUp::Grpc(tls, call) => {
                    drop(tcp);
                    timeline.note("follow-up gRPC check on a fresh connection");
                    run_session(address, tls.as_ref(), *call, deadline, &mut timeline)
                        .await
                        .map(|s| s.answer)
                }
            };
            let expected = match follow_up {
                FollowUp::None => "connection accepted".to_string(),
                FollowUp::Tls(t) if t.identity.is_some() => {
                    "TLS handshake completes and the client cert is accepted".into()
                }
                FollowUp::Tls(_) => "TLS handshake completes".into(),
                FollowUp::Grpc(_, call) => format!("connection accepted and {call:?} answered"),
            };
            match result {
                Ok(answer) => Verdict::pass(
                    format!("open: {answer} in {}", ms(timeline.elapsed())),
                    expected,
                    answer,
                ),
                Err(f) => Verdict::fail(
                    f.stage,
                    format!("open, but {}", f.message),
                    expected,
                    f.to_string(),
                ),
            }
            .with_evidence(timeline.into_lines())
        }
    }
}

/// A fresh connection with a TLS handshake; with a client certificate the
/// server must also show it accepted us (under TLS 1.3 a rejection only
/// shows after the handshake).
async fn tls_follow_up(
    address: &str,
    tls: &ClientTls,
    deadline: tokio::time::Instant,
    timeline: &mut Timeline,
) -> Result<String, Failure> {
    let started = timeline.start();
    let (host, _) = split_address(address)?;
    let tcp = before(
        deadline,
        started,
        Stage::Tcp,
        tcp_connect(address, timeline),
    )
    .await?;
    let (stream, facts) = before(
        deadline,
        started,
        Stage::Tls,
        tls_handshake(tcp, &host, tls, &[b"h2", b"http/1.1"], timeline),
    )
    .await?;
    let handshake = format!(
        "TLS handshake complete ({}, ALPN {})",
        facts.version,
        facts.alpn.as_deref().unwrap_or("none")
    );
    if tls.identity.is_none() {
        return Ok(handshake);
    }
    let mut stream: Box<dyn ByteStream> = Box::new(stream);
    let is_h2 = facts.alpn.as_deref() == Some("h2");
    if is_h2 {
        stream
            .write_all(H2_PREFACE)
            .await
            .map_err(|e| Failure::new(Stage::Http2, format!("sending preface: {e}")))?;
        timeline.note("HTTP/2 preface sent; reading the server's first frame");
    }
    let mut buf = [0u8; 9];
    let read = async {
        let mut filled = 0;
        while filled < buf.len() {
            match stream.read(&mut buf[filled..]).await {
                Ok(0) => return Err(None),
                Ok(n) => filled += n,
                Err(e) => return Err(Some(e)),
            }
        }
        Ok(())
    };
    let limit = if is_h2 {
        deadline
    } else {
        (tokio::time::Instant::now() + QUIET_ACCEPT).min(deadline)
    };
    match tokio::time::timeout_at(limit, read).await {
        Ok(Ok(())) if !is_h2 || buf[3] == FRAME_SETTINGS => {
            timeline.note(format!("server's first bytes: {}", show_bytes(&buf)));
            Ok(format!(
                "{handshake}; client cert accepted (server spoke first)"
            ))
        }
        Ok(Ok(())) => Err(Failure::new(
            Stage::Http2,
            format!("server's first frame is not SETTINGS: {}", show_bytes(&buf)),
        )),
        Ok(Err(None)) => {
            let how =
                "server closed the connection right after the TLS handshake (client cert rejected)";
            timeline.note(how);
            Err(Failure::new(Stage::Tls, how).refused(how))
        }
        Ok(Err(Some(e))) => {
            let how = format!(
                "connection ended after the TLS handshake: {}",
                super::connection::describe_io(&e)
            );
            timeline.note(&how);
            Err(Failure::new(Stage::Tls, how.clone()).refused(how))
        }
        Err(_) if !is_h2 => {
            timeline.note(format!(
                "connection still open after {} without a close or alert",
                ms(QUIET_ACCEPT)
            ));
            Ok(format!(
                "{handshake}; client cert accepted (no close or alert)"
            ))
        }
        Err(_) => Err(Failure::timeout(Stage::Http2, started.elapsed())),
    }
}
