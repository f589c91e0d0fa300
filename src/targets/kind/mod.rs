//! The `kind` target: creates (or reuses) a kind cluster per rendered kind
//! config, installs the scenario's components, and runs the scenario in its
//! own namespace through [`crate::targets::cluster::ClusterSession`].
//!
//! Reuse: the cluster name carries the hash of the rendered config
//! (`rayconform-<hash>`), so a cluster of that name was made from exactly
//! this config; the rendered YAML is also kept next to it in
//! `$XDG_CACHE_HOME/rayconform/kind/<name>.yaml` for people to read.
//! Clusters this run created are deleted at shutdown unless `--keep`;
//! reused clusters (left by an earlier `--keep`) are left alone.
//!
//! Host ports: kind publishes them on 0.0.0.0, so clusters that map the
//! same host port never exist at once ([`pool`]); scenarios run grouped by
//! cluster ([`groups`]) so each cluster is created once.

pub mod config;
pub mod driver;
pub mod error;
pub mod groups;
pub mod pool;
pub mod render;
pub mod versions;

use crate::scenario::{Scenario, TargetKind, WaitSpec};
use crate::targets::TargetOptions;
use crate::targets::cluster::{
    ClusterAccess, ClusterSession, install_sections, installs_unsupported, mapped_port_variables,
    open_session,
};
use crate::targets::{Manifest, PlanError, ScenarioRun, Session, StepError, Target, TargetPlan};
use crate::tools::{self, KIND};
use async_trait::async_trait;
use error::KindError;
pub use pool::ClusterLease;
use pool::ClusterPool;
pub use pool::cluster_name;
use render::RenderedConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The kind target.
pub struct KindTarget {
    opts: TargetOptions,
    tools: OnceLock<Option<String>>,
    release: OnceLock<Option<String>>,
    pool: ClusterPool,
}

impl KindTarget {
    /// A kind target; nothing is looked up or started yet.
    pub fn new(opts: TargetOptions) -> KindTarget {
        KindTarget {
            opts,
            tools: OnceLock::new(),
            release: OnceLock::new(),
            pool: ClusterPool::new(),
        }
    }

    fn k8s_version<'a>(&'a self, asked: Option<&'a str>) -> &'a str {
        asked
            .or(self.opts.k8s_version.as_deref())
            .unwrap_or(versions::DEFAULT_VERSION)
    }

    /// The release of the kind on PATH (`v0.33.0`), asked once; `None`
    /// without kind.
    fn kind_release(&self) -> Option<&str> {
        self.release
            .get_or_init(|| {
                let path = KIND.find().ok()?;
                driver::release_blocking(&path, Duration::from_secs(10)).ok()
            })
            .as_deref()
    }

    /// The node image for the asked (or default) version: for a minor, the
    /// one built for the kind on PATH when there is one.
    pub fn node_image(&self, asked: Option<&str>) -> Result<versions::NodeImage, KindError> {
        Ok(versions::node_image_for(
            self.k8s_version(asked),
            self.kind_release(),
        )?)
    }

    /// Why the kind on PATH cannot boot the node image of the chosen
    /// version (node images only work with the kind release that built them).
    fn kind_release_reason(&self) -> Option<String> {
        let image = self.node_image(None).ok()?;
        let path = KIND.find().ok()?;
        match driver::release_blocking(&path, Duration::from_secs(10)) {
            Ok(release) if release == image.kind_release => None,
            Ok(release) => {
                let here = versions::versions_for_release(&release);
                let offer = if here.is_empty() {
                    format!("rayconform has no node image for kind {release}")
                } else {
                    format!("images for kind {release}: {}", here.join(", "))
                };
                Some(format!(
                    "kind {release} is on PATH, but the node image for Kubernetes {} needs kind {}: install that release ({offer})",
                    image.version, image.kind_release
                ))
            }
            Err(e) => Some(e.to_string()),
        }
    }

    fn rendered(
        &self,
        scenario: &Scenario,
        root: &Path,
        k8s: Option<&str>,
    ) -> Result<RenderedConfig, KindError> {
        render::render(scenario, root, self.node_image(k8s)?)
    }

    /// Scenarios grouped by the cluster they run on, in run order (see
    /// [`groups`]), with why each would be skipped here, if it would.
    pub fn cluster_groups(&self, scenarios: &[Scenario]) -> Result<groups::Grouping, KindError> {
        let image = self.node_image(None)?;
        let skip = |s: &Scenario| self.unsupported_reason(s, &self.opts.project_root);
        Ok(groups::cluster_groups(
            scenarios,
            &self.opts.project_root,
            image,
            &skip,
        ))
    }

