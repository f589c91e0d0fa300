//! Whether a scenario can reach a Ray head's dashboard.
//!
//! The dashboard is the heaviest part of a Ray head (about 4.5 of its
//! ~9 CPU-seconds on the 2-core machine), so a head of a scenario's own
//! (one with worker nodes) starts without it when nothing in the scenario
//! could reach it. The rule errs toward starting it: only probes that speak
//! Ray's gRPC (`grpcReady`, `mtls`), which the dashboard never serves, and
//! steps that touch no port (apply, wait, assert, logs, delete) leave it
//! out; any other probe or a `command` keeps it.

use crate::probe::spec::Probe;
use crate::scenario::{Action, Scenario};

/// Whether any step of `scenario` (its `finally` steps too) could reach a
/// Ray head's dashboard.
pub fn may_reach_dashboard(scenario: &Scenario) -> bool {
    scenario
        .steps
        .iter()
        .chain(&scenario.finally)
        .any(|step| match &step.action {
            Action::Probe(Probe::GrpcReady(_) | Probe::Mtls(_)) => false,
            Action::Probe(_) | Action::Command(_) => true,
            Action::Apply(_)
            | Action::Delete(_)
            | Action::Wait(_)
            | Action::ExpectDenied(_)
            | Action::Assert(_)
            | Action::Logs(_)
            | Action::DeleteSelected(_) => false,
        })
}
