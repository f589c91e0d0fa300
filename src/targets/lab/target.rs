//! [`LabTarget`]: the `lab` target's entry point.

use super::head_needs::{NO_DASHBOARD, SharedDashboards, head_for};
use super::model::config::{IngressPorts, LabModel, PortText, tcp_service_ports};
use super::model::nginx_conf::STREAM_MODULE;
use super::model::objects::{LabObject, ObjectKey, RayPort};
use super::model::routes::LocalHead;
use super::process::head_pool::HeadPool;
use super::process::venv::RAY_VERSION;
use super::session::LabSession;
use super::support::{expected_cost, planned_objects, unsupported_reason};
use crate::scenario::{Scenario, TargetKind};
use crate::targets::{PlanError, ScenarioRun, Session, StepError, Target, TargetPlan};
use crate::tools::{NGINX, PYTHON3};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The title of the plan's section holding the nginx config.
pub const PLANNED_CONFIG_SECTION: &str = "nginx.conf after every apply (example ports: http 18080, \
     https 18443, heads 20000+, tcp 19000+; real ones are chosen at run time)";

/// Runs scenarios with real Ray and nginx on 127.0.0.1.
pub struct LabTarget {
    project_root: PathBuf,
    pool: Arc<HeadPool>,
    shared_dashboards: Mutex<SharedDashboards>,
}

impl LabTarget {
    /// A lab target whose Ray venv lives under `project_root/.lab`.
    pub fn new(project_root: PathBuf) -> Self {
        let pool = Arc::new(HeadPool::new(&project_root));
        LabTarget {
            project_root,
            pool,
            shared_dashboards: Mutex::new(SharedDashboards::default()),
        }
    }

    /// The project root it was built with.
    pub fn project_root(&self) -> &Path {
        &self.project_root
    }

    /// What [`Target::prepare`] decided (every shared head runs the
    /// dashboard when it was not called).
    fn shared_dashboards(&self) -> SharedDashboards {
        *self
            .shared_dashboards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Target for LabTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Lab
    }

    fn unavailable_reason(&self) -> Option<String> {
        if let Err(e) = PYTHON3.find() {
            return Some(e);
        }
        if let Err(e) = NGINX.find() {
            return Some(e);
        }
        if !Path::new(STREAM_MODULE).exists() {
            return Some(format!(
                "nginx's stream module {STREAM_MODULE} not found: {}",
                NGINX.install_hint
            ));
        }
        None
    }

    fn unsupported_reason(&self, scenario: &Scenario, project_root: &Path) -> Option<String> {
        unsupported_reason(scenario, project_root)
    }

    /// The CPUs plus one, at most 4: the lab's work is Ray's process
    /// start-ups, CPU-bound with short waits between (on 2 cores the suite
    /// took 39 s with 2, 29 s with 3 and 32 s with 4 at once).
    fn default_jobs(&self) -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_add(1)
            .min(4)
    }

    fn expected_cost(&self, scenario: &Scenario, project_root: &Path) -> u32 {
        expected_cost(scenario, project_root)
    }

    /// Shared heads run the dashboard only where a scenario of the run may
    /// reach it (see [`SharedDashboards`]).
    fn prepare(&self, scenarios: &[&Scenario], project_root: &Path) {
        let needs = SharedDashboards::for_run(scenarios, project_root);
        tracing::debug!(?needs, "lab: dashboards of the shared Ray heads");
        *self
            .shared_dashboards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = needs;
    }

    fn plan(&self, scenario: &Scenario, project_root: &Path) -> Result<TargetPlan, PlanError> {
        let ports = IngressPorts::example(&tcp_service_ports(&scenario.install));
        let lab = LabModel::new(
            "<NAMESPACE>",
            &scenario.install,
            ports,
            PortText::Placeholder,
            ("<run dir>/server.crt".into(), "<run dir>/server.key".into()),
        )
        .map_err(|e| PlanError::Unresolved(e.to_string()))?;
        let objects = planned_objects(scenario, project_root);
        let shared_dashboards = self.shared_dashboards();
        let mut processes = String::new();
        let _ = writeln!(
            processes,
            "nginx (ingress-nginx stand-in): HTTP, HTTPS{} listeners on 127.0.0.1; ssl passthrough {}",
            if lab.settings.tcp_services.is_empty() {
                ""
            } else {
                " and tcp-services"
            },
            if lab.settings.ssl_passthrough {
                "on"
            } else {
                "off"
            }
        );
        // What the session holds after every apply: objects by key (a later
        // apply replaces an earlier one), a head per RayCluster, here on
        // example ports so the config can be shown.
        let mut applied: BTreeMap<ObjectKey, LabObject> = BTreeMap::new();
        let mut heads: BTreeMap<ObjectKey, LocalHead> = BTreeMap::new();
        for (i, object) in objects.into_iter().enumerate() {
            if let LabObject::RayCluster(rc) = &object {
                let head_service = lab.head_service(&rc.name, &rc.namespace);
                let choice = head_for(scenario, rc, shared_dashboards);
                let _ = writeln!(
                    processes,
                    "Ray {} head for RayCluster {} (TLS {}, --num-cpus {}, {}){}; Service {} {}",
                    RAY_VERSION,
                    rc.name,
                    if rc.tls {
                        "on, from the run's CA"
                    } else {
                        "off"
                    },
                    rc.head_num_cpus.unwrap_or(1).max(1),
                    if choice.dashboard {
                        "dashboard"
                    } else {
                        NO_DASHBOARD
                    },
                    match (choice.hosts_workers, choice.own) {
                        (false, _) => ", shared with other scenarios".to_string(),
                        (true, true) => format!(
                            " + {} worker node(s), on a head of its own",
                            rc.worker_replicas
                        ),
                        (true, false) => format!(
                            " + {} worker node(s), on the head RayClusters with workers share",
                            rc.worker_replicas
                        ),
                    },
                    head_service.name,
                    if head_service.headless {
                        "headless"
                    } else {
                        "with a ClusterIP"
                    },
                );
                let base = 20000 + 10 * i as u16;
                heads.insert(
                    object.key(),
                    LocalHead {
                        cluster: rc.name.clone(),
                        namespace: rc.namespace.clone(),
                        ports: [
                            Some((RayPort::Gcs, base)),
                            Some((RayPort::Client, base + 1)),
                            choice.dashboard.then_some((RayPort::Dashboard, base + 2)),
                        ]
                        .into_iter()
                        .flatten()
                        .collect(),
                    },
                );
            } else {
                applied.insert(object.key(), object);
            }
        }
        let config = lab.render(applied.values(), &heads.values().collect::<Vec<_>>());
        Ok(TargetPlan {
            variables: lab.variables,
            sections: vec![
                ("lab processes".to_string(), processes),
                (PLANNED_CONFIG_SECTION.to_string(), config.conf),
            ],
        })
    }

    async fn open(&self, run: &ScenarioRun) -> Result<Box<dyn Session>, StepError> {
        let session = LabSession::open(run, self.pool.clone(), self.shared_dashboards()).await?;
        Ok(Box::new(session))
    }

    async fn shutdown(&self, keep: bool) -> Vec<String> {
        self.pool.shutdown(keep).await
    }
}
