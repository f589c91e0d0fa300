//! The probes against real Ray and real nginx, in healthy and broken
//! configurations, and their agreement with the real Python Ray client.
//!
//! One TLS Ray head (Ray 2.60.0 from the project venv) serves every case;
//! each configuration gets its own nginx rendered by the lab with
//! ingress-nginx semantics. For every gRPC case the probe's verdict (READY
//! or not) must equal what `ray.init("ray://...")` concludes, run from the
//! same venv in parallel, each bounded by a timeout.
//!
//! Needs `scripts/setup` (Ray venv, nginx with its stream module); fails
//! with a clear message when they are missing.

use rayconform::probe::spec::{
    GrpcExpectation, GrpcFollowUp, GrpcReadyProbe, MtlsProbe, PageProbe, TcpExpectation,
    TcpFollowUp, TcpProbe, TlsSpec,
};
use rayconform::scenario::Probe;
use rayconform::targets::lab::model::nginx_conf::STREAM_MODULE;
use rayconform::targets::lab::model::nginx_conf::{NginxSettings, render};
use rayconform::targets::lab::model::objects::{
    IngressObject, LabObject, RayPort, ServiceObject, translate,
};
use rayconform::targets::lab::model::routes::{LocalHead, RoutingInput, compute};
use rayconform::targets::lab::process::nginx::Nginx;
use rayconform::targets::lab::process::ports::free_ports;
use rayconform::targets::lab::process::ray_head::{HeadComponents, RayHead, RayHeadConfig, RayTls};
use rayconform::targets::lab::process::venv::RayVenv;
use rayconform::tls::{Authority, CertificateSet, FOREIGN};
use rayconform::verdict::{Stage, Verdict};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "support/real_ray_turn.rs"]
mod real_ray_turn;
use real_ray_turn::real_ray_turn;

const CA: &str = "ca-tls";
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on one real-client attempt (a refused client fails in ~15 s with
/// the connection timeouts lowered below; a good one connects in ~2 s).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn require_tools() -> RayVenv {
    assert!(
        which::which("nginx").is_ok() && Path::new(STREAM_MODULE).exists(),
        "nginx with {STREAM_MODULE} is required: run scripts/setup (apt-get install -y nginx libnginx-mod-stream)"
    );
    RayVenv::locate(&project_root()).unwrap_or_else(|e| panic!("the Ray venv is required: {e}"))
}

/// How an nginx in front of the head is configured.
#[derive(Clone, Copy, Debug)]
enum Front {
    /// `--enable-ssl-passthrough` and an Ingress with the annotation.
    Passthrough { headless: bool },
    /// The same Ingress, but the controller runs without the flag.
    PassthroughFlagOff,
    /// tcp-services 10001 → the client port.
    TcpMapping,
    /// The dashboard under /ray with or without the rewrite.
    Dashboard { rewrite: bool },
    /// TLS terminated by nginx, `backend-protocol: GRPC` (or `GRPCS` with
    /// `tls_backend`) to the client port; `underscores` is the controller's
    /// `enable-underscores-in-headers`.
    GrpcBackend {
        tls_backend: bool,
        underscores: bool,
    },
}

struct RunningFront {
    nginx: Nginx,
    http: u16,
    https: u16,
    tcp: u16,
    _dir: tempfile::TempDir,
}

fn objects(front: Front) -> (Vec<ServiceObject>, Vec<IngressObject>) {
    let headless = matches!(
        front,
        Front::Passthrough { headless: true } | Front::TcpMapping
    );
    let services = vec![ServiceObject::kuberay_head("rc", "ns", headless)];
    let ingress = match front {
        Front::Passthrough { .. } | Front::PassthroughFlagOff => Some(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "rayclient", "namespace": "ns",
                "annotations": {"nginx.ingress.kubernetes.io/ssl-passthrough": "true"}},
            "spec": {"rules": [{"host": "localhost", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "rc-head-svc", "port": {"number": 10001}}}}]}}]}})),
        Front::GrpcBackend { tls_backend, .. } => Some(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "rayclient-grpc", "namespace": "ns",
                "annotations": {"nginx.ingress.kubernetes.io/backend-protocol": if tls_backend { "GRPCS" } else { "GRPC" }}},
            "spec": {"rules": [{"host": "localhost", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "rc-head-svc", "port": {"number": 10001}}}}]}}]}})),
        Front::Dashboard { rewrite } => {
            let (path, annotations, path_type) = if rewrite {
                (
                    "/ray(/|$)(.*)",
                    json!({"nginx.ingress.kubernetes.io/rewrite-target": "/$2"}),
                    "ImplementationSpecific",
                )
            } else {
                ("/ray", json!({}), "Prefix")
            };
            Some(json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "dash", "namespace": "ns", "annotations": annotations},
                "spec": {"rules": [{"host": "localhost", "http": {"paths": [{"path": path, "pathType": path_type,
                    "backend": {"service": {"name": "rc-head-svc", "port": {"number": 8265}}}}]}}]}}))
        }
        Front::TcpMapping => None,
    };
    let ingresses = ingress
        .map(|m| match translate(&m, "ns").expect("supported Ingress") {
            LabObject::Ingress(i) => vec![i],
            other => panic!("not an Ingress: {other:?}"),
        })
        .unwrap_or_default();
    (services, ingresses)
}

