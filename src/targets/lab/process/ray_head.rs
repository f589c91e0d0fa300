//! A real Ray head (`ray start --head --block`) on 127.0.0.1 with free ports.

use super::dashboard;
use super::managed::{ManagedProcess, StopOutcome};
use super::ports::{free_port_range, free_ports};
use super::venv::RayVenv;
use crate::scratch_dirs::ScratchDir;
use crate::targets::lab::LabError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long a stop waits after SIGTERM before killing the process group.
/// Ray's children are normally gone 4–5 s after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(15);

/// How many worker ports each head may use (bounded so parallel heads never
/// collide).
const WORKER_PORTS: u16 = 40;

/// Ray's TLS files (Ray's TLS is always mutual: the server cert is also the
/// cert Ray presents as a client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RayTls {
    /// `RAY_TLS_SERVER_CERT`.
    pub server_cert: PathBuf,
    /// `RAY_TLS_SERVER_KEY`.
    pub server_key: PathBuf,
    /// `RAY_TLS_CA_CERT`.
    pub ca_cert: PathBuf,
}

/// How to start one Ray head.
#[derive(Debug, Clone)]
pub struct RayHeadConfig {
    /// The venv with Ray.
    pub venv: RayVenv,
    /// Folder for our logs of the head (`ray-head.out`, `ray-head.err`).
    pub work_dir: PathBuf,
    /// TLS on every Ray gRPC port when set.
    pub tls: Option<RayTls>,
    /// `--num-cpus`.
    pub num_cpus: u32,
    /// Which of Ray's optional head processes run.
    pub components: HeadComponents,
}

/// Ray's optional head processes: what runs besides the GCS, the raylet
/// (with its dashboard agent and runtime env agent) and the Ray client
/// server, which every head has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadComponents {
    /// The dashboard (`--include-dashboard`): the web UI and its HTTP API
    /// on the dashboard port, about 4.5 CPU-seconds per head on the 2-core
    /// machine, most of it in its module processes.
    pub dashboard: bool,
    /// The autoscaler monitor and the log monitor (`--no-monitor`,
    /// `--include-log-monitor=false` when off): nothing the probes reach,
    /// about 2 CPU-seconds per head.
    pub monitors: bool,
}

impl HeadComponents {
    /// What `ray start --head` starts by default (a KubeRay head pod without
    /// in-tree autoscaling runs these too).
    pub const RAY_DEFAULTS: HeadComponents = HeadComponents {
        dashboard: true,
        monitors: true,
    };

    /// A lab head: the dashboard when asked for, never the monitors.
    pub fn lab(dashboard: bool) -> HeadComponents {
        HeadComponents {
            dashboard,
            monitors: false,
        }
    }
}

impl Default for HeadComponents {
    /// A lab head with its dashboard.
    fn default() -> Self {
        HeadComponents::lab(true)
    }
}

/// The ports a head listens on that callers connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RayPorts {
    /// GCS (`--port`).
    pub gcs: u16,
    /// Ray client server (`--ray-client-server-port`).
    pub client: u16,
    /// Dashboard HTTP (`--dashboard-port`), plain HTTP even with TLS on.
    pub dashboard: u16,
}

/// A running Ray head. Dropping it kills its process group.
#[derive(Debug)]
pub struct RayHead {
    /// Where to reach it.
    pub ports: RayPorts,
    process: Option<ManagedProcess>,
    temp_dir: ScratchDir,
    log_dir: PathBuf,
    /// How long `start` took until the head was ready.
    pub startup_time: Duration,
    /// Which optional processes it runs.
    pub components: HeadComponents,
}

/// What `ray start --block` prints once it has started everything (Ray
/// 2.60 `scripts.py`, for heads and worker nodes alike), on stdout.
pub const BLOCKING_LINE: &str = "This command will now block forever until terminated by a signal.";

/// Whether the `ray start --block` process logging to `out_log` has printed
/// that it now blocks until a signal: its start-up is over and its signal
/// handling in place.
pub fn says_it_blocks(out_log: &Path) -> bool {
    std::fs::read(out_log).is_ok_and(|out| String::from_utf8_lossy(&out).contains(BLOCKING_LINE))
}

