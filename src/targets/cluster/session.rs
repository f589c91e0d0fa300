//! The cluster session shared by the `kind` and `existing` targets: one
//! scenario namespace, server-side apply, watch-based waits, admission
//! denial checks and diagnostics, cleaned up at the end.

use crate::k8s::apply::{Applier, ApplyError};
use crate::k8s::{diagnostics, namespace, wait};
use crate::scenario::WaitSpec;
use crate::targets::{Manifest, ScenarioRun, Session, StepError};
use async_trait::async_trait;
use kube::Client;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    closed: bool,
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
    /// certificates, the CA Secret in it.
    pub async fn open(
        client: Client,
        run: &ScenarioRun,
        setup: SessionSetup,
    ) -> Result<ClusterSession, StepError> {
        let mut applier = Applier::new(client.clone());
        let ns = run.namespace.clone();
        applier
            .apply(1, &namespace_manifest(&ns, &setup.namespace_labels), &ns)
            .await
            .map_err(|e| StepError::broken(format!("creating namespace {ns}: {e}")))?;
        if let Some(certs) = &run.certificates
            && let Some(spec) = &run.scenario.certificates
        {
            let authority = certs.get(&spec.ca).ok_or_else(|| {
                StepError::broken(format!("no generated authority named {}", spec.ca))
            })?;
            let read = |p: &Path| {
                std::fs::read_to_string(p)
                    .map_err(|e| StepError::broken(format!("reading {}: {e}", p.display())))
            };
            let secret = ca_secret(
                &ns,
                &spec.ca,
                &read(&authority.ca_cert)?,
                &read(&authority.ca_key)?,
            );
            applier
                .apply(1, &secret, &ns)
                .await
                .map_err(|e| StepError::broken(format!("creating the CA Secret: {e}")))?;
        }
        let mut variables = setup.variables;
        variables.insert("NAMESPACE".into(), ns.clone());
        Ok(ClusterSession {
            client,
            applier,
            namespace: ns,
            variables,
            how_to_reach: setup.how_to_reach,
            deletion_timeout: namespace::DELETION_TIMEOUT,
            closed: false,
        })
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

fn step_error(e: ApplyError) -> StepError {
    match &e {
        ApplyError::Refused { .. } => StepError::Failed {
            message: e.to_string(),
            evidence: Vec::new(),
        },
        _ => StepError::broken(e.to_string()),
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
            let applied = self
                .applier
                .apply(i + 1, m, &self.namespace)
                .await
                .map_err(step_error)?;
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
                Ok(applied) => accepted.push((i, applied.object.to_string())),
                Err(ApplyError::Refused {
                    object,
                    code,
                    message,
                    ..
                }) => {
                    // Whatever got in before the refusal is not wanted.
                    for (j, _) in &accepted {
                        let _ = self
                            .applier
                            .delete(j + 1, &manifests[*j], &self.namespace)
                            .await;
                    }
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
        for (j, _) in &accepted {
            let _ = self
                .applier
                .delete(j + 1, &manifests[*j], &self.namespace)
                .await;
        }
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

    fn how_to_reach(&self) -> String {
        format!(
            "{}; scenario namespace: {}",
            self.how_to_reach, self.namespace
        )
    }

    /// Deletes the scenario namespace and waits until it is gone, so the
    /// next scenario never meets its objects (an Ingress with the same
    /// host and path is refused by ingress-nginx's webhook while this one
    /// terminates). Past the bound, the problems name what is left.
    async fn close(&mut self, keep: bool) -> Vec<String> {
        if keep || self.closed {
            return Vec::new();
        }
        self.closed = true;
        match namespace::delete_and_wait(&self.client, &self.namespace, self.deletion_timeout).await
        {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        }
    }
}
