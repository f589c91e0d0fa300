//! SIGINT/SIGTERM as typed [`Signal`] events. The binary decides what they
//! do: the first asks the run to stop starting new steps and unwind (a
//! [`super::CancelReason`]); the second kills every process group we started
//! and removes the private work dirs (they hold private keys) and the
//! scratch dirs of the processes it killed through [`hard_stop`], then
//! exits at once.

use super::cancel::Signal;
use crate::process_groups::kill_registered_groups;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::signal::unix::{SignalKind, signal};

/// Exit code after an interrupt.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Private work dirs of running scenarios (certificates and keys live
/// there), each with whether it is to be removed (false under `--keep`).
static PRIVATE_DIRS: Mutex<BTreeMap<PathBuf, bool>> = Mutex::new(BTreeMap::new());

/// Records a private work dir: a hard exit removes it when `remove`, and
/// names it either way.
pub fn register_private_dir(dir: &Path, remove: bool) {
    PRIVATE_DIRS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dir.to_path_buf(), remove);
}

/// Forgets a private work dir once it has been removed.
pub fn unregister_private_dir(dir: &Path) {
    PRIVATE_DIRS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(dir);
}

/// Removes the registered private dirs (those not kept); returns one line
/// per dir saying what became of it.
pub fn remove_private_dirs() -> Vec<String> {
    let dirs = std::mem::take(&mut *PRIVATE_DIRS.lock().unwrap_or_else(|e| e.into_inner()));
    dirs.into_iter()
        .map(|(dir, remove)| {
            if !remove {
                return format!("kept (--keep): {}", dir.display());
            }
            match remove_dir_retrying(&dir) {
                Ok(()) => format!("removed {}", dir.display()),
                Err(e) => format!(
                    "could NOT remove {} ({e}): it holds private keys, remove it yourself",
                    dir.display()
                ),
            }
        })
        .collect()
}

/// Removes `dir`; a process killed a moment ago may still add a file
/// while it goes, so a failure is retried briefly.
fn remove_dir_retrying(dir: &Path) -> std::io::Result<()> {
    let mut attempt = 0;
    loop {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if attempt >= 3 => return Err(e),
            Err(_) => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

/// SIGINT and SIGTERM as typed events, in the order they arrive.
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (from then on the signals no longer end the
    /// process by default). Must be called inside a tokio runtime.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next signal.
    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Interrupt,
            _ = self.terminate.recv() => Signal::Terminate,
        }
    }
}

/// What a second signal does before the process exits: kills every process
/// group we started and removes the private work dirs (keys). Returns one
/// line per thing done; the caller (the binary) prints them and exits.
pub fn hard_stop() -> Vec<String> {
    let killed = kill_registered_groups();
    let mut lines = vec![format!(
        "killed {killed} process group(s) we started, other cleanup skipped"
    )];
    lines.extend(
        remove_private_dirs()
            .into_iter()
            .map(|line| format!("work dir {line}")),
    );
    lines.extend(
        crate::scratch_dirs::remove_live()
            .into_iter()
            .map(|line| format!("scratch dir {line}")),
    );
    lines
}
