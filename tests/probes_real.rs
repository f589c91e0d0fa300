//! The probes against real software: a Ray 2.60.0 head with TLS, a
//! plaintext Ray head, and nginx serving the dashboard behind a prefix.
//! Every check asserts the verdict AND the stage it stopped at.
//!
//! One test function on purpose: the Ray heads are started once, shared by
//! every check, and stopped (by pid) before the assertions run, so no
//! process outlives the test even when a check fails.

use rayconform::probe::spec::{
    GrpcExpectation, GrpcFollowUp, GrpcReadyProbe, HttpProbe, MtlsProbe, PageProbe, TcpExpectation,
    TcpFollowUp, TcpProbe, TlsSpec,
};
use rayconform::scenario::Probe;
use rayconform::targets::lab::process::nginx::Nginx;
use rayconform::targets::lab::process::ports::free_port;
use rayconform::targets::lab::process::ray_head::{HeadComponents, RayHead, RayHeadConfig, RayTls};
use rayconform::targets::lab::process::venv::RayVenv;
use rayconform::tls::{CertificateSet, FOREIGN};
use rayconform::verdict::{Stage, Verdict};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CA: &str = "ca-tls";
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
const HEAD_START_TIMEOUT: Duration = Duration::from_secs(90);

/// Collects every check's outcome; the test fails at the end listing all.
#[derive(Default)]
struct Checks {
    failures: Vec<String>,
}

impl Checks {
    /// Records `verdict` and checks it passed/failed as `want_pass`, at
    /// one of `stages` (None = no stage expected).
    fn expect(&mut self, name: &str, verdict: &Verdict, want_pass: bool, stages: &[Option<Stage>]) {
        println!("=== {name}\n{verdict}\n");
        if verdict.passed != want_pass {
            self.failures.push(format!(
                "{name}: passed={} (wanted {want_pass}): {}",
                verdict.passed, verdict.summary
            ));
        } else if !stages.contains(&verdict.stage) {
            self.failures.push(format!(
                "{name}: stage {:?} (wanted one of {stages:?}): {}",
                verdict.stage, verdict.summary
            ));
        }
    }

    fn require(&mut self, name: &str, ok: bool, detail: impl AsRef<str>) {
        if !ok {
            self.failures.push(format!("{name}: {}", detail.as_ref()));
        }
    }
}

fn tls(
    server_name: Option<&str>,
    ca: Option<&str>,
    client: Option<&str>,
    version: Option<&str>,
) -> TlsSpec {
    TlsSpec {
        server_name: server_name.map(str::to_string),
        ca: ca.map(str::to_string),
        client_cert: client.map(str::to_string),
        version: version.map(str::to_string),
        insecure_skip_verify: false,
    }
}

fn grpc(address: &str, tls: Option<TlsSpec>, expect: GrpcExpectation) -> Probe {
    Probe::GrpcReady(GrpcReadyProbe {
        address: address.to_string(),
        tls,
        ray_ping: true,
        expect,
        expect_alive_nodes: None,
    })
}

fn http_probe(url: String) -> HttpProbe {
    HttpProbe {
        url,
        method: None,
        headers: Default::default(),
        follow_redirects: false,
        expect_status: None,
        expect_location: None,
        expect_content_type: None,
        body_contains: None,
        expect_json: Default::default(),
        body: None,
        json: None,
        tls: None,
    }
}

/// Every process whose command line mentions `needle` (Ray processes all
/// carry their head's temp dir).
fn processes_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(&needle) {
            found.push(format!(
                "{}: {}",
                entry.file_name().to_string_lossy(),
                text.trim()
            ));
        }
    }
    found
}

/// An nginx config serving the dashboard behind `/ray(/|$)(.*)` → `/$2`
/// the way ingress-nginx's rewrite-target does, with no trailing-slash
/// redirect.
fn prefix_config(listen: u16, dashboard: u16) -> String {
    prefix_config_with(listen, dashboard, "")
}

/// The usual fix for the trailing-slash bug: redirect `/ray` to `/ray/`.
const SLASH_REDIRECT: &str = "location = /ray { return 301 /ray/; }";

