//! What the cluster targets share about a scenario's installs: whether
//! they can run on a Kubernetes version, their plan sections, the raw TCP
//! ports they open, and closing a session whose install failed.

use crate::install;
use crate::scenario::{Install, Scenario};
use crate::targets::kind::versions;
use crate::targets::{ScenarioRun, Session, StepError};
use crate::tools::{HELM, ISTIOCTL};

/// Why a scenario's installs cannot run on `k8s_version` (checked first:
/// no tool fixes it), or the tool it misses.
pub fn installs_unsupported(installs: &[Install], k8s_version: &str) -> Option<String> {
    for item in installs {
        let component = install::component_name(item);
        if let Some(why) =
            versions::component_unsupported(component, &install::version(item), k8s_version)
        {
            return Some(why);
        }
    }
    for item in installs {
        let tool = match item {
            Install::KuberayOperator(_) | Install::KuberayApiserver(_) => Some(HELM),
            Install::Istio(_) => Some(ISTIOCTL),
            Install::IngressNginx(_) => None,
        };
        if let Some(Err(missing)) = tool.map(|t| t.find()) {
            return Some(format!("{} needs {missing}", install::component_name(item)));
        }
    }
    None
}

/// Closes the session of a scenario whose install failed (its namespace
/// exists by then and would otherwise leak), and says what happened.
pub async fn close_after_failed_install(
    mut session: Box<dyn Session>,
    run: &ScenarioRun,
    error: install::InstallError,
) -> StepError {
    let problems = session.close(run.keep).await;
    let mut message = format!("install failed: {error}");
    if !problems.is_empty() {
        message.push_str(&format!(
            "; cleaning up after it also failed: {}",
            problems.join("; ")
        ));
    }
    StepError::broken(message)
}

/// Plan sections shared by the cluster targets: one per install.
pub fn install_sections(scenario: &Scenario, namespace: &str) -> Vec<(String, String)> {
    scenario
        .install
        .iter()
        .map(|i| install::plan(i, namespace))
        .collect()
}

/// Ports the ingress controller serves raw TCP on (they need host mappings).
pub fn tcp_service_ports(installs: &[Install]) -> Vec<u16> {
    installs
        .iter()
        .filter_map(|i| match i {
            Install::IngressNginx(n) => Some(n.tcp_services.keys()),
            _ => None,
        })
        .flatten()
        .filter_map(|p| p.parse().ok())
        .collect()
}
