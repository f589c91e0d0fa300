//! Waits as watches: each wait lists once, then follows the watch stream and
//! re-checks its condition on every change, so it returns as soon as the
//! API server reports the change. On timeout the error carries the last
//! state it observed.

use super::raycluster::{self, RayClusterStatus};
use super::wait_spec::{RayClusterCondition, WaitSpec, WaitTarget};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Pod};
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

/// A wait that did not see its condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed.
    #[error("timed out after {}s waiting for {what}; last observed: {last_state}", waited.as_secs_f32())]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        waited: Duration,
        /// The last state seen (or why nothing was seen).
        last_state: String,
        /// Watch errors met on the way (the watch retries them).
        watch_errors: Vec<String>,
    },
}

impl WaitError {
    /// Evidence lines for a step failure.
    pub fn evidence(&self) -> Vec<String> {
        match self {
            WaitError::Timeout {
                last_state,
                watch_errors,
                ..
            } => std::iter::once(format!("last observed: {last_state}"))
                .chain(watch_errors.iter().map(|e| format!("watch error: {e}")))
                .collect(),
        }
    }
}

/// A condition that does not hold yet, with the state observed instead (in
/// words; a wait that times out reports the last one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotYet(pub String);

/// Whether the watched objects satisfy the condition: `Ok(summary)` when
/// they do, [`NotYet`] describing them when not yet.
pub type Check<K> = Box<dyn FnMut(&BTreeMap<String, K>) -> Result<String, NotYet> + Send>;

/// Watches `api` (narrowed by `config`) until `check` passes or `timeout`.
pub async fn watch_until<K>(
    api: Api<K>,
    config: watcher::Config,
    what: &str,
    timeout: Duration,
    mut check: Check<K>,
) -> Result<String, WaitError>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let started = Instant::now();
    let stream = watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut objects: BTreeMap<String, K> = BTreeMap::new();
    let mut listing: BTreeMap<String, K> = BTreeMap::new();
    let mut last_state = "nothing observed yet (no list answer from the API server)".to_string();
    let mut watch_errors: Vec<String> = Vec::new();
    loop {
        let event = tokio::select! {
            () = &mut deadline => {
                return Err(WaitError::Timeout {
                    what: what.to_string(),
                    waited: started.elapsed(),
                    last_state,
                    watch_errors,
                });
            }
            event = stream.next() => event,
        };
        let changed = match event {
            None => {
                // A watcher stream does not end by itself; if it does,
                // nothing more can be observed.
                return Err(WaitError::Timeout {
                    what: what.to_string(),
                    waited: started.elapsed(),
                    last_state: format!("{last_state} (the watch ended)"),
                    watch_errors,
                });
            }
            Some(Err(e)) => {
                if watch_errors.len() < 5 {
                    watch_errors.push(e.to_string());
                }
                false
            }
            Some(Ok(watcher::Event::Init)) => {
                listing.clear();
                false
            }
            Some(Ok(watcher::Event::InitApply(o))) => {
                listing.insert(key(&o), o);
                false
            }
            Some(Ok(watcher::Event::InitDone)) => {
                objects = std::mem::take(&mut listing);
                true
            }
            Some(Ok(watcher::Event::Apply(o))) => {
                objects.insert(key(&o), o);
                true
            }
            Some(Ok(watcher::Event::Delete(o))) => {
                objects.remove(&key(&o));
                true
            }
        };
        if changed {
            match check(&objects) {
                Ok(summary) => {
                    return Ok(format!(
                        "{summary} (after {} ms)",
                        started.elapsed().as_millis()
                    ));
                }
                Err(NotYet(state)) => last_state = state,
            }
        }
    }
}

fn key<K: Resource>(o: &K) -> String {
    format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any())
}

fn by_name(name: &str) -> watcher::Config {
    watcher::Config::default().fields(&format!("metadata.name={name}"))
}

/// Runs a scenario `wait` in `default_namespace` (unless it names one).
pub async fn run(
    client: &Client,
    default_namespace: &str,
    spec: &WaitSpec,
    timeout: Duration,
) -> Result<String, WaitError> {
    let ns = spec.namespace.as_deref().unwrap_or(default_namespace);
    match &spec.target {
        WaitTarget::RayCluster(name) => {
            let condition = spec.condition.unwrap_or(RayClusterCondition::Ready);
            ray_cluster(client, ns, name, condition, spec.ready_workers, timeout).await
        }
        WaitTarget::Deployment(name) => deployment_rolled_out(client, ns, name, timeout).await,
        WaitTarget::Pods(selector) => pods_ready(client, ns, selector, timeout).await,
        WaitTarget::Endpoints(name) => endpoints_populated(client, ns, name, timeout).await,
    }
}