fn prefix_config_with(listen: u16, dashboard: u16, extra_location: &str) -> String {
    format!(
        "events {{}}\n\
         http {{\n\
           access_log logs/access.log;\n\
           client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;\n\
           uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;\n\
           server {{\n\
             listen 127.0.0.1:{listen};\n\
             {extra_location}\n\
             location ~* \"^/ray(/|$)(.*)\" {{\n\
               rewrite \"(?i)/ray(/|$)(.*)\" /$2 break;\n\
               proxy_pass http://127.0.0.1:{dashboard};\n\
             }}\n\
           }}\n\
         }}\n"
    )
}

/// nginx reload: a bad config is refused and the old one keeps serving;
/// the trailing-slash redirect then fixes the `/ray` page.
async fn reload_checks(c: &mut Checks, nginx: &mut Nginx, port: u16, dashboard: u16) {
    let prefixed = format!("http://127.0.0.1:{port}");
    let page = |url: String| {
        Probe::Page(PageProbe {
            url,
            apis: vec!["api/version".into()],
            tls: None,
        })
    };
    let bad = nginx
        .reload("events {}\nhttp { server { listen 127.0.0.1:1; no_such_directive; } }\n")
        .await;
    c.require(
        "nginx reload refuses a bad config with nginx's message",
        matches!(&bad, Err(e) if e.to_string().contains("no_such_directive")),
        format!("{bad:?}"),
    );
    let v = rayconform::probe::run(&page(format!("{prefixed}/ray/")), None, PROBE_TIMEOUT).await;
    c.expect(
        "page /ray/ still served after a refused reload",
        &v,
        true,
        &[None],
    );

    let fixed = nginx
        .reload(&prefix_config_with(port, dashboard, SLASH_REDIRECT))
        .await;
    c.require(
        "nginx reload applies a good config",
        fixed.is_ok(),
        format!("{fixed:?}"),
    );
    let mut p = http_probe(format!("{prefixed}/ray"));
    p.expect_status = Some(301);
    p.expect_location = Some(format!("{prefixed}/ray/"));
    let v = rayconform::probe::run(&Probe::Http(p), None, PROBE_TIMEOUT).await;
    c.expect(
        "http /ray redirects to /ray/ after the fix",
        &v,
        true,
        &[None],
    );
    let v = rayconform::probe::run(&page(format!("{prefixed}/ray")), None, PROBE_TIMEOUT).await;
    c.expect(
        "page /ray loads after the fix (redirect followed)",
        &v,
        true,
        &[None],
    );
}