    /// A lease on the cluster `scenario` runs on (created, or reused, after
    /// clusters sharing its host ports are gone): what `open` does before
    /// the namespace and installs.
    pub async fn acquire_cluster(
        &self,
        scenario: &Scenario,
        k8s_version: Option<&str>,
        keep: bool,
        progress: &crate::targets::ProgressFn,
    ) -> Result<ClusterLease, StepError> {
        let rendered = self
            .rendered(scenario, &self.opts.project_root, k8s_version)
            .map_err(|e| StepError::broken_by("", e))?;
        self.pool.acquire(&rendered, keep, progress).await
    }

    /// `scenarios` in the order a kind run takes them: one cluster's
    /// scenarios after another's.
    pub fn run_order(&self, scenarios: Vec<Scenario>) -> Vec<Scenario> {
        match self.node_image(None) {
            Ok(image) => groups::run_order(scenarios, &self.opts.project_root, image),
            Err(_) => scenarios,
        }
    }
}

/// `scenarios` in kind's run order (one cluster group after another) when
/// the run is on kind; unchanged otherwise.
pub fn run_order_for(
    target: TargetKind,
    opts: &TargetOptions,
    scenarios: Vec<Scenario>,
) -> Vec<Scenario> {
    if target == TargetKind::Kind {
        KindTarget::new(opts.clone()).run_order(scenarios)
    } else {
        scenarios
    }
}

/// The per-cluster overview `plan --target kind` prints (host ports and
/// scenarios per cluster); `None` on other targets.
pub fn plan_overview(
    target: TargetKind,
    opts: &TargetOptions,
    scenarios: &[Scenario],
) -> Option<String> {
    if target != TargetKind::Kind {
        return None;
    }
    let kind = KindTarget::new(opts.clone());
    Some(match kind.cluster_groups(scenarios) {
        Ok(grouping) => {
            let mut text = groups::Overview(&grouping.groups).to_string();
            if let Some(why) = kind.unavailable_reason() {
                text.push_str(&format!(
                    "(target `kind` is unavailable on this machine, so every scenario would be skipped here: {why})\n"
                ));
            }
            text.push_str(&format!(
                "node images (each works with the kind release that built it):\n{}\n",
                versions::images_table()
            ));
            for (scenario, e) in grouping.unrendered {
                text.push_str(&format!("{scenario}: kind config does not render: {e}\n"));
            }
            text
        }
        Err(e) => format!("=== kind clusters: {e}\n"),
    })
}

/// `$XDG_CACHE_HOME/rayconform/kind` (or `~/.cache/...`): the rendered
/// config of every cluster rayconform made, by cluster name.
fn remembered_configs_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|b| b.join("rayconform").join("kind"))
}

fn remember_config(name: &str, yaml: &str) {
    if let Some(dir) = remembered_configs_dir() {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{name}.yaml")), yaml);
    }
}

/// The host ports of a cluster an earlier run made, from its remembered
/// config; `None` when it is not remembered.
fn remembered_host_ports(name: &str) -> Option<std::collections::BTreeSet<pool::HostPort>> {
    let path = remembered_configs_dir()?.join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).ok()?;
    let config = config::KindConfig::parse(&path, &text).ok()?;
    Some(
        config
            .nodes
            .iter()
            .flat_map(|n| &n.extra_port_mappings)
            .map(|m| pool::HostPort {
                port: m.host_port.value,
                protocol: m.protocol_upper(),
            })
            .collect(),
    )
}

