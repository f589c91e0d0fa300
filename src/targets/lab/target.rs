//! [`LabTarget`]: the `lab` target's entry point.

use super::head_pool::HeadPool;
use super::nginx::STREAM_MODULE;
use super::nginx_conf::{NginxSettings, render};
use super::objects::{LabObject, RayPort, ServiceObject};
use super::routes::{LocalHead, RoutingInput, compute};
use super::session::{LabSession, LabSettings};
use super::support::{planned_objects, unsupported_reason};
use crate::scenario::{Scenario, TargetKind};
use crate::targets::{PlanError, ScenarioRun, Session, StepError, Target, TargetPlan};
use crate::tools::{NGINX, PYTHON3};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs scenarios with real Ray and nginx on 127.0.0.1.
pub struct LabTarget {
    project_root: PathBuf,
    pool: Arc<HeadPool>,
}

impl LabTarget {
    /// A lab target whose Ray venv lives under `project_root/.lab`.
    pub fn new(project_root: PathBuf) -> Self {
        let pool = Arc::new(HeadPool::new(&project_root));
        LabTarget { project_root, pool }
    }

    /// The project root it was built with.
    pub fn project_root(&self) -> &Path {
        &self.project_root
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

    fn plan(&self, scenario: &Scenario, project_root: &Path) -> Result<TargetPlan, PlanError> {
        let placeholder = "<port chosen at run time>";
        let mut variables: BTreeMap<String, String> = [
            ("NAMESPACE", "<NAMESPACE>".to_string()),
            ("CLUSTER_NAME", "lab".to_string()),
            ("INGRESS_HOST", "localhost".to_string()),
            ("INGRESS_HTTP", format!("localhost:{placeholder}")),
            ("INGRESS_HTTPS", format!("localhost:{placeholder}")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let settings = LabSettings::from_installs(&scenario.install, &variables)?;
        for port in settings.tcp_services.keys() {
            variables.insert(
                format!("INGRESS_TCP_{port}"),
                format!("localhost:{placeholder}"),
            );
        }
        let objects = planned_objects(scenario, project_root);
        let mut processes = String::new();
        let _ = writeln!(
            processes,
            "nginx (ingress-nginx stand-in): HTTP, HTTPS{} listeners on 127.0.0.1; ssl passthrough {}",
            if settings.tcp_services.is_empty() {
                ""
            } else {
                " and tcp-services"
            },
            if settings.ssl_passthrough {
                "on"
            } else {
                "off"
            }
        );
        // Plan-time stand-ins: fake local ports so the config can be shown.
        let mut heads = Vec::new();
        let mut services: Vec<ServiceObject> = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            match object {
                LabObject::RayCluster(rc) => {
                    let _ = writeln!(
                        processes,
                        "Ray {} head for RayCluster {} (TLS {}, --num-cpus {}){}; Service {}-head-svc {}",
                        super::venv::RAY_VERSION,
                        rc.name,
                        if rc.tls {
                            "on, from the run's CA"
                        } else {
                            "off; shared with other scenarios"
                        },
                        rc.head_num_cpus.unwrap_or(1).max(1),
                        if rc.worker_replicas > 0 {
                            format!(" + {} worker node(s)", rc.worker_replicas)
                        } else {
                            String::new()
                        },
                        rc.name,
                        if settings.head_cluster_ip_service {
                            "with a ClusterIP"
                        } else {
                            "headless"
                        },
                    );
                    let base = 20000 + 10 * i as u16;
                    heads.push(LocalHead {
                        cluster: rc.name.clone(),
                        namespace: rc.namespace.clone(),
                        ports: [
                            (RayPort::Gcs, base),
                            (RayPort::Client, base + 1),
                            (RayPort::Dashboard, base + 2),
                        ]
                        .into_iter()
                        .collect(),
                    });
                    services.push(ServiceObject::kuberay_head(
                        &rc.name,
                        &rc.namespace,
                        !settings.head_cluster_ip_service,
                    ));
                }
                LabObject::Service(s) => services.push(s.clone()),
                _ => {}
            }
        }
        let ingresses = if settings.ingress_nginx {
            objects
                .iter()
                .filter_map(|o| match o {
                    LabObject::Ingress(i) => Some(i),
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        let tcp_services = settings
            .tcp_services
            .iter()
            .enumerate()
            .map(|(i, (port, value))| (port.clone(), (19000 + i as u16, value.clone())))
            .collect();
        let routes = compute(&RoutingInput {
            services: services.iter().collect(),
            ingresses,
            heads: heads.iter().collect(),
            ssl_passthrough_enabled: settings.ssl_passthrough,
            tcp_services,
        });
        let conf = render(
            &NginxSettings {
                stream_module: STREAM_MODULE.into(),
                http_port: 18080,
                https_port: 18443,
                tls_internal_port: 18442,
                ssl_passthrough: settings.ssl_passthrough,
                server_cert: "<run dir>/server.crt".into(),
                server_key: "<run dir>/server.key".into(),
                underscores_in_headers: settings.underscores_in_headers,
            },
            &routes,
        );
        Ok(TargetPlan {
            variables,
            sections: vec![
                ("lab processes".to_string(), processes),
                (
                    "nginx.conf after every apply (example ports: http 18080, https 18443, \
                     heads 20000+, tcp 19000+; real ones are chosen at run time)"
                        .to_string(),
                    conf,
                ),
            ],
        })
    }

    async fn open(&self, run: &ScenarioRun) -> Result<Box<dyn Session>, StepError> {
        let session = LabSession::open(run, self.pool.clone()).await?;
        Ok(Box::new(session))
    }

    async fn shutdown(&self, keep: bool) -> Vec<String> {
        self.pool.shutdown(keep).await
    }
}
