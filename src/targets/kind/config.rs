//! The kind cluster config (`kind.x-k8s.io/v1alpha4`) as a typed model:
//! only the fields kind itself accepts, loaded with located errors and
//! checked before kind sees it.

use crate::scenario::{LoadError, LoadErrors};
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// `apiVersion` of every kind config rayconform reads and writes.
pub const API_VERSION: &str = "kind.x-k8s.io/v1alpha4";

/// A kind `Cluster` config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KindConfig {
    /// Always `Cluster`.
    pub kind: Spanned<String>,
    /// Always [`API_VERSION`].
    pub api_version: Spanned<String>,
    /// Cluster name (the command line's `--name` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The nodes; kind makes one control-plane when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<Node>,
    /// Cluster networking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<Networking>,
    /// Kubernetes feature gates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feature_gates: BTreeMap<String, bool>,
    /// API server `--runtime-config`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub runtime_config: BTreeMap<String, String>,
    /// kubeadm config patches for every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubeadm_config_patches: Vec<String>,
    /// JSON 6902 kubeadm patches for every node.
    #[serde(
        default,
        rename = "kubeadmConfigPatchesJSON6902",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub kubeadm_config_patches_json6902: Vec<serde_json::Value>,
    /// containerd config patches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containerd_config_patches: Vec<String>,
    /// JSON 6902 containerd patches.
    #[serde(
        default,
        rename = "containerdConfigPatchesJSON6902",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub containerd_config_patches_json6902: Vec<String>,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Node {
    /// `control-plane` or `worker`.
    pub role: Spanned<String>,
    /// Node image (set per run from the chosen Kubernetes version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Node labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Host folders mounted into the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_mounts: Vec<Mount>,
    /// Host ports forwarded into the node container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_port_mappings: Vec<PortMapping>,
    /// kubeadm config patches for this node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubeadm_config_patches: Vec<String>,
    /// JSON 6902 kubeadm patches for this node.
    #[serde(
        default,
        rename = "kubeadmConfigPatchesJSON6902",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub kubeadm_config_patches_json6902: Vec<serde_json::Value>,
}

/// `extraMounts[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mount {
    /// Path on the host.
    pub host_path: String,
    /// Path in the node.
    pub container_path: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// SELinux relabelling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux_relabel: Option<bool>,
    /// Mount propagation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
}

/// `extraPortMappings[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortMapping {
    /// Port in the node container.
    pub container_port: u16,
    /// Port on the host.
    pub host_port: Spanned<u16>,
    /// Host address to listen on (kind's default: all addresses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
    /// TCP (default), UDP or SCTP, any case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Spanned<String>>,
}

/// `networking`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Networking {
    /// `ipv4`, `ipv6` or `dual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_family: Option<String>,
    /// Host port of the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server_port: Option<i32>,
    /// Host address of the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server_address: Option<String>,
    /// Pod CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_subnet: Option<String>,
    /// Service CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_subnet: Option<String>,
    /// Skip kindnet.
    #[serde(
        default,
        rename = "disableDefaultCNI",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_default_cni: Option<bool>,
    /// `iptables`, `ipvs`, `nftables` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_proxy_mode: Option<String>,
    /// DNS search domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_search: Option<Vec<String>>,
}

impl KindConfig {
    /// Reads and checks a kind config file.
    pub fn load(path: &Path) -> Result<KindConfig, LoadErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            LoadErrors(vec![LoadError::whole_file(
                path,
                format!("cannot read kind config: {e}"),
            )])
        })?;
        KindConfig::parse(path, &text)
    }

    /// Parses and checks kind config text; errors are located in `path`.
    pub fn parse(path: &Path, text: &str) -> Result<KindConfig, LoadErrors> {
        let config: KindConfig = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            LoadErrors(vec![located(path, text, line, column, "", e.to_string())])
        })?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(LoadErrors(
                problems
                    .into_iter()
                    .map(|p| located(path, text, p.line, p.column, &p.path, p.message))
                    .collect(),
            ))
        }
    }

    /// Everything kind would reject, with locations when the value came
    /// from a file (rendered additions have none).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.kind.value != "Cluster" {
            out.push(Problem::at(
                self.kind.referenced,
                "kind",
                format!("must be `Cluster`, not `{}`", self.kind.value),
            ));
        }
        if self.api_version.value != API_VERSION {
            out.push(Problem::at(
                self.api_version.referenced,
                "apiVersion",
                format!("must be `{API_VERSION}`, not `{}`", self.api_version.value),
            ));
        }
        let mut seen: HashMap<(u16, String, String), (String, Location)> = HashMap::new();
        let mut control_planes = 0;
        for (n, node) in self.nodes.iter().enumerate() {
            match node.role.value.as_str() {
                "control-plane" => control_planes += 1,
                "worker" => {}
                other => out.push(Problem::at(
                    node.role.referenced,
                    &format!("nodes[{n}].role"),
                    format!("must be `control-plane` or `worker`, not `{other}`"),
                )),
            }
            for (m, mapping) in node.extra_port_mappings.iter().enumerate() {
                let path = format!("nodes[{n}].extraPortMappings[{m}]");
                let protocol = mapping.protocol_upper();
                if let Some(p) = &mapping.protocol
                    && !matches!(protocol.as_str(), "TCP" | "UDP" | "SCTP")
                {
                    out.push(Problem::at(
                        p.referenced,
                        &format!("{path}.protocol"),
                        format!("must be TCP, UDP or SCTP, not `{}`", p.value),
                    ));
                }
                let address = mapping.listen_address.clone().unwrap_or_default();
                let key = (mapping.host_port.value, protocol, address);
                let here = mapping.host_port.referenced;
                if let Some((first_path, first)) = seen.get(&key) {
                    out.push(Problem::at(
                        here,
                        &format!("{path}.hostPort"),
                        format!(
                            "host port {} ({}) is mapped twice: first at {first_path}{}",
                            key.0,
                            key.1,
                            describe(*first)
                        ),
                    ));
                } else {
                    seen.insert(key, (format!("{path}.hostPort"), here));
                }
            }
        }
        if !self.nodes.is_empty() && control_planes == 0 {
            out.push(Problem::at(
                Location::UNKNOWN,
                "nodes",
                "needs at least one `control-plane` node".to_string(),
            ));
        }
        out
    }

    /// The first control-plane node, if nodes are listed.
    pub fn control_plane_mut(&mut self) -> Option<&mut Node> {
        self.nodes
            .iter_mut()
            .find(|n| n.role.value == "control-plane")
    }

    /// The config as YAML, the way kind reads it.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

