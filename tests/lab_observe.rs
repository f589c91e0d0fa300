//! The lab's `assert`, `logs` and `delete: {select}` on real processes:
//! Services as applied, RayClusters whose status comes from the real Ray
//! head and workers, and the lab nginx's own error log. Wrong values fail
//! with the last observation; kinds the lab cannot observe are skips.

use rayconform::scenario::{AssertSpec, LogsSpec, ObjectSelector, load_str, parse_manifests};
use rayconform::targets::lab::LabTarget;
use rayconform::targets::{Observed, ScenarioRun, Session, StepError, Target};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[path = "support/real_ray_turn.rs"]
mod real_ray_turn;
use real_ray_turn::real_ray_turn;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const SCENARIO: &str = r#"
apiVersion: rayconform.dev/v1alpha1
kind: Scenario
metadata: { name: lab-observe }
spec:
  targets: [lab]
  install:
    - ingressNginx: {}
    - kuberayOperator: {}
  steps:
    - probe: { http: { url: "http://${INGRESS_HTTP}/" } }
"#;

/// A lab session of [`SCENARIO`] in namespace `ns-obs`, under `dir`.
async fn open(dir: &Path) -> (LabTarget, Box<dyn Session>) {
    rayconform::tls::install_crypto_provider();
    let scenario =
        Arc::new(load_str(Path::new("observe.yaml"), SCENARIO, &root()).expect("scenario"));
    let target = LabTarget::new(root());
    assert_eq!(target.unavailable_reason(), None, "run scripts/setup");
    let run = ScenarioRun {
        scenario,
        run_id: "t".into(),
        namespace: "ns-obs".into(),
        work_dir: dir.to_path_buf(),
        artifacts_dir: dir.join("artifacts"),
        project_root: root(),
        certificates: None,
        keep: false,
        progress: Arc::new(|_| {}),
    };
    let session = target.open(&run).await.expect("open");
    (target, session)
}

fn assert_spec(value: serde_json::Value) -> AssertSpec {
    serde_json::from_value(value).expect("assert spec")
}

fn logs_spec(value: serde_json::Value) -> LogsSpec {
    serde_json::from_value(value).expect("logs spec")
}

fn failed(result: Result<Observed, StepError>) -> (String, Vec<String>) {
    match result {
        Err(StepError::Failed { message, evidence }) => (message, evidence),
        other => panic!("expected a failure with evidence, got {other:?}"),
    }
}

