//! What a scenario's steps could see of a Ray head, decided from the
//! scenario alone: whether they could reach its dashboard, and whether they
//! could see its whole node list; and, for a run, which heads that
//! scenarios share need a dashboard ([`SharedDashboards`]).
//!
//! The dashboard is the heaviest part of a Ray head (about 4.5 of its
//! ~9 CPU-seconds on the 2-core machine), so a head of a scenario's own
//! starts without it when nothing in the scenario could reach it. A
//! RayCluster with worker nodes joins a head shared with other such
//! RayClusters (each counts only the workers labelled as its own) unless a
//! step could see the head's whole node list, where other scenarios'
//! workers would show.
//!
//! Both rules err toward the costlier head: only probes that speak Ray's
//! gRPC (`grpcReady`, `mtls`), which the dashboard never serves, and steps
//! that touch no port (apply, wait, assert, logs, delete) leave the
//! dashboard out; any other probe or a `command` keeps it. A step that could
//! reach the dashboard could read its node list too, and so could a
//! `grpcReady` probe counting alive nodes.

use super::model::objects::{LabObject, RayClusterObject};
use super::support::{planned_objects, unsupported_reason};
use crate::scenario::{Action, Scenario, Step};
use std::path::Path;

/// Whether any step of `scenario` (its `finally` steps too) could reach a
/// Ray head's dashboard.
pub fn may_reach_dashboard(scenario: &Scenario) -> bool {
    steps(scenario).any(|step| match &step.action {
        Action::Probe(probe) => !probe.speaks_only_rays_grpc(),
        Action::Command(_) => true,
        Action::Apply(_)
        | Action::Delete(_)
        | Action::Wait(_)
        | Action::ExpectDenied(_)
        | Action::Assert(_)
        | Action::Logs(_)
        | Action::DeleteSelected(_) => false,
    })
}

/// Whether any step of `scenario` could see every node its Ray head's GCS
/// lists (through the dashboard, a command, or a `grpcReady` probe's
/// `expectAliveNodes`), not only the ones the lab counts as the scenario's.
pub fn may_see_node_list(scenario: &Scenario) -> bool {
    may_reach_dashboard(scenario)
        || steps(scenario)
            .any(|step| matches!(&step.action, Action::Probe(probe) if probe.reads_ray_node_list()))
}

/// The head a RayCluster of a scenario gets: one decision for the session
/// (which acquires it) and the plan (which shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadChoice {
    /// A head of the cluster's own, never shared: the cluster has workers
    /// and a step could see the whole node list ([`may_see_node_list`]).
    pub own: bool,
    /// It runs Ray's dashboard.
    pub dashboard: bool,
    /// The cluster has worker nodes, so its head is one only RayClusters
    /// with workers use (shared among them unless [`HeadChoice::own`]).
    pub hosts_workers: bool,
}

/// Where the RayCluster `rc` of `scenario` runs. Worker nodes join a head
/// that RayClusters with workers share, each counting the workers labelled
/// as its own; a head of the cluster's own when a step could see the whole
/// node list (other scenarios' workers would show there). A head runs the
/// dashboard when this scenario may reach it, and a worker-less cluster's
/// shared head also when another scenario of the run may (`shared`).
pub fn head_for(
    scenario: &Scenario,
    rc: &RayClusterObject,
    shared: SharedDashboards,
) -> HeadChoice {
    let hosts_workers = rc.worker_replicas > 0;
    HeadChoice {
        own: hosts_workers && may_see_node_list(scenario),
        dashboard: may_reach_dashboard(scenario) || (!hosts_workers && shared.with_tls(rc.tls)),
        hosts_workers,
    }
}

/// How the session's evidence and the plan say a head runs without Ray's
/// dashboard.
pub const NO_DASHBOARD: &str = "no dashboard: no scenario using this head may reach it";

fn steps(scenario: &Scenario) -> impl Iterator<Item = &Step> {
    scenario.steps.iter().chain(&scenario.finally)
}

/// Whether the Ray heads that worker-less RayClusters share run Ray's
/// dashboard, per TLS setting: only when some scenario of the run that
/// uses such a head may reach a dashboard. Without a run to look at
/// ([`Default`]), they do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedDashboards {
    /// The shared plain heads.
    pub plain: bool,
    /// The shared heads with `RAY_USE_TLS=1`.
    pub tls: bool,
}

impl Default for SharedDashboards {
    fn default() -> Self {
        SharedDashboards {
            plain: true,
            tls: true,
        }
    }
}

impl SharedDashboards {
    /// What the run's `scenarios` need (the ones the lab skips need nothing).
    pub fn for_run(scenarios: &[&Scenario], project_root: &Path) -> SharedDashboards {
        let mut needs = SharedDashboards {
            plain: false,
            tls: false,
        };
        for scenario in scenarios {
            if unsupported_reason(scenario, project_root).is_some()
                || !may_reach_dashboard(scenario)
            {
                continue;
            }
            for object in planned_objects(scenario, project_root) {
                if let LabObject::RayCluster(rc) = object
                    && rc.worker_replicas == 0
                {
                    if rc.tls {
                        needs.tls = true;
                    } else {
                        needs.plain = true;
                    }
                }
            }
        }
        needs
    }

    /// Whether a shared head with this TLS setting runs the dashboard.
    pub fn with_tls(self, tls: bool) -> bool {
        if tls { self.tls } else { self.plain }
    }
}
