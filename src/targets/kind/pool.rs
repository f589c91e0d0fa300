//! The kind clusters of one run, and the rule that keeps them from
//! colliding: no two clusters alive at once share a host port.
//!
//! kind publishes `extraPortMappings` on 0.0.0.0 by default, so a second
//! cluster mapping host port 80 fails with "port is already allocated"
//! while the first exists. Each scenario holds a [`ClusterLease`] on its
//! cluster while it runs. A cluster whose host ports collide with the one
//! a scenario needs is deleted once no lease holds it (never while a
//! scenario uses it: the new scenario waits). A cluster that must not be
//! deleted — kept by `--keep`, or left by an earlier run — is reported as
//! the reason the new cluster cannot be made. The runner orders scenarios
//! by cluster ([`super::groups::run_order`]) so each cluster is created
//! once; this pool is what makes any order safe.

use super::driver::KindCli;
use super::render::RenderedConfig;
use crate::scenario::Install;
use crate::targets::{ProgressFn, StepError};
use crate::tools::KIND;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tokio::sync::Notify;

/// A host port a cluster publishes: port and upper-case protocol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    /// The port on the host.
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

/// Every host port a rendered config publishes, on any node.
pub fn host_ports(rendered: &RenderedConfig) -> BTreeSet<HostPort> {
    rendered
        .config
        .nodes
        .iter()
        .flat_map(|n| &n.extra_port_mappings)
        .map(|m| HostPort {
            port: m.host_port.value,
            protocol: m.protocol_upper(),
        })
        .collect()
}

/// Env var: images (space or comma separated) loaded from the local Docker
/// engine into every cluster this run creates (`kind load docker-image`),
/// so a CI job pulls e.g. the Ray image once instead of once per cluster.
pub const LOAD_IMAGES_ENV: &str = "RAYCONFORM_KIND_LOAD_IMAGES";

fn images_to_load() -> Vec<String> {
    std::env::var(LOAD_IMAGES_ENV)
        .unwrap_or_default()
        .split([' ', ','])
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(str::to_string)
        .collect()
}

/// `rayconform-<first 10 hex of the config hash>`.
pub fn cluster_name(rendered: &RenderedConfig) -> String {
    format!("rayconform-{}", &rendered.hash[..10])
}

struct Entry {
    kubeconfig: PathBuf,
    created: bool,
    host_ports: BTreeSet<HostPort>,
    leases: usize,
    installed: Arc<tokio::sync::Mutex<Vec<Install>>>,
}

#[derive(Default)]
struct Shared {
    clusters: std::sync::Mutex<BTreeMap<String, Entry>>,
    released: Notify,
}

