//! One scenario run on the lab: the objects it applied, the local processes
//! standing in for them, and the nginx routing to them.

use super::LabError;
use super::head_needs::{self, SharedDashboards};
use super::model::config::{IngressPorts, LabModel, PortText, tcp_service_ports};
use super::model::objects::{
    LabObject, ObjectKey, RayClusterObject, RayPort, TranslateError, WorkerGroup, translate,
};
use super::model::routes::{self, LocalHead};
use super::observe;
use super::process::head_pool::{HeadKey, HeadLease, HeadPool};
use super::process::head_view;
use super::process::managed::{StopOutcome, tail_of_file};
use super::process::nginx::Nginx;
use super::process::ports::free_ports;
use super::process::ray_head::RayTls;
use super::process::venv::{RAY_VERSION, RayVenv};
use super::process::worker::{RAYCLUSTER_LABEL, RayWorker, WorkerShape};
use crate::k8s::assert::judge;
use crate::scenario::{
    AssertSpec, LogsSince, LogsSpec, ObjectSelector, RayClusterCondition, WaitSpec, WaitTarget,
};
use crate::targets::{Manifest, Observed, ScenarioRun, Session, StepError};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a Ray head may take to start inside an `apply`.
const HEAD_START_TIMEOUT: Duration = Duration::from_secs(90);

/// A RayCluster running locally.
struct RunningCluster {
    object: RayClusterObject,
    lease: HeadLease,
    /// Its workers' [`RAYCLUSTER_LABEL`] value, unique in the run.
    label: String,
    workers: Vec<RayWorker>,
    local: LocalHead,
}

/// A lab session (see the module docs).
pub struct LabSession {
    run: ScenarioRun,
    pool: Arc<HeadPool>,
    shared_dashboards: SharedDashboards,
    lab: LabModel,
    nginx: Option<Nginx>,
    conf: String,
    objects: BTreeMap<ObjectKey, LabObject>,
    clusters: BTreeMap<ObjectKey, RunningCluster>,
    notes: Vec<String>,
    route_notes: Vec<String>,
    /// Every upstream defect the lab's own model stood in for during this
    /// session (kept after the route that used it is gone).
    modelled: Vec<String>,
    /// The applied RayCluster and Service manifests, as `assert` shows them.
    applied: BTreeMap<ObjectKey, Manifest>,
}

impl LabSession {
    /// Chooses the ports, starts nginx with no routes (every request meets
    /// the default backend) and returns the session. A RayCluster without
    /// workers takes a head from `pool` with a dashboard as
    /// `shared_dashboards` says (or when this scenario may reach it).
    pub async fn open(
        run: &ScenarioRun,
        pool: Arc<HeadPool>,
        shared_dashboards: SharedDashboards,
    ) -> Result<LabSession, StepError> {
        let tcp_keys = tcp_service_ports(&run.scenario.install);
        let chosen = free_ports(3 + tcp_keys.len())
            .map_err(|e| StepError::broken_by("cannot choose free ports", e))?;
        let ports = IngressPorts {
            http: chosen[0],
            https: chosen[1],
            tls_internal: chosen[2],
            tcp: tcp_keys
                .into_iter()
                .zip(chosen[3..].iter().copied())
                .collect(),
        };
        let ingress_cert = ingress_certificate(run)?;
        let lab = LabModel::new(
            &run.namespace,
            &run.scenario.install,
            ports,
            PortText::Live,
            ingress_cert,
        )
        .map_err(|e| StepError::broken_by("lab settings", e))?;
        let mut session = LabSession {
            run: run.clone(),
            pool,
            shared_dashboards,
            lab,
            nginx: None,
            conf: String::new(),
            objects: BTreeMap::new(),
            clusters: BTreeMap::new(),
            notes: Vec::new(),
            route_notes: Vec::new(),
            modelled: Vec::new(),
            applied: BTreeMap::new(),
        };
        (run.progress)("starting nginx (ingress stand-in)");
        session.sync_nginx().await?;
        Ok(session)
    }

