//! Ray heads shared between scenarios.
//!
//! Starting a head costs ~5 s and ~0.7 GiB, so scenarios whose RayClusters
//! ask for the same head share one: the same `--num-cpus` and the same TLS
//! files (the runner gives scenarios that ask for the same certificates the
//! same files, see `runner::RunCertificates`; a scenario with a CA of its own
//! gets a head of its own). Shared heads stay up between scenarios and stop
//! at [`HeadPool::shutdown`], concurrently, which waits for every stop so
//! nothing outlives the run. RayClusters with worker nodes share heads of
//! their own kind ([`HeadKey::hosts_workers`]), never one a worker-less
//! cluster uses. A RayCluster whose scenario could see the
//! head's whole node list gets an exclusive head
//! ([`HeadPool::acquire_exclusive`]) that stops, in the background, when its
//! lease ends.

use super::managed::tail_of_file;
use super::ray_head::{HeadComponents, RayHead, RayHeadConfig, RayPorts, RayTls};
use super::venv::RayVenv;
use crate::scratch_dirs::ScratchDir;
use crate::targets::lab::LabError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// What `ray start` says when its raylet did not register in time.
const RAY_STARTUP_TIMEOUT: &str = "The current node timed out during startup";

/// What makes two heads interchangeable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadKey {
    /// TLS files, when the RayCluster sets `RAY_USE_TLS=1`.
    pub tls: Option<RayTls>,
    /// `--num-cpus`.
    pub num_cpus: u32,
    /// It runs Ray's dashboard (see [`HeadComponents`]).
    pub dashboard: bool,
    /// RayClusters with worker nodes use it: their workers join it, each
    /// labelled with its RayCluster (see `session`), so a worker-less
    /// RayCluster's node list never shows them.
    pub hosts_workers: bool,
}

/// One scenario's use of a head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadLease {
    /// Identifies the head in the pool.
    pub id: u64,
    /// Its ports.
    pub ports: RayPorts,
    /// The pid of its `ray start --block` process.
    pub pid: Option<u32>,
    /// Our stdout/stderr logs of the head.
    pub log_dir: PathBuf,
    /// Ray's own logs.
    pub ray_log_dir: PathBuf,
    /// The head was already running (started by an earlier scenario).
    pub reused: bool,
    /// How long the start took (zero when reused).
    pub startup_time: Duration,
    /// TLS files the head serves with.
    pub tls: Option<RayTls>,
    /// It runs Ray's dashboard: without one, nothing listens on
    /// `ports.dashboard`.
    pub dashboard: bool,
}

