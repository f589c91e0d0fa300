//! The `k3s` target: a k3s cluster in a container started through
//! testcontainers ([`cluster`]), one pinned image per Kubernetes version
//! ([`versions`]), then the same cluster session, installs and scenarios
//! as kind ([`crate::targets::cluster`]). It runs the scenarios that list
//! `kind`: the same single-host cluster with its ingress ports mapped.
//!
//! Clusters are shared by the scenarios of a run that need the same raw
//! TCP ports (those must be mapped when the container starts), and removed
//! at shutdown unless `--keep`. Needs only a Docker engine (its socket),
//! no `docker`, `kind` or `k3d` binary.

pub mod cluster;
pub mod versions;

use crate::scenario::{Scenario, TargetKind};
use crate::targets::TargetOptions;
use crate::targets::cluster::{
    ClusterAccess, install_sections, installs_unsupported, mapped_port_variables, open_session,
    tcp_service_ports,
};
use crate::targets::{PlanError, ScenarioRun, Session, StepError, Target, TargetPlan};
use async_trait::async_trait;
use cluster::K3sCluster;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Mutex;

/// The k3s target.
pub struct K3sTarget {
    opts: TargetOptions,
    /// Running clusters by the container ports they map.
    clusters: Mutex<BTreeMap<Vec<u16>, Arc<K3sCluster>>>,
}

impl K3sTarget {
    /// A k3s target; nothing is started yet.
    pub fn new(opts: TargetOptions) -> K3sTarget {
        K3sTarget {
            opts,
            clusters: Mutex::new(BTreeMap::new()),
        }
    }

    fn image(&self, asked: Option<&str>) -> Result<versions::K3sImage, versions::UnknownVersion> {
        versions::image_for(
            asked
                .or(self.opts.k8s_version.as_deref())
                .unwrap_or(versions::DEFAULT_VERSION),
        )
    }

    /// The cluster for `ports`, started on first use.
    async fn cluster(
        &self,
        image: versions::K3sImage,
        ports: Vec<u16>,
        run: &ScenarioRun,
    ) -> Result<Arc<K3sCluster>, StepError> {
        let mut clusters = self.clusters.lock().await;
        if let Some(found) = clusters.get(&ports) {
            return Ok(found.clone());
        }
        (run.progress)(&format!(
            "starting k3s {} (ports {ports:?})",
            image.reference()
        ));
        // Not the scenario's work dir: the cluster outlives the scenario.
        let started = K3sCluster::start(image, &ports, &kubeconfigs_dir())
            .await
            .map_err(|e| StepError::broken_by("k3s cluster", e))?;
        let started = Arc::new(started);
        clusters.insert(ports, started.clone());
        Ok(started)
    }
}

/// `$XDG_CACHE_HOME/rayconform/k3s` (or `~/.cache/...`, else the temp
/// dir): the kubeconfigs of the running k3s clusters, by container id.
fn kubeconfigs_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("rayconform")
        .join("k3s")
}

