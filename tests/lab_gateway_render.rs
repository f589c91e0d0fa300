//! The lab renders the gateway-api fixtures with NGINX Gateway Fabric's
//! semantics, the real `nginx -t` accepts the result, and every such
//! render is recorded as modelled (never as Envoy Gateway's behaviour).

use rayconform::install::gateway_api::GatewayApiInstall;
use rayconform::scenario::Install;
use rayconform::targets::lab::model::config::{IngressPorts, LabConfig, LabModel, PortText};
use rayconform::targets::lab::model::objects::{LabObject, RayPort, translate};
use rayconform::targets::lab::model::routes::LocalHead;
use rayconform::targets::lab::process::nginx::Nginx;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Vec<LabObject> {
    let text = std::fs::read_to_string(root().join("fixtures").join(name))
        .unwrap()
        .replace("${NAMESPACE}", "ns");
    rayconform::scenario::parse_manifests(&text)
        .unwrap()
        .iter()
        .map(|m| translate(m, "ns").expect("the lab renders it"))
        .collect()
}

fn head(cluster: &str) -> LocalHead {
    LocalHead {
        cluster: cluster.into(),
        namespace: "ns".into(),
        ports: [
            (RayPort::Client, 41001),
            (RayPort::Gcs, 46379),
            (RayPort::Dashboard, 48265),
        ]
        .into_iter()
        .collect(),
    }
}

/// Renders `fixture_name` with `installs`; the folder holds the server
/// certificate `nginx -t` reads, kept as long as the caller holds it.
fn render(
    installs: &[Install],
    fixture_name: &str,
    cluster: &str,
) -> (LabModel, LabConfig, tempfile::TempDir) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
    let ports = IngressPorts::example(&rayconform::targets::lab::model::config::tcp_service_ports(
        installs,
    ));
    let lab = LabModel::new("ns", installs, ports, PortText::Placeholder, (c, k)).unwrap();
    let objects = fixture(fixture_name);
    let h = head(cluster);
    let config = lab.render(objects.iter(), &[&h]);
    (lab, config, dir)
}

fn gateway() -> Vec<Install> {
    vec![Install::GatewayApi(GatewayApiInstall::default())]
}

fn assert_nginx_accepts(conf: &str) {
    assert!(Path::new("/usr/lib/nginx/modules/ngx_stream_module.so").exists());
    if let Err(e) = Nginx::test_config(conf) {
        panic!("{e}\n---\n{conf}");
    }
}

#[test]
fn tlsroute_passthrough_reaches_a_headless_head_service_through_its_endpoints() {
    // KubeRay's default head Service is headless (no headClusterIpService):
    // NGF routes to endpoints, so the SNI map leads to the client port.
    let (_, config, _dir) = render(
        &gateway(),
        "gateway-api-tlsroute-rayclient.yaml",
        "raycluster-tls",
    );
    assert!(config.conf.contains("ssl_preread on;"), "{}", config.conf);
    assert!(
        config
            .conf
            .contains("\"localhost\" 127.0.0.1:41001;  # TLSRoute ns/rayclient-passthrough"),
        "{}",
        config.conf
    );
    assert_nginx_accepts(&config.conf);
}

#[test]
fn grpcroute_is_grpc_pass_on_its_own_h2c_listener_without_underscores() {
    let (lab, config, _dir) = render(
        &gateway(),
        "gateway-api-grpcroute-rayclient.yaml",
        "raycluster-basic",
    );
    let port = lab.gateway_listener_ports()["ray-client"];
    assert_eq!(
        lab.variables["INGRESS_TCP_10001"],
        "localhost:<port chosen at run time>"
    );
    assert!(
        config
            .conf
            .contains(&format!("listen 127.0.0.1:{port} http2 default_server;")),
        "{}",
        config.conf
    );
    assert!(
        config.conf.contains("grpc_pass grpc://127.0.0.1:41001;"),
        "{}",
        config.conf
    );
    // NGF sets no underscores_in_headers: nginx drops `client_id`.
    assert!(
        !config.conf.contains("underscores_in_headers"),
        "{}",
        config.conf
    );
    assert_nginx_accepts(&config.conf);
}

#[test]
fn httproute_replace_prefix_match_is_ngf_shaped() {
    let (_, config, _dir) = render(
        &gateway(),
        "gateway-api-httproute-dashboard.yaml",
        "raycluster-basic",
    );
    for expected in [
        "server_name localhost;",
        "location /ray/ {",
        "location = /ray {",
        "rewrite ^/ray(?:/([^?]*))? /$1?$args? break;",
        "location /rayslash/ {",
        "rewrite ^/rayslash/([^?]*)? /$1?$args? break;",
        "proxy_pass http://127.0.0.1:48265;",
    ] {
        assert!(
            config.conf.contains(expected),
            "no `{expected}` in\n{}",
            config.conf
        );
    }
    assert_nginx_accepts(&config.conf);
}

#[test]
fn every_gateway_render_is_modelled_and_names_the_modelled_implementation() {
    for (name, cluster) in [
        ("gateway-api-tlsroute-rayclient.yaml", "raycluster-tls"),
        ("gateway-api-grpcroute-rayclient.yaml", "raycluster-basic"),
        ("gateway-api-httproute-dashboard.yaml", "raycluster-basic"),
    ] {
        let (_, config, _dir) = render(&gateway(), name, cluster);
        assert_eq!(config.modelled.len(), 1, "{name}: {:?}", config.modelled);
        assert!(
            config.modelled[0].contains("NGINX Gateway Fabric v2.6.7")
                && config.modelled[0]
                    .contains("not by the scenario's implementation (Envoy Gateway)"),
            "{name}: {:?}",
            config.modelled
        );
    }
}

#[test]
fn routes_without_a_gateway_install_have_no_effect() {
    let (_, config, _dir) = render(
        &[],
        "gateway-api-httproute-dashboard.yaml",
        "raycluster-basic",
    );
    assert!(!config.conf.contains("location /ray/"), "{}", config.conf);
    assert!(config.modelled.is_empty());
    assert!(
        config
            .notes
            .iter()
            .any(|n| n.contains("installs no gatewayApi")),
        "{:?}",
        config.notes
    );
}

#[test]
fn tcproute_is_skipped_on_lab_with_ngf_reason() {
    let text =
        std::fs::read_to_string(root().join("fixtures/gateway-api-tcproute-gcs.yaml")).unwrap();
    let doc = &rayconform::scenario::parse_manifests(&text).unwrap()[0];
    let err = translate(doc, "ns").unwrap_err().to_string();
    assert!(
        err.contains("TCPRoute `ray-gcs`") && err.contains("v1alpha2"),
        "{err}"
    );
}

/// A gateway-api scenario that passes on lab says `[modelled]` on its
/// summary line (real Ray behind real nginx, but NGF's semantics, not the
/// scenario's Envoy Gateway), and its JUnit names the model.
#[test]
fn a_gateway_api_pass_on_lab_is_labelled_modelled() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rayconform"))
        .current_dir(root())
        .args(["run", "--target", "lab", "--junit"])
        .arg(&junit)
        .arg("scenarios/gateway-api-dashboard-rewrite-trailing-slash.yaml")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.contains("gateway-api-dashboard-rewrite-trailing-slash ["))
        .unwrap_or_else(|| panic!("no labelled summary line in\n{stdout}"));
    assert!(
        line.starts_with("PASS") && line.contains("[modelled]"),
        "{line}"
    );
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(
        report.contains("modelled-by-target") && report.contains("NGINX Gateway Fabric v2.6.7"),
        "{report}"
    );
}