/// Waits for a RayCluster condition (and at least `ready_workers` ready
/// workers, when given).
pub async fn ray_cluster(
    client: &Client,
    ns: &str,
    name: &str,
    condition: RayClusterCondition,
    ready_workers: Option<u32>,
    timeout: Duration,
) -> Result<String, WaitError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &raycluster::api_resource());
    let wanted = match condition {
        RayClusterCondition::Ready => "state ready".to_string(),
        RayClusterCondition::HeadPodReady => "condition HeadPodReady".to_string(),
        RayClusterCondition::RayClusterProvisioned => "condition RayClusterProvisioned".to_string(),
    };
    let wanted = match ready_workers {
        Some(n) => format!("{wanted} and {n} ready workers"),
        None => wanted,
    };
    let what = format!("RayCluster {ns}/{name}: {wanted}");
    let name_owned = name.to_string();
    let check: Check<DynamicObject> = Box::new(move |objects| {
        let Some(object) = objects.values().next() else {
            return Err(NotYet(format!("RayCluster {name_owned} does not exist")));
        };
        let status = RayClusterStatus::of(&object.data);
        let holds = match condition {
            RayClusterCondition::Ready => status.state == "ready",
            RayClusterCondition::HeadPodReady => status.condition_true("HeadPodReady"),
            RayClusterCondition::RayClusterProvisioned => {
                status.condition_true("RayClusterProvisioned")
            }
        };
        let workers_ok = ready_workers.is_none_or(|n| status.ready_worker_replicas >= i64::from(n));
        if holds && workers_ok {
            Ok(format!(
                "RayCluster {name_owned}: {wanted}: {}",
                status.describe()
            ))
        } else {
            Err(NotYet(status.describe()))
        }
    });
    watch_until(api, by_name(name), &what, timeout, check).await
}

/// The annotation the Deployment controller sets to the current revision,
/// on the Deployment and on each of its ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// Whether a Deployment's status shows its current spec rolled out, as
/// `kubectl rollout status` decides: `Ok(summary)` or `Err(state)`.
///
/// Rolled out means: the controller has observed the current generation
/// (and stamped a revision), every desired replica runs the current
/// template (`updatedReplicas >= replicas`), no replica of an older
/// template is counted any more (`status.replicas <= updatedReplicas`),
/// and every updated replica is available. `Available=True` alone is not
/// enough: with one replica and `maxUnavailable: 1` it holds with zero
/// pods in the middle of a rollout.
pub fn deployment_status_rolled_out(d: &Deployment) -> Result<String, NotYet> {
    let status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0);
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let revision = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION));
    let conditions: Vec<String> = status
        .conditions
        .iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={} ({})",
                c.type_,
                c.status,
                c.reason.clone().unwrap_or_default()
            )
        })
        .collect();
    let state = format!(
        "generation {generation} (observed {observed}), revision {}, replicas {desired} desired / {updated} updated / {total} total / {available} available, conditions=[{}]",
        revision.map_or("<none>", String::as_str),
        conditions.join(", ")
    );
    let waiting = if observed < generation {
        Some("the controller has not observed the current spec yet")
    } else if revision.is_none() {
        Some("no revision stamped yet")
    } else if updated < desired {
        Some("not every replica runs the current template yet")
    } else if total > updated {
        Some("replicas of an older template are still counted")
    } else if available < updated {
        Some("not every updated replica is available yet")
    } else {
        None
    };
    match waiting {
        None => Ok(state),
        Some(why) => Err(NotYet(format!("{why}: {state}"))),
    }
}

/// Waits until a Deployment is rolled out (see
/// [`deployment_status_rolled_out`]) and no pod of an older ReplicaSet is
/// left, terminating ones included: the status stops counting a pod once
/// it is terminating, while it may still serve (and hold its hostPorts).
pub async fn deployment_rolled_out(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<String, WaitError> {
    let started = Instant::now();
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let name_owned = name.to_string();
    let seen: std::sync::Arc<std::sync::Mutex<Option<Deployment>>> = Default::default();
    let seen_in_check = seen.clone();
    let check: Check<Deployment> = Box::new(move |objects| {
        let Some(d) = objects.values().next() else {
            return Err(NotYet(format!("Deployment {name_owned} does not exist")));
        };
        let summary = deployment_status_rolled_out(d)?;
        *seen_in_check.lock().expect("not poisoned") = Some(d.clone());
        Ok(summary)
    });
    let what = format!("Deployment {ns}/{name} rolled out");
    let summary = watch_until(api, by_name(name), &what, timeout, check).await?;
    let deployment = seen
        .lock()
        .expect("not poisoned")
        .take()
        .expect("set by the check that passed");
    let remaining = timeout.saturating_sub(started.elapsed());
    let old_pods = no_old_replica_set_pods(client, ns, &deployment, remaining).await?;
    Ok(format!(
        "Deployment {name} rolled out: {summary}; {old_pods}"
    ))
}

/// `k=v,...` from a Deployment's `matchLabels` (empty: every pod; owners
/// decide below anyway).
fn match_labels(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The names of `d`'s ReplicaSets of an older revision.
async fn old_replica_sets(
    client: &Client,
    ns: &str,
    d: &Deployment,
    selector: &str,
) -> Result<Vec<String>, kube::Error> {
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let revision = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .cloned();
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let list = api.list(&ListParams::default().labels(selector)).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
        .filter(|rs| {
            rs.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION_ANNOTATION))
                != revision.as_ref()
        })
        .map(|rs| rs.name_any())
        .collect())
}

