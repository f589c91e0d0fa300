//! The cluster session every cluster target (`kind`, `existing`, `k3s`)
//! shares: one scenario namespace, server-side apply, watch-based waits,
//! admission denial checks and diagnostics; at the end every object it
//! applied is deleted, last first, then the namespace ([`super::tracked`]).

use super::tracked::{Tracked, manifest_of};
use crate::install::component::PortForwardRequest;
use crate::k8s::apply::{Applier, ApplyError};
use crate::k8s::object::ObjectRef;
use crate::k8s::reach::{ForwardTo, PortForward};
use crate::k8s::{assert, logs, query};
use crate::k8s::{diagnostics, namespace, wait};
use crate::scenario::{AssertSpec, LogsSince, LogsSpec, ObjectSelector, WaitSpec};
use crate::targets::{Manifest, Observed, ScenarioRun, Session, StepError};
use async_trait::async_trait;
use kube::Client;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The variable holding the ingress node's `InternalIP`.
pub const INGRESS_NODE_IP: &str = "INGRESS_NODE_IP";

/// What a target decides about a session before opening it.
#[derive(Debug, Clone, Default)]
pub struct SessionSetup {
    /// Template variables (INGRESS_HOST, INGRESS_HTTP, ...); `NAMESPACE` is
    /// added by the session.
    pub variables: BTreeMap<String, String>,
    /// Labels for the scenario namespace (e.g. Istio injection).
    pub namespace_labels: BTreeMap<String, String>,
    /// How a person reaches the cluster (`--keep`).
    pub how_to_reach: String,
}

/// One scenario's namespace on a cluster.
pub struct ClusterSession {
    client: Client,
    applier: Applier,
    namespace: String,
    variables: BTreeMap<String, String>,
    how_to_reach: String,
    deletion_timeout: Duration,
    /// Every object applied and not deleted since (the namespace first).
    tracked: Tracked,
    closed: bool,
    /// When the session opened: where `logs` steps with `since: scenario`
    /// start reading.
    opened_at: SystemTime,
    /// Port-forwards the installs asked for, open until the session closes.
    forwards: Vec<PortForward>,
}

/// The namespace object for a scenario.
pub fn namespace_manifest(name: &str, labels: &BTreeMap<String, String>) -> Manifest {
    let mut all = labels.clone();
    all.insert("app.kubernetes.io/managed-by".into(), "rayconform".into());
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": all}
    })
}

/// The CA Secret KubeRay's TLS sample reads (`ca.crt`, `ca.key`).
pub fn ca_secret(namespace: &str, name: &str, ca_cert_pem: &str, ca_key_pem: &str) -> Manifest {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": {"ca.crt": ca_cert_pem, "ca.key": ca_key_pem}
    })
}

impl ClusterSession {
    /// Creates (or adopts) the scenario namespace and, when the run has
    /// certificates, the CA Secret in it. When the Secret cannot be made,
    /// the namespace is deleted again (unless `run.keep`) before the error
    /// is returned: nothing is left behind by a session that never opened.
    pub async fn open(
        client: Client,
        run: &ScenarioRun,
        setup: SessionSetup,
    ) -> Result<ClusterSession, StepError> {
        let ns = run.namespace.clone();
        let mut variables = setup.variables;
        variables.insert("NAMESPACE".into(), ns.clone());
        let mut session = ClusterSession {
            applier: Applier::new(client.clone()),
            client,
            namespace: ns.clone(),
            variables,
            how_to_reach: setup.how_to_reach,
            deletion_timeout: namespace::DELETION_TIMEOUT,
            tracked: Tracked::default(),
            closed: false,
            opened_at: SystemTime::now(),
            forwards: Vec::new(),
        };
        let created = session
            .applier
            .apply(1, &namespace_manifest(&ns, &setup.namespace_labels), &ns)
            .await
            .map_err(|e| StepError::broken_by(format!("creating namespace {ns}"), e))?;
        session.tracked.record(&created.object);
        if let Err(error) = session.create_ca_secret(run).await {
            let problems = session.close(run.keep).await;
            return Err(with_cleanup_problems(error, problems));
        }
        Ok(session)
    }