/// HTTPS in front of the dashboard, with the run's server certificate: the
/// http probe's TLS (CA, server name override) and its TLS stage.
async fn https_checks(c: &mut Checks, certs: &CertificateSet, work: &Path, dashboard: u16) {
    let a = certs.get(CA).unwrap();
    let port = free_port().unwrap();
    let config = format!(
        "events {{}}\nhttp {{\n access_log logs/access.log;\n proxy_temp_path tmp/proxy; client_body_temp_path tmp/body;\n\
         server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {}; ssl_certificate_key {};\n\
         location / {{ proxy_pass http://127.0.0.1:{dashboard}; }} }}\n}}\n",
        a.server_cert.display(),
        a.server_key.display()
    );
    let mut nginx = match Nginx::start(&work.join("nginx-https"), &config).await {
        Ok(n) => n,
        Err(e) => {
            c.require("https nginx starts", false, e.to_string());
            return;
        }
    };
    let version = |name: &str, ca: &str| {
        let mut p = http_probe(format!("https://127.0.0.1:{port}/api/version"));
        p.expect_json
            .insert("ray_version".into(), serde_json::json!("2.60.0"));
        p.tls = Some(tls(Some(name), Some(ca), None, None));
        Probe::Http(p)
    };
    let run =
        |p: Probe| async move { rayconform::probe::run(&p, Some(certs), PROBE_TIMEOUT).await };
    let v = run(version("localhost", CA)).await;
    c.expect(
        "https with the run's CA and server name localhost",
        &v,
        true,
        &[None],
    );
    if !v.passed {
        let log = std::fs::read_to_string(nginx.error_log()).unwrap_or_default();
        let ss = std::process::Command::new("ss")
            .args(["-ltnp"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        c.require(
            "https nginx diagnostics",
            false,
            format!(
                "pid {:?} alive {:?}; error log:\n{log}\nlisteners:\n{}",
                nginx.pid(),
                nginx
                    .pid()
                    .map(|p| std::path::Path::new(&format!("/proc/{p}")).exists()),
                ss.unwrap_or_default()
            ),
        );
    }
    let v = run(version("not-in-san.example", CA)).await;
    c.expect(
        "https with a server name not in the cert",
        &v,
        false,
        &[Some(Stage::Tls)],
    );
    let v = run(version("localhost", FOREIGN)).await;
    c.expect(
        "https verified against the foreign CA",
        &v,
        false,
        &[Some(Stage::Tls)],
    );
    nginx.stop().await;
}

async fn start_head(venv: &RayVenv, work: &Path, name: &str, tls: Option<RayTls>) -> RayHead {
    let cfg = RayHeadConfig {
        venv: venv.clone(),
        work_dir: work.join(name),
        tls,
        num_cpus: 1,
        components: HeadComponents::default(),
    };
    match RayHead::start(cfg, HEAD_START_TIMEOUT).await {
        Ok(head) => head,
        Err(e) => panic!("Ray head `{name}` did not start: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_tell_the_truth_against_real_ray_and_nginx() {
    let project_root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv =
        RayVenv::locate(&project_root).unwrap_or_else(|e| panic!("{e} (run scripts/setup first)"));
    let work = tempfile::tempdir().unwrap();
    let certs: CertificateSet =
        rayconform::tls::generate(&work.path().join("certs"), CA, &[]).unwrap();
    let authority = certs.get(CA).unwrap().clone();
    let ray_tls = RayTls {
        server_cert: authority.server_cert.clone(),
        server_key: authority.server_key.clone(),
        ca_cert: authority.ca_cert.clone(),
    };

    let started = Instant::now();
    let (tls_head, plain_head) = tokio::join!(
        start_head(&venv, work.path(), "tls-head", Some(ray_tls)),
        start_head(&venv, work.path(), "plain-head", None)
    );
    let (mut tls_head, mut plain_head) = (tls_head, plain_head);
    println!(
        "Ray heads ready: TLS head {:.1}s, plaintext head {:.1}s (started together; {:.1}s wall)",
        tls_head.startup_time.as_secs_f64(),
        plain_head.startup_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let tls_dirs = [
        tls_head.temp_dir().to_path_buf(),
        plain_head.temp_dir().to_path_buf(),
    ];

    let nginx_port = free_port().unwrap();
    let mut nginx = Nginx::start(
        &work.path().join("nginx-prefix"),
        &prefix_config(nginx_port, tls_head.ports.dashboard),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let mut checks = run_checks(&certs, &tls_head, &plain_head, nginx_port).await;
    reload_checks(
        &mut checks,
        &mut nginx,
        nginx_port,
        tls_head.ports.dashboard,
    )
    .await;

    https_checks(&mut checks, &certs, work.path(), tls_head.ports.dashboard).await;
    nginx.stop().await;
    let tls_stop = tls_head.stop().await;
    let plain_stop = plain_head.stop().await;
    println!("stopped: TLS head {tls_stop:?}, plaintext head {plain_stop:?}");
    for dir in &tls_dirs {
        // Give Ray's children a moment: they exit after the `ray start` pid.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut left = processes_mentioning(dir);
        while !left.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            left = processes_mentioning(dir);
        }
        checks.require(
            "no Ray process left",
            left.is_empty(),
            format!("still running: {left:#?}"),
        );
    }
    assert!(
        checks.failures.is_empty(),
        "{} checks wrong:\n{}",
        checks.failures.len(),
        checks.failures.join("\n")
    );
}

async fn run_checks(
    certs: &CertificateSet,
    tls_head: &RayHead,
    plain_head: &RayHead,
    nginx_port: u16,
) -> Checks {
    let mut c = Checks::default();
    let run =
        |p: Probe| async move { rayconform::probe::run(&p, Some(certs), PROBE_TIMEOUT).await };
    let client = format!("localhost:{}", tls_head.ports.client);
    let gcs = format!("localhost:{}", tls_head.ports.gcs);
    let good = || tls(Some("localhost"), Some(CA), Some(CA), None);

    // grpcReady.
    let t = Instant::now();
    let v = run(grpc(&client, Some(good()), GrpcExpectation::Ready)).await;
    println!(
        "grpcReady latency (good cert): {} ms",
        t.elapsed().as_millis()
    );
    c.expect("grpcReady good cert", &v, true, &[None]);
    c.require(
        "grpcReady good cert evidence",
        v.evidence.iter().any(|l| l.contains("SETTINGS")),
        "no SETTINGS line",
    );
    c.require(
        "grpcReady good cert READY",
        v.evidence.iter().any(|l| l.contains("READY:")),
        "no READY line",
    );

    for version in ["1.3", "1.2"] {
        let v = run(grpc(
            &client,
            Some(tls(Some("localhost"), Some(CA), None, Some(version))),
            GrpcExpectation::Ready,
        ))
        .await;
        c.expect(
            &format!("grpcReady no client cert, TLS {version}"),
            &v,
            false,
            &[Some(Stage::Tls), Some(Stage::Http2)],
        );
        if version == "1.3" {
            c.require(
                "TLS 1.3 no-cert evidence says closed after handshake",
                v.evidence
                    .iter()
                    .any(|l| l.contains("TLS handshake complete"))
                    && v.actual.contains("right after the TLS handshake"),
                format!("actual: {}", v.actual),
            );
        }
    }
    let v = run(grpc(
        &client,
        Some(tls(Some("localhost"), Some(CA), Some(FOREIGN), None)),
        GrpcExpectation::Ready,
    ))
    .await;
    c.expect(
        "grpcReady foreign-CA client cert",
        &v,
        false,
        &[Some(Stage::Tls), Some(Stage::Http2)],
    );
    let v = run(grpc(&client, None, GrpcExpectation::Ready)).await;
    c.expect(
        "grpcReady plaintext against TLS port",
        &v,
        false,
        &[Some(Stage::Http2), Some(Stage::Rpc)],
    );
    let v = run(grpc(
        &client,
        Some(tls(Some("not-in-san.example"), Some(CA), Some(CA), None)),
        GrpcExpectation::Ready,
    ))
    .await;
    c.expect(
        "grpcReady wrong server name",
        &v,
        false,
        &[Some(Stage::Tls)],
    );
    c.require(
        "wrong server name names the cause",
        v.actual.contains("NotValidForName"),
        &v.actual,
    );
    let closed = format!("127.0.0.1:{}", free_port().unwrap());
    let v = run(grpc(&closed, Some(good()), GrpcExpectation::Ready)).await;
    c.expect("grpcReady Ray down", &v, false, &[Some(Stage::Tcp)]);
    let v = run(grpc(
        &client,
        Some(tls(Some("localhost"), Some(CA), None, None)),
        GrpcExpectation::NotReady,
    ))
    .await;
    c.expect(
        "grpcReady expect notReady without cert",
        &v,
        true,
        &[Some(Stage::Tls), Some(Stage::Http2)],
    );
    let v = run(grpc(&client, Some(good()), GrpcExpectation::NotReady)).await;
    c.expect(
        "grpcReady expect notReady but READY",
        &v,
        false,
        &[Some(Stage::Rpc)],
    );
    let plain_client = format!("127.0.0.1:{}", plain_head.ports.client);
    let v = run(grpc(&plain_client, None, GrpcExpectation::Ready)).await;
    c.expect("grpcReady plaintext head", &v, true, &[None]);

    // READY without the Ray call: the server's SETTINGS decide.
    let settings_only = |t: TlsSpec| {
        Probe::GrpcReady(GrpcReadyProbe {
            address: client.clone(),
            tls: Some(t),
            ray_ping: false,
            expect: GrpcExpectation::Ready,
            expect_alive_nodes: None,
        })
    };
    let v = run(settings_only(good())).await;
    c.expect("grpcReady without PING, good cert", &v, true, &[None]);
    let v = run(settings_only(tls(
        Some("localhost"),
        Some(CA),
        None,
        Some("1.3"),
    )))
    .await;
    c.expect(
        "grpcReady without PING, no cert, TLS 1.3",
        &v,
        false,
        &[Some(Stage::Http2)],
    );

    // mtls.
    for version in ["1.2", "1.3"] {
        let t = Instant::now();
        let probe = MtlsProbe {
            address: client.clone(),
            server_name: Some("localhost".into()),
            ca: CA.into(),
            tls_version: Some(version.into()),
        };
        let v =
            rayconform::probe::run(&Probe::Mtls(probe), Some(certs), Duration::from_secs(60)).await;
        println!(
            "mtls latency (TLS {version}): {} ms",
            t.elapsed().as_millis()
        );
        c.expect(&format!("mtls matrix TLS {version}"), &v, true, &[None]);
        let oks = v.evidence.iter().filter(|l| l.starts_with("[ok]")).count();
        c.require(
            &format!("mtls TLS {version} has 4 ok cells"),
            oks == 4,
            format!("{oks} ok cells"),
        );
    }
    let probe = MtlsProbe {
        address: plain_client.clone(),
        server_name: Some("localhost".into()),
        ca: CA.into(),
        tls_version: None,
    };
    let v = rayconform::probe::run(&Probe::Mtls(probe), Some(certs), Duration::from_secs(60)).await;
    c.expect(
        "mtls against a plaintext Ray (no enforcement)",
        &v,
        false,
        &[Some(Stage::Rpc)],
    );

    // http.
    let dashboard = format!("http://127.0.0.1:{}", tls_head.ports.dashboard);
    let mut p = http_probe(format!("{dashboard}/api/version"));
    p.expect_status = Some(200);
    p.expect_content_type = Some("application/json".into());
    p.expect_json
        .insert("ray_version".into(), serde_json::json!("2.60.0"));
    let v = run(Probe::Http(p.clone())).await;
    c.expect("http /api/version ray_version", &v, true, &[None]);
    p.expect_json
        .insert("/ray_version".into(), serde_json::json!("0.0.1"));
    let v = run(Probe::Http(p)).await;
    c.expect("http wrong JSON value", &v, false, &[Some(Stage::Body)]);
    let mut p = http_probe(format!("{dashboard}/no/such/path"));
    p.expect_status = Some(200);
    let v = run(Probe::Http(p)).await;
    c.expect("http missing path", &v, false, &[Some(Stage::HttpStatus)]);

    // page.
    let page = |url: String| {
        Probe::Page(PageProbe {
            url,
            apis: vec!["api/version".into()],
            tls: None,
        })
    };
    let v = run(page(format!("{dashboard}/"))).await;
    c.expect("page dashboard /", &v, true, &[None]);
    c.require(
        "page dashboard has assets",
        v.evidence.iter().filter(|l| l.contains("static/")).count() >= 2,
        "fewer than 2 static assets",
    );
    let prefixed = format!("http://127.0.0.1:{nginx_port}");
    let v = run(page(format!("{prefixed}/ray/"))).await;
    c.expect("page /ray/ behind rewrite", &v, true, &[None]);
    let v = run(page(format!("{prefixed}/ray"))).await;
    c.expect(
        "page /ray behind rewrite (trailing-slash bug)",
        &v,
        false,
        &[Some(Stage::Asset)],
    );
    let static_named = v.summary.contains(&format!("{prefixed}/static/js/"))
        && v.summary.contains(&format!("{prefixed}/static/css/"));
    c.require(
        "page /ray names the missing /static assets",
        static_named,
        &v.summary,
    );
    c.require(
        "page /ray names the missing API",
        v.summary.contains(&format!("{prefixed}/api/version")),
        &v.summary,
    );

    // tcp.
    let tcp = |address: String, expect, then| {
        Probe::Tcp(TcpProbe {
            address,
            expect,
            then,
        })
    };
    let v = run(tcp(client.clone(), TcpExpectation::Open, None)).await;
    c.expect("tcp client port open", &v, true, &[None]);
    let v = run(tcp(closed.clone(), TcpExpectation::Refused, None)).await;
    c.expect("tcp closed port refused", &v, true, &[Some(Stage::Tcp)]);
    let v = run(tcp(closed.clone(), TcpExpectation::Open, None)).await;
    c.expect(
        "tcp closed port expected open",
        &v,
        false,
        &[Some(Stage::Tcp)],
    );
    let v = run(tcp(client.clone(), TcpExpectation::Refused, None)).await;
    c.expect(
        "tcp open port expected refused",
        &v,
        false,
        &[Some(Stage::Tcp)],
    );
    let gcs_call = |t: TlsSpec| {
        Some(TcpFollowUp {
            tls: None,
            grpc: Some(GrpcFollowUp {
                tls: Some(t),
                call: "gcsClusterId".into(),
            }),
        })
    };
    let v = run(tcp(gcs.clone(), TcpExpectation::Open, gcs_call(good()))).await;
    c.expect("tcp GCS gcsClusterId good cert", &v, true, &[None]);
    let v = run(tcp(
        gcs.clone(),
        TcpExpectation::Open,
        gcs_call(tls(Some("localhost"), Some(CA), Some(FOREIGN), Some("1.3"))),
    ))
    .await;
    c.expect(
        "tcp GCS gcsClusterId foreign cert",
        &v,
        false,
        &[Some(Stage::Tls), Some(Stage::Http2)],
    );
    let tls_then = |t: TlsSpec| {
        Some(TcpFollowUp {
            tls: Some(t),
            grpc: None,
        })
    };
    let v = run(tcp(client.clone(), TcpExpectation::Open, tls_then(good()))).await;
    c.expect("tcp+TLS good cert accepted", &v, true, &[None]);
    let v = run(tcp(
        client.clone(),
        TcpExpectation::Open,
        tls_then(tls(Some("localhost"), Some(CA), Some(FOREIGN), Some("1.3"))),
    ))
    .await;
    c.expect(
        "tcp+TLS 1.3 foreign cert rejected after handshake",
        &v,
        false,
        &[Some(Stage::Tls)],
    );
    let ping = Some(TcpFollowUp {
        tls: None,
        grpc: Some(GrpcFollowUp {
            tls: Some(good()),
            call: "rayPing".into(),
        }),
    });
    let v = run(tcp(client.clone(), TcpExpectation::Open, ping)).await;
    c.expect("tcp client port rayPing", &v, true, &[None]);

    // The same through the `rayconform probe` command line, with PEM files.
    let a = certs.get(CA).unwrap();
    let pem = |p: &Path| p.to_string_lossy().to_string();
    let (ca, cert, key) = (pem(&a.ca_cert), pem(&a.client_cert), pem(&a.client_key));
    let tls_flags = [
        "--server-name",
        "localhost",
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
    ];
    let mut good_args = vec!["grpc-ready", client.as_str()];
    good_args.extend(tls_flags);
    cli(&mut c, "cli grpc-ready good cert", &good_args, 0, "READY");
    cli(
        &mut c,
        "cli grpc-ready no cert",
        &["grpc-ready", &client, "--ca", &ca, "--tls-version", "1.3"],
        1,
        "stage: HTTP/2",
    );
    let mut mtls_args = vec!["mtls", client.as_str()];
    mtls_args.extend(tls_flags);
    cli(
        &mut c,
        "cli mtls",
        &mtls_args,
        0,
        "TLS with the right client cert accepted",
    );
    let ray_page = format!("{prefixed}/ray");
    cli(
        &mut c,
        "cli page /ray",
        &["page", &ray_page, "--api", "api/version"],
        1,
        "/static/js/",
    );
    cli(
        &mut c,
        "cli bad usage",
        &["tcp", &client, "--grpc", "nope"],
        2,
        "",
    );
    c
}

/// Runs `rayconform probe ARGS` and checks its exit code and output.
fn cli(c: &mut Checks, name: &str, args: &[&str], want_code: i32, want_text: &str) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rayconform"))
        .arg("probe")
        .args(args)
        .output()
        .expect("running rayconform");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!(
        "=== {name}: exit {:?}\n{stdout}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    c.require(
        name,
        output.status.code() == Some(want_code),
        format!("exit {:?}, wanted {want_code}", output.status.code()),
    );
    c.require(
        name,
        stdout.contains(want_text),
        format!("output lacks {want_text:?}"),
    );
}
