//! Rendering the kind config for one run: the scenario's base config plus
//! its extra port mappings, workers and the node image of the chosen
//! Kubernetes version, checked again after the changes.

use super::config::{KindConfig, Node, PortMapping, unlocated};
use super::error::KindError;
use super::versions::NodeImage;
use crate::scenario::{ClusterSpec, Scenario};
use crate::targets::cluster::tcp_service_ports;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The kind config used when a scenario names none.
pub const DEFAULT_CONFIG: &str = "kind-configs/ingress-ready.yaml";

/// A kind config ready for `kind create cluster --config`.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedConfig {
    /// The base file it came from.
    pub source: PathBuf,
    /// The final config.
    pub config: KindConfig,
    /// The node image every node uses.
    pub image: NodeImage,
    /// The YAML kind reads.
    pub yaml: String,
    /// A stable hash of `yaml`, used to decide whether an existing cluster
    /// of the same name can be reused.
    pub hash: String,
}

impl RenderedConfig {
    /// Host ports published for TCP, by container port.
    pub fn tcp_host_ports(&self) -> BTreeMap<u16, u16> {
        self.config
            .nodes
            .iter()
            .flat_map(|n| &n.extra_port_mappings)
            .filter(|m| m.protocol_upper() == "TCP")
            .map(|m| (m.container_port, m.host_port.value))
            .collect()
    }
}

/// The base config path a scenario uses, absolute.
pub fn base_config_path(scenario: &Scenario, project_root: &Path) -> PathBuf {
    let relative = scenario
        .cluster
        .as_ref()
        .and_then(|c| c.config.clone())
        .unwrap_or_else(|| DEFAULT_CONFIG.to_string());
    project_root.join(relative)
}

/// Renders the config for `scenario` on `image`. Errors are one message per
/// problem, located in the base file where possible.
pub fn render(
    scenario: &Scenario,
    project_root: &Path,
    image: NodeImage,
) -> Result<RenderedConfig, KindError> {
    let source = base_config_path(scenario, project_root);
    let mut config = KindConfig::load(&source)?;
    let default_cluster = ClusterSpec::default();
    let cluster = scenario.cluster.as_ref().unwrap_or(&default_cluster);
    apply_cluster_spec(&mut config, cluster, &tcp_service_ports(&scenario.install));
    for node in &mut config.nodes {
        node.image = Some(image.reference());
    }
    let problems = config.problems();
    if !problems.is_empty() {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| {
                let at = if p.line > 0 {
                    format!("{}:{}:{}", source.display(), p.line, p.column)
                } else {
                    format!("{} (as rendered for {})", source.display(), scenario.name)
                };
                format!("{at}: {}: {}", p.path, p.message)
            })
            .collect();
        return Err(KindError::Rendered(lines));
    }
    let yaml = config.to_yaml();
    let hash = stable_hash(&yaml);
    Ok(RenderedConfig {
        source,
        config,
        image,
        yaml,
        hash,
    })
}

/// Adds the scenario's port mappings (and a host mapping for every TCP
/// service the ingress publishes) to the control plane, and its workers.
fn apply_cluster_spec(config: &mut KindConfig, cluster: &ClusterSpec, tcp_ports: &[u16]) {
    if config.nodes.is_empty() {
        config.nodes.push(node("control-plane"));
    }
    if let Some(control_plane) = config.control_plane_mut() {
        for m in &cluster.extra_port_mappings {
            control_plane.extra_port_mappings.push(PortMapping {
                container_port: m.container_port,
                host_port: unlocated(m.host_port),
                listen_address: m.listen_address.clone(),
                protocol: m.protocol.clone().map(unlocated),
            });
        }
        for &port in tcp_ports {
            let mapped = control_plane
                .extra_port_mappings
                .iter()
                .any(|m| m.container_port == port && m.protocol_upper() == "TCP");
            if !mapped {
                control_plane
                    .extra_port_mappings
                    .push(PortMapping::tcp(port, port));
            }
        }
    }
    for _ in 0..cluster.workers {
        config.nodes.push(node("worker"));
    }
}

fn node(role: &str) -> Node {
    Node {
        role: unlocated(role.to_string()),
        image: None,
        labels: BTreeMap::new(),
        extra_mounts: Vec::new(),
        extra_port_mappings: Vec::new(),
        kubeadm_config_patches: Vec::new(),
        kubeadm_config_patches_json6902: Vec::new(),
    }
}

/// FNV-1a, 64 bit, as hex: stable across builds and platforms (std's
/// hasher is not), which is all a reuse check needs.
pub fn stable_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_and_sensitive() {
        assert_eq!(stable_hash("a"), "af63dc4c8601ec8c");
        assert_ne!(stable_hash("nodes: 1"), stable_hash("nodes: 2"));
    }
}
