//! The applier remembers what it applied (namespaced and cluster-scoped,
//! each object once, in first-applied order, forgotten once deleted) and
//! deletes a remembered object again, against the API double over HTTP.

mod support;

use rayconform::k8s::apply::{AppliedRef, Applier};
use serde_json::json;
use support::apiserver::ApiDouble;

const NS: &str = "rc-applier";

fn service(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
           "spec": {"ports": [{"port": 10001}]}})
}

/// A cluster-scoped kind the double serves.
fn namespace(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn applied(kind: &str, name: &str, namespace: Option<&str>) -> AppliedRef {
    AppliedRef {
        api_version: "v1".into(),
        kind: kind.into(),
        name: name.into(),
        namespace: namespace.map(str::to_string),
    }
}

#[tokio::test]
async fn remembers_each_applied_object_once_in_order_with_its_scope() {
    let double = ApiDouble::start().await;
    let mut applier = Applier::new(double.client());
    applier.apply(1, &service("head"), NS).await.unwrap();
    applier.apply(2, &namespace("extra"), NS).await.unwrap();
    let mut elsewhere = service("other");
    elsewhere["metadata"]["namespace"] = json!("ns-b");
    applier.apply(3, &elsewhere, NS).await.unwrap();
    // Applying again (e.g. a changed spec) keeps the first position.
    applier.apply(4, &service("head"), NS).await.unwrap();
    // A dry run stores nothing, so there is nothing to undo.
    applier.apply_dry_run(&service("dry"), NS).await.unwrap();
    assert_eq!(
        applier.applied(),
        [
            applied("Service", "head", Some(NS)),
            applied("Namespace", "extra", None),
            applied("Service", "other", Some("ns-b")),
        ]
    );
    assert_eq!(applier.applied()[1].to_string(), "Namespace extra");
}

#[tokio::test]
async fn a_refused_apply_is_not_remembered() {
    let double = ApiDouble::start().await;
    double.deny("Service", 403, "denied by a webhook");
    let mut applier = Applier::new(double.client());
    assert!(applier.apply(1, &service("head"), NS).await.is_err());
    assert!(applier.applied().is_empty());
}

#[tokio::test]
async fn delete_ref_deletes_namespaced_and_cluster_scoped_objects_and_forgets_them() {
    let double = ApiDouble::start().await;
    let mut applier = Applier::new(double.client());
    applier.apply(1, &service("head"), NS).await.unwrap();
    applier.apply(2, &namespace("extra"), NS).await.unwrap();
    assert!(double.get("services", NS, "head").is_some());
    assert!(double.get("namespaces", "", "extra").is_some());

    let undo: Vec<AppliedRef> = applier.applied().iter().rev().cloned().collect();
    for object in &undo {
        let deleted = applier.delete_ref(object).await.unwrap();
        assert_eq!(deleted.object.name, object.name);
    }
    assert!(double.get("namespaces", "", "extra").is_none());
    assert!(double.get("services", NS, "head").is_none());
    assert!(applier.applied().is_empty());
    let deletes: Vec<String> = double
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.uri)
        .collect();
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    assert!(
        deletes[0].starts_with("/api/v1/namespaces/extra"),
        "{deletes:?}"
    );
    assert!(
        deletes[1].starts_with(&format!("/api/v1/namespaces/{NS}/services/head")),
        "{deletes:?}"
    );

    // Already gone counts as deleted.
    applier.delete_ref(&undo[0]).await.unwrap();
}

#[tokio::test]
async fn delete_by_manifest_also_forgets_the_object() {
    let double = ApiDouble::start().await;
    let mut applier = Applier::new(double.client());
    applier.apply(1, &service("head"), NS).await.unwrap();
    applier.apply(2, &service("tail"), NS).await.unwrap();
    applier.delete(1, &service("head"), NS).await.unwrap();
    assert_eq!(applier.applied(), [applied("Service", "tail", Some(NS))]);
}
