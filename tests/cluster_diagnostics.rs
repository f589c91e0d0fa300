//! Diagnostics collection against the API double: pod logs, events and the
//! scenario's objects land in the artifacts folder; what cannot be
//! collected is listed, not fatal.

mod support;

use rayconform::targets::Session;
use serde_json::json;
use support::apiserver::ApiDouble;

const NS: &str = "rc-diag";

#[tokio::test]
async fn diagnostics_are_written_into_the_artifacts_folder() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let run = support::run(support::scenario("diag"), NS, dir.path(), None);
    let mut session = rayconform::targets::cluster::ClusterSession::open(
        double.client(),
        &run,
        Default::default(),
    )
    .await
    .unwrap();
    double.put(
        "pods",
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "rc-head", "namespace": NS, "managedFields": [{"manager": "x"}]},
        "spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0"}]}}),
    );
    double.set_log(NS, "rc-head", "2026-11-21 GCS started\n");
    double.put(
        "events",
        json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e1", "namespace": NS},
        "involvedObject": {"kind": "Pod", "name": "rc-head"},
        "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
        "lastTimestamp": "2026-11-21T20:00:00Z"}),
    );
    double.put(
        "rayclusters",
        json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": "rc", "namespace": NS}, "status": {"state": "suspended"}}),
    );
    double.put(
        "services",
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "rc-head-svc", "namespace": NS}, "spec": {"clusterIP": "None"}}),
    );

    // An ingress controller and a meshed pod: their config and proxy state
    // are fetched by exec.
    double.put(
        "pods",
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "ingress-nginx-controller-abc", "namespace": "ingress-nginx",
                     "labels": {"app.kubernetes.io/component": "controller"}},
        "spec": {"containers": [{"name": "controller", "image": "controller"}]}}),
    );
    double.set_log(
        "ingress-nginx",
        "ingress-nginx-controller-abc",
        "I1121 nginx reloaded\n",
    );
    double.set_exec(
        "ingress-nginx",
        "ingress-nginx-controller-abc",
        "controller",
        &["cat", "/etc/nginx/nginx.conf"],
        "http {\n  server { listen 80; }\n}\n",
    );
    double.put("pods", json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "meshed", "namespace": NS},
        "spec": {"containers": [{"name": "app", "image": "x"}, {"name": "istio-proxy", "image": "proxyv2"}]}}));
    double.set_log(NS, "meshed", "ok\n");
    double.set_exec(
        NS,
        "meshed",
        "istio-proxy",
        &["pilot-agent", "request", "GET", "server_info"],
        "{\"state\": \"LIVE\"}",
    );

    let out = dir.path().join("artifacts");
    let files = session.collect_diagnostics(&out).await;
    let read = |name: &str| {
        std::fs::read_to_string(out.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}; wrote {files:?}"))
    };
    assert_eq!(
        read(&format!("{NS}/logs/rc-head.ray-head.log")),
        "2026-11-21 GCS started\n"
    );
    assert!(
        !out.join(format!("{NS}/logs/rc-head.ray-head.previous.log"))
            .exists(),
        "no previous container"
    );
    assert!(
        read("events.txt")
            .contains("Warning Pod/rc-head BackOff: Back-off restarting failed container")
    );
    assert!(read("rayclusters.yaml").contains("state: suspended"));
    assert!(read("services.yaml").contains("clusterIP: None"));
    let pods = read(&format!("{NS}/pods.yaml"));
    assert!(
        pods.contains("rc-head") && !pods.contains("managedFields"),
        "{pods}"
    );
    assert!(
        !out.join("errors.txt").exists(),
        "nothing failed: {:?}",
        std::fs::read_to_string(out.join("errors.txt"))
    );
    assert_eq!(
        read("ingress-nginx/ingress-nginx-controller-abc.nginx.conf"),
        "http {\n  server { listen 80; }\n}\n"
    );
    assert_eq!(
        read("ingress-nginx/logs/ingress-nginx-controller-abc.controller.log"),
        "I1121 nginx reloaded\n"
    );
    assert_eq!(
        read(&format!("{NS}/istio-proxy/meshed.server_info.json")),
        "{\"state\": \"LIVE\"}"
    );
    // events, services, ingresses, rayclusters, 2 pods.yaml, 4 logs, nginx.conf, server_info
    assert_eq!(files.len(), 12, "{files:?}");
}
