//! One scenario run on the lab: the objects it applied, the local processes
//! standing in for them, and the nginx routing to them.

use super::model::config::{IngressPorts, LabSettings};
use super::model::nginx_conf::{NginxSettings, STREAM_MODULE, render};
use super::model::objects::{
    LabObject, ObjectKey, RayClusterObject, RayPort, ServiceObject, TranslateError, translate,
};
use super::model::routes::{LocalHead, RoutingInput, compute};
use super::process::head_pool::{HeadKey, HeadLease, HeadPool};
use super::process::managed::{StopOutcome, tail_of_file};
use super::process::nginx::Nginx;
use super::process::pids::{children_of, is_running};
use super::process::ports::free_ports;
use super::process::ray_head::RayTls;
use super::process::venv::{RAY_VERSION, RayVenv};
use super::process::worker::RayWorker;
use crate::scenario::{Install, RayClusterCondition, WaitSpec, WaitTarget};
use crate::targets::{Manifest, ScenarioRun, Session, StepError};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a Ray head may take to start inside an `apply`.
const HEAD_START_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a reload waits for nginx's old workers to exit.
const RELOAD_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A RayCluster running locally.
struct RunningCluster {
    object: RayClusterObject,
    lease: HeadLease,
    workers: Vec<RayWorker>,
    local: LocalHead,
    head_service: ServiceObject,
}

/// A lab session (see the module docs).
pub struct LabSession {
    run: ScenarioRun,
    pool: Arc<HeadPool>,
    settings: LabSettings,
    ports: IngressPorts,
    variables: BTreeMap<String, String>,
    ingress_cert: (PathBuf, PathBuf),
    nginx: Option<Nginx>,
    conf: String,
    objects: BTreeMap<ObjectKey, LabObject>,
    clusters: BTreeMap<ObjectKey, RunningCluster>,
    notes: Vec<String>,
    route_notes: Vec<String>,
    /// Every upstream defect the lab's own model stood in for during this
    /// session (kept after the route that used it is gone).
    modelled: Vec<String>,
}

