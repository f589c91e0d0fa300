//! A Ray worker node (`ray start --address=... --block`) joining a local head.

use super::managed::{ManagedProcess, StopOutcome};
use super::ports::{free_port_range, free_ports};
use super::ray_head::says_it_blocks;
use super::venv::RayVenv;
use crate::scratch_dirs::ScratchDir;
use crate::targets::lab::LabError;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Worker ports per node (bounded so nodes never collide).
const WORKER_PORTS: u16 = 20;

/// The Ray node label naming the RayCluster a worker node belongs to: on
/// a head that RayClusters share, each counts the workers carrying its own.
pub const RAYCLUSTER_LABEL: &str = "rayconform.dev/raycluster";

/// A running worker node. Dropping it kills its process group and removes
/// its Ray temp dir.
#[derive(Debug)]
pub struct RayWorker {
    // Declared first: dropped (its process group killed) before the temp
    // dir its processes use is removed.
    process: Option<ManagedProcess>,
    temp_dir: Option<ScratchDir>,
    group: String,
}

/// What a worker node offers: its worker group's `ray start` resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerShape {
    /// The worker group it belongs to.
    pub group: String,
    /// `--num-cpus`.
    pub num_cpus: u32,
    /// `--resources` (a JSON object), when the group declares any.
    pub resources: Option<String>,
    /// The value of its [`RAYCLUSTER_LABEL`] node label, when set.
    pub raycluster: Option<String>,
}

impl Default for WorkerShape {
    fn default() -> Self {
        WorkerShape {
            group: String::new(),
            num_cpus: 1,
            resources: None,
            raycluster: None,
        }
    }
}

impl RayWorker {
    /// Spawns a worker node that joins the plaintext head's GCS at
    /// `gcs_port` (the lab has no worker nodes for TLS heads: see
    /// `model::objects`). Returns once spawned; see
    /// [`RayWorker::wait_started`] (several workers start side by side).
    pub fn spawn(
        venv: &RayVenv,
        gcs_port: u16,
        log_dir: &Path,
        name: &str,
    ) -> Result<RayWorker, LabError> {
        Self::spawn_shaped(venv, gcs_port, log_dir, name, &WorkerShape::default())
    }

    /// [`RayWorker::spawn`] with the worker group's `--num-cpus` and
    /// `--resources`, and its RayCluster's node label.
    pub fn spawn_shaped(
        venv: &RayVenv,
        gcs_port: u16,
        log_dir: &Path,
        name: &str,
        shape: &WorkerShape,
    ) -> Result<RayWorker, LabError> {
        let p = free_ports(6).map_err(|e| LabError::io("choosing free ports", e))?;
        let workers =
            free_port_range(WORKER_PORTS).map_err(|e| LabError::io("choosing worker ports", e))?;
        // As for heads: Python's pymp-* folders stay in the run's work dir.
        let tmp = log_dir.join("tmp");
        std::fs::create_dir_all(&tmp)
            .map_err(|e| LabError::io(format!("creating {}", tmp.display()), e))?;
        // A Ray temp dir of its own ("can be specified per node"): in the
        // head's, nodes starting side by side pick their raylet and plasma
        // socket names racily (the first free `plasma_store.N`), and one
        // fails to bind and misses Ray's 30 s registration. Short, under
        // /tmp, as Ray's unix socket paths are length-limited.
        let temp_dir = ScratchDir::new_in(Path::new("/tmp"), "rc-w")
            .map_err(|e| LabError::io("creating a Ray temp dir under /tmp", e))?;
        let mut cmd = Command::new(&venv.ray);
        // No log monitor: nothing reads worker logs through Ray here (as
        // for heads; see `HeadComponents`).
        cmd.args([
            "start",
            "--block",
            "--disable-usage-stats",
            "--include-log-monitor=false",
        ])
        .arg(format!("--address=127.0.0.1:{gcs_port}"))
        .arg(format!("--temp-dir={}", temp_dir.path().display()))
        .arg("--node-ip-address=127.0.0.1")
        .arg(format!("--num-cpus={}", shape.num_cpus))
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
        if let Some(resources) = &shape.resources {
            cmd.arg(format!("--resources={resources}"));
        }
        if let Some(raycluster) = &shape.raycluster {
            cmd.arg(format!("--labels={RAYCLUSTER_LABEL}={raycluster}"));
        }
        cmd.env_remove("RAY_USE_TLS");
        let process = ManagedProcess::spawn(name, cmd, log_dir)?;
        Ok(RayWorker {
            process: Some(process),
            temp_dir: Some(temp_dir),
            group: shape.group.clone(),
        })
    }

