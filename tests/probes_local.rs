//! Probe behaviour that needs no Ray: silent peers (timeouts are their own
//! outcome, never "refused"), closed ports, and peers that are not HTTP/2.

use rayconform::probe::grpc_ready;
use rayconform::probe::mtls::{self, MtlsCredentials};
use rayconform::probe::spec::GrpcExpectation;
use rayconform::tls::ClientTls;
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
    let (_set, creds) = certificates(dir.path());
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

/// Generated certificates: the run CA `ca` (server cert for localhost) and
/// the foreign CA, with the mTLS matrix's credentials.
fn certificates(dir: &std::path::Path) -> (rayconform::tls::CertificateSet, MtlsCredentials) {
    let set = rayconform::tls::generate(dir, "ca", &[]).unwrap();
    let creds = MtlsCredentials::from_set("ca", Some(&set)).unwrap();
    (set, creds)
}

/// A rustls server config with the authority's server certificate,
/// offering `alpn`.
fn server_tls(authority: &rayconform::tls::Authority, alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    rayconform::tls::install_crypto_provider();
    let certs = rayconform::tls::pem::load_certs(&authority.server_cert).unwrap();
    let key = rayconform::tls::pem::load_key(&authority.server_key).unwrap();
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// nginx's answer to a missing client certificate, as a page.
const NO_CERT_PAGE: &str = "<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n</body>\r\n</html>\r\n";

/// An HTTP/2 server answering every request with `status`, `content_type`
/// and `body`, over whatever stream it is handed.
async fn serve_h2_page<S>(stream: S, status: u16, content_type: &'static str, body: &'static str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |_req| async move {
        Ok::<_, std::convert::Infallible>(
            hyper::Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    body.as_bytes(),
                )))
                .unwrap(),
        )
    });
    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}

/// A plaintext HTTP/2 server whose every answer is an HTTP page, not gRPC.
async fn h2c_page_server(
    status: u16,
    content_type: &'static str,
    body: &'static str,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_h2_page(stream, status, content_type, body));
        }
    });
    (address, task)
}

/// Answers a plaintext attempt with nginx's `HTTP/1.1 400` at once and then
/// keeps the connection open (no close, no reset): the refusal must be
/// read from the bytes, not from a close that may come later.
async fn http1_answer_then_hold_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 64];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\n\r\n<html>The plain HTTP request was sent to HTTPS port</html>")
                .await;
            held.push(stream);
        }
    });
    (address, task)
}