impl LabSession {
    /// Chooses the ports, starts nginx with no routes (every request meets
    /// the default backend) and returns the session.
    pub async fn open(run: &ScenarioRun, pool: Arc<HeadPool>) -> Result<LabSession, StepError> {
        let tcp_keys: Vec<String> = run
            .scenario
            .install
            .iter()
            .filter_map(|i| match i {
                Install::IngressNginx(n) => {
                    Some(n.tcp_services.keys().cloned().collect::<Vec<_>>())
                }
                _ => None,
            })
            .flatten()
            .collect();
        let chosen = free_ports(3 + tcp_keys.len())
            .map_err(|e| StepError::broken(format!("cannot choose free ports: {e}")))?;
        let ports = IngressPorts {
            http: chosen[0],
            https: chosen[1],
            tls_internal: chosen[2],
            tcp: tcp_keys
                .iter()
                .cloned()
                .zip(chosen[3..].iter().copied())
                .collect(),
        };
        let mut variables: BTreeMap<String, String> = [
            ("NAMESPACE", run.namespace.clone()),
            ("CLUSTER_NAME", "lab".to_string()),
            ("INGRESS_HOST", "localhost".to_string()),
            ("INGRESS_HTTP", format!("localhost:{}", ports.http)),
            ("INGRESS_HTTPS", format!("localhost:{}", ports.https)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (port, local) in &ports.tcp {
            variables.insert(format!("INGRESS_TCP_{port}"), format!("localhost:{local}"));
        }
        let settings = LabSettings::from_installs(&run.scenario.install, &variables)
            .map_err(StepError::broken)?;
        let ingress_cert = ingress_certificate(run)?;
        let mut session = LabSession {
            run: run.clone(),
            pool,
            settings,
            ports,
            variables,
            ingress_cert,
            nginx: None,
            conf: String::new(),
            objects: BTreeMap::new(),
            clusters: BTreeMap::new(),
            notes: Vec::new(),
            route_notes: Vec::new(),
            modelled: Vec::new(),
        };
        (run.progress)("starting nginx (ingress stand-in)");
        session.sync_nginx().await?;
        Ok(session)
    }

    fn authority_tls(&self, cluster: &str) -> Result<RayTls, StepError> {
        let spec = self.run.scenario.certificates.as_ref().ok_or_else(|| {
            StepError::broken(format!(
                "RayCluster `{cluster}` sets RAY_USE_TLS=1 but the scenario has no `certificates:`"
            ))
        })?;
        let authority = self
            .run
            .certificates
            .as_ref()
            .and_then(|set| set.get(&spec.ca))
            .ok_or_else(|| {
                StepError::broken(format!(
                    "certificates of authority `{}` were not generated",
                    spec.ca
                ))
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
        let head_key = HeadKey {
            tls: tls.clone(),
            num_cpus: rc.head_num_cpus.unwrap_or(1).max(1),
        };
        (self.run.progress)(&format!("starting a Ray head for RayCluster {}", rc.name));
        let lease = self
            .pool
            .acquire(head_key, HEAD_START_TIMEOUT)
            .await
            .map_err(|e| StepError::broken(format!("RayCluster {}: {e}", rc.name)))?;
        let mut workers = Vec::new();
        if rc.worker_replicas > 0 {
            let venv = RayVenv::locate(&self.run.project_root)
                .map_err(|e| StepError::broken(e.to_string()));
            let venv = match venv {
                Ok(v) => v,
                Err(e) => {
                    self.pool.release(lease.id).await;
                    return Err(e);
                }
            };
            for i in 0..rc.worker_replicas {
                let name = format!("ray-worker-{}-{i}", rc.name);
                let log_dir = self.run.work_dir.join("ray-workers");
                match RayWorker::start(&venv, lease.ports.gcs, tls.as_ref(), &log_dir, &name) {
                    Ok(w) => workers.push(w),
                    Err(e) => {
                        for mut w in workers {
                            w.stop().await;
                        }
                        self.pool.release(lease.id).await;
                        return Err(StepError::broken(format!(
                            "RayCluster {}: worker {i}: {e}",
                            rc.name
                        )));
                    }
                }
            }
        }
        let local = LocalHead {
            cluster: rc.name.clone(),
            namespace: rc.namespace.clone(),
            ports: [
                (RayPort::Gcs, lease.ports.gcs),
                (RayPort::Dashboard, lease.ports.dashboard),
                (RayPort::Client, lease.ports.client),
            ]
            .into_iter()
            .collect(),
        };
        let head_service = ServiceObject::kuberay_head(
            &rc.name,
            &rc.namespace,
            !self.settings.head_cluster_ip_service,
        );
        let summary = format!(
            "RayCluster {}/{} → Ray head pid {} (gcs {}, client {}, dashboard {}; TLS {}; {}), {} worker(s); \
             Service {} synthesized ({})",
            rc.namespace,
            rc.name,
            lease
                .pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into()),
            lease.ports.gcs,
            lease.ports.client,
            lease.ports.dashboard,
            if rc.tls { "on" } else { "off" },
            if lease.reused {
                "shared head from the pool".to_string()
            } else {
                format!("started in {:.1} s", lease.startup_time.as_secs_f64())
            },
            workers.len(),
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
                workers,
                local,
                head_service,
            },
        );
        Ok(summary)
    }

    async fn stop_cluster(&mut self, key: &ObjectKey) -> Vec<String> {
        let Some(mut cluster) = self.clusters.remove(key) else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        for worker in &mut cluster.workers {
            worker.stop().await;
        }
        problems.extend(self.pool.release(cluster.lease.id).await);
        self.notes.push(format!(
            "RayCluster {key} deleted: its head lease was released"
        ));
        problems
    }

    /// Renders the routes; starts or reloads nginx when the config changed.
    async fn sync_nginx(&mut self) -> Result<(), StepError> {
        let services: Vec<&ServiceObject> = self
            .objects
            .values()
            .filter_map(|o| match o {
                LabObject::Service(s) => Some(s),
                _ => None,
            })
            .chain(self.clusters.values().map(|c| &c.head_service))
            .collect();
        let ingresses = self
            .objects
            .values()
            .filter_map(|o| match o {
                LabObject::Ingress(i) => Some(i),
                _ => None,
            })
            .collect::<Vec<_>>();
        let mut extra_notes = Vec::new();
        let ingresses = if self.settings.ingress_nginx {
            ingresses
        } else {
            for i in &ingresses {
                extra_notes.push(format!(
                    "Ingress {}/{} has no effect: the scenario installs no ingress-nginx",
                    i.namespace, i.name
                ));
            }
            Vec::new()
        };
        for i in &ingresses {
            extra_notes.extend(i.ignored.iter().cloned());
        }
        let tcp_services = self
            .settings
            .tcp_services
            .iter()
            .filter_map(|(port, value)| {
                self.ports
                    .tcp
                    .get(port)
                    .map(|local| (port.clone(), (*local, value.clone())))
            })
            .collect();
        let mut routes = compute(&RoutingInput {
            services,
            ingresses,
            heads: self.clusters.values().map(|c| &c.local).collect(),
            ssl_passthrough_enabled: self.settings.ssl_passthrough,
            tcp_services,
        });
        routes.notes.extend(extra_notes);
        let settings = NginxSettings {
            stream_module: STREAM_MODULE.into(),
            http_port: self.ports.http,
            https_port: self.ports.https,
            tls_internal_port: self.ports.tls_internal,
            ssl_passthrough: self.settings.ssl_passthrough,
            server_cert: self.ingress_cert.0.clone(),
            server_key: self.ingress_cert.1.clone(),
            underscores_in_headers: self.settings.underscores_in_headers,
        };
        let conf = render(&settings, &routes);
        for m in &routes.modelled {
            if !self.modelled.contains(m) {
                self.modelled.push(m.clone());
            }
        }
        self.route_notes = routes.notes;
        if self.nginx.is_some() && conf == self.conf {
            return Ok(());
        }
        match self.nginx.as_mut() {
            Some(nginx) => {
                let old_workers = nginx.pid().map(children_of).unwrap_or_default();
                nginx
                    .reload(&conf)
                    .await
                    .map_err(|e| StepError::broken(format!("nginx reload: {e}")))?;
                // Until the old workers exit they still accept connections
                // with the old config: wait so the next step sees the new one.
                let deadline = Instant::now() + RELOAD_DRAIN_TIMEOUT;
                while old_workers.iter().any(|p| is_running(*p)) {
                    if Instant::now() >= deadline {
                        self.notes.push(format!(
                            "old nginx workers {old_workers:?} still running {RELOAD_DRAIN_TIMEOUT:?} after a reload"
                        ));
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            None => {
                let nginx = Nginx::start(&self.run.work_dir, &conf)
                    .await
                    .map_err(|e| StepError::broken(format!("nginx: {e}")))?;
                self.nginx = Some(nginx);
            }
        }
        self.conf = conf;
        Ok(())
    }

    fn translate_all(&self, manifests: &[Manifest]) -> Result<Vec<LabObject>, StepError> {
        manifests
            .iter()
            .map(|m| {
                translate(m, &self.run.namespace).map_err(|e| match e {
                    TranslateError::Unsupported(_) => StepError::Unsupported(e.to_string()),
                    TranslateError::Invalid(_) => StepError::broken(e.to_string()),
                })
            })
            .collect()
    }

    /// Where a RayCluster stands: `Ok(description)` when the condition
    /// holds, `Err(last observed state)` otherwise.
    async fn cluster_state(&self, key: &ObjectKey, spec: &WaitSpec) -> Result<String, String> {
        let Some(cluster) = self.clusters.get(key) else {
            return Err(format!("{key} was not applied in this scenario"));
        };
        let ports = cluster.lease.ports;
        let version = http_get_local(ports.dashboard, "/api/version").await;
        if !version
            .as_deref()
            .is_some_and(|b| b.contains("ray_version"))
        {
            return Err(format!(
                "head dashboard 127.0.0.1:{} does not answer /api/version",
                ports.dashboard
            ));
        }
        if TcpStream::connect(("127.0.0.1", ports.client))
            .await
            .is_err()
        {
            return Err(format!(
                "head client port 127.0.0.1:{} refuses connections",
                ports.client
            ));
        }
        let wanted_workers = match spec.condition.unwrap_or(RayClusterCondition::Ready) {
            RayClusterCondition::Ready => {
                spec.ready_workers.unwrap_or(cluster.object.worker_replicas)
            }
            _ => spec.ready_workers.unwrap_or(0),
        };
        if wanted_workers > 0 {
            let alive = alive_nodes(ports.dashboard).await.unwrap_or(0);
            let workers = alive.saturating_sub(1);
            if workers < wanted_workers {
                return Err(format!(
                    "{workers} of {wanted_workers} worker node(s) alive"
                ));
            }
        }
        Ok(format!(
            "head up (dashboard 127.0.0.1:{}, client 127.0.0.1:{}), {wanted_workers} worker(s) required and alive",
            ports.dashboard, ports.client
        ))
    }
}

/// The TLS certificate of the ingress's own HTTPS servers: the run's server
/// certificate when the scenario has certificates, else a lab-only CA.
fn ingress_certificate(run: &ScenarioRun) -> Result<(PathBuf, PathBuf), StepError> {
    if let (Some(spec), Some(set)) = (&run.scenario.certificates, &run.certificates)
        && let Some(a) = set.get(&spec.ca)
    {
        return Ok((a.server_cert.clone(), a.server_key.clone()));
    }
    let set = crate::tls::generate(&run.work_dir.join("lab-ingress-certs"), "lab-ingress", &[])
        .map_err(|e| StepError::broken(format!("cannot generate the ingress certificate: {e}")))?;
    let a = set
        .get("lab-ingress")
        .ok_or_else(|| StepError::broken("ingress certificate missing after generation"))?;
    Ok((a.server_cert.clone(), a.server_key.clone()))
}

/// A GET over HTTP/1.0 to 127.0.0.1 (2 s bound); the body on 200.
async fn http_get_local(port: u16, path: &str) -> Option<String> {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.contains(" 200 ").then(|| body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}

/// Nodes the head's dashboard reports ALIVE.
async fn alive_nodes(dashboard: u16) -> Option<u32> {
    let body = http_get_local(dashboard, "/api/v0/nodes?limit=100").await?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    fn count(v: &serde_json::Value) -> u32 {
        match v {
            serde_json::Value::Object(o) => {
                let own = u32::from(
                    o.get("state").and_then(|s| s.as_str()) == Some("ALIVE")
                        && o.contains_key("node_id"),
                );
                own + o.values().map(count).sum::<u32>()
            }
            serde_json::Value::Array(a) => a.iter().map(count).sum(),
            _ => 0,
        }
    }
    Some(count(&json))
}

#[async_trait]
impl Session for LabSession {
    fn variables(&self) -> BTreeMap<String, String> {
        self.variables.clone()
    }

    async fn apply(&mut self, manifests: &[Manifest]) -> Result<String, StepError> {
        let objects = self.translate_all(manifests)?;
        let mut done = Vec::new();
        for object in objects {
            let key = object.key();
            match object {
                LabObject::RayCluster(rc) => {
                    if let Some(running) = self.clusters.get(&key) {
                        if running.object == rc {
                            done.push(format!("{key} unchanged"));
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
            let mut text = String::new();
            for file in ["ray-head.out", "ray-head.err"] {
                let path = cluster.lease.log_dir.join(file);
                text.push_str(&format!(
                    "==> {} <==\n{}\n",
                    path.display(),
                    tail_of_file(&path, 60)
                ));
            }
            if let Ok(entries) = std::fs::read_dir(&cluster.lease.ray_log_dir) {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                        ["gcs_server", "raylet", "ray_client_server", "dashboard"]
                            .iter()
                            .any(|prefix| n.starts_with(prefix))
                    })
                    .collect();
                files.sort();
                for path in files {
                    text.push_str(&format!(
                        "==> {} <==\n{}\n",
                        path.display(),
                        tail_of_file(&path, 40)
                    ));
                }
            }
            for worker in &cluster.workers {
                text.push_str(&worker.log_tail(30));
            }
            write(&format!("ray-{}-{}.log", key.namespace, key.name), text);
        }
        written
    }

    fn modelled_defects(&self) -> Vec<String> {
        self.modelled.clone()
    }

    fn how_to_reach(&self) -> String {
        let mut lines = vec![format!(
            "lab nginx pid {}: http localhost:{}, https localhost:{}{} (config {})",
            self.nginx
                .as_ref()
                .and_then(Nginx::pid)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            self.ports.http,
            self.ports.https,
            self.ports
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
        let mut problems = Vec::new();
        let keys: Vec<ObjectKey> = self.clusters.keys().cloned().collect();
        for key in keys {
            problems.extend(self.stop_cluster(&key).await);
        }
        if let Some(mut nginx) = self.nginx.take()
            && let Some(StopOutcome::Killed) = nginx.stop().await
        {
            tracing::warn!(
                "nginx did not exit after SIGTERM in time; its process group was killed"
            );
        }
        problems
    }
}
