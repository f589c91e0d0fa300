//! Watch-based waits against the API double: success, timeout with the last
//! observed state, and the measured delay between a condition becoming true
//! and the wait returning (plus API requests per wait).

mod support;

use rayconform::k8s::wait;
use rayconform::scenario::{RayClusterCondition, WaitSpec, WaitTarget};
use rayconform::target::{Session, StepError};
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
) -> rayconform::k8s::session::ClusterSession {
    let run = support::run(support::scenario("waits"), NS, dir, None);
    rayconform::k8s::session::ClusterSession::open(double.client(), &run, Default::default())
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

fn deployment(available: &str) -> serde_json::Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
           "spec": {"replicas": 1},
           "status": {"readyReplicas": 0, "conditions": [{"type": "Available", "status": available, "reason": "MinimumReplicasUnavailable"}]}})
}

#[tokio::test]
async fn deployments_available_success_and_timeout() {
    let double = ApiDouble::start().await;
    let client = double.client();
    double.put("deployments", deployment("False"));
    let err = wait::deployment_available(&client, NS, "web", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(
        err.evidence()[0],
        "last observed: readyReplicas=0/1, conditions=[Available=False (MinimumReplicasUnavailable)]"
    );
    double.put("deployments", deployment("True"));
    let ok = wait::deployment_available(&client, NS, "web", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(ok.starts_with("Deployment web Available"), "{ok}");
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

/// The delay between the double making a RayCluster ready and the wait
/// returning, over 20 runs; and the API requests each wait makes.
#[tokio::test]
async fn waits_return_promptly_and_cheaply() {
    const RUNS: usize = 20;
    let double = ApiDouble::start().await;
    let client = double.client();
    let mut delays = Vec::new();
    let mut requests = Vec::new();
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
                    Duration::from_secs(10),
                )
                .await;
                (r, Instant::now())
            },
            async move {
                // Let the wait reach its watch first.
                tokio::time::sleep(Duration::from_millis(100)).await;
                d.set_status("rayclusters", NS, &n, ready_status())
            }
        );
        let (result, returned) = result;
        result.unwrap();
        delays.push(returned.duration_since(became_true));
        requests.push(double.requests().len() - before);
    }
    delays.sort();
    let p50 = delays[RUNS / 2];
    let max = *delays.last().unwrap();
    let max_requests = *requests.iter().max().unwrap();
    println!(
        "wait delay over {RUNS} runs: p50 {:.2} ms, max {:.2} ms; API requests per wait: {:?}",
        p50.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0,
        requests
    );
    assert!(p50 <= Duration::from_millis(50), "p50 {p50:?}");
    // One list and one watch; a few more would mean polling.
    assert!(max_requests <= 3, "requests per wait {requests:?}");
}
