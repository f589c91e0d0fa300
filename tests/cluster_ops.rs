//! kube-rs operations (server-side apply, delete, expectDenied, the CA
//! Secret) through the cluster session, against the API double over HTTP.

mod support;

use rayconform::targets::cluster::{ClusterSession, SessionSetup};
use rayconform::targets::{Session, StepError};
use serde_json::json;
use std::time::Duration;
use support::apiserver::ApiDouble;

const NS: &str = "rc-ops";

fn raycluster(name: &str) -> serde_json::Value {
    json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": name},
           "spec": {"rayVersion": "2.60.0", "headGroupSpec": {"rayStartParams": {}}}})
}

fn ingress(name: &str) -> serde_json::Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": name, "annotations": {"nginx.ingress.kubernetes.io/configuration-snippet": "return 200;"}},
           "spec": {"rules": [{"host": "x.invalid"}]}})
}

async fn session(double: &ApiDouble, dir: &std::path::Path) -> ClusterSession {
    let run = support::run(support::scenario("ops"), NS, dir, None);
    ClusterSession::open(double.client(), &run, SessionSetup::default())
        .await
        .expect("session opens")
}

#[tokio::test]
async fn open_creates_the_namespace_and_close_deletes_it() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    let ns = double.get("namespaces", "", NS).expect("namespace created");
    assert_eq!(
        ns["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "rayconform"
    );
    assert_eq!(s.variables()["NAMESPACE"], NS);
    assert!(s.close(false).await.is_empty());
    assert!(
        double.get("namespaces", "", NS).is_none(),
        "namespace deleted"
    );
}

#[tokio::test]
async fn keep_leaves_the_namespace() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    assert!(s.close(true).await.is_empty());
    assert!(double.get("namespaces", "", NS).is_some());
}

#[tokio::test]
async fn apply_creates_and_reapply_changes_nothing() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "head"},
                         "spec": {"ports": [{"port": 10001}]}});
    let summary = s.apply(&[raycluster("rc"), service.clone()]).await.unwrap();
    assert_eq!(
        summary,
        format!("applied 2 objects: RayCluster {NS}/rc, Service {NS}/head")
    );
    let first = double
        .get("rayclusters", NS, "rc")
        .expect("stored in the scenario namespace");
    assert_eq!(first["metadata"]["namespace"], NS);

    let patches_before = double
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    s.apply(&[raycluster("rc"), service]).await.unwrap();
    let again = double.get("rayclusters", NS, "rc").unwrap();
    assert_eq!(
        again["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"],
        "idempotent"
    );
    let patches: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), patches_before + 2);
    let last = &patches.last().unwrap().uri;
    assert!(
        last.contains("fieldManager=rayconform") && last.contains("force=true"),
        "{last}"
    );
    // Discovery is asked once per group version, not per object.
    let discovery = double
        .requests()
        .iter()
        .filter(|r| r.uri == "/apis/ray.io/v1")
        .count();
    assert_eq!(discovery, 1);

    let mut changed = raycluster("rc");
    changed["spec"]["rayVersion"] = json!("2.61.0");
    s.apply(&[changed]).await.unwrap();
    let updated = double.get("rayclusters", NS, "rc").unwrap();
    assert_ne!(
        updated["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    assert_eq!(updated["metadata"]["generation"], 2);
}

#[tokio::test]
async fn an_unknown_kind_is_broken_infrastructure() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    let gateway = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "g"}});
    match s.apply(&[gateway]).await {
        Err(StepError::Broken(m)) => {
            let m = m.to_string();
            assert!(
                m.contains("does not serve gateway.networking.k8s.io/v1 Gateway"),
                "{m}"
            )
        }
        other => panic!("expected Broken, got {other:?}"),
    }
}

#[tokio::test]
async fn delete_removes_and_tolerates_missing_objects() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    s.apply(&[raycluster("rc")]).await.unwrap();
    assert_eq!(
        s.delete(&[raycluster("rc")]).await.unwrap(),
        format!("deleted RayCluster {NS}/rc")
    );
    assert!(double.get("rayclusters", NS, "rc").is_none());
    s.delete(&[raycluster("rc")])
        .await
        .expect("already gone counts as deleted");
}

const DENIAL: &str = "admission webhook \"validate.nginx.ingress.kubernetes.io\" denied the request: nginx.ingress.kubernetes.io/configuration-snippet annotation cannot be used. Snippet directives are disabled by the Ingress administrator";