    /// Waits (until `deadline`) for `ray start` to say it now blocks, as a
    /// head must (see `ray_head`): before that a SIGTERM can leave its
    /// children running. On early exit or timeout the worker is stopped and
    /// the error carries its log tail.
    pub async fn wait_started(&mut self, deadline: Instant) -> Result<(), LabError> {
        loop {
            let Some(process) = self.process.as_mut() else {
                return Err(LabError::Missing("the Ray worker was stopped".into()));
            };
            let out_log = process.log_dir().join(format!("{}.out", process.name()));
            if says_it_blocks(&out_log) {
                return Ok(());
            }
            let exited = process.exit_status();
            if exited.is_some() || Instant::now() >= deadline {
                let reason = match exited {
                    Some(status) => format!("`ray start` exited early with {status}"),
                    None => "`ray start` did not say it blocks before the deadline".to_string(),
                };
                let log_tail = process.log_tail(40);
                let log_dir = process.log_dir().to_path_buf();
                self.stop().await;
                return Err(LabError::StartFailed {
                    what: "Ray worker".to_string(),
                    reason,
                    log_dir,
                    log_tail,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The worker group it was started for.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Whether its `ray start --block` process is still running.
    pub fn running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(|p| p.exit_status().is_none())
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

    /// SIGTERM to its pid, SIGKILL to its group after 15 s, then its Ray
    /// temp dir removed. Idempotent.
    pub async fn stop(&mut self) -> Option<StopOutcome> {
        let mut process = self.process.take()?;
        let outcome = process.stop(Duration::from_secs(15)).await;
        self.temp_dir.take();
        Some(outcome)
    }

    /// Its Ray temp dir (`--temp-dir`), while it has one.
    pub fn temp_dir(&self) -> Option<&Path> {
        self.temp_dir.as_ref().map(ScratchDir::path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A venv whose `ray` runs `script` (a shell script).
    fn fake_venv(dir: &Path, script: &str) -> RayVenv {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let ray = bin.join("ray");
        std::fs::write(&ray, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&ray, std::fs::Permissions::from_mode(0o755)).unwrap();
        RayVenv {
            root: dir.to_path_buf(),
            ray,
            python: bin.join("python"),
        }
    }

    #[tokio::test]
    async fn a_worker_is_started_only_once_ray_start_blocks() {
        // Running but still starting up: not started.
        let dir = tempfile::tempdir().unwrap();
        let venv = fake_venv(dir.path(), "echo joining the cluster\nexec sleep 60");
        let mut worker = RayWorker::spawn(&venv, 1, &dir.path().join("logs"), "w").unwrap();
        let pid = worker.pid().unwrap();
        let started = Instant::now();
        let err = worker
            .wait_started(Instant::now() + Duration::from_millis(1500))
            .await
            .expect_err("a worker that never blocks is not started")
            .to_string();
        assert!(err.contains("did not say it blocks"), "{err}");
        assert!(err.contains("joining the cluster"), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(1500));
        assert_eq!(worker.pid(), None, "the worker was stopped");
        assert!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err(),
            "pid {pid} still alive"
        );

        // An early exit is reported as such, with the log tail.
        let dir = tempfile::tempdir().unwrap();
        let venv = fake_venv(dir.path(), "echo \"no head at $*\" >&2\nexit 1");
        let mut worker = RayWorker::spawn(&venv, 1, &dir.path().join("logs"), "w").unwrap();
        let err = worker
            .wait_started(Instant::now() + Duration::from_secs(10))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("exited early"), "{err}");
        assert!(err.contains("no head at start --block"), "{err}");

        // Blocking: started.
        let dir = tempfile::tempdir().unwrap();
        let venv = fake_venv(
            dir.path(),
            &format!(
                "echo '{}'\nexec sleep 60",
                super::super::ray_head::BLOCKING_LINE
            ),
        );
        let mut worker = RayWorker::spawn(&venv, 1, &dir.path().join("logs"), "w").unwrap();
        worker
            .wait_started(Instant::now() + Duration::from_secs(10))
            .await
            .expect("a worker whose ray start blocks is started");
        worker.stop().await;
    }

    #[tokio::test]
    async fn a_shaped_worker_passes_its_groups_cpus_and_resources() {
        let dir = tempfile::tempdir().unwrap();
        let venv = fake_venv(dir.path(), "echo \"args: $*\"\nexec sleep 60");
        let shape = WorkerShape {
            group: "large".into(),
            num_cpus: 2,
            resources: Some("{\"large\":1}".into()),
            raycluster: Some("raycluster-7".into()),
        };
        let mut worker =
            RayWorker::spawn_shaped(&venv, 7, &dir.path().join("logs"), "w", &shape).unwrap();
        assert_eq!(worker.group(), "large");
        let out = dir.path().join("logs").join("w.out");
        let deadline = Instant::now() + Duration::from_secs(10);
        let text = loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if text.contains("args:") || Instant::now() > deadline {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(text.contains("--num-cpus=2"), "{text}");
        assert!(text.contains("--resources={\"large\":1}"), "{text}");
        assert!(text.contains("--address=127.0.0.1:7"), "{text}");
        assert!(
            text.contains("--labels=rayconform.dev/raycluster=raycluster-7"),
            "{text}"
        );
        let temp_dir = worker.temp_dir().expect("a temp dir").to_path_buf();
        assert!(
            text.contains(&format!("--temp-dir={}", temp_dir.display())),
            "{text}"
        );
        assert!(temp_dir.is_dir());
        assert!(worker.running());
        worker.stop().await;
        assert!(!worker.running());
        assert!(
            !temp_dir.exists(),
            "its temp dir is removed once it stopped"
        );
    }
}