    fn authority_tls(&self, cluster: &str) -> Result<RayTls, StepError> {
        let spec = self.run.scenario.certificates.as_ref().ok_or_else(|| {
            StepError::broken_by(
                "",
                LabError::Missing(format!(
                    "RayCluster `{cluster}` sets RAY_USE_TLS=1 but the scenario has no `certificates:`"
                )),
            )
        })?;
        let authority = self
            .run
            .certificates
            .as_ref()
            .and_then(|set| set.get(&spec.ca))
            .ok_or_else(|| {
                StepError::broken_by(
                    "",
                    LabError::Missing(format!(
                        "certificates of authority `{}` were not generated",
                        spec.ca
                    )),
                )
            })?;
        Ok(RayTls {
            server_cert: authority.server_cert.clone(),
            server_key: authority.server_key.clone(),
            ca_cert: authority.ca_cert.clone(),
        })
    }

    async fn start_cluster(
        &mut self,
        key: ObjectKey,
        rc: RayClusterObject,
    ) -> Result<String, StepError> {
        let tls = if rc.tls {
            Some(self.authority_tls(&rc.name)?)
        } else {
            None
        };
        let choice = head_needs::head_for(&self.run.scenario, &rc, self.shared_dashboards);
        let head_key = HeadKey {
            tls: tls.clone(),
            num_cpus: rc.head_num_cpus.unwrap_or(1).max(1),
            dashboard: choice.dashboard,
            hosts_workers: choice.hosts_workers,
        };
        (self.run.progress)(&format!("starting a Ray head for RayCluster {}", rc.name));
        let acquired = if choice.own {
            self.pool
                .acquire_exclusive(head_key, HEAD_START_TIMEOUT)
                .await
        } else {
            self.pool.acquire(head_key, HEAD_START_TIMEOUT).await
        };
        let lease =
            acquired.map_err(|e| StepError::broken_by(format!("RayCluster {}", rc.name), e))?;
        let label = raycluster_label(&rc.name);
        let wanted: Vec<WorkerShape> = rc
            .worker_groups
            .iter()
            .flat_map(|g| std::iter::repeat_n(shape_of(g, &label), g.replicas as usize))
            .collect();
        let workers = match self
            .spawn_workers(&rc.name, &wanted, 0, lease.ports.gcs)
            .await
        {
            Ok(workers) => workers,
            Err(e) => {
                self.pool.release(lease.id).await;
                return Err(e);
            }
        };
        let local = LocalHead {
            cluster: rc.name.clone(),
            namespace: rc.namespace.clone(),
            ports: [
                Some((RayPort::Gcs, lease.ports.gcs)),
                lease
                    .dashboard
                    .then_some((RayPort::Dashboard, lease.ports.dashboard)),
                Some((RayPort::Client, lease.ports.client)),
            ]
            .into_iter()
            .flatten()
            .collect(),
        };
        let head_service = self.lab.head_service(&rc.name, &rc.namespace);
        let summary = format!(
            "RayCluster {}/{} → Ray head pid {} (gcs {}, client {}, {}; TLS {}; {}), {} worker(s){}; \
             Service {} synthesized ({})",
            rc.namespace,
            rc.name,
            lease
                .pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into()),
            lease.ports.gcs,
            lease.ports.client,
            if lease.dashboard {
                format!("dashboard {}", lease.ports.dashboard)
            } else {
                head_needs::NO_DASHBOARD.to_string()
            },
            if rc.tls { "on" } else { "off" },
            if lease.reused {
                "shared head from the pool".to_string()
            } else {
                format!("started in {:.1} s", lease.startup_time.as_secs_f64())
            },
            workers.len(),
            match (choice.hosts_workers, choice.own) {
                (false, _) => String::new(),
                (true, true) =>
                    " on a head of its own (a step could see its whole node list)".to_string(),
                (true, false) => format!(
                    " labelled {RAYCLUSTER_LABEL}={label} on a head RayClusters with workers \
                     share (each counts its own)"
                ),
            },
            head_service.name,
            if head_service.headless {
                "headless, KubeRay's default since v1.2"
            } else {
                "with a ClusterIP: headClusterIpService"
            },
        );
        self.notes.push(summary.clone());
        if let Some(image) = &rc.image
            && !image.ends_with(&format!(":{RAY_VERSION}"))
        {
            self.notes.push(format!(
                "RayCluster {}: image {image} not used; the lab runs Ray {RAY_VERSION} from its venv",
                rc.name
            ));
        }
        self.clusters.insert(
            key,
            RunningCluster {
                object: rc,
                lease,
                label,
                workers,
                local,
            },
        );
        Ok(summary)
    }

    /// Starts one worker node per shape (named from `first` on), side by
    /// side, each joining the head's GCS; all or none: on a failure the
    /// ones started are stopped. A worker whose `ray start` gives up is
    /// started once more, as the kubelet restarts a crashed container.
    async fn spawn_workers(
        &self,
        cluster: &str,
        shapes: &[WorkerShape],
        first: usize,
        gcs: u16,
    ) -> Result<Vec<RayWorker>, StepError> {
        if shapes.is_empty() {
            return Ok(Vec::new());
        }
        let venv =
            RayVenv::locate(&self.run.project_root).map_err(|e| StepError::broken_by("", e))?;
        let log_dir = self.run.work_dir.join("ray-workers");
        let deadline = Instant::now() + HEAD_START_TIMEOUT;
        let (venv, log_dir) = (&venv, &log_dir);
        let starts = shapes.iter().enumerate().map(|(i, shape)| {
            let name = format!("ray-worker-{cluster}-{}", first + i);
            async move {
                match start_worker(venv, gcs, log_dir, &name, shape, deadline).await {
                    Ok(worker) => Ok(worker),
                    Err(_) => {
                        let again = format!("{name}-restart");
                        start_worker(venv, gcs, log_dir, &again, shape, deadline).await
                    }
                }
            }
        });
        let mut workers = Vec::new();
        let mut failed = None;
        for (i, result) in futures::future::join_all(starts)
            .await
            .into_iter()
            .enumerate()
        {
            match result {
                Ok(w) => workers.push(w),
                Err(e) if failed.is_none() => failed = Some((first + i, e)),
                Err(_) => {}
            }
        }
        if let Some((i, e)) = failed {
            futures::future::join_all(workers.iter_mut().map(RayWorker::stop)).await;
            return Err(StepError::broken_by(
                format!("RayCluster {cluster}: worker {i}"),
                e,
            ));
        }
        Ok(workers)
    }

    /// Follows changed replica counts of a running cluster: stops the
    /// newest workers of a group that shrank, starts workers for one that
    /// grew; the head keeps running.
    async fn rescale(
        &mut self,
        key: &ObjectKey,
        rc: RayClusterObject,
    ) -> Result<String, StepError> {
        let Some(mut cluster) = self.clusters.remove(key) else {
            return Err(StepError::broken(format!("{key} is not running")));
        };
        let mut stopped = 0;
        let mut wanted = Vec::new();
        for group in &rc.worker_groups {
            let mut have = cluster
                .workers
                .iter()
                .filter(|w| w.group() == group.name)
                .count();
            while have > group.replicas as usize {
                let last = cluster
                    .workers
                    .iter()
                    .rposition(|w| w.group() == group.name);
                if let Some(i) = last {
                    cluster.workers.remove(i).stop().await;
                    stopped += 1;
                }
                have -= 1;
            }
            wanted.extend(std::iter::repeat_n(
                shape_of(group, &cluster.label),
                (group.replicas as usize).saturating_sub(have),
            ));
        }
        let first = cluster.workers.len() + stopped;
        let started = self
            .spawn_workers(&rc.name, &wanted, first, cluster.lease.ports.gcs)
            .await;
        let summary = format!(
            "RayCluster {key} scaled: {stopped} worker(s) stopped, {} started, head pid {} kept",
            wanted.len(),
            cluster
                .lease
                .pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into())
        );
        match started {
            Ok(new) => cluster.workers.extend(new),
            Err(e) => {
                self.clusters.insert(key.clone(), cluster);
                return Err(e);
            }
        }
        cluster.object = rc;
        self.clusters.insert(key.clone(), cluster);
        self.notes.push(summary.clone());
        Ok(summary)
    }

    async fn stop_cluster(&mut self, key: &ObjectKey) {
        let Some(mut cluster) = self.clusters.remove(key) else {
            return;
        };
        // Side by side: each waits for Ray's ~1 s teardown of its node.
        futures::future::join_all(cluster.workers.iter_mut().map(RayWorker::stop)).await;
        self.pool.release(cluster.lease.id).await;
        self.notes.push(format!(
            "RayCluster {key} deleted: its head lease was released"
        ));
    }

    /// Renders the config for what is applied; starts or reloads nginx
    /// when it changed.
    async fn sync_nginx(&mut self) -> Result<(), StepError> {
        let heads: Vec<&LocalHead> = self.clusters.values().map(|c| &c.local).collect();
        let config = self.lab.render(self.objects.values(), &heads);
        for m in &config.modelled {
            if !self.modelled.contains(m) {
                self.modelled.push(m.clone());
            }
        }
        self.route_notes = config.notes;
        if self.nginx.is_some() && config.conf == self.conf {
            return Ok(());
        }
        match self.nginx.as_mut() {
            Some(nginx) => {
                let reload = nginx
                    .reload(&config.conf)
                    .await
                    .map_err(|e| StepError::broken_by("nginx reload", e))?;
                if let Some(note) = reload.note() {
                    self.notes.push(note);
                }
            }
            None => {
                let nginx = Nginx::start(&self.run.work_dir, &config.conf)
                    .await
                    .map_err(|e| StepError::broken_by("nginx", e))?;
                self.nginx = Some(nginx);
            }
        }
        self.conf = config.conf;
        Ok(())
    }

    fn translate_all(&self, manifests: &[Manifest]) -> Result<Vec<LabObject>, StepError> {
        manifests
            .iter()
            .map(|m| {
                translate(m, &self.run.namespace).map_err(|e| match e {
                    TranslateError::Unsupported(_) => StepError::Unsupported(e.to_string()),
                    TranslateError::Invalid(_) => StepError::broken_by("", e),
                })
            })
            .collect()
    }

    /// Where a RayCluster stands: `Ok(description)` when the condition
    /// holds, else [`LabError::NotReady`] with the last observed state.
    async fn cluster_state(&self, key: &ObjectKey, spec: &WaitSpec) -> Result<String, LabError> {
        let Some(cluster) = self.clusters.get(key) else {
            return Err(LabError::NotReady(format!(
                "{key} was not applied in this scenario"
            )));
        };
        let ports = cluster.lease.ports;
        let view = head_view::look(&cluster.lease, &cluster.label).await;
        if let Some(why) = view.down {
            return Err(LabError::NotReady(format!("head not up: {why}")));
        }
        let wanted_workers = match spec.condition.unwrap_or(RayClusterCondition::Ready) {
            RayClusterCondition::Ready => {
                spec.ready_workers.unwrap_or(cluster.object.worker_replicas)
            }
            _ => spec.ready_workers.unwrap_or(0),
        };
        if wanted_workers > 0 {
            let workers = view.alive_workers.len() as u32;
            if workers < wanted_workers {
                return Err(LabError::NotReady(format!(
                    "{workers} of {wanted_workers} worker node(s) alive"
                )));
            }
        }
        let dashboard = if cluster.lease.dashboard {
            format!("dashboard 127.0.0.1:{}", ports.dashboard)
        } else {
            "no dashboard".to_string()
        };
        Ok(format!(
            "head up (GCS 127.0.0.1:{} lists it alive, client 127.0.0.1:{}, {dashboard}), {wanted_workers} worker(s) required and alive",
            ports.gcs, ports.client
        ))
    }
}

