//! What the lab can stand in for, decided from the scenario alone (no side
//! effects): installs, step kinds, and every manifest the steps apply.

use super::head_needs::{self, SharedDashboards};
use super::model::objects::{LabObject, TranslateError, translate};
use super::model::routes::parse_tcp_service;
use crate::scenario::{
    Action, IngressNginxInstall, Install, Probe, Scenario, Step, WaitTarget, manifests,
};
use crate::targets::Manifest;
use std::path::Path;

/// Keys of the ingress-nginx controller ConfigMap the lab implements.
pub const SUPPORTED_CONTROLLER_KEYS: &[&str] = &["enable-underscores-in-headers"];

/// Why the lab cannot run `scenario`, naming the thing; `None` when it can.
pub fn unsupported_reason(scenario: &Scenario, project_root: &Path) -> Option<String> {
    for install in &scenario.install {
        if let Some(reason) = install.component().lab_skip_reason() {
            return Some(reason);
        }
        if let Install::IngressNginx(nginx) = install
            && let Some(reason) = ingress_nginx_reason(nginx)
        {
            return Some(reason);
        }
    }
    for step in scenario.steps.iter().chain(&scenario.finally) {
        if let Some(reason) = step_reason(step, project_root) {
            return Some(reason);
        }
    }
    None
}

/// What the lab's nginx does not implement of an ingress-nginx spec.
fn ingress_nginx_reason(nginx: &IngressNginxInstall) -> Option<String> {
    let unsupported: Vec<&str> = nginx
        .config
        .keys()
        .map(String::as_str)
        .filter(|k| !SUPPORTED_CONTROLLER_KEYS.contains(k))
        .collect();
    if !unsupported.is_empty() {
        return Some(format!(
            "lab cannot stand in for the ingress-nginx controller ConfigMap \
             (install.ingressNginx.config: {})",
            unsupported.join(", ")
        ));
    }
    for (port, value) in &nginx.tcp_services {
        if parse_tcp_service(value).is_none() {
            return Some(format!(
                "lab cannot stand in for tcp-services entry {port}: {value:?} \
                 (the lab implements namespace/service:port, without PROXY protocol)"
            ));
        }
    }
    None
}

fn step_reason(step: &Step, project_root: &Path) -> Option<String> {
    match &step.action {
        Action::ExpectDenied(_) => Some(format!(
            "lab cannot stand in for admission webhooks: step `{}` expects a denial",
            step.name
        )),
        Action::Wait(spec) => match &spec.target {
            WaitTarget::RayCluster(_) => None,
            WaitTarget::Deployment(name) => Some(format!(
                "lab cannot stand in for Deployments: step `{}` waits for Deployment {name}",
                step.name
            )),
            WaitTarget::Pods(selector) => Some(format!(
                "lab cannot stand in for Pods: step `{}` waits for pods {selector}",
                step.name
            )),
            WaitTarget::Endpoints(name) => Some(format!(
                "lab cannot stand in for Endpoints: step `{}` waits for Endpoints {name}",
                step.name
            )),
        },
        Action::Apply(src) | Action::Delete(src) => {
            let manifests =
                placeholder_manifests(project_root, src.file.as_deref(), src.inline.as_deref())?;
            manifests
                .iter()
                .find_map(|m| match translate(m, "<NAMESPACE>") {
                    Err(err @ TranslateError::Unsupported(_)) => {
                        Some(format!("{err} (step `{}`)", step.name))
                    }
                    _ => None,
                })
        }
        Action::Probe(_) | Action::Command(_) => None,
        Action::Assert(spec) => super::observe::assert_reason(&spec.object)
            .map(|r| format!("{r} (step `{}`)", step.name)),
        Action::Logs(spec) => {
            super::observe::logs_reason(&spec.pods).map(|r| format!("{r} (step `{}`)", step.name))
        }
        Action::DeleteSelected(selector) => {
            super::observe::delete_reason(selector).map(|r| format!("{r} (step `{}`)", step.name))
        }
    }
}

/// The manifests of an apply step with every `${VAR}` replaced by the
/// placeholder `<VAR>` (kinds and annotations never depend on run-time
/// values).
/// `None` when they cannot be read: the run reports that itself.
pub fn placeholder_manifests(
    root: &Path,
    file: Option<&str>,
    inline: Option<&str>,
) -> Option<Vec<Manifest>> {
    manifests::read_with_placeholders(root, file, inline).ok()
}

/// Every object the scenario's apply steps create, in order (for plans).
pub fn planned_objects(scenario: &Scenario, project_root: &Path) -> Vec<LabObject> {
    scenario
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Apply(src) => {
                placeholder_manifests(project_root, src.file.as_deref(), src.inline.as_deref())
            }
            _ => None,
        })
        .flatten()
        .filter_map(|m| translate(&m, "<NAMESPACE>").ok())
        .collect()
}

/// The lab's [`crate::targets::Target::expected_cost`]: what the scenario
/// starts that takes seconds of CPU each on the 2-core machine: one Ray node
/// per worker of a RayCluster, a Ray head of its own when the RayCluster
/// needs one (counted 2: a head starts more processes than a worker; see
/// [`head_needs::head_for`]), Chromium per browser probe. A
/// RayCluster on a shared head, nginx and the other probes cost next to
/// nothing. A scenario the lab skips costs 0.
pub fn expected_cost(scenario: &Scenario, project_root: &Path) -> u32 {
    if unsupported_reason(scenario, project_root).is_some() {
        return 0;
    }
    let nodes: u32 = planned_objects(scenario, project_root)
        .iter()
        .map(|o| match o {
            LabObject::RayCluster(rc) => {
                let head = head_needs::head_for(scenario, rc, SharedDashboards::default());
                rc.worker_replicas + if head.own { 2 } else { 0 }
            }
            _ => 0,
        })
        .sum();
    let browsers = scenario
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Probe(Probe::Browser(_))))
        .count() as u32;
    nodes + browsers
}
