//! The run's certificate authorities, shared by scenarios that ask for the
//! same ones.
//!
//! Scenarios with the same `certificates:` (CA name and extra server names)
//! get the same files, so a lab Ray head serving them is the same head and
//! the pool shares it instead of cold-starting one per scenario (~5 s each).
//! A scenario that names another CA or other server names gets its own set.
//! The files live in one private (0700) folder per run, removed when the run
//! ends (on a hard exit by the interrupt handler), or kept with `--keep`.

use super::interrupt;
use crate::scenario::CertificatesSpec;
use crate::tls::{CertificateSet, TlsError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The run's generated certificate sets, by what scenarios asked for.
pub struct RunCertificates {
    keep: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    dir: Option<PathBuf>,
    sets: HashMap<(String, Vec<String>), Arc<CertificateSet>>,
}

impl RunCertificates {
    /// No certificates yet; with `keep` the folder outlives the run.
    pub fn new(keep: bool) -> Self {
        RunCertificates {
            keep: AtomicBool::new(keep),
            state: Mutex::new(State::default()),
        }
    }

    /// The set for `spec`: generated at first use, the same files after.
    pub fn get(&self, spec: &CertificatesSpec) -> Result<Arc<CertificateSet>, TlsError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = (spec.ca.clone(), spec.server_names.clone());
        if let Some(set) = state.sets.get(&key) {
            return Ok(set.clone());
        }
        let dir = match &state.dir {
            Some(dir) => dir.clone(),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("rayconform-certs-")
                    .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
                    .tempdir()
                    .map_err(|e| TlsError::Io {
                        path: std::env::temp_dir(),
                        source: e,
                    })?
                    .keep();
                interrupt::register_private_dir(&dir, !self.keep.load(Ordering::SeqCst));
                state.dir = Some(dir.clone());
                dir
            }
        };
        let set = Arc::new(crate::tls::generate(
            &dir.join(format!("set-{}", state.sets.len() + 1)),
            &spec.ca,
            &spec.server_names,
        )?);
        state.sets.insert(key, set.clone());
        Ok(set)
    }

    /// Keeps the files after the run after all (`--keep on-failure` when a
    /// scenario did not pass).
    pub fn keep(&self) {
        self.keep.store(true, Ordering::SeqCst);
        if let Some(dir) = self.dir() {
            interrupt::register_private_dir(&dir, false);
        }
    }

    /// The run's certificate folder, once one was needed.
    pub fn dir(&self) -> Option<PathBuf> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dir
            .clone()
    }
}

impl Drop for RunCertificates {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(dir) = state.dir.take() else {
            return;
        };
        if self.keep.load(Ordering::SeqCst) {
            tracing::info!(dir = %dir.display(), "kept the run's certificates (--keep)");
            return;
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => interrupt::unregister_private_dir(&dir),
            Err(e) => tracing::warn!("cannot remove {}: {e}", dir.display()),
        }
    }
}
