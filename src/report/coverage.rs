//! What a run covered per target and Kubernetes version: how many
//! scenarios ran, and how many were skipped because a component does not
//! support that version (e.g. ingress-nginx 1.15 on Kubernetes 1.36). A
//! version on which nothing ran says so, with the reason, in the summary
//! and in JUnit (so CI can tell "nothing to run here" from "nothing ran").

use crate::runner::{RunOutcome, ScenarioOutcome, Status};
use crate::targets::cluster::installs::is_component_support_reason;

/// The JUnit property on a testcase skipped because a component does not
/// support the Kubernetes version.
pub const SKIP_CATEGORY_PROPERTY: &str = "skip-category";
/// Its value.
pub const COMPONENT_UNSUPPORTED: &str = "component-unsupported";

/// One target × Kubernetes version of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCoverage {
    /// `kind`, `existing`, `lab`.
    pub target: String,
    /// The Kubernetes version asked for, if any.
    pub k8s_version: Option<String>,
    /// Scenarios of this target and version.
    pub total: usize,
    /// Scenarios that ran (not skipped).
    pub ran: usize,
    /// Skipped because a component does not support the version, with
    /// the distinct reasons.
    pub component_unsupported: usize,
    /// The distinct component reasons, e.g. "ingressNginx v1.15.1 supports
    /// Kubernetes 1.31–1.35 only, not 1.36".
    pub reasons: Vec<String>,
}

impl VersionCoverage {
    /// `k8s 1.36 on kind` or `kind`.
    pub fn label(&self) -> String {
        match &self.k8s_version {
            Some(v) => format!("{} k8s {v}", self.target),
            None => self.target.clone(),
        }
    }

    /// The summary line, when there is something to say: skips for
    /// component support, or nothing run at all.
    pub fn line(&self) -> Option<String> {
        if self.component_unsupported == 0 && self.ran > 0 {
            return None;
        }
        let mut line = format!(
            "{}: {} of {} scenario(s) ran; {} skipped because a component does not support it",
            self.label(),
            self.ran,
            self.total,
            self.component_unsupported
        );
        if !self.reasons.is_empty() {
            line.push_str(&format!(" ({})", self.reasons.join("; ")));
        }
        if self.ran == 0 {
            if self.component_unsupported == self.total {
                line.push_str(" — NO scenario ran: none is supported on this version");
            } else {
                line.push_str(" — NO scenario ran");
            }
        }
        Some(line)
    }
}

/// Whether this outcome is a skip for component support.
pub fn skipped_for_component(outcome: &ScenarioOutcome) -> bool {
    outcome.status == Status::Skipped && is_component_support_reason(&outcome.message)
}

/// Coverage per target × Kubernetes version, in order of first appearance.
pub fn coverage(run: &RunOutcome) -> Vec<VersionCoverage> {
    let mut out: Vec<VersionCoverage> = Vec::new();
    for o in &run.scenarios {
        let target = o.target.to_string();
        let i = match out
            .iter()
            .position(|c| c.target == target && c.k8s_version == o.k8s_version)
        {
            Some(i) => i,
            None => {
                out.push(VersionCoverage {
                    target,
                    k8s_version: o.k8s_version.clone(),
                    total: 0,
                    ran: 0,
                    component_unsupported: 0,
                    reasons: Vec::new(),
                });
                out.len() - 1
            }
        };
        let c = &mut out[i];
        c.total += 1;
        if o.status != Status::Skipped {
            c.ran += 1;
        } else if skipped_for_component(o) {
            c.component_unsupported += 1;
            if !c.reasons.contains(&o.message) {
                c.reasons.push(o.message.clone());
            }
        }
    }
    out
}