async fn no_old_replica_set_pods(
    client: &Client,
    ns: &str,
    d: &Deployment,
    timeout: Duration,
) -> Result<String, WaitError> {
    let name = d.name_any();
    let what = format!("Deployment {ns}/{name}: no pod of an older ReplicaSet left");
    let selector = match_labels(d);
    let old = tokio::time::timeout(timeout, old_replica_sets(client, ns, d, &selector))
        .await
        .map_err(|_| format!("listing ReplicaSets took longer than {timeout:?}"))
        .and_then(|r| r.map_err(|e| format!("listing ReplicaSets: {e}")));
    let old = match old {
        Ok(old) => old,
        Err(problem) => {
            return Err(WaitError::Timeout {
                what,
                waited: timeout,
                last_state: problem,
                watch_errors: Vec::new(),
            });
        }
    };
    if old.is_empty() {
        return Ok("no older ReplicaSet".to_string());
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let old_in_check = old.clone();
    let check: Check<Pod> =
        Box::new(move |pods| {
            let left: Vec<String> =
                pods.values()
                    .filter_map(|p| {
                        let owner =
                            p.metadata.owner_references.iter().flatten().find(|o| {
                                o.kind == "ReplicaSet" && old_in_check.contains(&o.name)
                            })?;
                        let phase = p
                            .status
                            .as_ref()
                            .and_then(|s| s.phase.clone())
                            .unwrap_or_else(|| "Unknown".into());
                        let terminating = if p.metadata.deletion_timestamp.is_some() {
                            ", terminating"
                        } else {
                            ""
                        };
                        Some(format!(
                            "{} (ReplicaSet {}, {phase}{terminating})",
                            p.name_any(),
                            owner.name
                        ))
                    })
                    .collect();
            if left.is_empty() {
                Ok(format!(
                    "no pod left of older ReplicaSet(s) {}",
                    old_in_check.join(", ")
                ))
            } else {
                Err(NotYet(format!(
                    "pods of older ReplicaSets left: {}",
                    left.join("; ")
                )))
            }
        });
    let config = watcher::Config::default().labels(&selector);
    watch_until(api, config, &what, timeout, check).await
}

/// Waits until at least one pod matches `selector` and all matching pods
/// are Ready.
pub async fn pods_ready(
    client: &Client,
    ns: &str,
    selector: &str,
    timeout: Duration,
) -> Result<String, WaitError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector_owned = selector.to_string();
    let check: Check<Pod> = Box::new(move |objects| {
        if objects.is_empty() {
            return Err(NotYet(format!("no pod matches `{selector_owned}`")));
        }
        let states: Vec<(String, bool, String)> = objects
            .values()
            .map(|p| {
                let status = p.status.clone().unwrap_or_default();
                let ready = status
                    .conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                let phase = status.phase.unwrap_or_else(|| "Unknown".into());
                (p.name_any(), ready, phase)
            })
            .collect();
        let line = states
            .iter()
            .map(|(n, ready, phase)| format!("{n}: {phase}, ready={ready}"))
            .collect::<Vec<_>>()
            .join("; ");
        if states.iter().all(|(_, ready, _)| *ready) {
            Ok(format!(
                "{} pod(s) matching `{selector_owned}` Ready",
                states.len()
            ))
        } else {
            Err(NotYet(line))
        }
    });
    let what = format!("pods `{selector}` in {ns} Ready");
    let config = watcher::Config::default().labels(selector);
    watch_until(api, config, &what, timeout, check).await
}

/// Waits until an Endpoints object lists at least one ready address.
pub async fn endpoints_populated(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<String, WaitError> {
    let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let name_owned = name.to_string();
    let check: Check<Endpoints> = Box::new(move |objects| {
        let Some(e) = objects.values().next() else {
            return Err(NotYet(format!("Endpoints {name_owned} does not exist")));
        };
        let subsets = e.subsets.clone().unwrap_or_default();
        let ready: usize = subsets
            .iter()
            .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
            .sum();
        let not_ready: usize = subsets
            .iter()
            .map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len))
            .sum();
        let state = format!("{ready} ready address(es), {not_ready} not ready");
        if ready > 0 {
            Ok(format!("Endpoints {name_owned}: {state}"))
        } else {
            Err(NotYet(state))
        }
    });
    let what = format!("Endpoints {ns}/{name} populated");
    watch_until(api, by_name(name), &what, timeout, check).await
}
