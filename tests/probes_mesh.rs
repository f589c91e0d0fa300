//! The mesh probes against servers on 127.0.0.1: the `reachability` matrix
//! (cells answered, refused, and a wrong expectation shown in the table)
//! and `prometheus` (an Envoy-style exposition served over HTTP, with the
//! right label, the wrong one, and an absence bound), plus the loader's
//! checks of their fields and of `grpcReady.expectAliveNodes`.

use rayconform::probe::reachability::{Observed, table};
use rayconform::probe::spec::{
    CellExpectation, PrometheusProbe, ReachabilityCall, ReachabilityCell, ReachabilityProbe,
    SeriesExpectation,
};
use rayconform::scenario::{Probe, load_str};
use rayconform::verdict::Stage;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP/1.1 server answering every request with 200 and `body`.
async fn http_server(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    address
}

/// A loopback address nothing listens on.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    address
}

fn cell(
    source: &str,
    port: u16,
    address: &str,
    call: ReachabilityCall,
    expect: CellExpectation,
) -> ReachabilityCell {
    ReachabilityCell {
        source: source.into(),
        port,
        address: address.into(),
        call,
        path: (call == ReachabilityCall::Http).then(|| "/api/version".into()),
        expect,
    }
}

#[tokio::test]
async fn the_reachability_matrix_passes_only_when_every_cell_ends_as_expected() {
    let open = http_server("{}").await;
    let closed = closed_port().await;
    use CellExpectation::{Ok, Refused};
    use ReachabilityCall::{GcsClusterId, Http, RayPing};
    let matrix = |naked_dashboard: CellExpectation| ReachabilityProbe {
        title: Some("STRICT".into()),
        cells: vec![
            cell("mesh", 8265, &open, Http, Ok),
            cell("naked", 8265, &closed, Http, naked_dashboard),
            cell("naked", 10001, &closed, RayPing, Refused),
            // An HTTP/1 server is no Ray client server: not an answer.
            cell("mesh", 6379, &open, GcsClusterId, Refused),
        ],
    };

    let right = rayconform::probe::run(&Probe::Reachability(matrix(Refused)), None, TIMEOUT).await;
    println!("{right}");
    assert!(right.passed, "{right}");
    let text = right.evidence.join("\n");
    assert!(text.contains("STRICT (source × port"), "{text}");
    assert!(
        right
            .evidence
            .iter()
            .any(|l| l.starts_with("| mesh ") && l.contains("ok ✓") && l.contains("refused ✓")),
        "{text}"
    );
    // naked has no 6379 cell.
    assert!(
        right
            .evidence
            .iter()
            .any(|l| l.starts_with("| naked ") && l.contains(" - ")),
        "{text}"
    );

    let wrong = rayconform::probe::run(&Probe::Reachability(matrix(Ok)), None, TIMEOUT).await;
    println!("{wrong}");
    assert!(!wrong.passed, "{wrong}");
    assert_eq!(wrong.stage, Some(Stage::Rpc));
    assert!(
        wrong
            .summary
            .contains("1 of 4 cells differ: naked → 8265: refused (expected ok)"),
        "{wrong}"
    );
    assert!(
        wrong
            .evidence
            .iter()
            .any(|l| l.starts_with("| naked ") && l.contains("refused ✗ (expected ok)")),
        "{wrong}"
    );
}

#[test]
fn the_table_has_a_row_per_source_and_a_column_per_port_in_first_seen_order() {
    use CellExpectation::{Ok, Refused};
    let probe = ReachabilityProbe {
        title: None,
        cells: vec![
            cell(
                "naked",
                6379,
                "a:1",
                ReachabilityCall::GcsClusterId,
                Refused,
            ),
            cell("mesh", 10001, "a:1", ReachabilityCall::RayPing, Ok),
            cell("mesh", 6379, "a:1", ReachabilityCall::GcsClusterId, Ok),
        ],
    };
    let seen = [
        Observed::TimedOut("t".into()),
        Observed::Ok("x".into()),
        Observed::Refused("reset".into()),
    ];
    let lines = table(&probe, &seen);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(
        lines[1].starts_with("| source \\ port | 6379"),
        "{lines:#?}"
    );
    assert!(lines[1].contains("| 10001"), "{lines:#?}");
    assert!(lines[2].starts_with("| naked "), "{lines:#?}");
    assert!(lines[2].contains("timeout ✓"), "{lines:#?}");
    assert!(lines[2].trim_end().ends_with("| -     |"), "{lines:#?}");
    assert!(lines[3].contains("refused ✗ (expected ok)"), "{lines:#?}");
    assert!(lines[3].contains("ok ✓"), "{lines:#?}");
}