#[tokio::test]
async fn expect_denied_matches_the_webhook_message() {
    let double = ApiDouble::start().await;
    double.deny("Ingress", 400, DENIAL);
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    let summary = s
        .expect_denied(&[ingress("snippet")], "Snippet directives are disabled")
        .await
        .unwrap();
    assert!(summary.contains("refused (400) as expected"), "{summary}");
    assert!(
        summary.contains("validate.nginx.ingress.kubernetes.io"),
        "{summary}"
    );
}

#[tokio::test]
async fn expect_denied_with_another_message_fails_with_the_refusal() {
    let double = ApiDouble::start().await;
    double.deny("Ingress", 403, DENIAL);
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    match s
        .expect_denied(&[ingress("snippet")], "risky annotation")
        .await
    {
        Err(StepError::Failed { message, evidence }) => {
            assert!(
                message.contains("does not contain \"risky annotation\""),
                "{message}"
            );
            assert_eq!(evidence, vec![format!("refusal (403): {DENIAL}")]);
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn expect_denied_that_is_accepted_fails_and_cleans_up() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    match s.expect_denied(&[ingress("snippet")], "Snippet").await {
        Err(StepError::Failed { message, evidence }) => {
            assert!(message.contains("every object was accepted"), "{message}");
            assert_eq!(
                evidence,
                vec![format!("accepted (then deleted): Ingress {NS}/snippet")]
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(
        double.get("ingresses", NS, "snippet").is_none(),
        "accepted object removed"
    );
}

#[tokio::test]
async fn a_plain_apply_refusal_is_a_failure_with_the_message() {
    let double = ApiDouble::start().await;
    double.deny("Ingress", 400, DENIAL);
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    match s.apply(&[ingress("snippet")]).await {
        Err(StepError::Failed { message, .. }) => assert!(message.contains(DENIAL), "{message}"),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn certificates_become_the_kuberay_ca_secret() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A real CA generated for the run, as the runner does.
    let set = rayconform::tls::generate(&dir.path().join("certs"), "ca-tls", &[]).unwrap();
    let authority = set.get("ca-tls").unwrap().clone();
    let mut scenario = support::scenario("tls");
    scenario.certificates = Some(rayconform::scenario::CertificatesSpec {
        ca: "ca-tls".into(),
        server_names: vec![],
    });
    let run = support::run(scenario, NS, dir.path(), Some(set));
    ClusterSession::open(double.client(), &run, SessionSetup::default())
        .await
        .unwrap();
    let secret = double
        .get("secrets", NS, "ca-tls")
        .expect("CA secret created");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(
        secret["stringData"]["ca.crt"],
        read(&authority.ca_cert).as_str()
    );
    assert_eq!(
        secret["stringData"]["ca.key"],
        read(&authority.ca_key).as_str()
    );
}

fn pod_in(ns: &str, name: &str, finalizers: &[&str]) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "finalizers": finalizers},
           "spec": {"containers": [{"name": "c", "image": "x"}]}})
}

#[tokio::test]
async fn close_returns_only_once_the_namespace_is_gone() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path())
        .await
        .with_deletion_timeout(Duration::from_secs(120));
    s.apply(&[raycluster("rc")]).await.unwrap();
    double.put("pods", pod_in(NS, "head", &[]));
    double.hold_namespace_deletion();
    let closing = s.close(false);
    tokio::pin!(closing);
    // The namespace is Terminating, its objects still there: not closed.
    let early = tokio::time::timeout(Duration::from_millis(500), &mut closing).await;
    assert!(
        early.is_err(),
        "close returned while the namespace was Terminating: {early:?}"
    );
    let ns = double.get("namespaces", "", NS).expect("still there");
    assert_eq!(ns["status"]["phase"], "Terminating");
    double.finish_namespace_deletion(NS);
    let problems = closing.await;
    assert!(problems.is_empty(), "{problems:?}");
    assert!(double.get("namespaces", "", NS).is_none());
    assert!(double.get("rayclusters", NS, "rc").is_none());
}

#[tokio::test]
async fn a_namespace_that_stays_terminating_is_reported_with_what_is_left() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path())
        .await
        .with_deletion_timeout(Duration::from_millis(500));
    // Made by a controller, not applied by the scenario: the session's own
    // cleanup does not know it, only the namespace deletion takes it.
    let mut rc = raycluster("rc");
    rc["metadata"]["namespace"] = json!(NS);
    double.put("rayclusters", rc);
    double.put("pods", pod_in(NS, "stuck", &["example.com/hold"]));
    double.hold_namespace_deletion();
    let problems = s.close(false).await;
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0].starts_with("timed out after 0.5"),
        "{problems:?}"
    );
    assert!(
        problems[0].contains(&format!("namespace {NS} to be deleted; last observed: phase Terminating, NamespaceContentRemaining: Some resources are remaining")),
        "{problems:?}"
    );
    assert_eq!(
        problems[1..],
        [
            format!("left in {NS}: Pod stuck, finalizers: example.com/hold"),
            format!("left in {NS}: RayCluster rc"),
        ]
    );
}