/// Starts a Ray head (TLS with `authority`'s certificates when given) and
/// describes it the way the lab's routing sees a RayCluster `ns/rc`.
async fn start_head(
    venv: &RayVenv,
    work: &Path,
    authority: Option<&Authority>,
) -> (RayHead, LocalHead) {
    let tls = authority.map(|a| RayTls {
        server_cert: a.server_cert.clone(),
        server_key: a.server_key.clone(),
        ca_cert: a.ca_cert.clone(),
    });
    let config = RayHeadConfig {
        venv: venv.clone(),
        work_dir: work.join("head"),
        tls,
        num_cpus: 1,
        components: HeadComponents::default(),
    };
    let head = RayHead::start(config, Duration::from_secs(90))
        .await
        .expect("Ray head");
    let local = LocalHead {
        cluster: "rc".into(),
        namespace: "ns".into(),
        ports: [
            (RayPort::Gcs, head.ports.gcs),
            (RayPort::Client, head.ports.client),
            (RayPort::Dashboard, head.ports.dashboard),
        ]
        .into_iter()
        .collect(),
    };
    (head, local)
}

async fn start_front(front: Front, head: &LocalHead, certs: &CertificateSet) -> RunningFront {
    let (services, ingresses) = objects(front);
    let ports = free_ports(4).expect("free ports");
    let passthrough = matches!(front, Front::Passthrough { .. });
    let mut tcp_services = BTreeMap::new();
    if matches!(front, Front::TcpMapping) {
        tcp_services.insert(
            "10001".to_string(),
            (ports[3], "ns/rc-head-svc:10001".to_string()),
        );
    }
    let routes = compute(&RoutingInput {
        services: services.iter().collect(),
        ingresses: ingresses.iter().collect(),
        heads: vec![head],
        ssl_passthrough_enabled: passthrough,
        tcp_services,
    });
    let authority = certs.get(CA).expect("ca-tls authority");
    let conf = render(
        &NginxSettings {
            stream_module: STREAM_MODULE.into(),
            http_port: ports[0],
            https_port: ports[1],
            tls_internal_port: ports[2],
            ssl_passthrough: passthrough,
            server_cert: authority.server_cert.clone(),
            server_key: authority.server_key.clone(),
            underscores_in_headers: matches!(
                front,
                Front::GrpcBackend {
                    underscores: true,
                    ..
                }
            ),
        },
        &routes,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let nginx = Nginx::start(dir.path(), &conf)
        .await
        .unwrap_or_else(|e| panic!("nginx for {front:?} did not start: {e}\n{conf}"));
    RunningFront {
        nginx,
        http: ports[0],
        https: ports[1],
        tcp: ports[3],
        _dir: dir,
    }
}

/// The client credentials of a case.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Creds {
    /// No TLS at all.
    Plaintext,
    /// TLS verifying the server with the run CA, no client certificate.
    NoClientCert,
    /// The run CA's client certificate.
    Good,
    /// A client certificate from the foreign CA.
    Foreign,
}

/// One gRPC case: an address, credentials, and what both clients must conclude.
struct GrpcCase {
    name: &'static str,
    address: String,
    creds: Creds,
    /// The probe stages where the refusal may be seen (None: must be READY).
    expected_stage: Option<&'static [Stage]>,
}

fn tls_spec(creds: Creds, server_name: Option<&str>) -> Option<TlsSpec> {
    let client_cert = match creds {
        Creds::Plaintext => return None,
        Creds::NoClientCert => None,
        Creds::Good => Some(CA.to_string()),
        Creds::Foreign => Some(FOREIGN.to_string()),
    };
    Some(TlsSpec {
        server_name: server_name.map(str::to_string),
        ca: Some(CA.to_string()),
        client_cert,
        version: None,
        insecure_skip_verify: false,
    })
}