impl HeadLease {
    /// The tails of the head's logs for diagnostics: our stdout/stderr of
    /// `ray start` (60 lines each), then Ray's own GCS, raylet, client
    /// server and dashboard logs (40 lines each).
    pub fn log_tails(&self) -> String {
        let mut text = String::new();
        for file in ["ray-head.out", "ray-head.err"] {
            let path = self.log_dir.join(file);
            text.push_str(&format!(
                "==> {} <==\n{}\n",
                path.display(),
                tail_of_file(&path, 60)
            ));
        }
        if let Ok(entries) = std::fs::read_dir(&self.ray_log_dir) {
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
        text
    }
}

struct Entry {
    id: u64,
    key: HeadKey,
    head: RayHead,
    leases: usize,
    /// One scenario's alone (see [`HeadPool::acquire_exclusive`]).
    exclusive: bool,
}

/// The heads of one lab target.
pub struct HeadPool {
    project_root: PathBuf,
    dir: Mutex<Option<ScratchDir>>,
    entries: Mutex<Vec<Entry>>,
    stopping: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    start_turns: Mutex<Vec<(HeadKey, Arc<Mutex<()>>)>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl HeadPool {
    /// An empty pool; the venv is located (or created) at first use.
    pub fn new(project_root: &Path) -> Self {
        HeadPool {
            project_root: project_root.to_path_buf(),
            dir: Mutex::new(None),
            entries: Mutex::new(Vec::new()),
            stopping: Mutex::new(Vec::new()),
            start_turns: Mutex::new(Vec::new()),
            next_id: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// A running head for `key`: a shared idle or busy one, else a new one
    /// started within `timeout`.
    pub async fn acquire(&self, key: HeadKey, timeout: Duration) -> Result<HeadLease, LabError> {
        self.acquire_for(key, timeout, false).await
    }

    /// A new head for one RayCluster alone, stopped when its lease ends:
    /// a cluster with worker nodes whose scenario could see the head's
    /// whole node list needs one that holds only its own workers.
    pub async fn acquire_exclusive(
        &self,
        key: HeadKey,
        timeout: Duration,
    ) -> Result<HeadLease, LabError> {
        self.acquire_for(key, timeout, true).await
    }

    async fn acquire_for(
        &self,
        key: HeadKey,
        timeout: Duration,
        exclusive: bool,
    ) -> Result<HeadLease, LabError> {
        // Acquires of one shareable key take turns, so the second finds the
        // head the first started; heads of other keys (and exclusive ones)
        // start side by side: the pool's list is never locked during a start.
        let turn = if exclusive {
            None
        } else {
            Some(self.start_turn(&key).await)
        };
        let _turn = match &turn {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        if !exclusive {
            let mut entries = self.entries.lock().await;
            let mut dead = Vec::new();
            for entry in entries.iter_mut().filter(|e| e.key == key && !e.exclusive) {
                if client_port_open(entry.head.ports.client).await {
                    entry.leases += 1;
                    return Ok(lease(entry, true));
                }
                dead.push(entry.id);
            }
            for id in dead {
                if let Some(pos) = entries.iter().position(|e| e.id == id) {
                    let mut entry = entries.remove(pos);
                    tracing::warn!(id, "pooled Ray head stopped answering; replacing it");
                    entry.head.stop().await;
                }
            }
        }
        let venv = RayVenv::ensure(&self.project_root)?;
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut attempt = 0;
        let head = loop {
            attempt += 1;
            let work_dir = self.dir().await?.join(format!("head-{id}-{attempt}"));
            let cfg = RayHeadConfig {
                venv: venv.clone(),
                work_dir,
                tls: key.tls.clone(),
                num_cpus: key.num_cpus,
                components: HeadComponents::lab(key.dashboard),
            };
            match RayHead::start(cfg, timeout).await {
                Ok(head) => break head,
                // Ray gives a raylet 30 s to register with its GCS; a loaded
                // 2-core machine can miss that. Started once more, as the
                // kubelet restarts a crashed container.
                Err(LabError::StartFailed { log_tail, .. })
                    if attempt == 1 && log_tail.contains(RAY_STARTUP_TIMEOUT) =>
                {
                    tracing::warn!(
                        id,
                        "Ray head missed Ray's startup deadline; starting it once more"
                    );
                }
                Err(e) => return Err(e),
            }
        };
        let entry = Entry {
            id,
            key,
            head,
            leases: 1,
            exclusive,
        };
        let started = lease(&entry, false);
        self.entries.lock().await.push(entry);
        Ok(started)
    }

    /// The lock that makes acquires of `key` take turns.
    async fn start_turn(&self, key: &HeadKey) -> Arc<Mutex<()>> {
        let mut turns = self.start_turns.lock().await;
        if let Some((_, lock)) = turns.iter().find(|(k, _)| k == key) {
            return lock.clone();
        }
        let lock = Arc::new(Mutex::new(()));
        turns.push((key.clone(), lock.clone()));
        lock
    }

    /// Ends a lease. A shared head stays up for the next scenario until
    /// [`HeadPool::shutdown`]; an exclusive one stops, in the background (its
    /// scenario's verdict does not wait for Ray's ~3 s teardown; shutdown
    /// waits for it).
    pub async fn release(&self, id: u64) {
        let mut entries = self.entries.lock().await;
        let Some(pos) = entries.iter().position(|e| e.id == id) else {
            return;
        };
        let entry = &mut entries[pos];
        entry.leases = entry.leases.saturating_sub(1);
        if entry.leases > 0 || !entry.exclusive {
            return;
        }
        let mut entry = entries.remove(pos);
        drop(entries);
        let handle = tokio::spawn(async move { stop(&mut entry).await });
        let mut stopping = self.stopping.lock().await;
        stopping.retain(|h| !h.is_finished());
        stopping.push(handle);
    }

    /// Waits until every background stop has finished.
    pub async fn stops_finished(&self) {
        let handles: Vec<_> = self.stopping.lock().await.drain(..).collect();
        for handle in handles {
            // A stop that panicked dropped its head, whose Drop killed the
            // process group: nothing is left either way.
            let _ = handle.await;
        }
    }

    /// Stops every head (or, with `keep`, leaves them running and says where).
    pub async fn shutdown(&self, keep: bool) -> Vec<String> {
        let drained: Vec<Entry> = self.entries.lock().await.drain(..).collect();
        let mut problems = Vec::new();
        let mut stops = Vec::new();
        for mut entry in drained {
            if keep {
                tracing::info!(pid = ?entry.head.pid(), ports = ?entry.head.ports, "kept Ray head running (--keep)");
                // Dropping would kill it: --keep asks for it to stay.
                std::mem::forget(entry.head);
                continue;
            }
            stops.push(tokio::spawn(async move { stop(&mut entry).await }));
        }
        for handle in stops {
            // A stop that panicked dropped its head, whose Drop killed the
            // process group: nothing is left either way.
            let _ = handle.await;
        }
        self.stops_finished().await;
        if let Some(dir) = self.dir.lock().await.take() {
            if keep {
                dir.keep();
            } else {
                let path = dir.path().to_path_buf();
                if let Err(e) = dir.remove() {
                    problems.push(format!("cannot remove {}: {e}", path.display()));
                }
            }
        }
        problems
    }

    /// Heads currently running: (id, pid, ports, leases).
    pub async fn running(&self) -> Vec<(u64, Option<u32>, RayPorts, usize)> {
        self.entries
            .lock()
            .await
            .iter()
            .map(|e| (e.id, e.head.pid(), e.head.ports, e.leases))
            .collect()
    }

    async fn dir(&self) -> Result<PathBuf, LabError> {
        let mut dir = self.dir.lock().await;
        if let Some(d) = dir.as_ref() {
            return Ok(d.path().to_path_buf());
        }
        let created = ScratchDir::new("rayconform-lab-")
            .map_err(|e| LabError::io("creating the lab's head folder", e))?;
        let path = created.path().to_path_buf();
        *dir = Some(created);
        Ok(path)
    }
}

fn lease(entry: &Entry, reused: bool) -> HeadLease {
    HeadLease {
        id: entry.id,
        ports: entry.head.ports,
        pid: entry.head.pid(),
        log_dir: entry.head.log_dir().to_path_buf(),
        ray_log_dir: entry.head.ray_log_dir(),
        reused,
        startup_time: if reused {
            Duration::ZERO
        } else {
            entry.head.startup_time
        },
        tls: entry.key.tls.clone(),
        dashboard: entry.key.dashboard,
    }
}

async fn stop(entry: &mut Entry) {
    let pid = entry.head.pid();
    // A head slow to exit (seen under heavy CPU load) is SIGKILLed with its
    // process group after the deadline: nothing is left, so it is a note,
    // not a cleanup failure.
    if let Some(super::managed::StopOutcome::Killed) = entry.head.stop().await {
        tracing::warn!(
            "Ray head (pid {pid:?}) did not exit after SIGTERM in time; its process group was killed"
        );
    }
}

async fn client_port_open(port: u16) -> bool {
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

    /// A project whose Ray venv's `ray` counts its runs in `runs` and exits
    /// 1 after printing `says` to stderr.
    fn project_with_failing_ray(dir: &Path, says: &str) -> PathBuf {
        let bin = dir.join(".lab/ray-venv/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let runs = dir.join("runs");
        let script = format!(
            "#!/bin/sh\necho run >> '{}'\necho '{says}' >&2\nexit 1\n",
            runs.display()
        );
        for name in ["ray", "python"] {
            let path = bin.join(name);
            std::fs::write(&path, &script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        runs
    }

    async fn runs_after_failed_acquire(says: &str) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let runs = project_with_failing_ray(dir.path(), says);
        let pool = HeadPool::new(dir.path());
        let key = HeadKey {
            tls: None,
            num_cpus: 1,
            dashboard: true,
            hosts_workers: false,
        };
        assert!(pool.acquire(key, Duration::from_secs(10)).await.is_err());
        pool.shutdown(false).await;
        std::fs::read_to_string(runs).unwrap().lines().count()
    }

    #[tokio::test]
    async fn a_head_that_missed_rays_startup_deadline_is_started_once_more() {
        let says = format!("Exception: {RAY_STARTUP_TIMEOUT}. This could happen because");
        assert_eq!(runs_after_failed_acquire(&says).await, 2);
    }

    #[tokio::test]
    async fn a_head_that_failed_otherwise_is_not_started_again() {
        assert_eq!(runs_after_failed_acquire("bad flag --foo").await, 1);
    }
}
