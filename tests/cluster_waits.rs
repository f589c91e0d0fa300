//! Watch-based waits against the API double: success, timeout with the last
//! observed state, and the measured delay between a condition becoming true
//! and the wait returning (plus API requests per wait).

mod support;

use rayconform::k8s::wait;
use rayconform::scenario::{RayClusterCondition, WaitSpec, WaitTarget};
use rayconform::targets::{Session, StepError};
use serde_json::json;
use std::time::{Duration, Instant};
use support::apiserver::ApiDouble;

const NS: &str = "rc-waits";

fn put_raycluster(double: &ApiDouble, name: &str) {
    double.put("rayclusters", json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": name, "namespace": NS}, "spec": {},
        "status": {"conditions": [{"type": "HeadPodReady", "status": "False", "reason": "HeadPodNotFound"}],
                   "desiredWorkerReplicas": 2}}));
}

fn ready_status() -> serde_json::Value {
    json!({"state": "ready", "readyWorkerReplicas": 2, "desiredWorkerReplicas": 2,
           "conditions": [{"type": "HeadPodReady", "status": "True", "reason": "HeadPodRunningAndReady"},
                          {"type": "RayClusterProvisioned", "status": "True", "reason": "AllPodRunningAndReadyFirstTime"}]})
}

fn spec(
    target: WaitTarget,
    condition: Option<RayClusterCondition>,
    ready_workers: Option<u32>,
) -> WaitSpec {
    WaitSpec {
        target,
        condition,
        namespace: None,
        ready_workers,
    }
}

async fn session(
    double: &ApiDouble,
    dir: &std::path::Path,
) -> rayconform::targets::cluster::ClusterSession {
    let run = support::run(support::scenario("waits"), NS, dir, None);
    rayconform::targets::cluster::ClusterSession::open(double.client(), &run, Default::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn raycluster_conditions_are_waited_for() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    put_raycluster(&double, "rc");
    let setter = ready_status();
    let d = &double;
    let head_ready = spec(
        WaitTarget::RayCluster("rc".into()),
        Some(RayClusterCondition::HeadPodReady),
        Some(2),
    );
    let (result, _) = tokio::join!(s.wait(&head_ready, Duration::from_secs(10)), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        d.set_status("rayclusters", NS, "rc", setter);
    });
    let summary = result.unwrap();
    assert!(
        summary.contains("condition HeadPodReady and 2 ready workers"),
        "{summary}"
    );
    for condition in [
        RayClusterCondition::Ready,
        RayClusterCondition::RayClusterProvisioned,
    ] {
        s.wait(
            &spec(WaitTarget::RayCluster("rc".into()), Some(condition), None),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_raycluster_that_never_gets_ready_times_out_with_its_last_state() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    put_raycluster(&double, "rc");
    let started = Instant::now();
    let err = s
        .wait(
            &spec(WaitTarget::RayCluster("rc".into()), None, None),
            Duration::from_millis(600),
        )
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    match err {
        StepError::Failed { message, evidence } => {
            assert!(message.starts_with("timed out after 0.6"), "{message}");
            assert!(
                message.contains(&format!("RayCluster {NS}/rc: state ready")),
                "{message}"
            );
            assert_eq!(
                evidence[0],
                "last observed: state=<none>, conditions=[HeadPodReady=False (HeadPodNotFound)], readyWorkerReplicas=0/2"
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_raycluster_times_out_saying_so() {
    let double = ApiDouble::start().await;
    let client = double.client();
    let err = wait::ray_cluster(
        &client,
        NS,
        "ghost",
        RayClusterCondition::Ready,
        None,
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.evidence()[0],
        "last observed: RayCluster ghost does not exist"
    );
}

#[tokio::test]
async fn not_enough_ready_workers_is_not_ready() {
    let double = ApiDouble::start().await;
    let client = double.client();
    put_raycluster(&double, "rc");
    let mut status = ready_status();
    status["readyWorkerReplicas"] = json!(1);
    double.set_status("rayclusters", NS, "rc", status);
    let err = wait::ray_cluster(
        &client,
        NS,
        "rc",
        RayClusterCondition::Ready,
        Some(2),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(
        err.evidence()[0].contains("readyWorkerReplicas=1/2"),
        "{:?}",
        err.evidence()
    );
}

fn deployment() -> serde_json::Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "web:1"}]}}}})
}