/// Destination-side series as an Envoy sidecar reports them.
const MUTUAL: &str = "# TYPE istio_tcp_connections_opened_total counter
istio_tcp_connections_opened_total{reporter=\"destination\",source_workload=\"mesh-relay\",destination_workload=\"raycluster-head\",connection_security_policy=\"mutual_tls\",destination_port=\"10001\"} 3
istio_tcp_connections_opened_total{reporter=\"destination\",source_workload=\"mesh-relay\",destination_workload=\"raycluster-head\",connection_security_policy=\"mutual_tls\",destination_port=\"6379\"} 2
istio_requests_total{reporter=\"destination\",source_workload=\"mesh-relay\",connection_security_policy=\"mutual_tls\",response_code=\"200\"} 4
envoy_server_live 1
";

/// The same traffic without mTLS (a PERMISSIVE destination, naked source).
const PLAINTEXT: &str = "istio_tcp_connections_opened_total{reporter=\"destination\",source_workload=\"unknown\",connection_security_policy=\"none\"} 5
";

fn telemetry(url: String, expect: Vec<SeriesExpectation>) -> Probe {
    Probe::Prometheus(PrometheusProbe { url, expect })
}

fn mutual_tls(at_least: Option<f64>) -> SeriesExpectation {
    SeriesExpectation {
        metrics: vec![
            "istio_tcp_connections_opened_total".into(),
            "istio_requests_total".into(),
        ],
        labels: BTreeMap::from([
            ("reporter".into(), "destination".into()),
            ("connection_security_policy".into(), "mutual_tls".into()),
            ("source_workload".into(), "mesh-relay".into()),
        ]),
        at_least,
        at_most: None,
    }
}

#[tokio::test]
async fn telemetry_is_read_from_a_served_exposition_and_can_fail() {
    let mutual = http_server(MUTUAL).await;
    let plain = http_server(PLAINTEXT).await;
    let url = |a: &str| format!("http://{a}/stats/prometheus");

    let v = rayconform::probe::run(
        &telemetry(url(&mutual), vec![mutual_tls(None)]),
        None,
        TIMEOUT,
    )
    .await;
    println!("{v}");
    assert!(v.passed, "{v}");
    assert!(v.actual.contains("sum 9 over 3 series"), "{v}");
    assert!(
        v.evidence
            .iter()
            .any(|l| l.contains("destination_port=\"10001\"") && l.ends_with(" 3")),
        "{v}"
    );

    let v = rayconform::probe::run(
        &telemetry(url(&mutual), vec![mutual_tls(Some(10.0))]),
        None,
        TIMEOUT,
    )
    .await;
    assert!(!v.passed, "a bound above the sum: {v}");
    assert!(v.summary.contains("sum 9 is below 10"), "{v}");

    let v = rayconform::probe::run(
        &telemetry(url(&plain), vec![mutual_tls(None)]),
        None,
        TIMEOUT,
    )
    .await;
    println!("{v}");
    assert!(!v.passed, "plaintext traffic is not mTLS: {v}");
    assert_eq!(v.stage, Some(Stage::Body));
    assert!(
        v.evidence
            .iter()
            .any(|l| l.contains("connection_security_policy is only [\"none\"]")),
        "{v}"
    );

    let absent_plaintext = SeriesExpectation {
        metrics: vec!["istio_tcp_connections_opened_total".into()],
        labels: BTreeMap::from([("connection_security_policy".into(), "none".into())]),
        at_least: None,
        at_most: Some(0.0),
    };
    let v = rayconform::probe::run(
        &telemetry(url(&mutual), vec![absent_plaintext.clone()]),
        None,
        TIMEOUT,
    )
    .await;
    assert!(v.passed, "no plaintext series: {v}");
    let v = rayconform::probe::run(
        &telemetry(url(&plain), vec![absent_plaintext]),
        None,
        TIMEOUT,
    )
    .await;
    assert!(!v.passed, "plaintext series present: {v}");
    assert!(v.summary.contains("sum 5 is above 0"), "{v}");

    let closed = closed_port().await;
    let v = rayconform::probe::run(
        &telemetry(url(&closed), vec![mutual_tls(None)]),
        None,
        TIMEOUT,
    )
    .await;
    assert!(!v.passed);
    assert_eq!(v.stage, Some(Stage::Tcp), "{v}");
}

const SCENARIO_HEAD: &str = "apiVersion: rayconform.dev/v1alpha1
kind: Scenario
metadata: { name: mesh-probes }
spec:
  targets: [kind]
  steps:
";

fn load_errors(steps: &str) -> Vec<String> {
    let text = format!("{SCENARIO_HEAD}{steps}");
    match load_str(Path::new("s.yaml"), &text, Path::new(".")) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn the_loader_checks_the_mesh_probe_fields() {
    assert!(
        load_errors(
            "    - probe:
        reachability:
          cells:
            - { source: mesh, port: 10001, address: \"localhost:1\", call: rayPing, expect: ok }
            - { source: naked, port: 8265, address: \"localhost:2\", call: http, path: /, expect: refused }
    - probe:
        prometheus:
          url: http://localhost:15090/stats/prometheus
          expect: [{ metrics: [istio_requests_total], labels: { reporter: destination }, atLeast: 1 }]
    - probe: { grpcReady: { address: \"localhost:1\", expectAliveNodes: 2 } }
"
        )
        .is_empty()
    );
    let errors = load_errors(
        "    - probe:
        reachability:
          cells:
            - { source: mesh, port: 10001, address: \"localhost:1\", call: rayPing, path: /x, expect: ok }
            - { source: mesh, port: 10001, address: \"no-port\", call: rayPing, expect: ok }
    - probe: { prometheus: { url: \"http://localhost:1/\", expect: [{ metrics: [], atLeast: 2, atMost: 1 }] } }
    - probe: { grpcReady: { address: \"localhost:1\", rayPing: false, expectAliveNodes: 2 } }
",
    );
    let joined = errors.join("\n");
    for wanted in [
        "spec.steps[0].probe.reachability.cells[0].path: path is only used by call: http",
        "spec.steps[0].probe.reachability.cells[1].address: expected host:port, found `no-port`",
        "spec.steps[0].probe.reachability.cells[1]: a second cell for source `mesh` and port 10001",
        "spec.steps[1].probe.prometheus.expect[0].metrics: expected at least one metric name",
        "spec.steps[1].probe.prometheus.expect[0]: atLeast 2 is above atMost 1",
        "spec.steps[2].probe.grpcReady.expectAliveNodes: expectAliveNodes asks the head through a Ray client session",
    ] {
        assert!(joined.contains(wanted), "missing `{wanted}` in:\n{joined}");
    }
}

/// `rayconform probe prometheus` and `rayconform probe reachability`: the
/// same probes from the command line, with their usage errors.
#[tokio::test]
async fn the_mesh_probes_run_from_the_command_line() {
    use rayconform::probe::cli::{
        ProbeCliError, ProbeCommand, ProbeKind, PrometheusArgs, ReachabilityArgs, verdict_for,
    };
    let mutual = http_server(MUTUAL).await;
    let closed = closed_port().await;
    let prometheus = |labels: &[&str], at_least: Option<f64>| ProbeCommand {
        probe: ProbeKind::Prometheus(PrometheusArgs {
            url: format!("http://{mutual}/stats/prometheus"),
            metrics: vec![
                "istio_tcp_connections_opened_total".into(),
                "istio_requests_total".into(),
            ],
            labels: labels.iter().map(|l| l.to_string()).collect(),
            at_least,
            at_most: None,
        }),
        timeout: TIMEOUT,
    };
    let v = verdict_for(prometheus(&["connection_security_policy=mutual_tls"], None))
        .await
        .unwrap();
    assert!(v.passed, "{v}");
    assert!(v.actual.contains("sum 9 over 3 series"), "{v}");
    let v = verdict_for(prometheus(&["connection_security_policy=none"], None))
        .await
        .unwrap();
    assert!(!v.passed, "no plaintext series in this exposition: {v}");
    let err = verdict_for(prometheus(&["no-equals-sign"], None))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeCliError::Label(_)), "{err}");

    let reach = |cells: &[String]| ProbeCommand {
        probe: ProbeKind::Reachability(ReachabilityArgs {
            title: Some("STRICT".into()),
            cells: cells.to_vec(),
        }),
        timeout: TIMEOUT,
    };
    let cells = [
        format!("mesh,8265,{mutual},http,ok,/api/version"),
        format!("naked,8265,{closed},http,refused,/api/version"),
    ];
    let v = verdict_for(reach(&cells)).await.unwrap();
    assert!(v.passed, "{v}");
    assert!(
        v.evidence
            .iter()
            .any(|l| l.starts_with("STRICT (source × port")),
        "{v}"
    );
    let wrong = [format!("naked,8265,{mutual},http,refused,/api/version")];
    let v = verdict_for(reach(&wrong)).await.unwrap();
    assert!(!v.passed, "an answered cell expected refused: {v}");
    for bad in [
        "mesh,8265,no-port,http,ok".to_string(),
        format!("mesh,8265,{mutual},ftp,ok"),
        format!("mesh,8265,{mutual},http,maybe"),
    ] {
        let err = verdict_for(reach(std::slice::from_ref(&bad)))
            .await
            .unwrap_err();
        assert!(matches!(err, ProbeCliError::Cell(_)), "{bad}: {err}");
    }
    let duplicate = [
        format!("mesh,8265,{mutual},http,ok"),
        format!("mesh,8265,{mutual},http,ok"),
    ];
    let err = verdict_for(reach(&duplicate)).await.unwrap_err();
    assert!(matches!(err, ProbeCliError::Invalid(_)), "{err}");
}
