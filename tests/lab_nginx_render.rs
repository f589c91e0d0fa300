//! The lab's nginx.conf rendering: the ingress-nginx shapes are there, and
//! every rendered config passes the real `nginx -t`.

use rayconform::targets::lab::model::nginx_conf::{NginxSettings, render};
use rayconform::targets::lab::model::objects::{LabObject, RayPort, ServiceObject, translate};
use rayconform::targets::lab::model::routes::{LocalHead, Routes, RoutingInput, compute};
use rayconform::targets::lab::process::nginx::Nginx;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    let (c, k) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
    (c, k)
}

fn settings(dir: &Path, passthrough: bool) -> NginxSettings {
    let (server_cert, server_key) = self_signed(dir);
    NginxSettings {
        stream_module: STREAM_MODULE.into(),
        http_port: 18080,
        https_port: 18443,
        tls_internal_port: 18442,
        ssl_passthrough: passthrough,
        server_cert,
        server_key,
        underscores_in_headers: false,
    }
}

/// Runs `nginx -t` (as the lab runs nginx) on the config; panics with
/// nginx's output when it fails.
fn assert_nginx_accepts(_dir: &Path, conf: &str) {
    assert!(
        Path::new(STREAM_MODULE).exists(),
        "missing {STREAM_MODULE}: apt-get install -y libnginx-mod-stream"
    );
    if let Err(e) = Nginx::test_config(conf) {
        panic!("{e}\n---\n{conf}");
    }
}

fn objects(
    manifests: serde_json::Value,
) -> (
    Vec<ServiceObject>,
    Vec<rayconform::targets::lab::model::objects::IngressObject>,
) {
    let mut services = Vec::new();
    let mut ingresses = Vec::new();
    for m in manifests.as_array().unwrap() {
        match translate(m, "ns").expect("supported manifest") {
            LabObject::Service(s) => services.push(s),
            LabObject::Ingress(i) => ingresses.push(i),
            other => panic!("unexpected {other:?}"),
        }
    }
    (services, ingresses)
}

fn head() -> LocalHead {
    LocalHead {
        cluster: "rc".into(),
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

fn head_service(headless: bool) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "rc-head-svc"},
        "spec": {"clusterIP": if headless { json!("None") } else { json!(null) },
                 "selector": {"ray.io/cluster": "rc", "ray.io/node-type": "head"},
                 "ports": [{"name": "gcs-server", "port": 6379}, {"name": "dashboard", "port": 8265},
                           {"name": "client", "port": 10001}]}})
}

fn routes_for(
    manifests: serde_json::Value,
    passthrough: bool,
    tcp: BTreeMap<String, (u16, String)>,
) -> Routes {
    let (services, ingresses) = objects(manifests);
    let h = head();
    compute(&RoutingInput {
        services: services.iter().collect(),
        ingresses: ingresses.iter().collect(),
        heads: vec![&h],
        ssl_passthrough_enabled: passthrough,
        tcp_services: tcp,
    })
}

#[test]
fn empty_config_is_a_default_backend_answering_404() {
    let dir = tempfile::tempdir().unwrap();
    let conf = render(&settings(dir.path(), false), &Routes::default());
    assert!(conf.contains("location / { return 404; }"), "{conf}");
    assert!(
        conf.contains("listen 127.0.0.1:18443 ssl http2 default_server;"),
        "{conf}"
    );
    assert_nginx_accepts(dir.path(), &conf);
}

#[test]
fn rewrite_target_makes_every_path_of_the_host_a_case_insensitive_regex() {
    let dir = tempfile::tempdir().unwrap();
    let routes = routes_for(
        json!([head_service(true),
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
             "metadata": {"name": "dash", "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/$2"}},
             "spec": {"rules": [{"host": "localhost", "http": {"paths": [
                {"path": "/ray(/|$)(.*)", "pathType": "ImplementationSpecific",
                 "backend": {"service": {"name": "rc-head-svc", "port": {"number": 8265}}}}]}}]}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
             "metadata": {"name": "other"},
             "spec": {"rules": [{"host": "localhost", "http": {"paths": [
                {"path": "/exact", "pathType": "Exact",
                 "backend": {"service": {"name": "rc-head-svc", "port": {"name": "dashboard"}}}}]}}]}}
        ]),
        false,
        BTreeMap::new(),
    );
    let conf = render(&settings(dir.path(), false), &routes);
    assert!(conf.contains(r#"location ~* "^/ray(/|$)(.*)" {"#), "{conf}");
    assert!(
        conf.contains(r#"rewrite "(?i)/ray(/|$)(.*)" /$2 break;"#),
        "{conf}"
    );
    // The other Ingress of the same host has no rewrite, yet its Exact path
    // became a regex too (ingress-nginx enforces regex per host).
    assert!(conf.contains(r#"location ~* "^/exact" {"#), "{conf}");
    assert!(!conf.contains("location = /exact"), "{conf}");
    assert!(
        conf.contains("proxy_pass http://127.0.0.1:48265;"),
        "{conf}"
    );
    assert!(conf.contains("server_name localhost;"), "{conf}");
    assert_nginx_accepts(dir.path(), &conf);
}

#[test]
fn prefix_paths_without_regex_become_exact_and_prefix_locations() {
    let dir = tempfile::tempdir().unwrap();
    let routes = routes_for(
        json!([head_service(false),
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
             "metadata": {"name": "dash"},
             "spec": {"rules": [{"http": {"paths": [
                {"path": "/dash", "pathType": "Prefix",
                 "backend": {"service": {"name": "rc-head-svc", "port": {"number": 8265}}}},
                {"path": "/nowhere", "pathType": "Prefix",
                 "backend": {"service": {"name": "missing", "port": {"number": 80}}}}]}}]}}
        ]),
        false,
        BTreeMap::new(),
    );
    let conf = render(&settings(dir.path(), false), &routes);
    assert!(conf.contains("location = /dash {"), "{conf}");
    assert!(conf.contains("location /dash/ {"), "{conf}");
    assert!(
        conf.contains("return 503;"),
        "missing Service must answer 503:\n{conf}"
    );
    assert_nginx_accepts(dir.path(), &conf);
}

#[test]
fn grpc_backend_protocol_uses_grpc_pass() {
    let dir = tempfile::tempdir().unwrap();
    let routes = routes_for(
        json!([head_service(false),
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
             "metadata": {"name": "client", "annotations": {"nginx.ingress.kubernetes.io/backend-protocol": "GRPC"}},
             "spec": {"rules": [{"host": "localhost", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "rc-head-svc", "port": {"number": 10001}}}}]}}]}}
        ]),
        false,
        BTreeMap::new(),
    );
    let conf = render(&settings(dir.path(), false), &routes);
    assert!(conf.contains("grpc_pass grpc://127.0.0.1:41001;"), "{conf}");
    assert_nginx_accepts(dir.path(), &conf);
}

