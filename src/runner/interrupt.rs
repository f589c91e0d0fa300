//! SIGINT/SIGTERM handling: the first signal asks the run to stop starting
//! new steps and unwind; the second kills every process group we started
//! and exits at once.

use std::collections::BTreeSet;
use std::sync::Mutex;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Exit code after an interrupt.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Process groups started by this process that are still running.
static LIVE_GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Records a process group we started (its leader's pid), so a hard exit
/// can kill it.
pub fn register_group(pgid: i32) {
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(pgid);
}

/// Forgets a process group once it has been stopped.
pub fn unregister_group(pgid: i32) {
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pgid);
}

/// SIGKILLs every registered process group (only groups we started).
pub fn kill_registered_groups() -> usize {
    let groups = std::mem::take(&mut *LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner()));
    for pgid in &groups {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(*pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    groups.len()
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
                eprintln!(
                    "\n{name} again: exiting now; killed {killed} process group(s) we started, other cleanup skipped"
                );
                std::process::exit(EXIT_INTERRUPTED);
            }
        }
    });
    Ok(token)
}
