//! The headless Chromium a `browser` probe drives: found (env
//! `RAYCONFORM_CHROMIUM`, else `chromium` / `chromium-browser` on `PATH`),
//! started in its own process group with a fresh `--user-data-dir`, and
//! always stopped: [`Chromium::stop`] ends it gracefully, and dropping it
//! (a cancelled or timed-out probe) SIGKILLs the whole group. The profile
//! folder goes with it either way.

use crate::process_groups;
use crate::scratch_dirs::ScratchDir;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The environment variable that names the Chromium executable.
pub const CHROMIUM_ENV: &str = "RAYCONFORM_CHROMIUM";

/// Executable names looked up on `PATH`, in order.
const CHROMIUM_NAMES: &[&str] = &["chromium", "chromium-browser"];

/// The flags Chromium needs on these machines: headless as root, no GPU,
/// and none of its own background connections (refused here, many at once).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// How long Chromium may take to print its DevTools address.
const LAUNCH_LIMIT: Duration = Duration::from_secs(30);

/// How long a graceful stop (SIGTERM) may take before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How much of Chromium's stderr is kept for error messages.
const STDERR_KEEP: usize = 40;

/// Why Chromium could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ChromiumError {
    /// No executable: the probe is skipped, never passed.
    #[error(
        "Chromium not found ({0}); install it (scripts/setup does: apt-get install chromium) or set {CHROMIUM_ENV}"
    )]
    Missing(String),
    /// It was found but did not start.
    #[error("Chromium {path} did not start: {why}")]
    Launch {
        /// The executable.
        path: PathBuf,
        /// What went wrong, with the end of its stderr.
        why: String,
    },
}

/// The Chromium executable to use, or why there is none.
pub fn find_chromium() -> Result<PathBuf, ChromiumError> {
    if let Some(path) = std::env::var_os(CHROMIUM_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return which::which(&path).map_err(|e| {
            ChromiumError::Missing(format!("{CHROMIUM_ENV}={}: {e}", path.display()))
        });
    }
    CHROMIUM_NAMES
        .iter()
        .find_map(|name| which::which(name).ok())
        .ok_or_else(|| {
            ChromiumError::Missing(format!("none of {} on PATH", CHROMIUM_NAMES.join(", ")))
        })
}

/// A running Chromium: its process group, its DevTools address and its
/// private profile folder.
pub struct Chromium {
    child: tokio::process::Child,
    pgid: i32,
    /// `ws://127.0.0.1:PORT/devtools/browser/...`.
    pub devtools_url: String,
    stderr: Arc<Mutex<Vec<String>>>,
    // Dropped after the group is killed (field order): the profile goes last.
    profile: ScratchDir,
}

impl Chromium {
    /// Starts `executable` headless with a fresh profile, listening for
    /// DevTools on a loopback port of its choosing.
    pub async fn launch(executable: &Path, window: (u32, u32)) -> Result<Chromium, ChromiumError> {
        let launch_error = |why: String| ChromiumError::Launch {
            path: executable.to_path_buf(),
            why,
        };
        let profile = ScratchDir::new("rayconform-chromium-")
            .map_err(|e| launch_error(format!("cannot create a profile folder: {e}")))?;
        let mut command = tokio::process::Command::new(executable);
        command
            .args(CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-address=127.0.0.1")
            .arg("--remote-debugging-port=0")
            .arg(format!("--window-size={},{}", window.0, window.1))
            .arg("about:blank")
            // Chromium's own temp folders (its singleton socket) go into the
            // profile: a killed Chromium does not remove them itself.
            .env("TMPDIR", profile.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .map_err(|e| launch_error(format!("cannot run it: {e}")))?;
        let pgid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .ok_or_else(|| launch_error("it exited at once".into()))?;
        process_groups::register_group(pgid);
        let mut chromium = Chromium {
            child,
            pgid,
            devtools_url: String::new(),
            stderr: Arc::default(),
            profile,
        };
        let stderr = chromium.child.stderr.take().expect("stderr is piped");
        let (url_tx, url_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(read_stderr(stderr, chromium.stderr.clone(), url_tx));
        match tokio::time::timeout(LAUNCH_LIMIT, url_rx).await {
            Ok(Ok(url)) => {
                chromium.devtools_url = url;
                Ok(chromium)
            }
            Ok(Err(_)) => Err(launch_error(format!(
                "it exited before listening for DevTools; stderr: {}",
                chromium.stderr_tail()
            ))),
            Err(_) => Err(launch_error(format!(
                "no DevTools address within {}; stderr: {}",
                humantime::format_duration(LAUNCH_LIMIT),
                chromium.stderr_tail()
            ))),
        }
    }

    /// The process id of Chromium (also its process group id).
    pub fn pid(&self) -> i32 {
        self.pgid
    }

    /// The private profile folder (removed when Chromium stops).
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// The last lines Chromium wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        lines.join(" | ")
    }

    /// Stops Chromium: SIGTERM to its group, SIGKILL after a grace period,
    /// then removes the profile folder.
    pub async fn stop(mut self) {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGTERM);
        if tokio::time::timeout(STOP_GRACE, self.child.wait())
            .await
            .is_err()
        {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
            let _ = self.child.wait().await;
        }
        // Drop kills what is left of the group and removes the profile.
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // ESRCH (already gone) is fine. Helpers Chromium forked stay in
        // its group and end with it.
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        process_groups::unregister_group(self.pgid);
        // The profile (a `ScratchDir`) is removed as the field drops next.
    }
}

/// Reads Chromium's stderr: the DevTools address once, and the last lines
/// for error messages until the stream ends.
async fn read_stderr(
    stderr: tokio::process::ChildStderr,
    kept: Arc<Mutex<Vec<String>>>,
    url_tx: tokio::sync::oneshot::Sender<String>,
) {
    let mut url_tx = Some(url_tx);
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(url) = devtools_address(&line)
            && let Some(tx) = url_tx.take()
        {
            let _ = tx.send(url.to_string());
        }
        let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.push(line);
        if kept.len() > STDERR_KEEP {
            kept.remove(0);
        }
    }
}

/// The address in Chromium's `DevTools listening on ws://...` line.
pub fn devtools_address(line: &str) -> Option<&str> {
    line.trim()
        .strip_prefix("DevTools listening on ")
        .filter(|url| url.starts_with("ws://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devtools_line_is_recognised() {
        let line = "DevTools listening on ws://127.0.0.1:40223/devtools/browser/1f2e\n";
        assert_eq!(
            devtools_address(line),
            Some("ws://127.0.0.1:40223/devtools/browser/1f2e")
        );
        assert_eq!(devtools_address("[0101/ERROR: something]"), None);
    }
}