/// The `mtls` probe at `address` (server name `localhost`, authority `CA`).
async fn mtls_matrix(address: &str, certs: &CertificateSet) -> Verdict {
    let probe = Probe::Mtls(MtlsProbe {
        address: address.to_string(),
        server_name: Some("localhost".into()),
        ca: CA.into(),
        tls_version: None,
    });
    rayconform::probe::run(&probe, Some(certs), Duration::from_secs(60)).await
}

async fn probe_grpc(case: &GrpcCase, certs: &CertificateSet) -> Verdict {
    let host = case
        .address
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or_default();
    let server_name = (host == "localhost").then_some("localhost");
    let probe = Probe::GrpcReady(GrpcReadyProbe {
        address: case.address.clone(),
        tls: tls_spec(case.creds, server_name),
        ray_ping: true,
        expect: GrpcExpectation::Ready,
        expect_alive_nodes: None,
    });
    rayconform::probe::run(&probe, Some(certs), PROBE_TIMEOUT).await
}

/// Ray's proxier could not start this client's own server: seen when
/// another head on the machine serves real clients at the same moment (the
/// port race described at [`real_ray_turn`]), and, with one head, when
/// the proxier's own start-up check races the new process (Ray 2.60
/// `proxier.py` `start_specific_server` reads the command line of a
/// process that may have moved on: the client gets the traceback as an
/// "Initialization failure from server"). Either way the request reached
/// Ray and Ray failed inside: not the path's behaviour.
const SPECIFIC_SERVER_RACES: &[&str] = &[
    "Starting Ray client server failed",
    "Initialization failure from server: Traceback",
];

/// Whether the real client's output is one of [`SPECIFIC_SERVER_RACES`]
/// (the second only when the traceback is from `start_specific_server`).
fn lost_to_specific_server_race(output: &str) -> bool {
    output.contains(SPECIFIC_SERVER_RACES[0])
        || (output.contains(SPECIFIC_SERVER_RACES[1]) && output.contains("start_specific_server"))
}

/// The real client: `ray.init("ray://ADDRESS")` from the venv. Returns
/// whether it connected, and its output. An attempt lost to one of
/// [`SPECIFIC_SERVER_RACES`] is made again (twice at most), and said so.
async fn real_client(
    venv: &RayVenv,
    case_address: &str,
    creds: Creds,
    certs: &CertificateSet,
) -> (bool, String) {
    let mut lost = 0;
    loop {
        let (connected, output) = real_client_once(venv, case_address, creds, certs).await;
        if connected || !lost_to_specific_server_race(&output) || lost == 2 {
            let retried = if lost == 0 {
                String::new()
            } else {
                format!(
                    " (after {lost} attempt(s) lost to Ray failing to start the client's own server)"
                )
            };
            return (connected, format!("{output}{retried}"));
        }
        lost += 1;
    }
}

async fn real_client_once(
    venv: &RayVenv,
    case_address: &str,
    creds: Creds,
    certs: &CertificateSet,
) -> (bool, String) {
    let script = r#"
import os, sys
import grpc, ray
address, mode = sys.argv[1], sys.argv[2]
kwargs = {}
if mode == "no-client-cert":
    with open(os.environ["CHECK_CA_CERT"], "rb") as f:
        kwargs["_credentials"] = grpc.ssl_channel_credentials(root_certificates=f.read())
try:
    ray.init("ray://" + address, **kwargs)
    print("CONNECTED", ray.cluster_resources().get("CPU"))
    ray.shutdown()
except Exception as e:
    print("NOT CONNECTED:", type(e).__name__, " ".join(str(e).split())[:400])
    sys.exit(3)
"#;
    let good = certs.get(CA).unwrap();
    let foreign = certs.get(FOREIGN).unwrap();
    let mut cmd = tokio::process::Command::new(&venv.python);
    cmd.arg("-c")
        .arg(script)
        .arg(case_address)
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .env("RAY_CLIENT_INITIAL_CONNECTION_TIMEOUT_S", "4")
        .env("RAY_CLIENT_MAX_CONNECTION_TIMEOUT_S", "4")
        .env_remove("RAY_USE_TLS")
        .env("CHECK_CA_CERT", &good.ca_cert)
        .kill_on_drop(true);
    match creds {
        Creds::Plaintext => {
            cmd.arg("plaintext");
        }
        Creds::NoClientCert => {
            cmd.arg("no-client-cert");
        }
        Creds::Good | Creds::Foreign => {
            // Ray's client presents RAY_TLS_SERVER_CERT/KEY as its client cert.
            let own = if creds == Creds::Good { good } else { foreign };
            cmd.arg("env-tls")
                .env("RAY_USE_TLS", "1")
                .env("RAY_TLS_SERVER_CERT", &own.client_cert)
                .env("RAY_TLS_SERVER_KEY", &own.client_key)
                .env("RAY_TLS_CA_CERT", &good.ca_cert);
        }
    }
    match tokio::time::timeout(CLIENT_TIMEOUT, cmd.output()).await {
        Err(_) => (
            false,
            format!("no conclusion within {CLIENT_TIMEOUT:?} (counted as not connected)"),
        ),
        Ok(Err(e)) => panic!("cannot run {}: {e}", venv.python.display()),
        Ok(Ok(out)) => {
            let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let connected = out.status.success()
                && stdout.contains("CONNECTED")
                && !stdout.contains("NOT CONNECTED");
            (connected, format!("exit {:?}: {stdout}", out.status.code()))
        }
    }
}