    /// The CA Secret KubeRay's TLS sample reads, when the run has
    /// certificates.
    async fn create_ca_secret(&mut self, run: &ScenarioRun) -> Result<(), StepError> {
        let (Some(certs), Some(spec)) = (&run.certificates, &run.scenario.certificates) else {
            return Ok(());
        };
        let authority = certs.get(&spec.ca).ok_or_else(|| {
            StepError::broken(format!("no generated authority named {}", spec.ca))
        })?;
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| StepError::broken_by(format!("reading {}", p.display()), e))
        };
        let secret = ca_secret(
            &self.namespace,
            &spec.ca,
            &read(&authority.ca_cert)?,
            &read(&authority.ca_key)?,
        );
        let created = self
            .applier
            .apply(1, &secret, &self.namespace)
            .await
            .map_err(|e| StepError::broken_by("creating the CA Secret", e))?;
        self.tracked.record(&created.object);
        Ok(())
    }

    /// Starts a loopback port-forward for each request (to a pod of the
    /// scenario namespace, looked up per connection) and publishes its
    /// address (`127.0.0.1:<port>`) as the request's template variable.
    pub async fn start_port_forwards(
        &mut self,
        requests: &[PortForwardRequest],
    ) -> Result<(), StepError> {
        for request in requests {
            let forward = PortForward::start_to(
                &self.client,
                &self.namespace,
                ForwardTo::Selected(request.label_selector.clone()),
                request.port,
            )
            .await
            .map_err(|e| StepError::broken_by(format!("port-forward {}", request.variable), e))?;
            self.variables
                .insert(request.variable.clone(), forward.local.to_string());
            self.forwards.push(forward);
        }
        Ok(())
    }

    /// Publishes `INGRESS_NODE_IP`: the `InternalIP` of the node the
    /// ingress controller is pinned to (`node_selector`, e.g. kind's
    /// `ingress-ready=true`). Nothing is published when no node matches or
    /// the nodes cannot be listed: only scenarios that use the variable
    /// need it, and they fail on it by name.
    pub async fn publish_ingress_node_ip(&mut self, node_selector: &BTreeMap<String, String>) {
        if node_selector.is_empty() {
            return;
        }
        let selector = node_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        if let Ok(Some(ip)) = crate::k8s::reach::node_internal_ip(&self.client, &selector).await {
            self.variables.insert(INGRESS_NODE_IP.to_string(), ip);
        }
    }

    /// How long [`Session::close`] waits for the namespace to be gone
    /// (default [`namespace::DELETION_TIMEOUT`]).
    pub fn with_deletion_timeout(mut self, timeout: Duration) -> ClusterSession {
        self.deletion_timeout = timeout;
        self
    }

    /// The client (for installs and probes that need the cluster).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The scenario namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

/// `error`, saying also what went wrong while cleaning up after it.
pub fn with_cleanup_problems(error: StepError, problems: Vec<String>) -> StepError {
    if problems.is_empty() {
        return error;
    }
    let also = format!("cleaning up after it also failed: {}", problems.join("; "));
    match error {
        StepError::Broken(mut broken) => {
            broken.context = if broken.context.is_empty() {
                format!("({also})")
            } else {
                format!("{} ({also})", broken.context)
            };
            StepError::Broken(broken)
        }
        StepError::Failed {
            message,
            mut evidence,
        } => {
            evidence.push(also);
            StepError::Failed { message, evidence }
        }
        unsupported => unsupported,
    }
}

fn step_error(e: ApplyError) -> StepError {
    match &e {
        ApplyError::Refused { .. } => StepError::Failed {
            message: e.to_string(),
            evidence: Vec::new(),
        },
        _ => StepError::broken_by("", e),
    }
}