#[test]
fn passthrough_routes_sni_and_a_headless_service_dials_none() {
    let passthrough_ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "rayclient", "annotations": {"nginx.ingress.kubernetes.io/ssl-passthrough": "true"}},
        "spec": {"rules": [{"host": "localhost", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "rc-head-svc", "port": {"number": 10001}}}}]}}]}});
    let dir = tempfile::tempdir().unwrap();
    let good = routes_for(
        json!([head_service(false), passthrough_ingress.clone()]),
        true,
        BTreeMap::new(),
    );
    let conf = render(&settings(dir.path(), true), &good);
    assert!(conf.contains("ssl_preread on;"), "{conf}");
    assert!(conf.contains("\"localhost\" 127.0.0.1:41001;"), "{conf}");
    assert!(conf.contains("default 127.0.0.1:18442;"), "{conf}");
    assert!(
        conf.contains("listen 127.0.0.1:18442 ssl http2 default_server;"),
        "{conf}"
    );
    assert_nginx_accepts(dir.path(), &conf);

    let dir = tempfile::tempdir().unwrap();
    let bad = routes_for(
        json!([head_service(true), passthrough_ingress]),
        true,
        BTreeMap::new(),
    );
    let conf = render(&settings(dir.path(), true), &bad);
    assert!(conf.contains("\"localhost\" \"None:10001\";"), "{conf}");
    assert!(conf.contains("issues/1718"), "{conf}");
    assert_nginx_accepts(dir.path(), &conf);
}

#[test]
fn tcp_services_become_stream_servers() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = [
        (
            "10001".to_string(),
            (19001, "ns/rc-head-svc:10001".to_string()),
        ),
        (
            "6379".to_string(),
            (19002, "ns/rc-head-svc:6379".to_string()),
        ),
        ("7000".to_string(), (19003, "ns/gone:7000".to_string())),
    ]
    .into_iter()
    .collect();
    let routes = routes_for(json!([head_service(true)]), false, tcp);
    let conf = render(&settings(dir.path(), false), &routes);
    assert!(conf.contains("listen 127.0.0.1:19001;\n        proxy_connect_timeout 5s;\n        proxy_pass 127.0.0.1:41001;"), "{conf}");
    assert!(conf.contains("proxy_pass 127.0.0.1:46379;"), "{conf}");
    assert!(conf.contains("proxy_pass $tcp_upstream_19003;"), "{conf}");
    assert_nginx_accepts(dir.path(), &conf);
}

#[test]
fn only_the_labs_own_model_of_a_defect_is_marked_modelled() {
    let passthrough_ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "rayclient", "annotations": {"nginx.ingress.kubernetes.io/ssl-passthrough": "true"}},
        "spec": {"rules": [{"host": "localhost", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "rc-head-svc", "port": {"number": 10001}}}}]}}]}});
    let headless = routes_for(
        json!([head_service(true), passthrough_ingress.clone()]),
        true,
        BTreeMap::new(),
    );
    assert_eq!(headless.modelled.len(), 1, "{:#?}", headless.modelled);
    assert!(
        headless.modelled[0].contains("ns/rc-head-svc")
            && headless.modelled[0].contains("issues/1718")
            && headless.modelled[0].contains("lab's model"),
        "{}",
        headless.modelled[0]
    );
    let cluster_ip = routes_for(
        json!([head_service(false), passthrough_ingress]),
        true,
        BTreeMap::new(),
    );
    assert!(cluster_ip.modelled.is_empty(), "{:#?}", cluster_ip.modelled);
    // A rewrite is rendered into real nginx, which decides what happens:
    // nothing about it is modelled.
    let rewrite = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "dash", "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/$2"}},
        "spec": {"rules": [{"http": {"paths": [
            {"path": "/ray(/|$)(.*)", "pathType": "ImplementationSpecific",
             "backend": {"service": {"name": "rc-head-svc", "port": {"number": 8265}}}}]}}]}});
    let dashboard = routes_for(json!([head_service(true), rewrite]), false, BTreeMap::new());
    assert!(dashboard.modelled.is_empty(), "{:#?}", dashboard.modelled);
}
