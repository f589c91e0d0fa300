//! One k3s cluster in a container, started through testcontainers: the
//! pinned `rancher/k3s` image, Traefik disabled (ingress-nginx is
//! installed instead), privileged with the host's cgroup namespace (k3s
//! needs a writable cgroup tree on cgroup v2 hosts), the API server and the
//! ingress ports (80, 443 and the scenario's raw TCP ports) mapped to free
//! host ports, and its kubeconfig read from the container (through the folder mounted
//! at /etc/rancher/k3s) with the server rewritten to the mapped API port.

use super::versions::K3sImage;
use crate::scenario::Install;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testcontainers_modules::k3s::K3s;
use testcontainers_modules::testcontainers::core::{CgroupnsMode, ContainerPort};
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt, TestcontainersError};
use tokio::sync::Mutex;

/// Where k3s writes its kubeconfig inside the container.
pub const KUBECONFIG_IN_CONTAINER: &str = "/etc/rancher/k3s/k3s.yaml";

/// The API server address k3s writes into its kubeconfig.
const SERVER_IN_CONTAINER: &str = "https://127.0.0.1:6443";

/// How long starting k3s may take (pulling the image included).
pub const START_TIMEOUT: Duration = Duration::from_secs(600);

/// The k3s server's command line.
pub fn server_args() -> Vec<String> {
    // servicelb would bind 80/443 on the node for ingress-nginx's
    // LoadBalancer Service, colliding with the controller's own hostPorts.
    [
        "server",
        "--snapshotter=native",
        "--disable=traefik",
        "--disable=servicelb",
    ]
    .map(str::to_string)
    .to_vec()
}

