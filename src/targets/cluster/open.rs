//! Opening a scenario session on a cluster, whatever target obtained it:
//! the namespace (and CA Secret), then the scenario's installs. A target
//! (`kind`, `existing`, `k3s`) only says how the cluster is reached.

use super::session::{ClusterSession, SessionSetup, with_cleanup_problems};
use crate::install::{self, InstallContext};
use crate::scenario::Install;
use crate::targets::{ScenarioRun, Session, StepError};
use kube::Client;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tokio::sync::Mutex;

/// How a target reaches its cluster, and what it tells the scenario.
#[derive(Clone)]
pub struct ClusterAccess {
    /// A client for the API server.
    pub client: Client,
    /// The kubeconfig file (helm and istioctl read it).
    pub kubeconfig: PathBuf,
    /// The kube context within it, when not the current one.
    pub context: Option<String>,
    /// Labels of the node(s) the ingress controller must run on (the one
    /// whose ports reach the host); empty to let the scheduler choose.
    pub node_selector: BTreeMap<String, String>,
    /// Template variables (INGRESS_HOST, INGRESS_HTTP, ...).
    pub variables: BTreeMap<String, String>,
    /// How a person reaches the cluster (`--keep`).
    pub how_to_reach: String,
}

/// Opens the scenario's session on the cluster `access` reaches: its
/// namespace, then the installs it asks for (serialized through
/// `installed`, what is on the cluster already). When an install fails the
/// session is closed (its namespace would otherwise leak) before the error
/// is returned.
pub async fn open_session(
    access: ClusterAccess,
    run: &ScenarioRun,
    installed: &Mutex<Vec<Install>>,
) -> Result<ClusterSession, StepError> {
    let setup = SessionSetup {
        variables: access.variables,
        namespace_labels: install::namespace_labels(&run.scenario.install),
        how_to_reach: access.how_to_reach,
    };
    let mut session = ClusterSession::open(access.client.clone(), run, setup).await?;
    if let Err(e) = session
        .start_port_forwards(&install::port_forwards(&run.scenario.install))
        .await
    {
        let problems = session.close(run.keep).await;
        return Err(with_cleanup_problems(e, problems));
    }
    session.publish_ingress_node_ip(&access.node_selector).await;
    let ctx = InstallContext {
        client: access.client,
        kubeconfig: access.kubeconfig,
        context: access.context,
        namespace: run.namespace.clone(),
        progress: run.progress.clone(),
        node_selector: access.node_selector,
    };
    let result = {
        let mut installed = installed.lock().await;
        install::install_all(&run.scenario.install, &ctx, &mut installed).await
    };
    match result {
        Ok(lines) => {
            for line in lines {
                (run.progress)(&line);
            }
            Ok(session)
        }
        Err(e) => {
            let problems = session.close(run.keep).await;
            Err(with_cleanup_problems(
                StepError::broken_by("install failed", e),
                problems,
            ))
        }
    }
}
