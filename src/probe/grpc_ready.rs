//! `grpcReady`: the Ray client's gRPC channel reaches READY and (by
//! default) a real Ray RPC is answered.

use super::failure::Failure;
use super::grpc_session::{GrpcCall, run_session};
use super::spec::{GrpcExpectation, GrpcReadyProbe};
use super::timeline::{Timeline, ms};
use crate::tls::{CertificateSet, ClientTls};
use crate::verdict::{Stage, Verdict};
use std::time::Duration;

/// Runs a `grpcReady` probe from a scenario.
pub async fn run(
    probe: &GrpcReadyProbe,
    certs: Option<&CertificateSet>,
    timeout: Duration,
) -> Verdict {
    let tls = match probe
        .tls
        .as_ref()
        .map(|spec| spec.client_tls(certs))
        .transpose()
    {
        Ok(tls) => tls,
        Err(e) => return setup_failure(&e.to_string()),
    };
    let call = match (probe.ray_ping, probe.expect_alive_nodes) {
        (true, Some(nodes)) => GrpcCall::RayPingAliveNodes(nodes),
        (true, None) => GrpcCall::RayPing,
        (false, _) => GrpcCall::None,
    };
    check_call(&probe.address, tls.as_ref(), call, probe.expect, timeout).await
}

/// The probe with credentials already resolved (the CLI's entry point).
pub async fn check(
    address: &str,
    tls: Option<&ClientTls>,
    ray_ping: bool,
    expect: GrpcExpectation,
    timeout: Duration,
) -> Verdict {
    let call = if ray_ping {
        GrpcCall::RayPing
    } else {
        GrpcCall::None
    };
    check_call(address, tls, call, expect, timeout).await
}

/// The probe making `call` (PING, PING plus the alive-node count, or none).
pub async fn check_call(
    address: &str,
    tls: Option<&ClientTls>,
    call: GrpcCall,
    expect: GrpcExpectation,
    timeout: Duration,
) -> Verdict {
    let mut timeline = Timeline::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let outcome = run_session(address, tls, call, deadline, &mut timeline).await;
    let nodes_wanted;
    let what = match call {
        GrpcCall::RayPingAliveNodes(n) => {
            nodes_wanted = format!(
                "READY, ClusterInfo(PING) answered {{}} and the head lists {n} alive node(s)"
            );
            nodes_wanted.as_str()
        }
        GrpcCall::None => "READY (server SETTINGS received)",
        _ => "READY and ClusterInfo(PING) answered {}",
    };
    let verdict = match (expect, outcome) {
        (GrpcExpectation::Ready, Ok(success)) => Verdict::pass(
            format!("READY: {} in {}", success.answer, ms(success.ready_after)),
            what,
            format!(
                "READY after {}: {}",
                ms(success.ready_after),
                success.answer
            ),
        ),
        (GrpcExpectation::Ready, Err(failure)) => Verdict::fail(
            failure.stage,
            format!("not READY: {}", failure_summary(&failure)),
            what,
            stopped_at(&failure),
        ),
        (GrpcExpectation::NotReady, Ok(success)) => Verdict::fail(
            Stage::Rpc,
            format!("unexpectedly READY: {}", success.answer),
            "the channel does not become READY",
            format!(
                "READY after {}: {}",
                ms(success.ready_after),
                success.answer
            ),
        ),
        (GrpcExpectation::NotReady, Err(failure)) => {
            let mut v = Verdict::pass(
                format!("not READY, as expected: {}", failure_summary(&failure)),
                "the channel does not become READY",
                stopped_at(&failure),
            );
            v.stage = Some(failure.stage);
            v
        }
    };
    verdict
        .with_evidence(timeline.into_lines())
        .server_unverified_if(tls.is_some_and(ClientTls::skips_verification))
}

fn failure_summary(failure: &Failure) -> String {
    match failure.timed_out {
        Some(after) => format!("timed out after {} at stage {}", ms(after), failure.stage),
        None => format!("stopped at stage {}: {}", failure.stage, failure.message),
    }
}

fn stopped_at(failure: &Failure) -> String {
    format!("stopped at stage {}: {}", failure.stage, failure.message)
}

/// A verdict for credentials that could not even be prepared.
pub(crate) fn setup_failure(message: &str) -> Verdict {
    Verdict::fail(
        Stage::Tls,
        format!("TLS setup failed: {message}"),
        "a usable TLS configuration",
        message.to_string(),
    )
}
