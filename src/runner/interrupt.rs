//! SIGINT/SIGTERM handling: the first signal asks the run to stop starting
//! new steps and unwind; the second kills every process group we started,
//! removes the private work dirs (they hold private keys) and exits at once.

use crate::process_groups::kill_registered_groups;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

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

/// Installs the handlers; the returned token is cancelled on the first
/// signal. Must be called inside a tokio runtime.
pub fn install() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let first = token.clone();
    tokio::spawn(async move {
        for count in 1.. {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            if count == 1 {
                eprintln!(
                    "\n{name}: stopping — no new steps start; cleaning up and writing the report (signal again to exit now)"
                );
                first.cancel();
            } else {
                let killed = kill_registered_groups();
                let dirs = remove_private_dirs();
                eprintln!(
                    "\n{name} again: exiting now; killed {killed} process group(s) we started, other cleanup skipped"
                );
                for line in dirs {
                    eprintln!("  work dir {line}");
                }
                std::process::exit(EXIT_INTERRUPTED);
            }
        }
    });
    Ok(token)
}
