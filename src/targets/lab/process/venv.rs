//! The project-local Python venv holding the pinned Ray.

use crate::targets::lab::LabError;
use crate::tools::PYTHON3;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Ray version the lab runs (and the venv pins).
pub const RAY_VERSION: &str = "2.60.0";

/// Environment variable naming the venv folder instead of `.lab/ray-venv`.
pub const VENV_ENV: &str = "RAYCONFORM_RAY_VENV";

/// A venv with Ray installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RayVenv {
    /// The venv folder.
    pub root: PathBuf,
    /// `bin/ray`.
    pub ray: PathBuf,
    /// `bin/python`.
    pub python: PathBuf,
}

impl RayVenv {
    /// The venv folder: `$RAYCONFORM_RAY_VENV`, else `<project_root>/.lab/ray-venv`.
    pub fn folder(project_root: &Path) -> PathBuf {
        match std::env::var_os(VENV_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => project_root.join(".lab").join("ray-venv"),
        }
    }

    /// Finds an existing venv with `bin/ray` and `bin/python`.
    pub fn locate(project_root: &Path) -> Result<RayVenv, LabError> {
        Self::locate_in(Self::folder(project_root))
    }

    /// Checks the venv at `root`.
    fn locate_in(root: PathBuf) -> Result<RayVenv, LabError> {
        let venv = RayVenv {
            ray: root.join("bin").join("ray"),
            python: root.join("bin").join("python"),
            root,
        };
        for file in [&venv.ray, &venv.python] {
            if !file.is_file() {
                return Err(LabError::Missing(format!(
                    "Ray venv incomplete: {} not found (run scripts/setup, or set {VENV_ENV})",
                    file.display()
                )));
            }
        }
        Ok(venv)
    }

    /// Like [`RayVenv::locate`], but creates the venv with pip
    /// (`ray[default,client]==RAY_VERSION`) when it is missing.
    pub fn ensure(project_root: &Path) -> Result<RayVenv, LabError> {
        if let Ok(venv) = Self::locate(project_root) {
            return Ok(venv);
        }
        let root = Self::folder(project_root);
        let python3 = PYTHON3.find().map_err(LabError::Missing)?;
        if let Some(parent) = root.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| LabError::io(format!("creating {}", parent.display()), e))?;
        }
        run(Command::new(&python3).arg("-m").arg("venv").arg(&root))?;
        let pip = root.join("bin").join("pip");
        run(Command::new(&pip)
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("ray[default,client]=={RAY_VERSION}")))?;
        Self::locate(project_root)
    }
}

fn run(command: &mut Command) -> Result<(), LabError> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| LabError::io(format!("running {shown}"), e))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    Err(LabError::CommandFailed {
        command: shown,
        message: format!(
            "{}\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = RayVenv::locate_in(dir.path().to_path_buf())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bin/ray"), "{err}");
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/ray"), "").unwrap();
        let err = RayVenv::locate_in(dir.path().to_path_buf())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bin/python"), "{err}");
        std::fs::write(dir.path().join("bin/python"), "").unwrap();
        assert!(RayVenv::locate_in(dir.path().to_path_buf()).is_ok());
    }
}