#[tokio::test]
async fn deployments_rolled_out_success_and_timeout() {
    let double = ApiDouble::start().await;
    let client = double.client();
    double.put("deployments", deployment());
    double.set_status(
        "deployments",
        NS,
        "web",
        json!({"conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}]}),
    );
    let err = wait::deployment_rolled_out(&client, NS, "web", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(
        err.evidence()[0],
        "last observed: the controller has not observed the current spec yet: generation 1 (observed 0), revision <none>, replicas 1 desired / 0 updated / 0 total / 0 available, conditions=[Available=False (MinimumReplicasUnavailable)]"
    );
    double.roll_out_deployment(NS, "web");
    let ok = wait::deployment_rolled_out(&client, NS, "web", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(ok.starts_with("Deployment web rolled out"), "{ok}");
    assert!(ok.ends_with("no older ReplicaSet"), "{ok}");
}

/// The status of a one-replica Deployment with `maxUnavailable: 1` (the
/// ingress-nginx kind manifest) in the middle of a rollout: Available=True
/// because zero available pods are allowed, yet nothing serves the new spec.
fn mid_rollout(
    generation: i64,
    observed: i64,
    updated: i64,
    total: i64,
    available: i64,
) -> serde_json::Value {
    json!({"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
           "availableReplicas": available, "readyReplicas": available,
           "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                          {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                           "message": format!("generation {generation} progressing")}]})
}

#[tokio::test]
async fn available_is_not_rolled_out() {
    let double = ApiDouble::start().await;
    let client = double.client();
    double.put("deployments", deployment());
    double.roll_out_deployment(NS, "web");
    // A new spec (new controller flags): generation 2.
    let mut changed = double.get("deployments", NS, "web").unwrap();
    changed["spec"]["template"]["spec"]["containers"][0]["args"] =
        json!(["--enable-ssl-passthrough"]);
    double.put("deployments", changed);
    assert_eq!(
        double.get("deployments", NS, "web").unwrap()["metadata"]["generation"],
        2
    );
    let cases = [
        // Not yet observed: the status still describes generation 1.
        (
            mid_rollout(2, 1, 1, 1, 1),
            "the controller has not observed the current spec yet",
        ),
        // Old pod gone, new one not created yet.
        (
            mid_rollout(2, 2, 0, 0, 0),
            "not every replica runs the current template yet",
        ),
        // New pod created, not available yet.
        (
            mid_rollout(2, 2, 1, 1, 0),
            "not every updated replica is available yet",
        ),
        // Surge: the old pod still counted.
        (
            mid_rollout(2, 2, 1, 2, 1),
            "replicas of an older template are still counted",
        ),
    ];
    for (status, why) in cases {
        double.set_status("deployments", NS, "web", status.clone());
        let err = wait::deployment_rolled_out(&client, NS, "web", Duration::from_millis(300))
            .await
            .expect_err(&format!(
                "Available=True mid-rollout is not rolled out: {status}"
            ));
        assert!(
            err.evidence()[0].contains(why),
            "{why}: {:?}",
            err.evidence()
        );
    }
}

#[tokio::test]
async fn a_terminating_pod_of_the_old_replica_set_is_waited_out() {
    let double = ApiDouble::start().await;
    let client = double.client();
    double.put("deployments", deployment());
    double.roll_out_deployment(NS, "web");
    double.roll_out_deployment(NS, "web");
    // Revision 2 is rolled out while revision 1's pod is still terminating:
    // the status no longer counts it, but it may still serve.
    let mut terminating = double.get("pods", NS, "web-r2-0").unwrap();
    terminating["metadata"]["name"] = json!("web-r1-0");
    terminating["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-r1", "uid": double.get("replicasets", NS, "web-r1").unwrap()["metadata"]["uid"], "controller": true}]);
    terminating["metadata"]["deletionTimestamp"] = json!("2026-11-21T00:00:10Z");
    double.put("pods", terminating);
    let d = &double;
    let wait = wait::deployment_rolled_out(&client, NS, "web", Duration::from_secs(60));
    tokio::pin!(wait);
    let early = tokio::time::timeout(Duration::from_millis(500), &mut wait).await;
    assert!(
        early.is_err(),
        "returned while a pod of the old ReplicaSet was left: {early:?}"
    );
    assert!(d.remove("pods", NS, "web-r1-0"));
    let ok = wait.await.unwrap();
    assert!(
        ok.contains("no pod left of older ReplicaSet(s) web-r1"),
        "{ok}"
    );
    // Timeout evidence names the pod.
    let mut again = double.get("pods", NS, "web-r2-0").unwrap();
    again["metadata"]["name"] = json!("web-r1-9");
    again["metadata"]["ownerReferences"][0]["name"] = json!("web-r1");
    again["metadata"]["deletionTimestamp"] = json!("2026-11-21T00:00:10Z");
    double.put("pods", again);
    let err = wait::deployment_rolled_out(&client, NS, "web", Duration::from_millis(400))
        .await
        .unwrap_err();
    assert_eq!(
        err.evidence()[0],
        "last observed: pods of older ReplicaSets left: web-r1-9 (ReplicaSet web-r1, Running, terminating)"
    );
}

fn pod(name: &str, ready: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": {"ray.io/node-type": "head"}},
           "spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0"}]},
           "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": ready}]}})
}

