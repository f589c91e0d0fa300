//! The `kind` target: creates (or reuses) a kind cluster per rendered kind
//! config, installs the scenario's components, and runs the scenario in its
//! own namespace through [`crate::k8s::session::ClusterSession`].
//!
//! Reuse: the cluster name carries the hash of the rendered config
//! (`rayconform-<hash>`), so a cluster of that name was made from exactly
//! this config; the rendered YAML is also kept next to it in
//! `$XDG_CACHE_HOME/rayconform/kind/<name>.yaml` for people to read.
//! Clusters this run created are deleted at shutdown unless `--keep`;
//! reused clusters (left by an earlier `--keep`) are left alone.

pub mod config;
pub mod driver;
pub mod render;
pub mod versions;

use crate::install::{self, InstallContext};
use crate::k8s::session::{ClusterSession, SessionSetup};
use crate::scenario::{Install, Scenario, TargetKind};
use crate::target::availability::{self, HELM, ISTIOCTL, KIND};
use crate::target::registry::TargetOptions;
use crate::target::{ScenarioRun, Session, StepError, Target, TargetPlan};
use async_trait::async_trait;
use driver::KindCli;
use render::RenderedConfig;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tokio::sync::Mutex;

/// A kind cluster this run uses.
struct Cluster {
    name: String,
    kubeconfig: PathBuf,
    created: bool,
    installed: Vec<Install>,
}

/// The kind target.
pub struct KindTarget {
    opts: TargetOptions,
    tools: OnceLock<Option<String>>,
    clusters: Mutex<HashMap<String, Cluster>>,
    private_dir: OnceLock<Option<tempfile::TempDir>>,
}

impl KindTarget {
    /// A kind target; nothing is looked up or started yet.
    pub fn new(opts: TargetOptions) -> KindTarget {
        KindTarget {
            opts,
            tools: OnceLock::new(),
            clusters: Mutex::new(HashMap::new()),
            private_dir: OnceLock::new(),
        }
    }

    fn k8s_version<'a>(&'a self, asked: Option<&'a str>) -> &'a str {
        asked
            .or(self.opts.k8s_version.as_deref())
            .unwrap_or(versions::DEFAULT_VERSION)
    }

    /// Why the kind on PATH cannot boot the node image of the chosen
    /// version (node images only work with the kind release that built them).
    fn kind_release_reason(&self) -> Option<String> {
        let image = versions::node_image(self.k8s_version(None)).ok()?;
        let path = KIND.find().ok()?;
        match driver::release_blocking(&path, std::time::Duration::from_secs(10)) {
            Ok(release) if release == image.kind_release => None,
            Ok(release) => Some(format!(
                "kind {release} is on PATH, but the node image for Kubernetes {} needs kind {}: install that release",
                image.version, image.kind_release
            )),
            Err(e) => Some(e),
        }
    }

    fn rendered(
        &self,
        scenario: &Scenario,
        root: &Path,
        k8s: Option<&str>,
    ) -> Result<RenderedConfig, String> {
        let image = versions::node_image(self.k8s_version(k8s)).map_err(|e| e.to_string())?;
        render::render(scenario, root, image)
    }

    async fn ensure_cluster(
        &self,
        rendered: &RenderedConfig,
        run: &ScenarioRun,
    ) -> Result<(String, PathBuf), StepError> {
        let name = cluster_name(rendered);
        let mut clusters = self.clusters.lock().await;
        if let Some(c) = clusters.get(&name) {
            return Ok((c.name.clone(), c.kubeconfig.clone()));
        }
        let kind = KindCli {
            path: KIND.find().map_err(StepError::Broken)?,
        };
        let release = kind
            .release()
            .await
            .map_err(|e| StepError::Broken(e.to_string()))?;
        if release != rendered.image.kind_release {
            return Err(StepError::Broken(format!(
                "kind on PATH is {release}, but the node image for Kubernetes {} was built for kind {}: install that kind release",
                rendered.image.version, rendered.image.kind_release
            )));
        }
        let private = self
            .private_dir
            .get_or_init(|| {
                tempfile::Builder::new()
                    .prefix("rayconform-kind-")
                    .tempdir()
                    .ok()
            })
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .ok_or_else(|| StepError::Broken("cannot create a private temporary folder".into()))?;
        let existing = kind
            .clusters()
            .await
            .map_err(|e| StepError::Broken(e.to_string()))?;
        let created = !existing.contains(&name);
        if created {
            let config_path = private.join(format!("{name}.yaml"));
            std::fs::write(&config_path, &rendered.yaml).map_err(|e| {
                StepError::Broken(format!("writing {}: {e}", config_path.display()))
            })?;
            (run.progress)(&format!(
                "creating kind cluster {name} ({})",
                rendered.image.reference()
            ));
            if let Err(e) = kind
                .create(&name, &config_path, &rendered.image.reference())
                .await
            {
                // kind may leave a half-made cluster behind.
                let _ = kind.delete(&name).await;
                return Err(StepError::Broken(format!(
                    "kind could not create cluster {name}: {e}"
                )));
            }
        } else {
            (run.progress)(&format!(
                "reusing kind cluster {name}: its name carries the hash of this rendered config"
            ));
        }
        remember_config(&name, &rendered.yaml);
        let kubeconfig = private.join(format!("{name}.kubeconfig"));
        kind.export_kubeconfig(&name, &kubeconfig)
            .await
            .map_err(StepError::Broken)?;
        clusters.insert(
            name.clone(),
            Cluster {
                name: name.clone(),
                kubeconfig: kubeconfig.clone(),
                created,
                installed: Vec::new(),
            },
        );
        Ok((name, kubeconfig))
    }
}