fn unsupported<T: std::fmt::Debug>(result: Result<T, StepError>) -> String {
    match result {
        Err(StepError::Unsupported(reason)) => reason,
        other => panic!("expected a skip with a reason, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_the_nginx_error_log_are_observed_and_wrong_values_fail() {
    let work = tempfile::tempdir().unwrap();
    let (target, mut session) = open(work.path()).await;
    let manifests = parse_manifests(
        r#"
apiVersion: v1
kind: Service
metadata: { name: web, namespace: ns-obs, labels: { app: web } }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
"#,
    )
    .unwrap();
    session.apply(&manifests).await.expect("apply");

    let seen = session
        .assert(
            &assert_spec(json!({
                "object": {"apiVersion": "v1", "kind": "Service", "labelSelector": "app=web"},
                "count": 1,
                "fields": [
                    {"path": "$.spec.ports[*].port", "contains": 80},
                    {"path": "$.spec.ports[0].targetPort", "equals": 8080},
                    {"path": "$.spec.clusterIP", "exists": false}
                ]
            })),
            Duration::from_secs(5),
        )
        .await
        .expect("the applied Service is observed");
    let text = seen.evidence.join("\n");
    assert!(text.contains("Service ns-obs/web"), "{text}");
    assert!(text.contains("[lab]"), "{text}");

    // A wrong value fails after the timeout, with what was observed.
    let started = std::time::Instant::now();
    let (message, evidence) = failed(
        session
            .assert(
                &assert_spec(json!({
                    "object": {"apiVersion": "v1", "kind": "Service", "name": "web"},
                    "fields": [{"path": "$.spec.ports[0].port", "equals": 81}]
                })),
                Duration::from_millis(1500),
            )
            .await,
    );
    assert!(started.elapsed() >= Duration::from_millis(1000));
    assert!(message.starts_with("timed out after"), "{message}");
    assert!(message.contains("MISMATCH observed 80"), "{message}");
    assert_eq!(evidence[0], "last observed:", "{evidence:?}");
    // A wrong count, in another namespace: nothing there.
    let (message, _) = failed(
        session
            .assert(
                &assert_spec(json!({
                    "object": {"apiVersion": "v1", "kind": "Service", "namespace": "other"},
                    "count": 1
                })),
                Duration::from_millis(600),
            )
            .await,
    );
    assert!(message.contains("0 object(s), expected 1"), "{message}");

    // Kinds the lab cannot observe are skips with the reason.
    let reason = unsupported(
        session
            .assert(
                &assert_spec(
                    json!({"object": {"apiVersion": "apps/v1", "kind": "Deployment"},
                                    "count": 1}),
                ),
                Duration::from_secs(1),
            )
            .await,
    );
    assert!(reason.contains("lab cannot observe Deployment"), "{reason}");
    let reason = unsupported(
        session
            .logs(
                &logs_spec(json!({"pods": {"labelSelector": "app=web"}, "contains": "x"})),
                Duration::from_secs(1),
            )
            .await,
    );
    assert!(reason.contains("lab cannot read logs"), "{reason}");
    let select: ObjectSelector =
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service", "name": "web"}))
            .unwrap();
    let reason = unsupported(session.delete_selected(&select).await);
    assert!(reason.contains("only RayClusters"), "{reason}");

    // The ingress controller's logs are the lab nginx's error log.
    let controller = json!({"namespace": "ingress-nginx",
                            "labelSelector": "app.kubernetes.io/component=controller"});
    let seen = session
        .logs(
            &logs_spec(json!({"pods": controller, "regex": "start worker process \\d+"})),
            Duration::from_secs(5),
        )
        .await
        .expect("nginx logged its worker start");
    assert!(
        seen.evidence[0].starts_with("lab nginx error log: ")
            && seen.evidence[0].contains("start worker process"),
        "{:?}",
        seen.evidence
    );
    // `since: step` skips what was logged before the step began.
    let (message, evidence) = failed(
        session
            .logs(
                &logs_spec(
                    json!({"pods": controller, "contains": "start worker process",
                                  "since": "step"}),
                ),
                Duration::from_millis(1200),
            )
            .await,
    );
    assert!(message.contains("logged no"), "{message}");
    assert_eq!(evidence[0], "last read:", "{evidence:?}");

    assert!(session.close(false).await.is_empty());
    assert!(target.shutdown(false).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raycluster_status_comes_from_the_real_head_and_delete_select_removes_it() {
    let _turn = real_ray_turn();
    let work = tempfile::tempdir().unwrap();
    let (target, mut session) = open(work.path()).await;
    let manifests = parse_manifests(
        r#"
apiVersion: ray.io/v1
kind: RayCluster
metadata: { name: rc, namespace: ns-obs, labels: { team: a } }
spec:
  headGroupSpec:
    rayStartParams: {}
    template: { spec: { containers: [{ name: ray-head, image: "rayproject/ray:2.60.0" }] } }
  workerGroupSpecs:
    - groupName: w
      replicas: 1
      rayStartParams: {}
      template: { spec: { containers: [{ name: ray-worker, image: "rayproject/ray:2.60.0" }] } }
"#,
    )
    .unwrap();
    session.apply(&manifests).await.expect("apply");
    let rc = json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "labelSelector": "team=a"});
    let seen = session
        .assert(
            &assert_spec(json!({
                "object": rc,
                "count": 1,
                "fields": [
                    {"path": "$.status.state", "equals": "ready"},
                    {"path": "$.status.readyWorkerReplicas", "equals": 1}
                ]
            })),
            Duration::from_secs(90),
        )
        .await
        .unwrap_or_else(|e| panic!("the worker joins: {e:?}\n{}", session.how_to_reach()));
    assert!(
        seen.evidence
            .iter()
            .any(|l| l.contains("readyWorkerReplicas")),
        "{:?}",
        seen.evidence
    );
    // Two ready workers are not there: the real node list says one.
    let (message, _) = failed(
        session
            .assert(
                &assert_spec(json!({
                    "object": rc,
                    "fields": [{"path": "$.status.readyWorkerReplicas", "equals": 2}]
                })),
                Duration::from_millis(1500),
            )
            .await,
    );
    assert!(message.contains("MISMATCH observed 1"), "{message}");
    // Its pods: the head and one worker of group `w`, Ready from the
    // head's node list.
    for (group, node_type) in [("headgroup", "head"), ("w", "worker")] {
        session
            .assert(
                &assert_spec(json!({
                    "object": {"apiVersion": "v1", "kind": "Pod",
                               "labelSelector": format!("ray.io/cluster=rc,ray.io/group={group}")},
                    "count": 1,
                    "fields": [
                        {"path": "$.status.phase", "equals": "Running"},
                        {"path": "$.status.conditions[?@.type=='Ready'].status", "equals": "True"},
                        {"path": "$.metadata.labels['ray.io/node-type']", "equals": node_type}
                    ]
                })),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|e| panic!("{group} pod: {e:?}"));
    }
    let head_svc = json!({"apiVersion": "v1", "kind": "Service", "name": "rc-head-svc"});
    session
        .assert(
            &assert_spec(json!({
                "object": head_svc,
                "count": 1,
                "fields": [{"path": "$.spec.ports[*].port", "contains": 10001}]
            })),
            Duration::from_secs(5),
        )
        .await
        .expect("the modelled head Service");

    let select: ObjectSelector = serde_json::from_value(rc.clone()).unwrap();
    let done = session.delete_selected(&select).await.expect("delete");
    assert!(done.contains("ns-obs/rc deleted"), "{done}");
    let pods = json!({"apiVersion": "v1", "kind": "Pod", "labelSelector": "ray.io/cluster=rc"});
    for object in [rc, head_svc, pods] {
        session
            .assert(
                &assert_spec(json!({"object": object, "count": 0})),
                Duration::from_secs(5),
            )
            .await
            .expect("gone after the delete");
    }
    assert!(session.close(false).await.is_empty());
    assert!(target.shutdown(false).await.is_empty());
}
