//! Looking up the external tools targets need, with one clear message each.

use std::path::PathBuf;

/// An external program rayconform may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// Executable name.
    pub name: &'static str,
    /// How to get it.
    pub install_hint: &'static str,
}

/// kind.
pub const KIND: Tool = Tool {
    name: "kind",
    install_hint: "install kind v0.33.0: https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
};
/// docker CLI (the engine must run too).
pub const DOCKER: Tool = Tool {
    name: "docker",
    install_hint: "install Docker Engine and start it: https://docs.docker.com/engine/install/",
};
/// helm.
pub const HELM: Tool = Tool {
    name: "helm",
    install_hint: "install helm 3: https://helm.sh/docs/intro/install/",
};
/// istioctl.
pub const ISTIOCTL: Tool = Tool {
    name: "istioctl",
    install_hint: "install istioctl 1.30: https://istio.io/latest/docs/setup/getting-started/#download",
};
/// python3 (for the lab's Ray venv).
pub const PYTHON3: Tool = Tool {
    name: "python3",
    install_hint: "apt-get install -y python3 python3-venv",
};
/// nginx (for the lab's ingress stand-in).
pub const NGINX: Tool = Tool {
    name: "nginx",
    install_hint: "apt-get install -y nginx libnginx-mod-stream",
};

impl Tool {
    /// The tool's path, or a one-line message naming it and how to install it.
    pub fn find(&self) -> Result<PathBuf, String> {
        which::which(self.name)
            .map_err(|_| format!("`{}` not found on PATH: {}", self.name, self.install_hint))
    }
}

/// Whether a Docker engine answers (the CLI alone is not enough).
pub fn docker_engine_reason() -> Option<String> {
    if let Err(e) = DOCKER.find() {
        return Some(e);
    }
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| "/var/run/docker.sock".to_string());
    if !std::path::Path::new(&socket).exists() {
        return Some(format!(
            "no Docker engine: socket {socket} not found (the docker CLI is there, the engine is not running)"
        ));
    }
    None
}