/// `rayconform-<first 10 hex of the config hash>`.
pub fn cluster_name(rendered: &RenderedConfig) -> String {
    format!("rayconform-{}", &rendered.hash[..10])
}

fn remember_config(name: &str, yaml: &str) {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(dir) = base.map(|b| b.join("rayconform").join("kind")) {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{name}.yaml")), yaml);
    }
}

/// Template variables for a cluster reached through kind's host port
/// mappings: INGRESS_HOST, INGRESS_HTTP/HTTPS, INGRESS_TCP_<port>, and
/// KUBERAY_APISERVER when NodePort 31888 is mapped.
pub fn port_variables(
    host_ports: &BTreeMap<u16, u16>,
    installs: &[Install],
) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    vars.insert("INGRESS_HOST".to_string(), "localhost".to_string());
    let at = |container: u16| host_ports.get(&container).map(|h| format!("localhost:{h}"));
    if let Some(a) = at(80) {
        vars.insert("INGRESS_HTTP".into(), a);
    }
    if let Some(a) = at(443) {
        vars.insert("INGRESS_HTTPS".into(), a);
    }
    for port in render::tcp_service_ports(installs) {
        if let Some(a) = at(port) {
            vars.insert(format!("INGRESS_TCP_{port}"), a);
        }
    }
    if let Some(a) = at(install::kuberay_apiserver::NODE_PORT) {
        vars.insert("KUBERAY_APISERVER".into(), a);
    }
    vars
}

/// Why a scenario's installs cannot run on `k8s_version`, or the tool it
/// misses.
pub fn installs_unsupported(installs: &[Install], k8s_version: &str) -> Option<String> {
    for item in installs {
        let component = install::component_name(item);
        if let Some(why) =
            versions::component_unsupported(component, &install::version(item), k8s_version)
        {
            return Some(why);
        }
        let tool = match item {
            Install::KuberayOperator(_) | Install::KuberayApiserver(_) => Some(HELM),
            Install::Istio(_) => Some(ISTIOCTL),
            Install::IngressNginx(_) => None,
        };
        if let Some(Err(missing)) = tool.map(|t| t.find()) {
            return Some(format!("{component} needs {missing}"));
        }
    }
    None
}

/// Plan sections shared by the cluster targets: one per install.
pub fn install_sections(scenario: &Scenario, namespace: &str) -> Vec<(String, String)> {
    scenario
        .install
        .iter()
        .map(|i| install::plan(i, namespace))
        .collect()
}

#[async_trait]
impl Target for KindTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Kind
    }

    fn unavailable_reason(&self) -> Option<String> {
        self.tools
            .get_or_init(|| {
                availability::docker_engine_reason()
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

    fn plan(
        &self,
        scenario: &Scenario,
        project_root: &Path,
        k8s_version: Option<&str>,
    ) -> Result<TargetPlan, String> {
        let rendered = self.rendered(scenario, project_root, k8s_version)?;
        let name = cluster_name(&rendered);
        let mut sections = vec![
            (
                "kind cluster".to_string(),
                format!(
                    "name: {name} (reused when it exists: the name carries the config hash)\nimage: {} (kind {})\ncommand: kind {}\ndeleted at the end unless --keep",
                    rendered.image.reference(),
                    rendered.image.kind_release,
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
        Ok(TargetPlan {
            variables: port_variables(&rendered.tcp_host_ports(), &scenario.install),
            sections,
        })
    }

    async fn open(&self, run: &ScenarioRun) -> Result<Box<dyn Session>, StepError> {
        let rendered = self
            .rendered(&run.scenario, &run.project_root, run.k8s_version.as_deref())
            .map_err(StepError::Broken)?;
        let (name, kubeconfig) = self.ensure_cluster(&rendered, run).await?;
        let client = crate::k8s::client::connect(Some(&kubeconfig), None)
            .await
            .map_err(|e| StepError::Broken(e.to_string()))?;
        let setup = SessionSetup {
            variables: port_variables(&rendered.tcp_host_ports(), &run.scenario.install),
            namespace_labels: install::namespace_labels(&run.scenario.install),
            how_to_reach: format!(
                "kind cluster {name}: kubectl --kubeconfig <(kind get kubeconfig --name {name}) ...; delete with `kind delete cluster --name {name}`"
            ),
        };
        let session = ClusterSession::open(client.clone(), run, setup).await?;
        let ctx = InstallContext {
            client,
            kubeconfig,
            context: None,
            namespace: run.namespace.clone(),
            progress: run.progress.clone(),
            node_selector: BTreeMap::from([("ingress-ready".to_string(), "true".to_string())]),
        };
        let mut clusters = self.clusters.lock().await;
        let cluster = clusters
            .get_mut(&name)
            .ok_or_else(|| StepError::Broken(format!("cluster {name} vanished from the run")))?;
        let lines = install::install_all(&run.scenario.install, &ctx, &mut cluster.installed)
            .await
            .map_err(|e| StepError::Broken(format!("install failed: {e}")))?;
        for line in lines {
            (run.progress)(&line);
        }
        Ok(Box::new(session))
    }

    async fn shutdown(&self, keep: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let clusters = std::mem::take(&mut *self.clusters.lock().await);
        if keep {
            return problems;
        }
        let Ok(path) = KIND.find() else {
            return problems;
        };
        let kind = KindCli { path };
        for cluster in clusters.values().filter(|c| c.created) {
            if let Err(e) = kind.delete(&cluster.name).await {
                problems.push(format!("deleting kind cluster {}: {e}", cluster.name));
            }
        }
        problems
    }
}
