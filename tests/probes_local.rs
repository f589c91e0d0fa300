//! Probe behaviour that needs no Ray: silent peers (timeouts are their own
//! outcome, never "refused"), closed ports, and peers that are not HTTP/2.

use rayconform::probe::grpc_ready;
use rayconform::probe::mtls::{self, MtlsCredentials};
use rayconform::probe::spec::GrpcExpectation;
use rayconform::tls::{ClientIdentity, ClientTls, FOREIGN};
use rayconform::verdict::Stage;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server that accepts connections and never says anything.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (address, task)
}

/// A polite HTTP/1 server: reads what the client sends until it goes
/// quiet, answers with an HTTP/1.1 error, then half-closes and drains, so
/// the client reads the answer (no reset).
async fn http1_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await
            {
                if n == 0 {
                    break;
                }
            }
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            let _ = stream.shutdown().await;
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        }
    });
    (address, task)
}

#[tokio::test]
async fn silent_peer_times_out_at_http2_not_refused() {
    let (address, server) = silent_server().await;
    let started = Instant::now();
    let v = grpc_ready::check(
        &address,
        None,
        true,
        GrpcExpectation::Ready,
        Duration::from_millis(800),
    )
    .await;
    server.abort();
    println!("{v}");
    assert!(!v.passed);
    assert!(v.summary.contains("timed out after"), "{}", v.summary);
    assert!(
        matches!(v.stage, Some(Stage::Http2) | Some(Stage::Rpc)),
        "{:?}",
        v.stage
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn silent_peer_times_out_at_tls() {
    let (address, server) = silent_server().await;
    let tls = ClientTls {
        server_name: Some("localhost".into()),
        insecure: true,
        ..Default::default()
    };
    let v = grpc_ready::check(
        &address,
        Some(&tls),
        true,
        GrpcExpectation::Ready,
        Duration::from_millis(800),
    )
    .await;
    server.abort();
    println!("{v}");
    assert!(!v.passed);
    assert_eq!(v.stage, Some(Stage::Tls));
    assert!(v.summary.contains("timed out after"), "{}", v.summary);
}

#[tokio::test]
async fn silent_peer_is_not_a_refusal_in_the_mtls_matrix() {
    let (address, server) = silent_server().await;
    let dir = tempfile::tempdir().unwrap();
    let set = rayconform::tls::generate(dir.path(), "ca", &[]).unwrap();
    let (good, foreign) = (set.get("ca").unwrap(), set.get(FOREIGN).unwrap());
    let creds = MtlsCredentials {
        ca_cert: good.ca_cert.clone(),
        good: ClientIdentity {
            cert: good.client_cert.clone(),
            key: good.client_key.clone(),
            label: "good".into(),
        },
        foreign: ClientIdentity {
            cert: foreign.client_cert.clone(),
            key: foreign.client_key.clone(),
            label: "foreign".into(),
        },
    };
    let v = mtls::check(
        &address,
        Some("localhost"),
        &creds,
        None,
        Duration::from_secs(2),
    )
    .await;
    server.abort();
    println!("{v}");
    assert!(!v.passed, "a silent peer must not pass the matrix");
    let timed_out = v
        .evidence
        .iter()
        .filter(|l| l.starts_with("[WRONG]") && l.contains("timed out"))
        .count();
    assert_eq!(timed_out, 4, "every cell must be a timeout, not a refusal");
}

#[tokio::test]
async fn http1_peer_is_named_at_http2() {
    let (address, server) = http1_server().await;
    let v = grpc_ready::check(
        &address,
        None,
        true,
        GrpcExpectation::Ready,
        Duration::from_secs(3),
    )
    .await;
    server.abort();
    println!("{v}");
    assert!(!v.passed);
    assert_eq!(v.stage, Some(Stage::Http2));
    assert!(
        v.evidence.iter().any(|l| l.contains("HTTP/1.1 400")),
        "evidence should show the HTTP/1 bytes"
    );
}
