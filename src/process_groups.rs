//! The process groups this process started and that still run, so that a
//! second Ctrl-C can kill them all at once. A leaf: whoever spawns a group
//! (the runner's commands, the lab's processes) registers it here, and the
//! runner's interrupt handler kills what is registered.

use std::collections::BTreeSet;
use std::sync::Mutex;

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