/// The first `+<ms>` stamp of the evidence line containing `needle`.
fn stamp_of(evidence: &[String], needle: &str) -> u64 {
    let line = evidence
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no evidence line with {needle:?}: {evidence:#?}"));
    line.trim_start()
        .trim_start_matches('+')
        .split("ms")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stamp in {line:?}"))
}

#[tokio::test]
async fn plaintext_answered_by_http1_is_refused_at_once_without_waiting_for_a_close() {
    let (address, server) = http1_answer_then_hold_server().await;
    let dir = tempfile::tempdir().unwrap();
    let (_set, creds) = certificates(dir.path());
    // Repeated: the verdict must not depend on timing.
    for round in 0..5 {
        let v = mtls::check(
            &address,
            Some("localhost"),
            &creds,
            None,
            Duration::from_secs(4),
        )
        .await;
        let plaintext = v
            .evidence
            .iter()
            .find(|l| l.contains("] plaintext:"))
            .unwrap_or_else(|| panic!("no plaintext cell:\n{v}"));
        assert!(
            plaintext.starts_with("[ok] plaintext: expected refused, refused at stage HTTP/2"),
            "round {round}: {plaintext}\n{v}"
        );
        assert!(
            v.evidence
                .iter()
                .any(|l| l.contains("HTTP/1.1 400 Bad Request")),
            "the answer's first line is evidence:\n{v}"
        );
    }
    // The server answered at once: the verdict follows the answer, with no
    // hold in between (main held 500 ms hoping for a close, never less: the
    // bound below tells the two apart without betting on a quiet machine).
    let v = grpc_ready::check(
        &address,
        None,
        true,
        GrpcExpectation::Ready,
        Duration::from_secs(5),
    )
    .await;
    server.abort();
    println!("{v}");
    assert!(!v.passed);
    assert_eq!(v.stage, Some(Stage::Http2), "{v}");
    let answered = stamp_of(&v.evidence, "HTTP/2 connection preface sent");
    let decided = stamp_of(&v.evidence, "TRANSIENT_FAILURE");
    assert!(
        decided - answered < HOLD_FREE_MS,
        "decided {}ms after the preface; only the healthy path may hold:\n{v}",
        decided - answered
    );
}

/// A verdict decided this soon after the preface was not held: the old hold
/// was a 500 ms sleep, which never ends early.
const HOLD_FREE_MS: u64 = 450;

#[tokio::test]
async fn a_non_grpc_http_answer_is_mapped_like_grpc_and_shown() {
    for (status, code, title) in [
        (502, "Unavailable", "502 Bad Gateway"),
        (404, "Unimplemented", "404 Not Found"),
        (503, "Unavailable", "503 Service Temporarily Unavailable"),
        (401, "Unauthenticated", "401 Authorization Required"),
        (403, "PermissionDenied", "403 Forbidden"),
        (400, "Internal", "400 No required SSL certificate was sent"),
        (500, "Unknown", "500 Internal Server Error"),
    ] {
        let body: &'static str = Box::leak(
            format!(
                "<html>\r\n<head><title>{title}</title></head>\r\n<body>nginx</body></html>\r\n"
            )
            .into_boxed_str(),
        );
        let (address, server) = h2c_page_server(status, "text/html", body).await;
        let v = grpc_ready::check(
            &address,
            None,
            true,
            GrpcExpectation::Ready,
            Duration::from_secs(5),
        )
        .await;
        server.abort();
        println!("{v}");
        assert!(!v.passed);
        assert_eq!(v.stage, Some(Stage::Rpc), "{v}");
        let text = v.to_string();
        for part in [
            format!("HTTP {status}"),
            "content-type text/html".to_string(),
            format!("title {title:?}"),
            "first bytes 3c 68 74 6d 6c".to_string(),
            format!("as gRPC status: {code}"),
        ] {
            assert!(
                text.contains(&part),
                "HTTP {status}: {part:?} missing:\n{text}"
            );
        }
        assert!(
            !text.contains("compression flag"),
            "the page must not be decoded as a gRPC message:\n{text}"
        );
        // Answered at once: no hold on the way to the verdict.
        let answered = stamp_of(&v.evidence, "HTTP/2 connection preface sent");
        let decided = stamp_of(&v.evidence, "TRANSIENT_FAILURE");
        assert!(
            decided - answered < HOLD_FREE_MS,
            "decided {}ms after the preface:\n{v}",
            decided - answered
        );
    }
}

/// A TLS server standing in for nginx with `ssl_verify_client on` that
/// never accepts: every TLS client gets the 400 page over HTTP/2; a
/// plaintext client gets silence (so that cell times out at HTTP/2).
async fn cert_checking_proxy(
    authority: &rayconform::tls::Authority,
) -> (String, tokio::task::JoinHandle<()>) {
    let acceptor = server_tls(authority, &[b"h2"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            let mut first = [0u8; 1];
            if stream.peek(&mut first).await.is_err() || first[0] != 0x16 {
                held.push(stream);
                continue;
            }
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve_h2_page(tls, 400, "text/html", NO_CERT_PAGE).await;
                }
            });
        }
    });
    (address, task)
}

#[tokio::test]
async fn mtls_names_a_proxy_400_page_a_refusal_and_the_deciding_cell_stage() {
    let dir = tempfile::tempdir().unwrap();
    let (set, creds) = certificates(dir.path());
    let (address, server) = cert_checking_proxy(set.get("ca").unwrap()).await;
    let v = mtls::check(
        &address,
        Some("localhost"),
        &creds,
        None,
        Duration::from_secs(4),
    )
    .await;
    server.abort();
    println!("{v}");
    assert!(!v.passed, "the right cert is never accepted here:\n{v}");
    for cell in ["TLS without client cert", "TLS with foreign-CA client cert"] {
        let line = v
            .evidence
            .iter()
            .find(|l| l.contains(&format!("] {cell}:")))
            .unwrap_or_else(|| panic!("no {cell} cell:\n{v}"));
        assert!(
            line.starts_with(&format!(
                "[ok] {cell}: expected refused, refused at stage RPC"
            )),
            "{line}"
        );
        assert!(
            line.contains("HTTP 400") && line.contains("No required SSL certificate was sent"),
            "status and page are the evidence: {line}"
        );
    }
    // Two cells are wrong: plaintext (timed out at HTTP/2) and the right
    // cert (HTTP 400 at RPC). The right-cert cell decides: the path does
    // not work at all.
    assert_eq!(v.stage, Some(Stage::Rpc), "{v}");
    for part in [
        "decided by TLS with the right client cert at stage RPC",
        "plaintext timed out at HTTP/2",
        "TLS without client cert refused at RPC",
        "TLS with foreign-CA client cert refused at RPC",
        "TLS with the right client cert refused at RPC (WRONG",
    ] {
        assert!(v.summary.contains(part), "{part:?} missing: {}", v.summary);
    }
}