#[tokio::test]
async fn pods_ready_by_selector_success_and_timeout() {
    let double = ApiDouble::start().await;
    let client = double.client();
    let selector = "ray.io/node-type=head";
    let err = wait::pods_ready(&client, NS, selector, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(
        err.evidence()[0],
        format!("last observed: no pod matches `{selector}`")
    );
    double.put("pods", pod("head-0", "False"));
    double.put("pods", {
        let mut other = pod("other", "True");
        other["metadata"]["labels"] = json!({"app": "other"});
        other
    });
    let err = wait::pods_ready(&client, NS, selector, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(
        err.evidence()[0],
        "last observed: head-0: Running, ready=false"
    );
    double.put("pods", pod("head-0", "True"));
    let ok = wait::pods_ready(&client, NS, selector, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(ok.starts_with("1 pod(s) matching"), "{ok}");
}

#[tokio::test]
async fn endpoints_populated_success_and_timeout() {
    let double = ApiDouble::start().await;
    let client = double.client();
    double.put("endpoints", json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "svc", "namespace": NS},
        "subsets": [{"notReadyAddresses": [{"ip": "10.0.0.9"}], "ports": [{"port": 80}]}]}));
    let err = wait::endpoints_populated(&client, NS, "svc", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(
        err.evidence()[0],
        "last observed: 0 ready address(es), 1 not ready"
    );
    double.put("endpoints", json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "svc", "namespace": NS},
        "subsets": [{"addresses": [{"ip": "10.0.0.9"}], "ports": [{"port": 80}]}]}));
    wait::endpoints_populated(&client, NS, "svc", Duration::from_secs(5))
        .await
        .unwrap();
}

/// How each wait finds out: one list, then one watch that carries the
/// change. The delay between the double making a RayCluster ready and the
/// wait returning is measured over 20 runs and printed as a report
/// (`-- --nocapture`); it is not asserted, since performance targets live
/// in benchmarks, not in timed tests. What is asserted: exactly two API
/// requests per wait, the second a watch (polling would show more).
#[tokio::test]
async fn waits_follow_a_watch_with_two_requests_each() {
    const RUNS: usize = 20;
    let double = ApiDouble::start().await;
    let client = double.client();
    let mut delays = Vec::new();
    let mut requests: Vec<Vec<String>> = Vec::new();
    for i in 0..RUNS {
        let name = format!("rc-{i}");
        put_raycluster(&double, &name);
        let before = double.requests().len();
        let d = &double;
        let n = name.clone();
        let (result, became_true) = tokio::join!(
            async {
                let r = wait::ray_cluster(
                    &client,
                    NS,
                    &name,
                    RayClusterCondition::Ready,
                    None,
                    Duration::from_secs(120),
                )
                .await;
                (r, Instant::now())
            },
            async move {
                // Change the status only once the wait follows its watch.
                let selector = format!("metadata.name%3D{n}&");
                d.wait_for_request(
                    &format!("the watch of RayCluster {n}"),
                    Duration::from_secs(120),
                    |method, uri| {
                        method == "GET" && uri.contains("watch=true") && uri.contains(&selector)
                    },
                )
                .await;
                d.set_status("rayclusters", NS, &n, ready_status())
            }
        );
        let (result, returned) = result;
        result.unwrap();
        delays.push(returned.duration_since(became_true));
        requests.push(
            double.requests()[before..]
                .iter()
                .map(|r| format!("{} {}", r.method, r.uri))
                .collect(),
        );
    }
    delays.sort();
    println!(
        "wait delay over {RUNS} runs (report, not asserted): p50 {:.2} ms, max {:.2} ms",
        delays[RUNS / 2].as_secs_f64() * 1000.0,
        delays.last().unwrap().as_secs_f64() * 1000.0,
    );
    for (i, made) in requests.iter().enumerate() {
        assert_eq!(made.len(), 2, "wait {i}: one list and one watch: {made:?}");
        assert!(
            !made[0].contains("watch=true"),
            "wait {i} lists first: {made:?}"
        );
        assert!(
            made[1].contains("watch=true"),
            "wait {i} then watches: {made:?}"
        );
    }
}