impl RayHead {
    /// Starts a head and waits (at most `timeout`) until the dashboard (when
    /// it has one) answers `/api/version`, the client port accepts TCP and
    /// `ray start` says it
    /// has entered its `--block` loop. On timeout or early exit the process
    /// is stopped and the error carries its log tail.
    pub async fn start(cfg: RayHeadConfig, timeout: Duration) -> Result<RayHead, LabError> {
        let started = Instant::now();
        let log_dir = cfg.work_dir.clone();
        // Ray's unix socket paths are length-limited: keep its temp dir short.
        let temp_dir = ScratchDir::new_in(Path::new("/tmp"), "rc-")
            .map_err(|e| LabError::io("creating Ray temp dir under /tmp", e))?;
        let p = free_ports(9).map_err(|e| LabError::io("choosing free ports", e))?;
        let worker_start =
            free_port_range(WORKER_PORTS).map_err(|e| LabError::io("choosing worker ports", e))?;
        let ports = RayPorts {
            gcs: p[0],
            client: p[1],
            dashboard: p[2],
        };

        // Python's multiprocessing leaves an empty pymp-* folder in TMPDIR
        // when Ray's processes are stopped: keep those inside the head's
        // work dir, which is removed with it, instead of in /tmp.
        let tmp = cfg.work_dir.join("tmp");
        std::fs::create_dir_all(&tmp)
            .map_err(|e| LabError::io(format!("creating {}", tmp.display()), e))?;
        let mut cmd = Command::new(&cfg.venv.ray);
        cmd.args(["start", "--head", "--block", "--disable-usage-stats"])
            .arg(format!("--port={}", ports.gcs))
            .arg(format!("--ray-client-server-port={}", ports.client))
            .arg("--dashboard-host=127.0.0.1")
            .arg(format!("--dashboard-port={}", ports.dashboard))
            .arg(format!("--node-manager-port={}", p[3]))
            .arg(format!("--object-manager-port={}", p[4]))
            .arg(format!("--dashboard-agent-listen-port={}", p[5]))
            .arg(format!("--dashboard-agent-grpc-port={}", p[6]))
            .arg(format!("--runtime-env-agent-port={}", p[7]))
            .arg(format!("--metrics-export-port={}", p[8]))
            .arg(format!("--min-worker-port={worker_start}"))
            .arg(format!(
                "--max-worker-port={}",
                worker_start + WORKER_PORTS - 1
            ))
            .arg(format!("--num-cpus={}", cfg.num_cpus))
            .arg("--node-ip-address=127.0.0.1")
            .arg(format!("--temp-dir={}", temp_dir.path().display()))
            .arg("--object-store-memory=200000000")
            .env("RAY_USAGE_STATS_ENABLED", "0")
            // Ray's client proxier forks a server per session from a
            // process busy in gRPC; with gRPC's fork handlers on, about 1
            // start in 20 dies at once (ray-project/ray#63202, open).
            // Without them: 0 of 130 here, against 3 of 55 with them.
            .env("GRPC_ENABLE_FORK_SUPPORT", "0")
            .env("TMPDIR", &tmp);
        if !cfg.components.dashboard {
            cmd.arg("--include-dashboard=false");
        }
        if !cfg.components.monitors {
            cmd.args(["--no-monitor", "--include-log-monitor=false"]);
        }
        if let Some(tls) = &cfg.tls {
            // With TLS on, Ray otherwise swaps 127.0.0.1 for the primary
            // address, which is not in the cert, and hangs.
            cmd.env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
                .env("RAY_USE_TLS", "1")
                .env("RAY_TLS_SERVER_CERT", &tls.server_cert)
                .env("RAY_TLS_SERVER_KEY", &tls.server_key)
                .env("RAY_TLS_CA_CERT", &tls.ca_cert);
        } else {
            cmd.env_remove("RAY_USE_TLS");
        }
        let process = ManagedProcess::spawn("ray-head", cmd, &log_dir)?;
        let mut head = RayHead {
            ports,
            process: Some(process),
            temp_dir,
            log_dir,
            startup_time: Duration::ZERO,
            components: cfg.components,
        };

        let deadline = started + timeout;
        let outcome = head.wait_ready(deadline).await;
        if let Err(reason) = outcome {
            let log_tail = head.log_tail(40);
            head.stop().await;
            return Err(LabError::StartFailed {
                what: "Ray head".to_string(),
                reason: reason.to_string(),
                log_dir: head.log_dir.clone(),
                log_tail,
            });
        }
        head.startup_time = started.elapsed();
        tracing::info!(
            ?ports,
            secs = head.startup_time.as_secs_f64(),
            "Ray head ready"
        );
        Ok(head)
    }

