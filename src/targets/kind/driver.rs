//! Driving the `kind` CLI: version check, create (bounded by a timeout),
//! find existing clusters, export kubeconfig, delete.

use super::error::KindError;
use crate::install::command::{self, CommandError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `kind create cluster` may take (kind itself waits up to 5m for
/// the control plane).
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(900);
const SHORT: Duration = Duration::from_secs(60);

/// The kind CLI at a path.
#[derive(Debug, Clone)]
pub struct KindCli {
    /// The binary.
    pub path: PathBuf,
}

impl KindCli {
    /// `kind version`'s release, e.g. `v0.33.0`.
    pub async fn release(&self) -> Result<String, CommandError> {
        let out = command::run(&self.path, &["version".into()], &[], SHORT).await?;
        Ok(parse_release(&out.stdout).unwrap_or_default())
    }

    /// Names of existing kind clusters.
    pub async fn clusters(&self) -> Result<Vec<String>, CommandError> {
        let out = command::run(&self.path, &["get".into(), "clusters".into()], &[], SHORT).await?;
        Ok(out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// `kind create cluster --name N --config F --image I --wait 5m`.
    pub async fn create(
        &self,
        name: &str,
        config: &Path,
        image: &str,
    ) -> Result<String, CommandError> {
        let out = command::run(
            &self.path,
            &create_args(name, config, image),
            &[],
            CREATE_TIMEOUT,
        )
        .await?;
        Ok(format!("{}{}", out.stdout, out.stderr))
    }

    /// Writes the cluster's kubeconfig to `path` (0600).
    pub async fn export_kubeconfig(&self, name: &str, path: &Path) -> Result<(), KindError> {
        let out = command::run(
            &self.path,
            &[
                "get".into(),
                "kubeconfig".into(),
                "--name".into(),
                name.into(),
            ],
            &[],
            SHORT,
        )
        .await?;
        write_private(path, &out.stdout).map_err(|source| KindError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// `kind load docker-image IMAGE --name N`: copies an image from the
    /// local Docker engine onto every node, so the nodes need not pull it.
    pub async fn load_image(&self, name: &str, image: &str) -> Result<(), CommandError> {
        command::run(
            &self.path,
            &[
                "load".into(),
                "docker-image".into(),
                image.into(),
                "--name".into(),
                name.into(),
            ],
            &[],
            Duration::from_secs(600),
        )
        .await
        .map(|_| ())
    }

    /// `kind delete cluster --name N`.
    pub async fn delete(&self, name: &str) -> Result<(), CommandError> {
        command::run(
            &self.path,
            &[
                "delete".into(),
                "cluster".into(),
                "--name".into(),
                name.into(),
            ],
            &[],
            Duration::from_secs(300),
        )
        .await
        .map(|_| ())
    }
}

/// `kind version`'s release, run synchronously with a deadline (for
/// availability checks, which are not async).
pub fn release_blocking(kind: &Path, timeout: Duration) -> Result<String, KindError> {
    let mut child = std::process::Command::new(kind)
        .arg("version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|source| KindError::Spawn {
            path: kind.to_path_buf(),
            source,
        })?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(KindError::Silent {
                    path: kind.to_path_buf(),
                    secs: timeout.as_secs(),
                });
            }
        }
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    parse_release(&out).ok_or(KindError::NoRelease(out))
}

/// The arguments of `kind create cluster`.
pub fn create_args(name: &str, config: &Path, image: &str) -> Vec<String> {
    vec![
        "create".into(),
        "cluster".into(),
        "--name".into(),
        name.into(),
        "--config".into(),
        config.display().to_string(),
        "--image".into(),
        image.into(),
        "--wait".into(),
        "5m".into(),
    ]
}

/// `v0.33.0` from `kind v0.33.0 go1.24.5 linux/amd64`.
pub fn parse_release(output: &str) -> Option<String> {
    output
        .split_whitespace()
        .find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string)
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kind_releases() {
        assert_eq!(
            parse_release("kind v0.33.0 go1.24.5 linux/amd64").as_deref(),
            Some("v0.33.0")
        );
        assert_eq!(parse_release("garbage"), None);
    }
}