/// Container ports a scenario needs mapped: 80, 443 and its raw TCP ports.
pub fn ingress_ports(scenario: &Scenario) -> Vec<u16> {
    let mut ports = vec![80, 443];
    ports.extend(tcp_service_ports(&scenario.install));
    // The apiserver's NodePort, published as KUBERAY_APISERVER.
    if scenario
        .install
        .iter()
        .any(|i| i.component().name() == "kuberayApiserver")
    {
        ports.push(crate::install::kuberay_apiserver::NODE_PORT);
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Why no Docker engine can be reached. testcontainers talks to the
/// engine's socket itself, so unlike kind no `docker` CLI is needed.
pub fn docker_engine_reason() -> Option<String> {
    crate::tools::missing_docker_socket().map(|socket| {
        format!(
            "no Docker engine: socket {} not found (k3s runs in a container)",
            socket.display()
        )
    })
}

#[async_trait]
impl Target for K3sTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::K3s
    }

    fn unavailable_reason(&self) -> Option<String> {
        docker_engine_reason()
    }

    fn unsupported_reason(&self, scenario: &Scenario, _project_root: &Path) -> Option<String> {
        // An unknown version is a usage error, reported by `open`.
        let image = self.image(None).ok()?;
        installs_unsupported(&scenario.install, image.minor())
            .or_else(|| names_kind_nodes(scenario))
    }

    fn plan(&self, scenario: &Scenario, _project_root: &Path) -> Result<TargetPlan, PlanError> {
        let image = self
            .image(None)
            .map_err(|e| PlanError::Unresolved(e.to_string()))?;
        let ports = ingress_ports(scenario);
        let shown: Vec<String> = ports.iter().map(u16::to_string).collect();
        let placeholders: BTreeMap<u16, u16> = BTreeMap::new();
        let mut variables = mapped_port_variables(&placeholders, &scenario.install);
        for port in &ports {
            let name = match port {
                80 => "INGRESS_HTTP".to_string(),
                443 => "INGRESS_HTTPS".to_string(),
                p => format!("INGRESS_TCP_{p}"),
            };
            variables.insert(name, "localhost:<free host port chosen at run time>".into());
        }
        let mut sections = vec![(
            "k3s cluster".to_string(),
            format!(
                "image: {} (Kubernetes {}; pinned by tag: {})\ncommand: {}\nprivileged, host cgroup namespace and user namespace (k3s needs a writable cgroup tree on cgroup v2)\ncontainer ports {} mapped to free host ports; kubeconfig read from {} (a mounted folder) with its server rewritten to the mapped API port\nshared by the run's scenarios that map the same ports; removed at the end, unless --keep\npinned images:\n{}",
                image.reference(),
                image.version,
                image.source,
                cluster::server_args().join(" "),
                shown.join(", "),
                cluster::KUBECONFIG_IN_CONTAINER,
                versions::images_table(),
            ),
        )];
        sections.extend(install_sections(scenario, "${NAMESPACE}"));
        Ok(TargetPlan {
            variables,
            sections,
        })
    }

    async fn open(&self, run: &ScenarioRun) -> Result<Box<dyn Session>, StepError> {
        let image = self
            .image(None)
            .map_err(|e| StepError::broken_by("--k8s-version", e))?;
        let cluster = self
            .cluster(image, ingress_ports(&run.scenario), run)
            .await?;
        let client = crate::k8s::client::connect(Some(&cluster.kubeconfig), None)
            .await
            .map_err(|e| StepError::broken_by("", e))?;
        let access = ClusterAccess {
            client,
            kubeconfig: cluster.kubeconfig.clone(),
            context: None,
            node_selector: BTreeMap::new(),
            variables: mapped_port_variables(&cluster.host_ports, &run.scenario.install),
            how_to_reach: format!(
                "k3s container {id} ({image}): kubectl --kubeconfig {kubeconfig} ...; remove with `docker rm -f {id}`",
                id = cluster.container_id,
                image = cluster.image.reference(),
                kubeconfig = cluster.kubeconfig.display(),
            ),
        };
        let session = open_session(access, run, &cluster.installed).await?;
        Ok(Box::new(session))
    }

    async fn shutdown(&self, keep: bool) -> Vec<String> {
        let clusters = std::mem::take(&mut *self.clusters.lock().await);
        let mut problems = Vec::new();
        for cluster in clusters.into_values() {
            problems.extend(cluster.stop(keep).await);
        }
        problems
    }
}

/// Why a scenario that names kind's nodes cannot run on k3s: it checks
/// where pods land by node name (`${CLUSTER_NAME}-control-plane`,
/// `${CLUSTER_NAME}-worker`), and k3s runs one node named by k3s.
pub fn names_kind_nodes(scenario: &Scenario) -> Option<String> {
    let steps = serde_json::to_string(&scenario.steps).ok()?;
    steps.contains("${CLUSTER_NAME}").then(|| {
        "k3s runs a single node: this scenario checks kind's nodes by name (${CLUSTER_NAME}-...)"
            .to_string()
    })
}
