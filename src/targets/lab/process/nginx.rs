//! A real nginx run as our own process, with its own prefix and config.

use super::managed::{ManagedProcess, StopOutcome, tail_of_file};
use super::pids::{children_of, is_running};
use crate::targets::lab::LabError;
use crate::tools::NGINX;
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long to wait for nginx to write its pid file, or to apply a reload.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a reload waits for nginx's old workers to exit.
const RELOAD_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a [`Nginx::reload`] saw of the workers serving the old config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload {
    /// The workers that ran before the reload.
    pub old_workers: Vec<u32>,
    /// Whether they all exited within the drain timeout.
    pub drained: bool,
}

impl Reload {
    /// A note for the diagnostics when old workers outlived the drain timeout.
    pub fn note(&self) -> Option<String> {
        (!self.drained).then(|| {
            format!(
                "old nginx workers {:?} still running {RELOAD_DRAIN_TIMEOUT:?} after a reload",
                self.old_workers
            )
        })
    }
}

/// A running nginx (`nginx -p PREFIX -c CONF -g 'daemon off;'`).
#[derive(Debug)]
pub struct Nginx {
    process: Option<ManagedProcess>,
    prefix: PathBuf,
    binary: PathBuf,
}

impl Nginx {
    /// Checks `config_text` with `nginx -t` in a throwaway prefix; the error
    /// carries nginx's own message.
    pub fn test_config(config_text: &str) -> Result<(), LabError> {
        let prefix =
            tempfile::tempdir().map_err(|e| LabError::io("creating nginx test prefix", e))?;
        let binary = NGINX.find().map_err(LabError::Missing)?;
        prepare_prefix(prefix.path())?;
        write_config(prefix.path(), config_text)?;
        run_test(&binary, prefix.path())
    }