    async fn wait_ready(&mut self, deadline: Instant) -> Result<(), LabError> {
        // A head without a dashboard has nothing on its dashboard port.
        let mut dashboard_ok = !self.components.dashboard;
        loop {
            if let Some(process) = self.process.as_mut()
                && let Some(status) = process.exit_status()
            {
                return Err(LabError::NotReady(format!(
                    "`ray start` exited early with {status}"
                )));
            }
            if !dashboard_ok {
                dashboard_ok = dashboard::answers_version(self.ports.dashboard).await;
            }
            let client_ok = dashboard_ok && tcp_accepts(self.ports.client).await;
            // The ports answer before `ray start` has finished starting up;
            // a SIGTERM in that window was seen to leave its children
            // running (stop then ends in SIGKILL to the group after its
            // deadline), so the head is ready only once it blocks.
            let blocking = client_ok && self.says_it_blocks();
            if blocking {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LabError::NotReady(format!(
                    "not ready before the deadline (dashboard /api/version answered: {dashboard_ok}; client port {} accepting: {client_ok}; `ray start` blocking: {blocking})",
                    self.ports.client
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether `ray start` has printed that it now blocks until a signal:
    /// its start-up is over and its signal handling in place.
    fn says_it_blocks(&self) -> bool {
        says_it_blocks(&self.log_dir.join("ray-head.out"))
    }

    /// The pid of the `ray start --block` process, while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ManagedProcess::pid)
    }

    /// Folder of our logs of the head (`ray-head.out`, `ray-head.err`).
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Ray's own log folder (`<temp-dir>/session_latest/logs`).
    pub fn ray_log_dir(&self) -> PathBuf {
        self.temp_dir.path().join("session_latest").join("logs")
    }

    /// Ray's temp dir (`--temp-dir`); every Ray process of this head has it
    /// on its command line.
    pub fn temp_dir(&self) -> &Path {
        self.temp_dir.path()
    }

    /// The last lines of the head's stdout/stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process
            .as_ref()
            .map(|p| p.log_tail(lines))
            .unwrap_or_default()
    }

    /// Stops the head: SIGTERM to the `ray start` pid only, then after a
    /// deadline SIGKILL to its process group. Idempotent.
    pub async fn stop(&mut self) -> Option<StopOutcome> {
        let mut process = self.process.take()?;
        let outcome = process.stop(STOP_DEADLINE).await;
        tracing::info!(?outcome, "Ray head stopped");
        Some(outcome)
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        // ManagedProcess's Drop kills the group if it is still running.
        self.process.take();
    }
}

async fn tcp_accepts(port: u16) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(1),
            TcpStream::connect(("127.0.0.1", port))
        )
        .await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A venv whose `ray` prints a line and exits 1, like a Ray that
    /// refuses its flags.
    fn failing_venv(dir: &Path) -> RayVenv {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let ray = bin.join("ray");
        let script = "#!/bin/sh\necho \"ray refused: $*\" >&2\n\
            echo \"fork support: $GRPC_ENABLE_FORK_SUPPORT\" >&2\nexit 1\n";
        std::fs::write(&ray, script).unwrap();
        std::fs::set_permissions(&ray, std::fs::Permissions::from_mode(0o755)).unwrap();
        RayVenv {
            root: dir.to_path_buf(),
            ray,
            python: bin.join("python"),
        }
    }

    #[tokio::test]
    async fn early_exit_is_reported_with_the_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RayHeadConfig {
            venv: failing_venv(dir.path()),
            work_dir: dir.path().join("logs"),
            tls: None,
            num_cpus: 1,
            components: HeadComponents::default(),
        };
        let err = RayHead::start(cfg, Duration::from_secs(10))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("exited early"), "{err}");
        assert!(err.contains("ray refused: start --head --block"), "{err}");
        assert!(err.contains("fork support: 0"), "{err}");
    }

    #[tokio::test]
    async fn a_head_that_never_gets_ready_times_out_and_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let venv = failing_venv(dir.path());
        std::fs::write(
            &venv.ray,
            "#!/bin/sh\necho waiting forever\nexec sleep 60\n",
        )
        .unwrap();
        let cfg = RayHeadConfig {
            venv,
            work_dir: dir.path().join("logs"),
            tls: None,
            num_cpus: 1,
            components: HeadComponents::default(),
        };
        let started = Instant::now();
        let err = RayHead::start(cfg, Duration::from_millis(800))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not ready before the deadline"), "{err}");
        assert!(err.contains("waiting forever"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "stop took too long: {:?}",
            started.elapsed()
        );
    }

    /// A venv whose `ray` serves the dashboard's `/api/version` and accepts
    /// on the client port, like a head whose ports are up, and prints the
    /// `--block` line only when `blocks` is set.
    fn ports_up_venv(dir: &Path, blocks: bool) -> RayVenv {
        let venv = failing_venv(dir);
        let block_line = if blocks {
            format!("print({BLOCKING_LINE:?}, flush=True)")
        } else {
            String::new()
        };
        let script = format!(
            r#"#!/usr/bin/env python3
import socket, sys, threading
flags = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:] if "=" in a)
def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(port)))
    s.listen(16)
    return s
dashboard = listen(flags["dashboard-port"])
client = listen(flags["ray-client-server-port"])
def serve():
    while True:
        c, _ = dashboard.accept()
        c.recv(4096)
        c.sendall(b'HTTP/1.0 200 OK\r\n\r\n{{"ray_version": "fake"}}')
        c.close()
threading.Thread(target=serve, daemon=True).start()
{block_line}
threading.Event().wait()
"#
        );
        std::fs::write(&venv.ray, script).unwrap();
        venv
    }

    #[tokio::test]
    async fn a_head_is_ready_only_once_ray_start_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RayHeadConfig {
            venv: ports_up_venv(dir.path(), false),
            work_dir: dir.path().join("logs"),
            tls: None,
            num_cpus: 1,
            components: HeadComponents::default(),
        };
        let err = RayHead::start(cfg, Duration::from_secs(3))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dashboard /api/version answered: true")
                && err.contains("accepting: true")
                && err.contains("`ray start` blocking: false"),
            "ports up but still starting is not ready: {err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let cfg = RayHeadConfig {
            venv: ports_up_venv(dir.path(), true),
            work_dir: dir.path().join("logs"),
            tls: None,
            num_cpus: 1,
            components: HeadComponents::default(),
        };
        let mut head = RayHead::start(cfg, Duration::from_secs(10))
            .await
            .expect("ports up and blocking is ready");
        head.stop().await;
    }
}
