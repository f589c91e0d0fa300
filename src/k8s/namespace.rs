//! Deleting a scenario namespace and waiting until it is gone.
//!
//! A Terminating namespace still holds its objects: ingress-nginx's
//! admission webhook refuses an Ingress whose host and path exist in
//! another namespace, so the next scenario's identical Ingress would be
//! denied while the previous namespace terminates. Closing a session
//! therefore waits, bounded, and when the bound passes says what is left.

use super::raycluster;
use super::wait::{self, Check, NotYet};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, ObjectMeta};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::Duration;

/// How long closing a session waits for its namespace to be gone: pods
/// get their termination grace period (30 s by default) and finalizers run.
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(180);

/// Bound for each request listing what is left.
const LIST_TIMEOUT: Duration = Duration::from_secs(20);

/// Deletes namespace `name` and waits until it no longer exists. `Ok` with
/// a summary when it is gone (or was already); otherwise the problems, the
/// first saying what happened and the rest naming what is left in it.
pub async fn delete_and_wait(
    client: &Client,
    name: &str,
    timeout: Duration,
) -> Result<String, Vec<String>> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Ok(format!("namespace {name} was already gone"));
        }
        Err(e) => return Err(vec![format!("deleting namespace {name}: {e}")]),
    }
    let check: Check<Namespace> = Box::new(|objects| match objects.values().next() {
        None => Ok("gone".to_string()),
        Some(ns) => Err(NotYet(describe(ns))),
    });
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let what = format!("namespace {name} to be deleted");
    match wait::watch_until(namespaces, config, &what, timeout, check).await {
        Ok(summary) => Ok(format!("namespace {name} {summary}")),
        Err(e) => {
            let mut problems = vec![e.to_string()];
            problems.extend(remaining_objects(client, name).await);
            Err(problems)
        }
    }
}

/// Phase and conditions (the namespace controller says there which
/// content or finalizers remain).
fn describe(ns: &Namespace) -> String {
    let status = ns.status.clone().unwrap_or_default();
    let conditions: Vec<String> = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.status == "True")
        .map(|c| format!("{}: {}", c.type_, c.message.clone().unwrap_or_default()))
        .collect();
    format!(
        "phase {}{}",
        status.phase.unwrap_or_else(|| "<none>".into()),
        if conditions.is_empty() {
            String::new()
        } else {
            format!(", {}", conditions.join("; "))
        }
    )
}

/// One line per object left in the namespace, of the kinds scenarios
/// create, with their finalizers: the evidence of a namespace that does
/// not go away.
pub async fn remaining_objects(client: &Client, ns: &str) -> Vec<String> {
    let mut lines = Vec::new();
    lines.extend(left(Api::<Pod>::namespaced(client.clone(), ns), "Pod", ns).await);
    lines.extend(
        left(
            Api::<Service>::namespaced(client.clone(), ns),
            "Service",
            ns,
        )
        .await,
    );
    lines.extend(
        left(
            Api::<Ingress>::namespaced(client.clone(), ns),
            "Ingress",
            ns,
        )
        .await,
    );
    lines.extend(
        left(
            Api::<Deployment>::namespaced(client.clone(), ns),
            "Deployment",
            ns,
        )
        .await,
    );
    let rayclusters: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &raycluster::api_resource());
    lines.extend(left(rayclusters, "RayCluster", ns).await);
    lines
}

async fn left<K>(api: Api<K>, kind: &str, ns: &str) -> Vec<String>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match tokio::time::timeout(LIST_TIMEOUT, api.list(&ListParams::default())).await {
        Err(_) => vec![format!("left in {ns}: listing {kind}s timed out")],
        // No such kind on this cluster (no KubeRay CRD): nothing left.
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => Vec::new(),
        Ok(Err(e)) => vec![format!("left in {ns}: listing {kind}s: {e}")],
        Ok(Ok(list)) => list
            .items
            .iter()
            .map(|o| {
                format!(
                    "left in {ns}: {kind} {}{}",
                    o.name_any(),
                    finalizers(o.meta())
                )
            })
            .collect(),
    }
}

fn finalizers(meta: &ObjectMeta) -> String {
    let deleting = if meta.deletion_timestamp.is_some() {
        " (deleting)"
    } else {
        ""
    };
    match meta.finalizers.as_deref() {
        Some(f) if !f.is_empty() => format!("{deleting}, finalizers: {}", f.join(", ")),
        _ => deleting.to_string(),
    }
}