    /// Writes the config into `<work_dir>/nginx/`, checks it with `nginx -t`,
    /// starts nginx in the foreground and waits until its pid file appears.
    pub async fn start(work_dir: &Path, config_text: &str) -> Result<Nginx, LabError> {
        let binary = NGINX.find().map_err(LabError::Missing)?;
        let prefix = work_dir.join("nginx");
        prepare_prefix(&prefix)?;
        write_config(&prefix, config_text)?;
        run_test(&binary, &prefix)?;
        let mut cmd = Command::new(&binary);
        nginx_args(&mut cmd, &prefix);
        let process = ManagedProcess::spawn("nginx", cmd, &prefix.join("logs"))?;
        let mut nginx = Nginx {
            process: Some(process),
            prefix,
            binary,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        // Ready once the master wrote its pid file and forked a worker: the
        // listening sockets exist then (the pid file alone was seen to come
        // before connections were accepted).
        while !nginx.is_serving() {
            let exited = nginx.process.as_mut().and_then(ManagedProcess::exit_status);
            if exited.is_some() || Instant::now() >= deadline {
                let reason = match exited {
                    Some(status) => format!("exited with {status}"),
                    None => format!("no pid file and worker after {READY_TIMEOUT:?}"),
                };
                let log_tail = format!(
                    "{}\n[error.log]\n{}",
                    nginx
                        .process
                        .as_ref()
                        .map(|p| p.log_tail(20))
                        .unwrap_or_default(),
                    tail_of_file(&nginx.error_log(), 20)
                );
                nginx.stop().await;
                return Err(LabError::StartFailed {
                    what: "nginx".to_string(),
                    reason,
                    log_dir: nginx.prefix.join("logs"),
                    log_tail,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(nginx)
    }

    /// Replaces the config: write, `nginx -t` (the running nginx keeps its
    /// old config if this fails), SIGHUP, then wait until the master has
    /// started new workers (the error log notes the reconfiguration), and
    /// then (at most `RELOAD_DRAIN_TIMEOUT`) until the old workers exited:
    /// until then they still accept connections with the old config, and
    /// the next step must see the new one.
    pub async fn reload(&mut self, config_text: &str) -> Result<Reload, LabError> {
        let previous = std::fs::read_to_string(config_path(&self.prefix)).unwrap_or_default();
        write_config(&self.prefix, config_text)?;
        if let Err(e) = run_test(&self.binary, &self.prefix) {
            write_config(&self.prefix, &previous)?;
            return Err(e);
        }
        let before = reconfigure_count(&self.error_log());
        let master = self
            .process
            .as_mut()
            .ok_or_else(|| LabError::Missing("nginx is not running".into()))?;
        let master_pid = master.pid();
        let old_workers = children_of(master_pid);
        master.signal(Signal::SIGHUP)?;
        // Applied = the master re-read the config, a new worker runs, and
        // every old worker has closed its listeners (it logs "gracefully
        // shutting down") or exited; until then an old worker may still
        // accept a connection with the old config.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = std::fs::read_to_string(self.error_log()).unwrap_or_default();
            let reconfigured = log.matches("reconfiguring").count() > before;
            let workers = children_of(master_pid);
            let new_worker = workers.iter().any(|w| !old_workers.contains(w));
            let old_done = old_workers.iter().all(|w| {
                !workers.contains(w) || log.contains(&format!("{w}#{w}: gracefully shutting down"))
            });
            if reconfigured && new_worker && old_done {
                break;
            }
            if Instant::now() >= deadline {
                return Err(LabError::CommandFailed {
                    command: "nginx reload (SIGHUP)".into(),
                    message: format!(
                        "not applied within {READY_TIMEOUT:?} (reconfigured: {reconfigured}, new worker: {new_worker}, old workers done: {old_done}); error log tail:\n{}",
                        tail_of_file(&self.error_log(), 10)
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deadline = Instant::now() + RELOAD_DRAIN_TIMEOUT;
        while old_workers.iter().any(|p| is_running(*p)) {
            if Instant::now() >= deadline {
                return Ok(Reload {
                    old_workers,
                    drained: false,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Reload {
            old_workers,
            drained: true,
        })
    }

    /// Stops nginx (SIGTERM to the master, SIGKILL to its group after 5 s).
    pub async fn stop(&mut self) -> Option<StopOutcome> {
        let mut process = self.process.take()?;
        Some(process.stop(Duration::from_secs(5)).await)
    }

    /// nginx's error log (also the place reloads are noted).
    pub fn error_log(&self) -> PathBuf {
        self.prefix.join("logs").join("error.log")
    }

    /// The prefix folder (`conf/nginx.conf`, `logs/`).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The master's pid while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ManagedProcess::pid)
    }

    fn is_serving(&self) -> bool {
        let Some(pid) = self.pid() else { return false };
        let written = std::fs::read_to_string(self.pid_file())
            .map(|t| t.trim() == pid.to_string())
            .unwrap_or(false);
        written && !children_of(pid).is_empty()
    }

    fn pid_file(&self) -> PathBuf {
        self.prefix.join("logs").join("nginx.pid")
    }
}

fn config_path(prefix: &Path) -> PathBuf {
    prefix.join("conf").join("nginx.conf")
}

/// Global directives on the command line: foreground, our own pid file and
/// a notice-level error log (reloads are logged at notice). The caller's
/// config must therefore not set `daemon` or `pid` itself.
fn daemon_off(prefix: &Path) -> String {
    let logs = prefix.join("logs");
    format!(
        "daemon off; pid {}; error_log {} notice;",
        logs.join("nginx.pid").display(),
        logs.join("error.log").display()
    )
}

/// `-p PREFIX -e ERROR_LOG -c CONF -g GLOBALS`: the startup error log is
/// ours too, not the compiled-in /var/log/nginx path.
fn nginx_args(command: &mut Command, prefix: &Path) {
    command
        .arg("-p")
        .arg(prefix)
        .arg("-e")
        .arg(prefix.join("logs").join("error.log"))
        .arg("-c")
        .arg(config_path(prefix))
        .arg("-g")
        .arg(daemon_off(prefix));
}

fn prepare_prefix(prefix: &Path) -> Result<(), LabError> {
    for sub in ["conf", "logs", "tmp"] {
        let dir = prefix.join(sub);
        std::fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    }
    Ok(())
}

fn write_config(prefix: &Path, text: &str) -> Result<(), LabError> {
    let path = config_path(prefix);
    std::fs::write(&path, text).map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}

fn run_test(binary: &Path, prefix: &Path) -> Result<(), LabError> {
    let mut command = Command::new(binary);
    command.arg("-t");
    nginx_args(&mut command, prefix);
    let output = command
        .output()
        .map_err(|e| LabError::io("running nginx -t", e))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(LabError::BadConfig(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ))
    }
}

/// How many times the error log says the master reconfigured.
fn reconfigure_count(error_log: &Path) -> usize {
    std::fs::read_to_string(error_log)
        .map(|t| t.matches("reconfiguring").count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_config_is_rejected_with_nginx_message() {
        let err = Nginx::test_config(
            "events {}\nhttp { server { listen 127.0.0.1:1; bogus_directive on; } }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bogus_directive"), "{err}");
    }
}
