//! Folders this process makes for the processes it starts (Ray's temp dirs,
//! the lab's head folder), so that a hard exit removes them too once it has
//! killed the process groups (`process_groups`, a leaf as this is).
//!
//! Private work dirs holding keys are the runner's own list; these hold
//! only what the started processes write (sockets, Ray's session logs).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Scratch folders that exist now.
static LIVE_DIRS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn live() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    LIVE_DIRS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new folder under `parent`, removed when dropped (or by
/// [`remove_live`] on a hard exit) unless [`ScratchDir::keep`] is called.
#[derive(Debug)]
pub struct ScratchDir {
    path: Option<PathBuf>,
}

impl ScratchDir {
    /// Creates `parent/<prefix><random>` and records it.
    pub fn new_in(parent: &Path, prefix: &str) -> std::io::Result<ScratchDir> {
        let path = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)?
            .keep();
        live().insert(path.clone());
        Ok(ScratchDir { path: Some(path) })
    }

    /// Creates `<temp dir>/<prefix><random>` ($TMPDIR or /tmp) and records it.
    pub fn new(prefix: &str) -> std::io::Result<ScratchDir> {
        Self::new_in(&std::env::temp_dir(), prefix)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Leaves the folder in place (`--keep`) and forgets it.
    pub fn keep(mut self) -> PathBuf {
        let path = self.path.take().unwrap_or_default();
        live().remove(&path);
        path
    }

    /// Removes the folder now, saying why when it cannot.
    pub fn remove(mut self) -> std::io::Result<()> {
        let path = self.path.take().unwrap_or_default();
        live().remove(&path);
        std::fs::remove_dir_all(&path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            live().remove(&path);
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Removes every recorded folder (a hard exit, after the process groups
/// were killed); one line per folder saying what became of it.
pub fn remove_live() -> Vec<String> {
    let dirs = std::mem::take(&mut *live());
    dirs.into_iter()
        .map(|dir| match std::fs::remove_dir_all(&dir) {
            Ok(()) => format!("removed {}", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("already gone {}", dir.display())
            }
            Err(e) => format!("could not remove {} ({e})", dir.display()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(path: &Path) -> bool {
        live().contains(path)
    }

    #[test]
    fn a_scratch_dir_is_recorded_while_it_exists_and_removed_when_dropped() {
        let parent = tempfile::tempdir().unwrap();
        let dir = ScratchDir::new_in(parent.path(), "rc-t").unwrap();
        let path = dir.path().to_path_buf();
        assert!(path.is_dir() && recorded(&path));
        drop(dir);
        assert!(!path.exists() && !recorded(&path));
    }

    // `remove_live` empties the process-wide list: its test lives in
    // tests/scratch_dirs.rs, a process of its own.

    #[test]
    fn a_kept_scratch_dir_stays_and_is_forgotten() {
        let parent = tempfile::tempdir().unwrap();
        let path = ScratchDir::new_in(parent.path(), "rc-t").unwrap().keep();
        assert!(path.is_dir() && !recorded(&path));
    }
}