impl Shared {
    fn clusters(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.clusters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One scenario's hold on a cluster; the cluster cannot be deleted for
/// another while a lease on it exists. Dropping it releases the hold.
pub struct ClusterLease {
    /// The cluster's name.
    pub name: String,
    /// Its kubeconfig (0600, in the run's private folder).
    pub kubeconfig: PathBuf,
    /// What is installed on it (installs are serialized through this lock).
    pub installed: Arc<tokio::sync::Mutex<Vec<Install>>>,
    shared: Arc<Shared>,
}

impl Drop for ClusterLease {
    fn drop(&mut self) {
        if let Some(entry) = self.shared.clusters().get_mut(&self.name) {
            entry.leases = entry.leases.saturating_sub(1);
        }
        self.shared.released.notify_waiters();
    }
}

/// The clusters of one run.
#[derive(Default)]
pub struct ClusterPool {
    shared: Arc<Shared>,
    /// One scenario at a time decides which cluster to create or delete.
    turn: tokio::sync::Mutex<()>,
    private_dir: OnceLock<Option<tempfile::TempDir>>,
}

impl ClusterPool {
    /// An empty pool.
    pub fn new() -> ClusterPool {
        ClusterPool::default()
    }

    /// Names of the clusters alive in this run, with their host ports.
    pub fn alive(&self) -> Vec<(String, Vec<HostPort>)> {
        self.shared
            .clusters()
            .iter()
            .map(|(n, e)| (n.clone(), e.host_ports.iter().cloned().collect()))
            .collect()
    }

    /// A lease on the cluster for `rendered`: reused when this run (or an
    /// earlier `--keep` run) has it, else created — after deleting idle
    /// clusters of this run whose host ports collide with it, and waiting
    /// for busy ones to be released. `keep` (`--keep`) forbids deleting.
    pub async fn acquire(
        &self,
        rendered: &RenderedConfig,
        keep: bool,
        progress: &ProgressFn,
    ) -> Result<ClusterLease, StepError> {
        let name = cluster_name(rendered);
        let wanted = host_ports(rendered);
        let _turn = self.turn.lock().await;
        let kind = KindCli {
            path: KIND.locate().map_err(|e| StepError::broken_by("", e))?,
        };
        loop {
            // Registered before looking, so a release in between is not missed.
            let released = self.shared.released.notified();
            let (busy, idle) = {
                let mut clusters = self.shared.clusters();
                if let Some(entry) = clusters.get_mut(&name) {
                    entry.leases += 1;
                    return Ok(self.lease(&name, entry));
                }
                let mut busy = Vec::new();
                let mut idle = Vec::new();
                for (other, entry) in clusters.iter() {
                    let shared: Vec<String> = entry
                        .host_ports
                        .intersection(&wanted)
                        .map(HostPort::to_string)
                        .collect();
                    if shared.is_empty() {
                        continue;
                    }
                    if entry.leases > 0 {
                        busy.push((other.clone(), shared));
                    } else {
                        idle.push((other.clone(), entry.created, shared));
                    }
                }
                (busy, idle)
            };
            if !busy.is_empty() {
                for (other, shared) in &busy {
                    progress(&format!(
                        "waiting for kind cluster {other} to finish its scenarios: it holds host port(s) {} that cluster {name} needs",
                        shared.join(", ")
                    ));
                }
                released.await;
                continue;
            }
            for (other, created, shared) in idle {
                if keep || !created {
                    let why = if created {
                        "kept by --keep"
                    } else {
                        "left by an earlier run, reused here"
                    };
                    return Err(StepError::broken(format!(
                        "kind cluster {name} cannot be created: kind cluster {other} ({why}) holds host port(s) {}; run one cluster's scenarios at a time (`rayconform plan --target kind` lists them per cluster) or delete it with `kind delete cluster --name {other}`",
                        shared.join(", ")
                    )));
                }
                progress(&format!(
                    "deleting kind cluster {other}: its scenarios are done and cluster {name} needs its host port(s) {}",
                    shared.join(", ")
                ));
                kind.delete(&other).await.map_err(|e| {
                    StepError::broken(format!(
                        "deleting kind cluster {other} to free its host ports: {e}"
                    ))
                })?;
                self.shared.clusters().remove(&other);
            }
            break;
        }
        let (kubeconfig, created) = self
            .create_or_reuse(&kind, &name, rendered, progress)
            .await?;
        let mut clusters = self.shared.clusters();
        let entry = clusters.entry(name.clone()).or_insert(Entry {
            kubeconfig,
            created,
            host_ports: wanted,
            leases: 0,
            installed: Arc::default(),
        });
        entry.leases += 1;
        Ok(self.lease(&name, entry))
    }

    fn lease(&self, name: &str, entry: &Entry) -> ClusterLease {
        ClusterLease {
            name: name.to_string(),
            kubeconfig: entry.kubeconfig.clone(),
            installed: entry.installed.clone(),
            shared: self.shared.clone(),
        }
    }

    async fn create_or_reuse(
        &self,
        kind: &KindCli,
        name: &str,
        rendered: &RenderedConfig,
        progress: &ProgressFn,
    ) -> Result<(PathBuf, bool), StepError> {
        let release = kind
            .release()
            .await
            .map_err(|e| StepError::broken_by("", e))?;
        if release != rendered.image.kind_release {
            return Err(StepError::broken(format!(
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
            .ok_or_else(|| StepError::broken("cannot create a private temporary folder"))?;
        let existing = kind
            .clusters()
            .await
            .map_err(|e| StepError::broken_by("", e))?;
        let created = !existing.iter().any(|c| c == name);
        if created {
            // A cluster an earlier run left (`--keep`) holds its ports as
            // surely as one of ours: say which, rather than kind's bare
            // "port is already allocated".
            let wanted = host_ports(rendered);
            let ours: Vec<String> = self.shared.clusters().keys().cloned().collect();
            for other in existing
                .iter()
                .filter(|c| c.starts_with("rayconform-") && !ours.contains(c))
            {
                let Some(theirs) = super::remembered_host_ports(other) else {
                    continue;
                };
                let shared: Vec<String> = theirs
                    .intersection(&wanted)
                    .map(HostPort::to_string)
                    .collect();
                if !shared.is_empty() {
                    return Err(StepError::broken(format!(
                        "kind cluster {name} cannot be created: kind cluster {other} (left by an earlier run) holds host port(s) {}; delete it with `kind delete cluster --name {other}`",
                        shared.join(", ")
                    )));
                }
            }
            let config_path = private.join(format!("{name}.yaml"));
            std::fs::write(&config_path, &rendered.yaml).map_err(|e| {
                StepError::broken_by(format!("writing {}", config_path.display()), e)
            })?;
            progress(&format!(
                "creating kind cluster {name} ({})",
                rendered.image.reference()
            ));
            if let Err(e) = kind
                .create(name, &config_path, &rendered.image.reference())
                .await
            {
                // kind may leave a half-made cluster behind.
                let _ = kind.delete(name).await;
                return Err(StepError::broken_by(
                    format!("kind could not create cluster {name}"),
                    e,
                ));
            }
            for image in images_to_load() {
                progress(&format!("loading {image} into kind cluster {name}"));
                if let Err(e) = kind.load_image(name, &image).await {
                    progress(&format!(
                        "could not load {image} into {name} (its nodes will pull it): {e}"
                    ));
                }
            }
        } else {
            progress(&format!(
                "reusing kind cluster {name}: its name carries the hash of this rendered config"
            ));
        }
        super::remember_config(name, &rendered.yaml);
        let kubeconfig = private.join(format!("{name}.kubeconfig"));
        if let Err(e) = kind.export_kubeconfig(name, &kubeconfig).await {
            if created {
                let _ = kind.delete(name).await;
            }
            return Err(StepError::broken_by("", e));
        }
        Ok((kubeconfig, created))
    }

    /// Deletes the clusters this run created (unless `keep`); returns problems.
    pub async fn shutdown(&self, keep: bool) -> Vec<String> {
        let _turn = self.turn.lock().await;
        let clusters = std::mem::take(&mut *self.shared.clusters());
        if keep {
            return Vec::new();
        }
        let Ok(path) = KIND.find() else {
            return Vec::new();
        };
        let kind = KindCli { path };
        let mut problems = Vec::new();
        for (name, _) in clusters.iter().filter(|(_, c)| c.created) {
            if let Err(e) = kind.delete(name).await {
                problems.push(format!("deleting kind cluster {name}: {e}"));
            }
        }
        problems
    }
}
