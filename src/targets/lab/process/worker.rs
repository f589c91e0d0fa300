//! A Ray worker node (`ray start --address=... --block`) joining a local head.

use super::managed::{ManagedProcess, StopOutcome};
use super::ports::{free_port_range, free_ports};
use super::ray_head::RayTls;
use super::venv::RayVenv;
use crate::targets::lab::LabError;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Worker ports per node (bounded so nodes never collide).
const WORKER_PORTS: u16 = 20;

/// A running worker node. Dropping it kills its process group.
#[derive(Debug)]
pub struct RayWorker {
    process: Option<ManagedProcess>,
}

impl RayWorker {
    /// Starts a worker node that joins the head's GCS at `gcs_port`, with the
    /// head's TLS files when it has TLS. Returns once spawned: readiness is
    /// the head seeing the node alive (see the session's wait).
    pub fn start(
        venv: &RayVenv,
        gcs_port: u16,
        tls: Option<&RayTls>,
        log_dir: &Path,
        name: &str,
    ) -> Result<RayWorker, LabError> {
        let p = free_ports(6).map_err(|e| LabError::io("choosing free ports", e))?;
        let workers =
            free_port_range(WORKER_PORTS).map_err(|e| LabError::io("choosing worker ports", e))?;
        // As for heads: Python's pymp-* folders stay in the run's work dir.
        let tmp = log_dir.join("tmp");
        std::fs::create_dir_all(&tmp)
            .map_err(|e| LabError::io(format!("creating {}", tmp.display()), e))?;
        let mut cmd = Command::new(&venv.ray);
        cmd.args(["start", "--block", "--disable-usage-stats"])
            .arg(format!("--address=127.0.0.1:{gcs_port}"))
            .arg("--node-ip-address=127.0.0.1")
            .arg("--num-cpus=1")
            .arg(format!("--node-manager-port={}", p[0]))
            .arg(format!("--object-manager-port={}", p[1]))
            .arg(format!("--dashboard-agent-listen-port={}", p[2]))
            .arg(format!("--dashboard-agent-grpc-port={}", p[3]))
            .arg(format!("--runtime-env-agent-port={}", p[4]))
            .arg(format!("--metrics-export-port={}", p[5]))
            .arg(format!("--min-worker-port={workers}"))
            .arg(format!("--max-worker-port={}", workers + WORKER_PORTS - 1))
            .arg("--object-store-memory=100000000")
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .env("TMPDIR", &tmp);
        match tls {
            Some(tls) => {
                cmd.env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
                    .env("RAY_USE_TLS", "1")
                    .env("RAY_TLS_SERVER_CERT", &tls.server_cert)
                    .env("RAY_TLS_SERVER_KEY", &tls.server_key)
                    .env("RAY_TLS_CA_CERT", &tls.ca_cert);
            }
            None => {
                cmd.env_remove("RAY_USE_TLS");
            }
        }
        let process = ManagedProcess::spawn(name, cmd, log_dir)?;
        Ok(RayWorker {
            process: Some(process),
        })
    }

    /// The pid of its `ray start --block` process, while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ManagedProcess::pid)
    }

    /// The last lines of its stdout/stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process
            .as_ref()
            .map(|p| p.log_tail(lines))
            .unwrap_or_default()
    }

    /// SIGTERM to its pid, SIGKILL to its group after 15 s. Idempotent.
    pub async fn stop(&mut self) -> Option<StopOutcome> {
        let mut process = self.process.take()?;
        Some(process.stop(Duration::from_secs(15)).await)
    }
}
