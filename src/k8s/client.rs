//! Connecting to a cluster.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::Path;

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig could not be read.
    #[error("cannot read kubeconfig {path}: {reason}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The kubeconfig was read but does not describe a usable cluster.
    #[error("kubeconfig has no usable cluster{}: {reason}", context.as_ref().map(|c| format!(" for context `{c}`")).unwrap_or_default())]
    Config {
        /// The context asked for.
        context: Option<String>,
        /// What went wrong.
        reason: String,
    },
}

/// A client from a kubeconfig file (or `KUBECONFIG`/`~/.kube/config` when
/// `path` is `None`) and an optional context.
pub async fn connect(path: Option<&Path>, context: Option<&str>) -> Result<Client, ClientError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let config_error = |reason: String| ClientError::Config {
        context: context.map(str::to_string),
        reason,
    };
    let config = match path {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| ClientError::Kubeconfig {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| config_error(e.to_string()))?
        }
        None => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| config_error(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| config_error(e.to_string()))
}

/// A client for an API server URL without credentials (tests, `kubectl proxy`).
pub fn connect_url(url: &str) -> Result<Client, ClientError> {
    let uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| ClientError::Config {
            context: None,
            reason: format!("bad URL {url}: {e}"),
        })?;
    Client::try_from(Config::new(uri)).map_err(|e| ClientError::Config {
        context: None,
        reason: e.to_string(),
    })
}