/// Why a k3s cluster could not be had.
#[derive(Debug, thiserror::Error)]
pub enum K3sError {
    /// No free host port could be reserved.
    #[error("choosing a free host port: {0}")]
    HostPort(#[source] std::io::Error),
    /// The container did not start (or k3s did not become ready).
    #[error("starting {image}: {source}")]
    Start {
        /// The image reference.
        image: String,
        /// What testcontainers said.
        #[source]
        source: TestcontainersError,
    },
    /// The folder k3s writes its kubeconfig into could not be made.
    #[error("creating a folder for the k3s kubeconfig in {path}: {source}")]
    ConfDir {
        /// The parent folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig k3s wrote could not be read.
    #[error("reading the kubeconfig k3s writes to {KUBECONFIG_IN_CONTAINER}: {0}")]
    ReadKubeconfig(#[source] std::io::Error),
    /// The kubeconfig does not name the server it should.
    #[error("the k3s kubeconfig does not name the server {SERVER_IN_CONTAINER}")]
    UnexpectedKubeconfig,
    /// The rewritten kubeconfig could not be written.
    #[error("writing {path}: {source}")]
    WriteKubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `kubeconfig` with its server pointing at the API port mapped to
/// `host_port` on the host.
pub fn rewrite_server(kubeconfig: &str, host_port: u16) -> Result<String, K3sError> {
    if !kubeconfig.contains(SERVER_IN_CONTAINER) {
        return Err(K3sError::UnexpectedKubeconfig);
    }
    Ok(kubeconfig.replace(
        SERVER_IN_CONTAINER,
        &format!("https://127.0.0.1:{host_port}"),
    ))
}

/// The API server's port in the container.
const API_PORT: u16 = 6443;

/// Container port → free host port (as the kernel hands them out) for the
/// API server and `ingress_ports`.
/// Every port is mapped explicitly: once one port is mapped, testcontainers
/// no longer publishes the image's exposed ports (6443 among them).
pub fn port_bindings(ingress_ports: &[u16]) -> Result<BTreeMap<u16, u16>, K3sError> {
    let mut bindings = BTreeMap::new();
    // Held until every port is chosen, so no two get the same one.
    let mut held = Vec::new();
    for port in std::iter::once(&API_PORT).chain(ingress_ports) {
        if bindings.contains_key(port) {
            continue;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(K3sError::HostPort)?;
        let host = listener.local_addr().map_err(K3sError::HostPort)?.port();
        bindings.insert(*port, host);
        held.push(listener);
    }
    Ok(bindings)
}

/// A running k3s cluster.
pub struct K3sCluster {
    /// The container (taken at shutdown).
    container: Mutex<Option<ContainerAsync<K3s>>>,
    /// Its id, for people (`docker rm -f <id>`).
    pub container_id: String,
    /// The image it runs.
    pub image: K3sImage,
    /// The folder mounted at /etc/rancher/k3s.
    conf_dir: PathBuf,
    /// The kubeconfig on the host, its server rewritten.
    pub kubeconfig: PathBuf,
    /// Container port → host port, for the ingress ports.
    pub host_ports: BTreeMap<u16, u16>,
    /// What is installed on it (installs are serialized through this lock).
    pub installed: Mutex<Vec<Install>>,
}

impl K3sCluster {
    /// Starts k3s from `image` with `ingress_ports` (container ports)
    /// mapped to free host ports; the kubeconfig goes into `dir`.
    pub async fn start(
        image: K3sImage,
        ingress_ports: &[u16],
        dir: &Path,
    ) -> Result<K3sCluster, K3sError> {
        let bindings = port_bindings(ingress_ports)?;
        // k3s writes its kubeconfig into this folder (bind-mounted at
        // /etc/rancher/k3s); it is removed with the container.
        let conf_dir = std::fs::create_dir_all(dir)
            .and_then(|()| tempfile::Builder::new().prefix("k3s-").tempdir_in(dir))
            .map_err(|source| K3sError::ConfDir {
                path: dir.to_path_buf(),
                source,
            })?
            .keep();
        let mut request = K3s::default()
            .with_conf_mount(&conf_dir)
            .with_tag(image.tag)
            .with_cmd(server_args())
            .with_privileged(true)
            .with_userns_mode("host")
            .with_cgroupns_mode(CgroupnsMode::Host)
            .with_startup_timeout(START_TIMEOUT);
        for (container, host) in &bindings {
            request = request.with_mapped_port(*host, ContainerPort::Tcp(*container));
        }
        let container = request.start().await.map_err(|source| K3sError::Start {
            image: image.reference(),
            source,
        })?;
        let api_port = bindings[&API_PORT];
        let mut host_ports = bindings;
        host_ports.remove(&API_PORT);
        let written = container
            .image()
            .read_kube_config()
            .map_err(K3sError::ReadKubeconfig)?;
        let kubeconfig = conf_dir.join("host.yaml");
        std::fs::write(&kubeconfig, rewrite_server(&written, api_port)?).map_err(|source| {
            K3sError::WriteKubeconfig {
                path: kubeconfig.clone(),
                source,
            }
        })?;
        Ok(K3sCluster {
            container_id: container.id().to_string(),
            container: Mutex::new(Some(container)),
            image,
            conf_dir,
            kubeconfig,
            host_ports,
            installed: Mutex::new(Vec::new()),
        })
    }

    /// Removes the container, or with `keep` leaves it running; returns
    /// problems.
    pub async fn stop(&self, keep: bool) -> Vec<String> {
        let Some(container) = self.container.lock().await.take() else {
            return Vec::new();
        };
        if keep {
            // Dropping it would remove it.
            std::mem::forget(container);
            return Vec::new();
        }
        // Files k3s wrote there may belong to root: best effort.
        let _ = std::fs::remove_dir_all(&self.conf_dir);
        match container.rm().await {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!("removing k3s container {}: {e}", self.container_id)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_rewritten_to_the_mapped_port() {
        let k = "clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\n";
        assert_eq!(
            rewrite_server(k, 40123).unwrap(),
            "clusters:\n- cluster:\n    server: https://127.0.0.1:40123\n  name: default\n"
        );
        assert!(matches!(
            rewrite_server("server: https://10.0.0.1:6443\n", 1),
            Err(K3sError::UnexpectedKubeconfig)
        ));
    }

    #[test]
    fn the_api_and_every_ingress_port_get_their_own_host_port() {
        let bindings = port_bindings(&[80, 443, 10001]).unwrap();
        assert_eq!(
            bindings.keys().copied().collect::<Vec<_>>(),
            [80, 443, 6443, 10001]
        );
        let mut hosts: Vec<u16> = bindings.values().copied().collect();
        hosts.sort_unstable();
        hosts.dedup();
        assert_eq!(hosts.len(), 4, "distinct host ports: {bindings:?}");
        assert!(hosts.iter().all(|p| *p != 0));
    }

    #[test]
    fn traefik_is_disabled() {
        assert!(server_args().contains(&"--disable=traefik".to_string()));
        assert_eq!(server_args()[0], "server");
    }
}