impl LabSession {
    /// The objects of the selector's kind the lab shows (see
    /// [`observe`]), narrowed by the selector.
    async fn live_objects(&mut self, selector: &ObjectSelector) -> Vec<serde_json::Value> {
        let mut objects = Vec::new();
        match selector.kind.as_str() {
            "Pod" => {
                for (key, cluster) in self.clusters.iter_mut() {
                    let Some(manifest) = self.applied.get(key) else {
                        continue;
                    };
                    let view = head_view::look(&cluster.lease, &cluster.label).await;
                    let head_ready = view.down.is_none();
                    let alive: Vec<serde_json::Value> = view
                        .alive_workers
                        .iter()
                        .map(|resources| serde_json::json!(resources))
                        .collect();
                    let mut ready = observe::ready_per_group(&cluster.object.worker_groups, &alive);
                    let mut nodes = vec![observe::NodeSeen {
                        group: None,
                        running: cluster.lease.pid.is_some_and(process_alive),
                        ready: head_ready,
                    }];
                    for worker in &mut cluster.workers {
                        let group = worker.group().to_string();
                        let running = worker.running();
                        let left = ready.entry(group.clone()).or_default();
                        let is_ready = running && *left > 0;
                        if is_ready {
                            *left -= 1;
                        }
                        nodes.push(observe::NodeSeen {
                            group: Some(group),
                            running,
                            ready: is_ready,
                        });
                    }
                    objects.extend(observe::pod_objects(manifest, &key.namespace, &nodes));
                }
            }
            "RayCluster" => {
                for (key, cluster) in &self.clusters {
                    let Some(manifest) = self.applied.get(key) else {
                        continue;
                    };
                    let view = head_view::look(&cluster.lease, &cluster.label).await;
                    let ready = view.down.is_none();
                    let workers = view.alive_workers.len() as u32;
                    objects.push(observe::raycluster_object(
                        manifest,
                        &key.namespace,
                        ready,
                        workers,
                        cluster.object.worker_replicas,
                    ));
                }
            }
            "Service" => {
                for cluster in self.clusters.values() {
                    let svc = self
                        .lab
                        .head_service(&cluster.object.name, &cluster.object.namespace);
                    objects.push(observe::head_service_object(&svc));
                }
                for (key, object) in &self.objects {
                    if let (LabObject::Service(_), Some(manifest)) = (object, self.applied.get(key))
                    {
                        objects.push(observe::applied_object(manifest, &key.namespace));
                    }
                }
            }
            _ => {}
        }
        objects.retain(|o| observe::selected(o, selector, &self.run.namespace));
        objects
    }
}

