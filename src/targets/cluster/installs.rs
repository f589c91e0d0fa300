//! What the cluster targets share about a scenario's installs: whether
//! they can run on a Kubernetes version, their plan sections and the raw
//! TCP ports they open.

use crate::install;
use crate::scenario::{Install, Scenario};

pub use crate::install::kubernetes_support::is_component_support_reason;

/// Why a scenario's installs cannot run on `k8s_version` (checked first:
/// no tool fixes it), or the tool it misses.
pub fn installs_unsupported(installs: &[Install], k8s_version: &str) -> Option<String> {
    if let Some(why) = installs
        .iter()
        .find_map(|i| i.component().unsupported_on(k8s_version))
    {
        return Some(why);
    }
    for item in installs {
        let component = item.component();
        for tool in component.tools() {
            if let Err(missing) = tool.locate() {
                return Some(format!("{} needs {missing}", component.name()));
            }
        }
    }
    None
}

/// Plan sections shared by the cluster targets: one per install.
pub fn install_sections(scenario: &Scenario, namespace: &str) -> Vec<(String, String)> {
    scenario
        .install
        .iter()
        .map(|i| install::plan(i, namespace))
        .collect()
}

/// Ports the installs serve raw TCP on (they need host mappings).
pub fn tcp_service_ports(installs: &[Install]) -> Vec<u16> {
    installs
        .iter()
        .flat_map(|i| i.component().host_tcp_ports())
        .collect()
}