fn summarize(verb: &str, objects: &[String]) -> String {
    match objects.len() {
        0 => format!("{verb} nothing"),
        1 => format!("{verb} {}", objects[0]),
        n => format!("{verb} {n} objects: {}", objects.join(", ")),
    }
}

#[async_trait]
impl Session for ClusterSession {
    fn variables(&self) -> BTreeMap<String, String> {
        self.variables.clone()
    }

    async fn apply(&mut self, manifests: &[Manifest]) -> Result<String, StepError> {
        let mut done = Vec::new();
        for (i, m) in manifests.iter().enumerate() {
            // Only what this session creates is its to delete: an object
            // that was there before (an IngressClass an install made, an
            // administrator's ClusterRole) is changed, never removed.
            let tracked = ObjectRef::of(m)
                .ok()
                .is_some_and(|o| self.tracked.contains_named(&o));
            let existed = !tracked
                && self
                    .applier
                    .exists(i + 1, m, &self.namespace)
                    .await
                    .map_err(step_error)?;
            let applied = self
                .applier
                .apply(i + 1, m, &self.namespace)
                .await
                .map_err(step_error)?;
            if !existed {
                self.tracked.record(&applied.object);
            }
            done.push(applied.object.to_string());
        }
        Ok(summarize("applied", &done))
    }

    async fn delete(&mut self, manifests: &[Manifest]) -> Result<String, StepError> {
        let mut done = Vec::new();
        // Reverse order: dependants before what they depend on.
        for (i, m) in manifests.iter().enumerate().rev() {
            let deleted = self
                .applier
                .delete(i + 1, m, &self.namespace)
                .await
                .map_err(step_error)?;
            self.tracked.forget(&deleted.object);
            done.push(deleted.object.to_string());
        }
        Ok(summarize("deleted", &done))
    }

    async fn wait(&mut self, spec: &WaitSpec, timeout: Duration) -> Result<String, StepError> {
        wait::run(&self.client, &self.namespace, spec, timeout)
            .await
            .map_err(|e| StepError::Failed {
                message: e.to_string(),
                evidence: e.evidence(),
            })
    }

    async fn expect_denied(
        &mut self,
        manifests: &[Manifest],
        message_contains: &str,
    ) -> Result<String, StepError> {
        let mut accepted = Vec::new();
        for (i, m) in manifests.iter().enumerate() {
            match self.applier.apply(i + 1, m, &self.namespace).await {
                Ok(applied) => {
                    self.tracked.record(&applied.object);
                    accepted.push((i, applied.object.to_string()));
                }
                Err(ApplyError::Refused {
                    object,
                    code,
                    message,
                    ..
                }) => {
                    // Whatever got in before the refusal is not wanted.
                    self.delete_accepted(manifests, &accepted).await;
                    return if message.contains(message_contains) {
                        Ok(format!("{object} refused ({code}) as expected: {message}"))
                    } else {
                        Err(StepError::Failed {
                            message: format!(
                                "{object} was refused, but the message does not contain {message_contains:?}"
                            ),
                            evidence: vec![format!("refusal ({code}): {message}")],
                        })
                    };
                }
                Err(other) => return Err(StepError::broken_by("", other)),
            }
        }
        self.delete_accepted(manifests, &accepted).await;
        Err(StepError::Failed {
            message: format!(
                "expected a refusal containing {message_contains:?}, but every object was accepted"
            ),
            evidence: accepted
                .into_iter()
                .map(|(_, o)| format!("accepted (then deleted): {o}"))
                .collect(),
        })
    }

    async fn collect_diagnostics(&mut self, dir: &Path) -> Vec<PathBuf> {
        diagnostics::collect(&self.client, &self.namespace, dir).await
    }