impl LabSession {
    /// The controller log lines the lab's model of ingress-nginx writes for
    /// what is applied now (without their `[modelled]` prefix).
    fn modelled_controller_lines(&self) -> Vec<String> {
        self.route_notes
            .iter()
            .filter_map(|n| n.strip_prefix(routes::MODELLED_CONTROLLER_LOG))
            .map(str::to_string)
            .collect()
    }
}

/// Spawns a worker node and waits (until `deadline`) for its `ray start`
/// to say it blocks.
async fn start_worker(
    venv: &RayVenv,
    gcs: u16,
    log_dir: &Path,
    name: &str,
    shape: &WorkerShape,
    deadline: Instant,
) -> Result<RayWorker, LabError> {
    let mut worker = RayWorker::spawn_shaped(venv, gcs, log_dir, name, shape)?;
    worker.wait_started(deadline).await.map(|()| worker)
}

/// The `ray start` shape of a worker group's nodes, labelled `label`.
fn shape_of(group: &WorkerGroup, label: &str) -> WorkerShape {
    WorkerShape {
        group: group.name.clone(),
        num_cpus: group.num_cpus.unwrap_or(1).max(1),
        resources: group.resources.clone(),
        raycluster: Some(label.to_string()),
    }
}

/// A [`RAYCLUSTER_LABEL`] value unique in the process for one start of the
/// RayCluster `name` (a Ray label value: at most 63 characters, alphanumeric
/// at both ends).
fn raycluster_label(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let label: String = format!("{n}.{name}").chars().take(63).collect();
    label
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Whether a process (not a zombie) has this pid.
fn process_alive(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

/// How often lab `assert` and `logs` look again.
const LAB_POLL: Duration = Duration::from_millis(500);

/// The TLS certificate of the ingress's own HTTPS servers: the run's server
/// certificate when the scenario has certificates, else a lab-only CA.
fn ingress_certificate(run: &ScenarioRun) -> Result<(PathBuf, PathBuf), StepError> {
    if let (Some(spec), Some(set)) = (&run.scenario.certificates, &run.certificates)
        && let Some(a) = set.get(&spec.ca)
    {
        return Ok((a.server_cert.clone(), a.server_key.clone()));
    }
    let set = crate::tls::generate(&run.work_dir.join("lab-ingress-certs"), "lab-ingress", &[])
        .map_err(|e| StepError::broken_by("cannot generate the ingress certificate", e))?;
    let a = set.get("lab-ingress").ok_or_else(|| {
        StepError::broken_by(
            "",
            LabError::Missing("ingress certificate missing after generation".into()),
        )
    })?;
    Ok((a.server_cert.clone(), a.server_key.clone()))
}

#[async_trait]
impl Session for LabSession {
    fn variables(&self) -> BTreeMap<String, String> {
        self.lab.variables.clone()
    }

    async fn apply(&mut self, manifests: &[Manifest]) -> Result<String, StepError> {
        let objects = self.translate_all(manifests)?;
        let mut done = Vec::new();
        for (object, manifest) in objects.into_iter().zip(manifests) {
            let key = object.key();
            if matches!(object, LabObject::RayCluster(_) | LabObject::Service(_)) {
                self.applied.insert(key.clone(), manifest.clone());
            }
            match object {
                LabObject::RayCluster(rc) => {
                    if let Some(running) = self.clusters.get(&key) {
                        if running.object == rc {
                            done.push(format!("{key} unchanged"));
                            continue;
                        }
                        // Only a head of its own takes workers (see start_cluster).
                        if running.object.worker_replicas > 0
                            && running.object.differs_only_in_replicas(&rc)
                        {
                            done.push(self.rescale(&key, rc).await?);
                            continue;
                        }
                        self.stop_cluster(&key).await;
                    }
                    done.push(self.start_cluster(key, rc).await?);
                }
                other => {
                    done.push(format!("{key} stored"));
                    self.objects.insert(key, other);
                }
            }
        }
        self.sync_nginx().await?;
        Ok(done.join("; "))
    }

    async fn delete(&mut self, manifests: &[Manifest]) -> Result<String, StepError> {
        let objects = self.translate_all(manifests)?;
        let mut done = Vec::new();
        for object in objects {
            let key = object.key();
            self.applied.remove(&key);
            if self.clusters.contains_key(&key) {
                self.stop_cluster(&key).await;
                done.push(format!("{key} deleted (Ray head released)"));
            } else if self.objects.remove(&key).is_some() {
                done.push(format!("{key} deleted"));
            } else {
                done.push(format!("{key} not found"));
            }
        }
        self.sync_nginx().await?;
        Ok(done.join("; "))
    }

    async fn wait(&mut self, spec: &WaitSpec, timeout: Duration) -> Result<String, StepError> {
        let WaitTarget::RayCluster(name) = &spec.target else {
            return Err(StepError::Unsupported(format!(
                "lab cannot stand in for {:?} waits (only RayCluster conditions map to local processes)",
                spec.target
            )));
        };
        let key = ObjectKey {
            kind: "RayCluster".into(),
            namespace: spec
                .namespace
                .clone()
                .unwrap_or_else(|| self.run.namespace.clone()),
            name: name.clone(),
        };
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.cluster_state(&key, spec).await;
            match state {
                Ok(summary) => return Ok(format!("{key}: {summary}")),
                Err(last) if Instant::now() >= deadline => {
                    return Err(StepError::Failed {
                        message: format!(
                            "{key} not {:?} within {}",
                            spec.condition.unwrap_or(RayClusterCondition::Ready),
                            humantime::format_duration(timeout)
                        ),
                        evidence: vec![format!("last observed: {last}")],
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    async fn expect_denied(
        &mut self,
        _manifests: &[Manifest],
        _message_contains: &str,
    ) -> Result<String, StepError> {
        Err(StepError::Unsupported(
            "lab cannot stand in for admission webhooks (expectDenied)".into(),
        ))
    }

    async fn collect_diagnostics(&mut self, dir: &Path) -> Vec<PathBuf> {
        let mut written = Vec::new();
        if std::fs::create_dir_all(dir).is_err() {
            return written;
        }
        let mut write = |name: &str, text: String| {
            let path = dir.join(name);
            if std::fs::write(&path, text).is_ok() {
                written.push(path);
            }
        };
        write("nginx.conf", self.conf.clone());
        if let Some(nginx) = &self.nginx {
            write("nginx-error.log", tail_of_file(&nginx.error_log(), 200));
        }
        let mut notes = self.notes.clone();
        notes.extend(self.route_notes.iter().cloned());
        notes.push(self.how_to_reach());
        write("lab-notes.txt", notes.join("\n") + "\n");
        for (key, cluster) in &self.clusters {
            let mut text = cluster.lease.log_tails();
            for worker in &cluster.workers {
                text.push_str(&worker.log_tail(30));
            }
            write(&format!("ray-{}-{}.log", key.namespace, key.name), text);
        }
        written
    }

    async fn assert(
        &mut self,
        spec: &AssertSpec,
        timeout: Duration,
    ) -> Result<Observed, StepError> {
        if let Some(reason) = observe::assert_reason(&spec.object) {
            return Err(StepError::Unsupported(reason));
        }
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            let objects = self.live_objects(&spec.object).await;
            let judgement = judge(spec, &objects).map_err(|e| StepError::broken_by("assert", e))?;
            let mut evidence = judgement.evidence;
            evidence.push(observe::LAB_OBJECTS_NOTE.to_string());
            if judgement.passed {
                return Ok(Observed {
                    summary: judgement.summary,
                    evidence,
                });
            }
            if Instant::now() + LAB_POLL > deadline {
                return Err(StepError::Failed {
                    message: format!(
                        "timed out after {:.1}s waiting for {}: {}",
                        started.elapsed().as_secs_f64(),
                        spec.object,
                        judgement.summary
                    ),
                    evidence: std::iter::once("last observed:".to_string())
                        .chain(evidence)
                        .collect(),
                });
            }
            tokio::time::sleep(LAB_POLL).await;
        }
    }

    async fn logs(&mut self, spec: &LogsSpec, timeout: Duration) -> Result<Observed, StepError> {
        if let Some(reason) = observe::logs_reason(&spec.pods) {
            return Err(StepError::Unsupported(reason));
        }
        let wanted = spec
            .line_match()
            .map_err(|e| StepError::broken_by("logs", e))?;
        let Some(log) = self.nginx.as_ref().map(Nginx::error_log) else {
            return Err(StepError::broken("the lab nginx is not running"));
        };
        // Lines count from the session's start (the log is new with it) or
        // from the step's: what the log held when it began is skipped.
        let from = match spec.since {
            LogsSince::Scenario => 0,
            LogsSince::Step => std::fs::metadata(&log).map_or(0, |m| m.len()),
        };
        let modelled_before: Vec<String> = match spec.since {
            LogsSince::Scenario => Vec::new(),
            LogsSince::Step => self.modelled_controller_lines(),
        };
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            let text = observe::log_since(&log, from);
            if let Some(line) = text.lines().find(|l| wanted.matches(l)) {
                return Ok(Observed {
                    summary: format!("the lab nginx logged {wanted}"),
                    evidence: vec![
                        format!("lab nginx error log: {line}"),
                        observe::LAB_LOGS_NOTE.to_string(),
                    ],
                });
            }
            let modelled = self.modelled_controller_lines();
            if let Some(line) = modelled
                .iter()
                .filter(|l| !modelled_before.contains(l))
                .find(|l| wanted.matches(l))
            {
                let what = format!("ingress-nginx controller log line, by the lab's model: {line}");
                if !self.modelled.contains(&what) {
                    self.modelled.push(what);
                }
                return Ok(Observed {
                    summary: format!(
                        "[modelled] the lab's model of the controller logged {wanted}"
                    ),
                    evidence: vec![
                        format!("{}{line}", routes::MODELLED_CONTROLLER_LOG),
                        observe::LAB_LOGS_NOTE.to_string(),
                    ],
                });
            }
            if Instant::now() + LAB_POLL > deadline {
                let mut read = text;
                for line in &modelled {
                    read.push_str(&format!("{}{line}\n", routes::MODELLED_CONTROLLER_LOG));
                }
                return Err(StepError::Failed {
                    message: format!(
                        "timed out after {:.1}s: the lab nginx logged no {wanted}",
                        started.elapsed().as_secs_f64()
                    ),
                    evidence: vec![
                        "last read:".to_string(),
                        crate::k8s::logs::describe(observe::INGRESS_NAMESPACE, "lab-nginx", &read),
                        observe::LAB_LOGS_NOTE.to_string(),
                    ],
                });
            }
            tokio::time::sleep(LAB_POLL).await;
        }
    }

    async fn delete_selected(&mut self, selector: &ObjectSelector) -> Result<String, StepError> {
        if let Some(reason) = observe::delete_reason(selector) {
            return Err(StepError::Unsupported(reason));
        }
        let keys: Vec<ObjectKey> = self
            .clusters
            .keys()
            .filter(|key| {
                self.applied.get(*key).is_some_and(|m| {
                    observe::selected(
                        &observe::raycluster_object(m, &key.namespace, false, 0, 0),
                        selector,
                        &self.run.namespace,
                    )
                })
            })
            .cloned()
            .collect();
        let mut done = Vec::new();
        for key in keys {
            self.stop_cluster(&key).await;
            self.applied.remove(&key);
            done.push(format!("{key} deleted (Ray head released)"));
        }
        self.sync_nginx().await?;
        Ok(if done.is_empty() {
            format!("nothing matched {selector}")
        } else {
            done.join("; ")
        })
    }

    fn modelled_defects(&self) -> Vec<String> {
        self.modelled.clone()
    }

    fn settles_on_return(&self) -> bool {
        // apply/delete return after nginx's reload took effect (new worker
        // up, old ones closed) and heads are started before wait passes.
        true
    }

    fn how_to_reach(&self) -> String {
        let mut lines = vec![format!(
            "lab nginx pid {}: http localhost:{}, https localhost:{}{} (config {})",
            self.nginx
                .as_ref()
                .and_then(Nginx::pid)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            self.lab.ports.http,
            self.lab.ports.https,
            self.lab
                .ports
                .tcp
                .iter()
                .map(|(p, l)| format!(", tcp {p} → localhost:{l}"))
                .collect::<String>(),
            self.nginx
                .as_ref()
                .map(|n| n.prefix().join("conf/nginx.conf").display().to_string())
                .unwrap_or_default(),
        )];
        for (key, c) in &self.clusters {
            lines.push(format!(
                "{key}: Ray head pid {} (gcs 127.0.0.1:{}, client 127.0.0.1:{}, dashboard http://127.0.0.1:{}), worker pids {:?}",
                c.lease.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                c.lease.ports.gcs,
                c.lease.ports.client,
                c.lease.ports.dashboard,
                c.workers.iter().filter_map(RayWorker::pid).collect::<Vec<_>>(),
            ));
        }
        lines.join("\n")
    }

    async fn close(&mut self, keep: bool) -> Vec<String> {
        if keep {
            // --keep: leave the processes running; their pids are in
            // how_to_reach. Dropping the handles would kill them.
            if let Some(nginx) = self.nginx.take() {
                std::mem::forget(nginx);
            }
            for (_, cluster) in std::mem::take(&mut self.clusters) {
                std::mem::forget(cluster.workers);
            }
            return Vec::new();
        }
        let keys: Vec<ObjectKey> = self.clusters.keys().cloned().collect();
        for key in keys {
            self.stop_cluster(&key).await;
        }
        if let Some(mut nginx) = self.nginx.take()
            && let Some(StopOutcome::Killed) = nginx.stop().await
        {
            tracing::warn!(
                "nginx did not exit after SIGTERM in time; its process group was killed"
            );
        }
        // A process that needed SIGKILL is gone all the same: a warning,
        // not a cleanup problem.
        Vec::new()
    }
}
