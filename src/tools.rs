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

/// A needed tool is not on `PATH`; says which and how to install it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` not found on PATH: {}", .0.name, .0.install_hint)]
pub struct ToolMissing(pub Tool);

impl Tool {
    /// The tool's path, or which tool is missing.
    pub fn locate(&self) -> Result<PathBuf, ToolMissing> {
        which::which(self.name).map_err(|_| ToolMissing(*self))
    }

    /// The tool's path, or a one-line message naming it and how to install
    /// it (the message of [`Tool::locate`]'s error).
    pub fn find(&self) -> Result<PathBuf, String> {
        self.locate().map_err(|missing| missing.to_string())
    }
}

/// The Docker engine's socket when it is missing: the `unix://` path of
/// `DOCKER_HOST`, else `/var/run/docker.sock`. Any other `DOCKER_HOST`
/// (`tcp://...`) is taken as given.
pub fn missing_docker_socket() -> Option<PathBuf> {
    let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
    let socket = match host.as_deref() {
        Some(h) => PathBuf::from(h.strip_prefix("unix://")?),
        None => PathBuf::from("/var/run/docker.sock"),
    };
    (!socket.exists()).then_some(socket)
}

/// Whether a Docker engine answers (the CLI alone is not enough).
pub fn docker_engine_reason() -> Option<String> {
    if let Err(missing) = DOCKER.locate() {
        return Some(missing.to_string());
    }
    missing_docker_socket().map(|socket| {
        format!(
            "no Docker engine: socket {} not found (the docker CLI is there, the engine is not running)",
            socket.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_says_which_and_how_to_install_it() {
        let absent = Tool {
            name: "rayconform-no-such-tool",
            install_hint: "build it yourself",
        };
        let missing = absent.locate().unwrap_err();
        assert_eq!(missing, ToolMissing(absent));
        let message = "`rayconform-no-such-tool` not found on PATH: build it yourself";
        assert_eq!(missing.to_string(), message);
        assert_eq!(absent.find().unwrap_err(), message);
    }
}