impl PortMapping {
    /// A TCP mapping (used for rendered additions).
    pub fn tcp(container_port: u16, host_port: u16) -> PortMapping {
        PortMapping {
            container_port,
            host_port: Spanned::new(host_port, Location::UNKNOWN, Location::UNKNOWN),
            listen_address: None,
            protocol: Some(unlocated("TCP".to_string())),
        }
    }

    /// The protocol as kind uses it (upper-cased, TCP when unset).
    pub fn protocol_upper(&self) -> String {
        self.protocol
            .as_ref()
            .map_or_else(|| "TCP".to_string(), |p| p.value.to_ascii_uppercase())
    }
}

/// A value that did not come from a file.
pub fn unlocated<T>(value: T) -> Spanned<T> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

/// One thing kind would reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line (0 when the value was added by rendering).
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// Where in the document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    fn at(at: Location, path: &str, message: String) -> Problem {
        Problem {
            line: at.line(),
            column: at.column(),
            path: path.to_string(),
            message,
        }
    }
}

fn describe(at: Location) -> String {
    if at.line() == 0 {
        " (added by the scenario)".to_string()
    } else {
        format!(" (line {} column {})", at.line(), at.column())
    }
}

fn located(
    path: &Path,
    text: &str,
    line: u64,
    column: u64,
    at: &str,
    message: String,
) -> LoadError {
    LoadError {
        file: path.to_path_buf(),
        line,
        column,
        path: at.to_string(),
        message,
        snippet: snippet(text, line, column),
    }
}

/// The source line with a caret under the column.
fn snippet(text: &str, line: u64, column: u64) -> Option<String> {
    let source = text
        .lines()
        .nth(usize::try_from(line.checked_sub(1)?).ok()?)?;
    let pad = " ".repeat(usize::try_from(column.saturating_sub(1)).unwrap_or(0));
    Some(format!("  {line:>4} | {source}\n       | {pad}^"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KindConfig, LoadErrors> {
        KindConfig::parse(Path::new("k.yaml"), text)
    }

    const GOOD: &str = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  labels:\n    ingress-ready: \"true\"\n  extraPortMappings:\n  - containerPort: 80\n    hostPort: 80\n    protocol: tcp\n";

    #[test]
    fn a_good_config_loads_and_renders_back() {
        let config = parse(GOOD).unwrap();
        assert_eq!(
            config.nodes[0].extra_port_mappings[0].protocol_upper(),
            "TCP"
        );
        let again = parse(&config.to_yaml()).unwrap();
        assert_eq!(again.to_yaml(), config.to_yaml());
    }

    #[test]
    fn unknown_fields_are_located() {
        let text = GOOD.replace("  labels:", "  lables:");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("k.yaml:5:"), "{err}");
        assert!(err.contains("lables"), "{err}");
    }

    #[test]
    fn bad_protocol_and_role_are_located() {
        let text = GOOD
            .replace("protocol: tcp", "protocol: http")
            .replace("role: control-plane", "role: master");
        let errs = parse(&text).unwrap_err();
        let text = errs.to_string();
        assert_eq!(errs.0.len(), 3, "{text}"); // role, protocol, no control-plane
        assert!(
            text.contains(
                "k.yaml:4:9: nodes[0].role: must be `control-plane` or `worker`, not `master`"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "k.yaml:10:15: nodes[0].extraPortMappings[0].protocol: must be TCP, UDP or SCTP"
            ),
            "{text}"
        );
    }

    #[test]
    fn duplicate_host_ports_name_both_places() {
        let text = format!("{GOOD}  - containerPort: 8080\n    hostPort: 80\n");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("k.yaml:12:15: nodes[0].extraPortMappings[1].hostPort: host port 80 (TCP) is mapped twice: first at nodes[0].extraPortMappings[0].hostPort (line 9 column 15)"), "{err}");
    }

    #[test]
    fn the_same_port_on_udp_is_not_a_duplicate() {
        let text = format!("{GOOD}  - containerPort: 80\n    hostPort: 80\n    protocol: UDP\n");
        parse(&text).unwrap();
    }
}
