//! Diagnostics collection against the API double: pod logs, events and the
//! scenario's objects land in the artifacts folder; what cannot be
//! collected is listed, not fatal.

mod support;

use rayconform::target::Session;
use serde_json::json;
use support::apiserver::ApiDouble;

const NS: &str = "rc-diag";

#[tokio::test]
async fn diagnostics_are_written_into_the_artifacts_folder() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let run = support::run(support::scenario("diag"), NS, dir.path(), None);
    let mut session =
        rayconform::k8s::session::ClusterSession::open(double.client(), &run, Default::default())
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
    assert_eq!(files.len(), 6, "{files:?}");
}