    async fn assert(
        &mut self,
        spec: &AssertSpec,
        timeout: Duration,
    ) -> Result<Observed, StepError> {
        match assert::run(&self.client, &self.namespace, spec, timeout).await {
            Ok(judgement) => Ok(Observed {
                summary: judgement.summary,
                evidence: judgement.evidence,
            }),
            Err(assert::AssertError::TimedOut { waited, last }) => Err(StepError::Failed {
                message: format!(
                    "timed out after {:.1}s waiting for {}: {}",
                    waited.as_secs_f64(),
                    spec.object,
                    last.summary
                ),
                evidence: std::iter::once("last observed:".to_string())
                    .chain(last.evidence)
                    .collect(),
            }),
            Err(e) => Err(StepError::broken_by("assert", e)),
        }
    }

    async fn logs(&mut self, spec: &LogsSpec, timeout: Duration) -> Result<Observed, StepError> {
        let wanted = spec
            .line_match()
            .map_err(|e| StepError::broken_by("logs", e))?;
        let since = match spec.since {
            LogsSince::Scenario => self.opened_at,
            LogsSince::Step => SystemTime::now(),
        };
        match logs::run(
            &self.client,
            &self.namespace,
            &spec.pods,
            spec.container.as_deref(),
            &wanted,
            since,
            timeout,
        )
        .await
        {
            Ok(found) => Ok(Observed {
                summary: format!("{} logged {wanted}", found.pod),
                evidence: vec![format!("{}: {}", found.pod, found.line)],
            }),
            Err(e @ logs::LogsError::TimedOut { .. }) => {
                let logs::LogsError::TimedOut { ref last, .. } = e;
                Err(StepError::Failed {
                    message: e.to_string(),
                    evidence: std::iter::once("last read:".to_string())
                        .chain(last.lines.iter().cloned())
                        .collect(),
                })
            }
        }
    }

    async fn delete_selected(&mut self, selector: &ObjectSelector) -> Result<String, StepError> {
        let deleted = query::delete(&self.client, selector, &self.namespace)
            .await
            .map_err(|e| StepError::broken_by("delete", e))?;
        for object in &deleted {
            self.tracked.forget(object);
        }
        let names: Vec<String> = deleted.iter().map(ToString::to_string).collect();
        Ok(summarize("deleted", &names))
    }

    fn how_to_reach(&self) -> String {
        format!(
            "{}; scenario namespace: {}",
            self.how_to_reach, self.namespace
        )
    }

    /// Deletes every object the session applied, last first (cluster-scoped
    /// ones included: deleting the namespace would not take them), then
    /// the scenario namespace, and waits until it is gone, so the next
    /// scenario never meets its objects (an Ingress with the same host and
    /// path is refused by ingress-nginx's webhook while this one
    /// terminates). Past the bound, the problems name what is left.
    async fn close(&mut self, keep: bool) -> Vec<String> {
        self.forwards.clear();
        if keep || self.closed {
            return Vec::new();
        }
        self.closed = true;
        let the_namespace = namespace_ref(&self.namespace);
        let objects: Vec<ObjectRef> = self
            .tracked
            .in_reverse()
            .filter(|o| **o != the_namespace)
            .cloned()
            .collect();
        let mut problems = Vec::new();
        for object in &objects {
            if let Err(e) = self
                .applier
                .delete(1, &manifest_of(object), &self.namespace)
                .await
            {
                problems.push(format!("cleanup could not delete {e}"));
            }
        }
        self.tracked.clear();
        if let Err(left) =
            namespace::delete_and_wait(&self.client, &self.namespace, self.deletion_timeout).await
        {
            problems.extend(left);
        }
        problems
    }
}

impl ClusterSession {
    /// Deletes the objects `expect_denied` let in (they are not wanted).
    async fn delete_accepted(&mut self, manifests: &[Manifest], accepted: &[(usize, String)]) {
        for (j, _) in accepted {
            if let Ok(deleted) = self
                .applier
                .delete(j + 1, &manifests[*j], &self.namespace)
                .await
            {
                self.tracked.forget(&deleted.object);
            }
        }
    }
}

/// The scenario namespace as the applier names it.
fn namespace_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: name.to_string(),
    }
}
