//! Reaching workloads from the harness: through a port-forward (kube's
//! websocket port-forward behind a loopback listener), or from inside the
//! cluster through a probe pod the harness execs commands in (for mesh and
//! non-mesh mTLS checks: a pod with or without an istio-proxy sidecar).

use super::diagnostics::{RequestError, exec_output};
use super::wait;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Why a workload could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    /// The local listener could not be opened.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(std::io::Error),
    /// The probe pod could not be created or did not become ready.
    #[error("probe pod {name}: {reason}")]
    ProbePod {
        /// Pod name.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// Which pod a port-forward reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardTo {
    /// The pod of this name.
    Pod(String),
    /// A running pod matching this label selector, looked up for each
    /// connection (so a recreated pod is followed).
    Selected(String),
}

/// A port-forward to one pod port, served on a loopback port until dropped.
pub struct PortForward {
    /// Where to connect locally (`127.0.0.1:<free port>`).
    pub local: SocketAddr,
    task: JoinHandle<()>,
}

impl PortForward {
    /// Forwards `127.0.0.1:<free port>` to `pod:port` in `ns`. Each local
    /// connection opens its own port-forward stream.
    pub async fn start(
        client: &Client,
        ns: &str,
        pod: &str,
        port: u16,
    ) -> Result<Self, ReachError> {
        Self::start_to(client, ns, ForwardTo::Pod(pod.to_string()), port).await
    }

    /// Forwards `127.0.0.1:<free port>` to `port` of the pod `to` names in
    /// `ns`. The pod need not exist yet: each local connection looks it up
    /// and opens its own stream; a connection with no pod to reach is
    /// closed.
    pub async fn start_to(
        client: &Client,
        ns: &str,
        to: ForwardTo,
        port: u16,
    ) -> Result<Self, ReachError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ReachError::Listen)?;
        let local = listener.local_addr().map_err(ReachError::Listen)?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let pods = pods.clone();
                let to = to.clone();
                tokio::spawn(async move {
                    let Some(pod) = pod_to_reach(&pods, &to).await else {
                        return;
                    };
                    let Ok(mut forwarder) = pods.portforward(&pod, &[port]).await else {
                        return;
                    };
                    if let Some(mut upstream) = forwarder.take_stream(port) {
                        let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                    }
                    drop(forwarder);
                });
            }
        });
        Ok(PortForward { local, task })
    }
}

/// The pod a connection goes to: the named one, or the first running,
/// not-terminating pod the selector matches (by name, for a stable choice).
async fn pod_to_reach(pods: &Api<Pod>, to: &ForwardTo) -> Option<String> {
    match to {
        ForwardTo::Pod(name) => Some(name.clone()),
        ForwardTo::Selected(selector) => {
            let listed = pods
                .list(&kube::api::ListParams::default().labels(selector))
                .await
                .ok()?;
            let mut running: Vec<String> = listed
                .items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .filter_map(|p| p.metadata.name)
                .collect();
            running.sort();
            running.into_iter().next()
        }
    }
}

/// The `InternalIP` of the first node (by name) carrying every label of
/// `selector` (`key=value,...`), or `None` when no node matches.
pub async fn node_internal_ip(
    client: &Client,
    selector: &str,
) -> Result<Option<String>, kube::Error> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let mut listed = nodes
        .list(&kube::api::ListParams::default().labels(selector))
        .await?
        .items;
    listed.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(listed.into_iter().find_map(|node| {
        node.status?
            .addresses?
            .into_iter()
            .find(|a| a.type_ == "InternalIP")
            .map(|a| a.address)
    }))
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A long-running pod in the scenario namespace to run probes from.
pub struct ProbePod {
    client: Client,
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
}

/// The probe pod's image: curl and openssl are what in-cluster checks need.
pub const PROBE_IMAGE: &str = "curlimages/curl:8.11.1";

impl ProbePod {
    /// The pod manifest: a sleeping container; `sidecar` decides whether
    /// Istio may inject its proxy (`sidecar.istio.io/inject`).
    pub fn manifest(ns: &str, name: &str, sidecar: bool) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {"app.kubernetes.io/name": "rayconform-probe", "rayconform.dev/probe": name},
                "annotations": {"sidecar.istio.io/inject": if sidecar { "true" } else { "false" }}
            },
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "probe",
                    "image": PROBE_IMAGE,
                    "command": ["sleep", "86400"]
                }]
            }
        })
    }

    /// Creates the pod (server-side apply) and waits until it is Ready.
    pub async fn launch(
        client: &Client,
        ns: &str,
        name: &str,
        sidecar: bool,
        timeout: Duration,
    ) -> Result<ProbePod, ReachError> {
        let fail = |reason: String| ReachError::ProbePod {
            name: name.to_string(),
            reason,
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let params = PatchParams::apply(super::apply::FIELD_MANAGER).force();
        pods.patch(
            name,
            &params,
            &Patch::Apply(Self::manifest(ns, name, sidecar)),
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
        let selector = format!("rayconform.dev/probe={name}");
        wait::pods_ready(client, ns, &selector, timeout)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(ProbePod {
            client: client.clone(),
            namespace: ns.to_string(),
            name: name.to_string(),
        })
    }

    /// Runs `argv` in the probe container; returns its stdout.
    pub async fn exec(&self, argv: &[&str]) -> Result<String, RequestError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        exec_output(&pods, &self.name, "probe", argv).await
    }

    /// Deletes the pod.
    pub async fn remove(self) -> Result<(), kube::Error> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        match pods.delete(&self.name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}
