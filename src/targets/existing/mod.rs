//! The `existing` target: any cluster from KUBECONFIG (and `--context`).
//! Nothing is created or deleted but each scenario's namespace and the
//! objects its steps create (installs are idempotent and left in place). Ingress addresses come from
//! `RAYCONFORM_INGRESS_HOST` (default `localhost`) with ports 80/443 and the
//! TCP service ports as the scenario declares them.

use crate::scenario::{Install, Scenario, TargetKind};
use crate::targets::TargetOptions;
use crate::targets::cluster::{
    ClusterAccess, install_sections, installs_unsupported, open_session, tcp_service_ports,
};
use crate::targets::{PlanError, ScenarioRun, Session, StepError, Target, TargetPlan};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::sync::Mutex;

/// Env var naming the host the cluster's ingress answers on.
pub const INGRESS_HOST_ENV: &str = "RAYCONFORM_INGRESS_HOST";

/// The existing-cluster target.
pub struct ExistingTarget {
    opts: TargetOptions,
    installed: Mutex<Vec<Install>>,
}

impl ExistingTarget {
    /// An existing-cluster target for `opts.kube_context`.
    pub fn new(opts: TargetOptions) -> ExistingTarget {
        ExistingTarget {
            opts,
            installed: Mutex::new(Vec::new()),
        }
    }
}

/// The kubeconfig file: the first of `KUBECONFIG`, else `~/.kube/config`.
pub fn kubeconfig_path() -> Option<PathBuf> {
    match std::env::var("KUBECONFIG") {
        Ok(v) if !v.is_empty() => v.split(':').find(|p| !p.is_empty()).map(PathBuf::from),
        _ => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config")),
    }
}

/// Variables for a cluster whose ingress answers on `host`.
pub fn variables(host: &str, installs: &[Install]) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    vars.insert("INGRESS_HOST".into(), host.to_string());
    vars.insert("INGRESS_HTTP".into(), format!("{host}:80"));
    vars.insert("INGRESS_HTTPS".into(), format!("{host}:443"));
    for port in tcp_service_ports(installs) {
        vars.insert(format!("INGRESS_TCP_{port}"), format!("{host}:{port}"));
    }
    vars.extend(crate::targets::cluster::variables::port_forward_placeholders(installs));
    vars
}

fn ingress_host() -> String {
    std::env::var(INGRESS_HOST_ENV).unwrap_or_else(|_| "localhost".into())
}

#[async_trait]
impl Target for ExistingTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Existing
    }

    fn unavailable_reason(&self) -> Option<String> {
        match kubeconfig_path() {
            Some(p) if p.is_file() => None,
            Some(p) => Some(format!(
                "no kubeconfig: {} does not exist (set KUBECONFIG)",
                p.display()
            )),
            None => Some("no kubeconfig: KUBECONFIG and HOME are unset".into()),
        }
    }

    fn unsupported_reason(&self, scenario: &Scenario, _project_root: &Path) -> Option<String> {
        // The cluster's version is unknown without asking it; only the
        // tools are checked here (an explicit --k8s-version is honoured).
        let version = self.opts.k8s_version.as_deref().unwrap_or("");
        installs_unsupported(&scenario.install, version)
    }

    fn plan(&self, scenario: &Scenario, _project_root: &Path) -> Result<TargetPlan, PlanError> {
        let mut sections = vec![(
            "existing cluster".to_string(),
            format!(
                "kubeconfig: {}\ncontext: {}\ncreates and deletes only the scenario namespace and the objects its steps create",
                kubeconfig_path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                self.opts.kube_context.as_deref().unwrap_or("<current>")
            ),
        )];
        sections.extend(install_sections(scenario, "${NAMESPACE}"));
        Ok(TargetPlan {
            variables: variables(&ingress_host(), &scenario.install),
            sections,
        })
    }

    async fn open(&self, run: &ScenarioRun) -> Result<Box<dyn Session>, StepError> {
        let kubeconfig = kubeconfig_path().ok_or_else(|| StepError::broken("no kubeconfig"))?;
        let context = self.opts.kube_context.clone();
        let client = crate::k8s::client::connect(Some(&kubeconfig), context.as_deref())
            .await
            .map_err(|e| StepError::broken_by("", e))?;
        let access = ClusterAccess {
            client,
            how_to_reach: format!(
                "cluster from {} (context {})",
                kubeconfig.display(),
                context.as_deref().unwrap_or("current")
            ),
            kubeconfig,
            context,
            node_selector: BTreeMap::new(),
            variables: variables(&ingress_host(), &run.scenario.install),
        };
        let session = open_session(access, run, &self.installed).await?;
        Ok(Box::new(session))
    }

    async fn shutdown(&self, _keep: bool) -> Vec<String> {
        Vec::new()
    }
}