/// An HTTPS server (HTTP/1.1) with the authority's server certificate
/// (names localhost, 127.0.0.1, ::1) that answers every request `200 ok`.
async fn https_ok_server(
    authority: &rayconform::tls::Authority,
) -> (u16, tokio::task::JoinHandle<()>) {
    let acceptor = server_tls(authority, &[b"http/1.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = [0u8; 2048];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, task)
}

/// The first http probe step of a scenario file with `tls` as its TLS
/// settings, loaded the way `rayconform run` loads it.
fn scenario_http_probe(url: &str, tls: &str) -> rayconform::scenario::Probe {
    let root = tempfile::tempdir().unwrap();
    let text = format!(
        "apiVersion: rayconform.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: https-probe\nspec:\n  targets: [lab]\n  certificates: {{ ca: ca }}\n  steps:\n    - probe:\n        http:\n          url: {url}\n          tls: {tls}\n"
    );
    let scenario =
        rayconform::scenario::load_str(std::path::Path::new("s.yaml"), &text, root.path())
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    match &scenario.steps[0].action {
        rayconform::scenario::Action::Probe(p) => p.clone(),
        other => panic!("not a probe: {other:?}"),
    }
}

// Two workers: the command-line runs block one while the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verification_is_skipped_only_when_asked_for_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (set, _) = certificates(dir.path());
    let (port, server) = https_ok_server(set.get("ca").unwrap()).await;
    let url = format!("https://127.0.0.1:{port}/");
    let run = |tls: &'static str| {
        let probe = scenario_http_probe(&url, tls);
        let set = set.clone();
        async move {
            let v = rayconform::probe::run(&probe, Some(&set), Duration::from_secs(5)).await;
            println!("=== tls: {tls}\n{v}\n");
            v
        }
    };

    // A name the certificate does not carry and no CA: must not pass.
    let v = run("{ serverName: wrong.example }").await;
    assert!(
        !v.passed,
        "no CA and no insecureSkipVerify must not pass:\n{v}"
    );
    assert_eq!(v.stage, Some(Stage::Tls), "{v}");
    assert!(v.summary.contains("insecureSkipVerify"), "{v}");

    // Verification on: the wrong name fails at TLS, the right one passes.
    let v = run("{ serverName: wrong.example, ca: ca }").await;
    assert!(!v.passed, "{v}");
    assert_eq!(v.stage, Some(Stage::Tls), "{v}");
    let v = run("{ serverName: localhost, ca: ca }").await;
    assert!(v.passed, "{v}");
    assert!(!v.to_string().contains("NOT verified"), "{v}");

    // Asked for by name: passes, and the verdict line says so.
    let v = run("{ serverName: wrong.example, insecureSkipVerify: true }").await;
    assert!(v.passed, "{v}");
    let first_line = v.to_string().lines().next().unwrap().to_string();
    assert!(
        first_line.starts_with("PASS") && first_line.contains("server certificate NOT verified"),
        "{first_line}"
    );

    // The command line: --cert/--key without --ca is a usage error (exit
    // 2) naming --insecure; with --insecure the verdict line says it.
    let authority = set.get("ca").unwrap();
    let cli = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rayconform"))
            .args(["probe", "http", &url, "--server-name", "wrong.example"])
            .args(extra)
            .args(["--timeout", "5s"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cert = authority.client_cert.to_str().unwrap();
    let key = authority.client_key.to_str().unwrap();
    let (code, stdout, stderr) = cli(&["--cert", cert, "--key", key]);
    assert_eq!(code, Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");
    let (code, stdout, stderr) = cli(&["--insecure"]);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout
            .lines()
            .next()
            .unwrap_or_default()
            .contains("server certificate NOT verified"),
        "{stdout}"
    );
    let (code, stdout, stderr) = std::process::Command::new(env!("CARGO_BIN_EXE_rayconform"))
        .args([
            "probe",
            "grpc-ready",
            &format!("127.0.0.1:{port}"),
            "--cert",
            cert,
            "--key",
            key,
        ])
        .output()
        .map(|o| {
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(
        code,
        Some(2),
        "grpc-ready --cert/--key without --ca\nstdout: {stdout}\nstderr: {stderr}"
    );
    server.abort();
}
