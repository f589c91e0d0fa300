//! A child process we started ourselves, in its own process group, with its
//! output in log files, stopped by pid.

use crate::targets::lab::LabError;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a [`ManagedProcess::stop`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// It had already exited (status text).
    AlreadyExited(String),
    /// It exited after SIGTERM within the deadline.
    Terminated(Duration),
    /// It ignored SIGTERM; its process group was killed.
    Killed,
}

/// A process started by rayconform: own process group (so nothing we start
/// shares a group with the test runner), pid recorded, stdout and stderr in
/// `<log_dir>/<name>.out|.err`.
#[derive(Debug)]
pub struct ManagedProcess {
    name: String,
    child: Child,
    pid: u32,
    log_dir: PathBuf,
    finished: Option<ExitStatus>,
}

impl ManagedProcess {
    /// Spawns `command` in a new process group with its output redirected to
    /// log files named after `name` in `log_dir` (created if needed).
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Result<Self, LabError> {
        std::fs::create_dir_all(log_dir)
            .map_err(|e| LabError::io(format!("creating log folder {}", log_dir.display()), e))?;
        let out = create_log(&log_dir.join(format!("{name}.out")))?;
        let err = create_log(&log_dir.join(format!("{name}.err")))?;
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|e| LabError::io(format!("starting {name} ({command:?})"), e))?;
        let pid = child.id();
        // A second Ctrl-C kills every registered group at once.
        crate::process_groups::register_group(pid as i32);
        tracing::debug!(name, pid, "spawned");
        Ok(ManagedProcess {
            name: name.to_string(),
            child,
            pid,
            log_dir: log_dir.to_path_buf(),
            finished: None,
        })
    }

    /// The process id (also the id of its process group).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The name given at spawn (used for log file names).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder holding the `.out` and `.err` logs.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The exit status if the process has exited (reaps it).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.finished.is_none() {
            self.finished = self.child.try_wait().ok().flatten();
            if self.finished.is_some() {
                crate::process_groups::unregister_group(self.pid as i32);
            }
        }
        self.finished
    }

    /// Sends `signal` to the process itself (not its group).
    pub fn signal(&mut self, signal: Signal) -> Result<(), LabError> {
        if self.exit_status().is_some() {
            return Ok(());
        }
        kill(Pid::from_raw(self.pid as i32), signal).map_err(|e| {
            LabError::io(
                format!("sending {signal} to {} (pid {})", self.name, self.pid),
                e.into(),
            )
        })
    }

    /// SIGTERM to this pid only, then wait up to `deadline`; past it SIGKILL
    /// the whole process group. Never touches processes we did not start.
    pub async fn stop(&mut self, deadline: Duration) -> StopOutcome {
        if let Some(status) = self.exit_status() {
            self.kill_group_leftovers();
            return StopOutcome::AlreadyExited(status.to_string());
        }
        let started = Instant::now();
        let _ = self.signal(Signal::SIGTERM);
        while started.elapsed() < deadline {
            if self.exit_status().is_some() {
                self.kill_group_leftovers();
                return StopOutcome::Terminated(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill_group_now();
        StopOutcome::Killed
    }

    /// Last `lines` lines of stdout and stderr, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        for ext in ["out", "err"] {
            let path = self.log_dir.join(format!("{}.{ext}", self.name));
            text.push_str(&format!(
                "[{}]\n{}\n",
                path.display(),
                tail_of_file(&path, lines)
            ));
        }
        text
    }

    /// After the leader exited, children it left in our group are killed so
    /// nothing we started outlives the stop.
    fn kill_group_leftovers(&mut self) {
        let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
    }

    fn kill_group_now(&mut self) {
        let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        let _ = self.child.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        if self.exit_status().is_none() {
            tracing::warn!(name = %self.name, pid = self.pid, "process still running at drop; killing its group");
            self.kill_group_now();
        } else {
            self.kill_group_leftovers();
        }
    }
}

fn create_log(path: &Path) -> Result<File, LabError> {
    File::create(path).map_err(|e| LabError::io(format!("creating log {}", path.display()), e))
}

/// The last `lines` lines of a text file ("" when unreadable).
pub fn tail_of_file(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_terminates_and_logs_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo hello; exec sleep 30"]);
        let mut p = ManagedProcess::spawn("sleeper", cmd, dir.path()).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(p.exit_status().is_none());
        let outcome = p.stop(Duration::from_secs(5)).await;
        assert!(matches!(outcome, StopOutcome::Terminated(_)), "{outcome:?}");
        assert!(p.log_tail(5).contains("hello"));
    }

    #[tokio::test]
    async fn stop_kills_group_when_term_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "trap '' TERM; while true; do sleep 0.1; done"]);
        let mut p = ManagedProcess::spawn("stubborn", cmd, dir.path()).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let pid = p.pid();
        let outcome = p.stop(Duration::from_millis(500)).await;
        assert_eq!(outcome, StopOutcome::Killed);
        assert!(
            kill(Pid::from_raw(pid as i32), None).is_err(),
            "pid {pid} still alive"
        );
    }
}