/// Runs every case's probe and real client concurrently; checks stages and
/// agreement, returning one line per case for the report.
async fn check_cases(cases: &[GrpcCase], venv: &RayVenv, certs: &CertificateSet) -> Vec<String> {
    let runs = cases.iter().map(|case| async move {
        let started = Instant::now();
        let (verdict, (connected, client_out)) = tokio::join!(
            probe_grpc(case, certs),
            real_client(venv, &case.address, case.creds, certs)
        );
        (case, verdict, connected, client_out, started.elapsed())
    });
    let results = futures::future::join_all(runs).await;
    let mut problems = Vec::new();
    let mut lines = Vec::new();
    for (case, verdict, connected, client_out, took) in results {
        lines.push(format!(
            "{:<28} probe: {} (stage {:?}) | real client: {} | {:.1} s",
            case.name,
            if verdict.passed { "READY" } else { "not ready" },
            verdict.stage,
            if connected {
                "connected"
            } else {
                "not connected"
            },
            took.as_secs_f64()
        ));
        match case.expected_stage {
            None if !verdict.passed => {
                problems.push(format!("{}: probe should be READY:\n{verdict}", case.name))
            }
            Some(stages)
                if verdict.passed || !verdict.stage.is_some_and(|s| stages.contains(&s)) =>
            {
                problems.push(format!(
                    "{}: probe should stop at one of {stages:?}:\n{verdict}",
                    case.name
                ))
            }
            _ => {}
        }
        if verdict.passed != connected {
            problems.push(format!(
                "{}: probe and real Ray client disagree: probe {}, client {}\n{verdict}\nclient: {client_out}",
                case.name,
                if verdict.passed { "READY" } else { "not ready" },
                if connected { "connected" } else { "did not connect" },
            ));
        }
    }
    eprintln!("{}", lines.join("\n"));
    assert!(
        problems.is_empty(),
        "{}\n\n{}",
        problems.join("\n\n"),
        lines.join("\n")
    );
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn probes_agree_with_the_real_ray_client_in_healthy_and_broken_configurations() {
    let _turn = tokio::task::block_in_place(real_ray_turn);
    rayconform::tls::install_crypto_provider();
    let venv = require_tools();
    let work = tempfile::tempdir().unwrap();
    let certs =
        rayconform::tls::generate(&work.path().join("certs"), CA, &[]).expect("certificates");
    let authority = certs.get(CA).unwrap();
    let started = Instant::now();
    let (mut head, local) = start_head(&venv, work.path(), Some(authority)).await;
    let healthy = start_front(Front::Passthrough { headless: false }, &local, &certs).await;
    let headless = start_front(Front::Passthrough { headless: true }, &local, &certs).await;
    let flag_off = start_front(Front::PassthroughFlagOff, &local, &certs).await;
    let tcp = start_front(Front::TcpMapping, &local, &certs).await;
    let grpcs = start_front(
        Front::GrpcBackend {
            tls_backend: true,
            underscores: false,
        },
        &local,
        &certs,
    )
    .await;
    let first_probe = probe_grpc(
        &GrpcCase {
            name: "first",
            address: format!("localhost:{}", healthy.https),
            creds: Creds::Good,
            expected_stage: None,
        },
        &certs,
    )
    .await;
    eprintln!(
        "lab start (TLS head + 4 nginx) to first probe verdict: {:.2} s (head ready in {:.2} s)",
        started.elapsed().as_secs_f64(),
        head.startup_time.as_secs_f64()
    );
    assert!(first_probe.passed, "{first_probe}");

    // Ray refuses a bad client after the TLS 1.3 handshake completed: the
    // probe sees it when it reads the server's first HTTP/2 frame.
    let cases = vec![
        GrpcCase {
            name: "healthy passthrough",
            address: format!("localhost:{}", healthy.https),
            creds: Creds::Good,
            expected_stage: None,
        },
        GrpcCase {
            name: "no passthrough (flag off)",
            address: format!("localhost:{}", flag_off.https),
            creds: Creds::Good,
            expected_stage: Some(&[Stage::Rpc]),
        },
        GrpcCase {
            name: "wrong SNI (IP literal)",
            address: format!("127.0.0.1:{}", healthy.https),
            creds: Creds::Good,
            expected_stage: Some(&[Stage::Rpc]),
        },
        GrpcCase {
            name: "no client cert",
            address: format!("localhost:{}", healthy.https),
            creds: Creds::NoClientCert,
            expected_stage: Some(&[Stage::Http2]),
        },
        GrpcCase {
            name: "foreign CA client cert",
            address: format!("localhost:{}", healthy.https),
            creds: Creds::Foreign,
            expected_stage: Some(&[Stage::Http2]),
        },
        GrpcCase {
            // nginx answers the cleartext preface with an HTTP/1.1 400 and
            // closes: the probe reads that answer (RPC) or meets the closed
            // socket while still writing (HTTP/2), depending on timing.
            name: "plaintext",
            address: format!("localhost:{}", healthy.https),
            creds: Creds::Plaintext,
            expected_stage: Some(&[Stage::Http2, Stage::Rpc]),
        },
        GrpcCase {
            name: "headless Service (#1718)",
            address: format!("localhost:{}", headless.https),
            creds: Creds::Good,
            expected_stage: Some(&[Stage::Tls]),
        },
        GrpcCase {
            // nginx terminates TLS and dials Ray's TLS port without a client
            // certificate (ingress-nginx's default): Ray refuses, nginx 502s.
            name: "TLS terminated, GRPCS backend",
            address: format!("localhost:{}", grpcs.https),
            creds: Creds::Good,
            expected_stage: Some(&[Stage::Rpc]),
        },
        GrpcCase {
            name: "tcp-services mapping",
            address: format!("localhost:{}", tcp.tcp),
            creds: Creds::Good,
            expected_stage: None,
        },
    ];
    check_cases(&cases, &venv, &certs).await;

    // mTLS matrix through the TCP mapping: refused, refused, refused, accepted.
    let mtls = mtls_matrix(&format!("localhost:{}", tcp.tcp), &certs).await;
    assert!(mtls.passed, "{mtls}");
    // Through the passthrough, plaintext lands on nginx's default TLS server,
    // which answers `HTTP/1.1 400` and closes: refused, whether or not the
    // close arrives before the probe decides. Repeated: never a race.
    for round in 0..6 {
        let through_passthrough =
            mtls_matrix(&format!("localhost:{}", healthy.https), &certs).await;
        assert!(
            through_passthrough.passed,
            "round {round}: {through_passthrough}"
        );
    }

    // Ray down: every path through nginx now fails, and so does the client.
    head.stop().await;
    let down = vec![
        GrpcCase {
            name: "Ray down (passthrough)",
            address: format!("localhost:{}", healthy.https),
            creds: Creds::Good,
            expected_stage: Some(&[Stage::Tls]),
        },
        GrpcCase {
            name: "Ray down (tcp mapping)",
            address: format!("localhost:{}", tcp.tcp),
            creds: Creds::Good,
            expected_stage: Some(&[Stage::Tls]),
        },
    ];
    check_cases(&down, &venv, &certs).await;
    let refused = rayconform::probe::run(
        &Probe::Tcp(TcpProbe {
            address: format!("127.0.0.1:{}", head.ports.client),
            expect: TcpExpectation::Refused,
            then: None,
        }),
        Some(&certs),
        PROBE_TIMEOUT,
    )
    .await;
    assert!(
        refused.passed,
        "the stopped head's client port must refuse: {refused}"
    );
    let mapped = rayconform::probe::run(
        &Probe::Tcp(TcpProbe {
            address: format!("localhost:{}", tcp.tcp),
            expect: TcpExpectation::Open,
            then: Some(TcpFollowUp {
                tls: None,
                grpc: Some(GrpcFollowUp {
                    tls: tls_spec(Creds::Good, Some("localhost")),
                    call: "rayPing".into(),
                }),
            }),
        }),
        Some(&certs),
        PROBE_TIMEOUT,
    )
    .await;
    assert!(
        !mapped.passed,
        "the mapping accepts TCP but no Ray answers behind it: {mapped}"
    );

    for mut front in [healthy, headless, flag_off, tcp, grpcs] {
        front.nginx.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_probe_through_the_rewrite_passes_at_the_slash_and_names_missing_assets_otherwise() {
    let _turn = tokio::task::block_in_place(real_ray_turn);
    rayconform::tls::install_crypto_provider();
    let venv = require_tools();
    let work = tempfile::tempdir().unwrap();
    let certs =
        rayconform::tls::generate(&work.path().join("certs"), CA, &[]).expect("certificates");
    let (mut head, local) = start_head(&venv, work.path(), None).await;
    let rewrite = start_front(Front::Dashboard { rewrite: true }, &local, &certs).await;
    let plain = start_front(Front::Dashboard { rewrite: false }, &local, &certs).await;
    let grpc = start_front(
        Front::GrpcBackend {
            tls_backend: false,
            underscores: true,
        },
        &local,
        &certs,
    )
    .await;
    let grpc_default = start_front(
        Front::GrpcBackend {
            tls_backend: false,
            underscores: false,
        },
        &local,
        &certs,
    )
    .await;
    // The Ray client over TLS to nginx, which speaks cleartext gRPC to Ray,
    // with the controller's enable-underscores-in-headers on.
    check_cases(
        &[GrpcCase {
            name: "GRPC backend, underscores on",
            address: format!("localhost:{}", grpc.https),
            creds: Creds::NoClientCert,
            expected_stage: None,
        }],
        &venv,
        &certs,
    )
    .await;
    // With ingress-nginx's default (underscores off) nginx drops the Ray
    // client's `client_id` metadata: the real client's session streams end
    // with FAILED_PRECONDITION. PING alone would still be answered; the
    // probe's session check (Datapath with client_id) must catch it.
    check_cases(
        &[GrpcCase {
            name: "GRPC backend, default config (client_id dropped)",
            address: format!("localhost:{}", grpc_default.https),
            creds: Creds::NoClientCert,
            expected_stage: Some(&[Stage::Rpc]),
        }],
        &venv,
        &certs,
    )
    .await;

    let page = |url: String| async move {
        rayconform::probe::run(
            &Probe::Page(PageProbe {
                url,
                apis: vec!["api/version".into()],
                tls: None,
            }),
            None,
            PROBE_TIMEOUT,
        )
        .await
    };

    let good = page(format!("http://localhost:{}/ray/", rewrite.http)).await;
    assert!(good.passed, "{good}");

    let no_slash = page(format!("http://localhost:{}/ray", rewrite.http)).await;
    assert!(!no_slash.passed, "{no_slash}");
    assert_eq!(no_slash.stage, Some(Stage::Asset), "{no_slash}");
    let text = no_slash.to_string();
    for missing in [
        "/static/js/main.",
        "/static/css/main.",
        "/favicon.ico",
        "/api/version",
    ] {
        assert!(
            text.contains(&format!("localhost:{}{missing}", rewrite.http)),
            "{missing} not named:\n{text}"
        );
    }

    let missing_rewrite = page(format!("http://localhost:{}/ray/", plain.http)).await;
    assert!(!missing_rewrite.passed, "{missing_rewrite}");
    assert_eq!(
        missing_rewrite.stage,
        Some(Stage::HttpStatus),
        "{missing_rewrite}"
    );

    let unknown_host = page(format!("http://127.0.0.1:{}/ray/", rewrite.http)).await;
    assert_eq!(
        unknown_host.stage,
        Some(Stage::HttpStatus),
        "default backend must answer 404: {unknown_host}"
    );

    head.stop().await;
    let down = page(format!("http://localhost:{}/ray/", rewrite.http)).await;
    assert!(!down.passed, "{down}");
    assert_eq!(
        down.stage,
        Some(Stage::HttpStatus),
        "nginx answers 502 with Ray down: {down}"
    );

    for mut front in [rewrite, plain, grpc, grpc_default] {
        front.nginx.stop().await;
    }
}

/// A hand-written nginx in front of a plain Ray head, standing in for the
/// TLS-terminating and passthrough setups users build themselves.
#[derive(Clone, Copy, Debug)]
enum Proxy {
    /// TLS terminated by nginx, `grpc_pass grpc://` to `upstream`.
    GrpcTerminating {
        /// `ssl_verify_client on` against the run CA.
        client_cert_check: bool,
        /// `underscores_in_headers on` (ingress-nginx's
        /// `enable-underscores-in-headers`).
        underscores: bool,
        /// `ssl_protocols TLSv1.2` only.
        tls12_only: bool,
        /// The upstream port.
        upstream: u16,
    },
    /// SNI passthrough (`ssl_preread`) of `localhost` to `upstream`.
    Passthrough { upstream: u16 },
}

/// The nginx config of a [`Proxy`] listening on `listen`.
fn proxy_config(proxy: Proxy, listen: u16, authority: &Authority) -> String {
    match proxy {
        Proxy::GrpcTerminating {
            client_cert_check,
            underscores,
            tls12_only,
            upstream,
        } => {
            let mut server = format!(
                "ssl_certificate {}; ssl_certificate_key {};\n",
                authority.server_cert.display(),
                authority.server_key.display()
            );
            if client_cert_check {
                server.push_str(&format!(
                    "ssl_verify_client on; ssl_client_certificate {};\n",
                    authority.ca_cert.display()
                ));
            }
            if tls12_only {
                server.push_str("ssl_protocols TLSv1.2;\n");
            }
            format!(
                "events {{}}\n\
                 http {{\n\
                   access_log logs/access.log;\n\
                   client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;\n\
                   uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;\n\
                   {}\n\
                   server {{\n\
                     listen 127.0.0.1:{listen} ssl http2;\n\
                     server_name localhost;\n\
                     {server}\
                     location / {{ grpc_pass grpc://127.0.0.1:{upstream}; }}\n\
                   }}\n\
                 }}\n",
                if underscores {
                    "underscores_in_headers on;"
                } else {
                    ""
                }
            )
        }
        Proxy::Passthrough { upstream } => format!(
            "load_module {STREAM_MODULE};\n\
             events {{}}\n\
             stream {{\n\
               map $ssl_preread_server_name $backend {{ localhost 127.0.0.1:{upstream}; default 127.0.0.1:{upstream}; }}\n\
               server {{ listen 127.0.0.1:{listen}; ssl_preread on; proxy_pass $backend; }}\n\
             }}\n"
        ),
    }
}

/// A running [`Proxy`]: its nginx and its address (`localhost:PORT`).
struct RunningProxy {
    nginx: Nginx,
    address: String,
    _dir: tempfile::TempDir,
}

async fn start_proxy(proxy: Proxy, authority: &Authority) -> RunningProxy {
    let listen = free_ports(1).expect("free port")[0];
    let conf = proxy_config(proxy, listen, authority);
    let dir = tempfile::tempdir().expect("tempdir");
    let nginx = Nginx::start(dir.path(), &conf)
        .await
        .unwrap_or_else(|e| panic!("nginx for {proxy:?} did not start: {e}\n{conf}"));
    RunningProxy {
        nginx,
        address: format!("localhost:{listen}"),
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_terminating_proxies_tls12_dead_upstreams_and_wrong_ports_agree_with_the_real_ray_client()
 {
    let _turn = tokio::task::block_in_place(real_ray_turn);
    rayconform::tls::install_crypto_provider();
    let venv = require_tools();
    let work = tempfile::tempdir().unwrap();
    let certs =
        rayconform::tls::generate(&work.path().join("certs"), CA, &[]).expect("certificates");
    let authority = certs.get(CA).unwrap().clone();
    // A plain head: the proxies terminate TLS and speak cleartext gRPC to it.
    let (mut head, _) = start_head(&venv, work.path(), None).await;
    let client = head.ports.client;
    let terminating = |client_cert_check, underscores, tls12_only| Proxy::GrpcTerminating {
        client_cert_check,
        underscores,
        tls12_only,
        upstream: client,
    };
    let dead_port = free_ports(1).expect("free port")[0];
    let open = start_proxy(terminating(false, true, false), &authority).await;
    let open_default = start_proxy(terminating(false, false, false), &authority).await;
    let checked = start_proxy(terminating(true, true, false), &authority).await;
    let checked_default = start_proxy(terminating(true, false, false), &authority).await;
    let tls12 = start_proxy(terminating(false, true, true), &authority).await;
    let dead = start_proxy(
        Proxy::GrpcTerminating {
            client_cert_check: false,
            underscores: true,
            tls12_only: false,
            upstream: dead_port,
        },
        &authority,
    )
    .await;
    let wrong_port = start_proxy(
        Proxy::Passthrough {
            upstream: head.ports.dashboard,
        },
        &authority,
    )
    .await;
    let case = |name, proxy: &RunningProxy, creds, expected_stage| GrpcCase {
        name,
        address: proxy.address.clone(),
        creds,
        expected_stage,
    };

    // Paths the real client connects through.
    check_cases(
        &[
            case(
                "terminating, no cert check, underscores on",
                &open,
                Creds::Good,
                None,
            ),
            case(
                "terminating, no cert check, no client cert",
                &open,
                Creds::NoClientCert,
                None,
            ),
            case(
                "terminating, cert check, right cert",
                &checked,
                Creds::Good,
                None,
            ),
            case("TLS 1.2 only, right cert", &tls12, Creds::Good, None),
            case(
                "TLS 1.2 only, no client cert",
                &tls12,
                Creds::NoClientCert,
                None,
            ),
        ],
        &venv,
        &certs,
    )
    .await;
    // Paths it does not: the probe must say so, at the right stage.
    let rpc: Option<&'static [Stage]> = Some(&[Stage::Rpc]);
    check_cases(
        &[
            case(
                "terminating, underscores off (client_id dropped)",
                &open_default,
                Creds::Good,
                rpc,
            ),
            case(
                "cert check, no client cert (nginx 400 page)",
                &checked,
                Creds::NoClientCert,
                rpc,
            ),
            case(
                "cert check, foreign-CA cert (nginx 400 page)",
                &checked,
                Creds::Foreign,
                rpc,
            ),
            case(
                "cert check, plaintext",
                &checked,
                Creds::Plaintext,
                Some(&[Stage::Http2]),
            ),
            case(
                "cert check, underscores off, right cert",
                &checked_default,
                Creds::Good,
                rpc,
            ),
            case(
                "gRPC to a dead upstream (nginx 502)",
                &dead,
                Creds::Good,
                rpc,
            ),
            case(
                "passthrough to the wrong port (dashboard)",
                &wrong_port,
                Creds::Good,
                Some(&[Stage::Tls]),
            ),
        ],
        &venv,
        &certs,
    )
    .await;

    // The evidence names what each proxy answered.
    let probe = |address: &str, creds| probe_grpc_owned(address.to_string(), creds, &certs);
    let no_cert = probe(&checked.address, Creds::NoClientCert).await;
    let text = no_cert.to_string();
    assert!(
        text.contains("HTTP 400") && text.contains("No required SSL certificate was sent"),
        "the nginx 400 page is the evidence:\n{text}"
    );
    let bad_gateway = probe(&dead.address, Creds::Good).await.to_string();
    assert!(
        bad_gateway.contains("HTTP 502") && bad_gateway.contains("as gRPC status: Unavailable"),
        "a 502 maps to UNAVAILABLE:\n{bad_gateway}"
    );
    let tls12_probe = probe(&tls12.address, Creds::Good).await;
    assert!(
        tls12_probe.passed && tls12_probe.to_string().contains("TLSv1_2"),
        "{tls12_probe}"
    );

    // The mTLS matrix on nginx's client-cert check: every refusal is
    // recognised (plaintext gets nginx's HTTP/1.1 400, a missing or foreign
    // cert its 400 page), the right cert is accepted.
    let enforced = mtls_matrix(&checked.address, &certs).await;
    println!("{enforced}");
    assert!(enforced.passed, "{enforced}");
    // With underscores off the right cert's session fails: that cell
    // decides the verdict, at its own stage (RPC).
    let dropped = mtls_matrix(&checked_default.address, &certs).await;
    println!("{dropped}");
    assert!(!dropped.passed, "{dropped}");
    assert_eq!(dropped.stage, Some(Stage::Rpc), "{dropped}");
    assert!(
        dropped
            .summary
            .contains("decided by TLS with the right client cert at stage RPC"),
        "{dropped}"
    );

    head.stop().await;
    for mut proxy in [
        open,
        open_default,
        checked,
        checked_default,
        tls12,
        dead,
        wrong_port,
    ] {
        proxy.nginx.stop().await;
    }
}

async fn probe_grpc_owned(address: String, creds: Creds, certs: &CertificateSet) -> Verdict {
    probe_grpc(
        &GrpcCase {
            name: "evidence",
            address,
            creds,
            expected_stage: None,
        },
        certs,
    )
    .await
}