#[tokio::test]
async fn a_refused_ca_secret_deletes_the_namespace_it_was_opened_in() {
    let double = ApiDouble::start().await;
    double.deny("Secret", 403, "secrets are not allowed here");
    let dir = tempfile::tempdir().unwrap();
    let set = rayconform::tls::generate(&dir.path().join("certs"), "ca-tls", &[]).unwrap();
    let mut scenario = support::scenario("tls-refused");
    scenario.certificates = Some(rayconform::scenario::CertificatesSpec {
        ca: "ca-tls".into(),
        server_names: vec![],
    });
    let run = support::run(scenario, NS, dir.path(), Some(set));
    match ClusterSession::open(double.client(), &run, SessionSetup::default()).await {
        Err(StepError::Broken(b)) => {
            let m = b.to_string();
            assert!(
                m.starts_with("creating the CA Secret: ") && m.contains("secrets are not allowed"),
                "{m}"
            );
        }
        Err(other) => panic!("expected Broken, got {other:?}"),
        Ok(_) => panic!("the session opened although the Secret was refused"),
    }
    let created = double
        .requests()
        .iter()
        .any(|r| r.method == "PATCH" && r.uri.starts_with(&format!("/api/v1/namespaces/{NS}?")));
    assert!(created, "the namespace was created before the Secret");
    assert!(
        double.get("namespaces", "", NS).is_none(),
        "the namespace leaked after the refused CA Secret"
    );
}

#[tokio::test]
async fn close_deletes_every_applied_object_last_first_cluster_scoped_included() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                      "metadata": {"name": "rc-ops-reader"},
                      "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                        "data": {"k": "v"}});
    s.apply(&[role]).await.unwrap();
    s.apply(&[config]).await.unwrap();
    assert!(double.get("clusterroles", "", "rc-ops-reader").is_some());

    assert_eq!(s.close(false).await, Vec::<String>::new());

    let deletions: Vec<String> = double
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.uri.split('?').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        deletions,
        [
            format!("/api/v1/namespaces/{NS}/configmaps/settings"),
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/rc-ops-reader".to_string(),
            format!("/api/v1/namespaces/{NS}"),
        ],
        "every applied object, last applied first, then the namespace"
    );
    assert!(
        double.get("clusterroles", "", "rc-ops-reader").is_none(),
        "the cluster-scoped object leaked"
    );
    assert!(double.get("configmaps", NS, "settings").is_none());
    assert!(double.get("namespaces", "", NS).is_none());
}

#[tokio::test]
async fn objects_deleted_by_a_step_are_not_deleted_again() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    s.apply(&[raycluster("rc")]).await.unwrap();
    s.delete(&[raycluster("rc")]).await.unwrap();
    assert!(s.close(false).await.is_empty());
    let deletions: Vec<String> = double
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.uri.split('?').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        deletions,
        [
            format!("/apis/ray.io/v1/namespaces/{NS}/rayclusters/rc"),
            format!("/api/v1/namespaces/{NS}"),
        ]
    );
}

#[tokio::test]
async fn keep_leaves_cluster_scoped_objects_too() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                      "metadata": {"name": "kept"}, "rules": []});
    s.apply(&[role]).await.unwrap();
    assert!(s.close(true).await.is_empty());
    assert!(double.get("clusterroles", "", "kept").is_some());
    assert!(!double.requests().iter().any(|r| r.method == "DELETE"));
}

#[tokio::test]
async fn an_object_that_existed_before_the_step_is_changed_but_not_deleted() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    // There before the scenario (an install's, an administrator's).
    double.put(
        "clusterroles",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "shared"}, "rules": []}),
    );
    let mut s = session(&double, dir.path()).await;
    let changed = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                         "metadata": {"name": "shared"},
                         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
    s.apply(std::slice::from_ref(&changed)).await.unwrap();
    s.apply(&[raycluster("rc")]).await.unwrap();
    // Applied again: still the session's own, still deleted once.
    s.apply(&[raycluster("rc")]).await.unwrap();
    assert!(s.close(false).await.is_empty());
    let shared = double
        .get("clusterroles", "", "shared")
        .expect("the pre-existing object is left in place");
    assert_eq!(shared["rules"], changed["rules"], "but it was applied");
    let deletions: Vec<String> = double
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.uri.split('?').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        deletions,
        [
            format!("/apis/ray.io/v1/namespaces/{NS}/rayclusters/rc"),
            format!("/api/v1/namespaces/{NS}"),
        ]
    );
}