#[async_trait]
impl Target for KindTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Kind
    }

    fn unavailable_reason(&self) -> Option<String> {
        self.tools
            .get_or_init(|| {
                tools::docker_engine_reason()
                    .or_else(|| KIND.find().err())
                    .or_else(|| self.kind_release_reason())
            })
            .clone()
    }

    fn unsupported_reason(&self, scenario: &Scenario, _project_root: &Path) -> Option<String> {
        let version = self.k8s_version(None);
        // An unknown version is a usage error, not a reason to skip: `open`
        // reports it (listing the supported versions) as an error.
        versions::node_image(version).ok()?;
        installs_unsupported(&scenario.install, version)
    }

    fn plan(&self, scenario: &Scenario, project_root: &Path) -> Result<TargetPlan, PlanError> {
        let rendered = self
            .rendered(scenario, project_root, None)
            .map_err(|e| PlanError::Unresolved(e.to_string()))?;
        let name = cluster_name(&rendered);
        let host_ports: Vec<String> = pool::host_ports(&rendered)
            .iter()
            .map(pool::HostPort::to_string)
            .collect();
        let mut sections = vec![
            (
                "kind cluster".to_string(),
                format!(
                    "name: {name} (reused when it exists: the name carries the config hash)\nhost ports: {} (on 0.0.0.0: no other cluster that maps one of them is alive while this one is)\nimage: {} (needs kind {}; digest from {})\ncommand: kind {}\ndeleted before a cluster that needs its host ports is created, and at the end, unless --keep",
                    host_ports.join(", "),
                    rendered.image.reference(),
                    rendered.image.kind_release,
                    rendered.image.source,
                    driver::create_args(
                        &name,
                        Path::new("<rendered config>"),
                        &rendered.image.reference()
                    )
                    .join(" ")
                ),
            ),
            (
                format!("kind config (from {})", rendered.source.display()),
                rendered.yaml.clone(),
            ),
        ];
        sections.extend(install_sections(scenario, "${NAMESPACE}"));
        let mut variables = mapped_port_variables(&rendered.tcp_host_ports(), &scenario.install);
        variables.insert("CLUSTER_NAME".into(), name.clone());
        Ok(TargetPlan {
            variables,
            sections,
        })
    }

    async fn open(&self, run: &ScenarioRun) -> Result<Box<dyn Session>, StepError> {
        let rendered = self
            .rendered(&run.scenario, &run.project_root, None)
            .map_err(|e| StepError::broken_by("", e))?;
        let lease = self
            .pool
            .acquire(&rendered, run.keep, &run.progress)
            .await?;
        let name = lease.name.clone();
        let client = crate::k8s::client::connect(Some(&lease.kubeconfig), None)
            .await
            .map_err(|e| StepError::broken_by("", e))?;
        let access = ClusterAccess {
            client,
            kubeconfig: lease.kubeconfig.clone(),
            context: None,
            node_selector: BTreeMap::from([("ingress-ready".to_string(), "true".to_string())]),
            // kind names nodes `<cluster>-control-plane`, `<cluster>-worker`, ...
            variables: mapped_port_variables(&rendered.tcp_host_ports(), &run.scenario.install)
                .into_iter()
                .chain([("CLUSTER_NAME".to_string(), name.clone())])
                .collect(),
            how_to_reach: format!(
                "kind cluster {name}: kubectl --kubeconfig <(kind get kubeconfig --name {name}) ...; delete with `kind delete cluster --name {name}`"
            ),
        };
        // The lease lives until the session is closed, on failure too.
        let session = open_session(access, run, &lease.installed).await?;
        Ok(Box::new(KindSession {
            inner: session,
            lease: Some(lease),
        }))
    }

    async fn shutdown(&self, keep: bool) -> Vec<String> {
        self.pool.shutdown(keep).await
    }
}

/// A scenario's session on a kind cluster: the cluster session plus the
/// lease that keeps the cluster alive until the session closes.
struct KindSession {
    inner: ClusterSession,
    lease: Option<ClusterLease>,
}

#[async_trait]
impl Session for KindSession {
    fn variables(&self) -> BTreeMap<String, String> {
        self.inner.variables()
    }

    async fn apply(&mut self, manifests: &[Manifest]) -> Result<String, StepError> {
        self.inner.apply(manifests).await
    }

    async fn delete(&mut self, manifests: &[Manifest]) -> Result<String, StepError> {
        self.inner.delete(manifests).await
    }

    async fn wait(&mut self, spec: &WaitSpec, timeout: Duration) -> Result<String, StepError> {
        self.inner.wait(spec, timeout).await
    }

    async fn expect_denied(
        &mut self,
        manifests: &[Manifest],
        message_contains: &str,
    ) -> Result<String, StepError> {
        self.inner.expect_denied(manifests, message_contains).await
    }

    async fn collect_diagnostics(&mut self, dir: &Path) -> Vec<PathBuf> {
        self.inner.collect_diagnostics(dir).await
    }

    async fn assert(
        &mut self,
        spec: &crate::scenario::AssertSpec,
        timeout: Duration,
    ) -> Result<crate::targets::Observed, StepError> {
        self.inner.assert(spec, timeout).await
    }

    async fn logs(
        &mut self,
        spec: &crate::scenario::LogsSpec,
        timeout: Duration,
    ) -> Result<crate::targets::Observed, StepError> {
        self.inner.logs(spec, timeout).await
    }

    async fn delete_selected(
        &mut self,
        selector: &crate::scenario::ObjectSelector,
    ) -> Result<String, StepError> {
        self.inner.delete_selected(selector).await
    }

    fn how_to_reach(&self) -> String {
        self.inner.how_to_reach()
    }

    async fn close(&mut self, keep: bool) -> Vec<String> {
        let problems = self.inner.close(keep).await;
        // The cluster may now be deleted for another that needs its ports.
        self.lease.take();
        problems
    }
}
