//! Scenarios grouped by the kind cluster they run on: the run order (one
//! cluster's scenarios after another's, so each cluster is created once and
//! deleted before the next that shares its host ports) and the per-cluster
//! overview `rayconform plan --target kind` prints.

use super::pool::{HostPort, cluster_name, host_ports};
use super::render::{self, RenderedConfig};
use super::versions::NodeImage;
use crate::scenario::{Scenario, TargetKind};
use std::fmt;
use std::path::Path;

/// The scenarios that share one rendered kind config.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClusterGroup {
    /// `rayconform-<hash>`.
    pub cluster: String,
    /// The base kind config it was rendered from (relative to the root).
    pub config: String,
    /// The node image reference.
    pub image: String,
    /// Host ports it publishes (`80/TCP`, ...).
    pub host_ports: Vec<String>,
    /// Scenarios that run on it, in run order, with why one would be
    /// skipped instead (on this machine and version), if it would.
    pub scenarios: Vec<(String, Option<String>)>,
}

/// Scenarios for kind grouped by cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grouping {
    /// The clusters, in order of their first scenario.
    pub groups: Vec<ClusterGroup>,
    /// (scenario, error) for scenarios whose kind config does not render.
    pub unrendered: Vec<(String, String)>,
}

/// Scenarios for kind grouped by cluster, in order of first appearance.
pub fn cluster_groups(
    scenarios: &[Scenario],
    project_root: &Path,
    image: NodeImage,
    skip_reason: &dyn Fn(&Scenario) -> Option<String>,
) -> Grouping {
    let mut groups: Vec<ClusterGroup> = Vec::new();
    let mut errors = Vec::new();
    for scenario in scenarios
        .iter()
        .filter(|s| s.targets.contains(&TargetKind::Kind))
    {
        let rendered = match render::render(scenario, project_root, image) {
            Ok(r) => r,
            Err(e) => {
                errors.push((scenario.name.clone(), e.to_string()));
                continue;
            }
        };
        let name = cluster_name(&rendered);
        let entry = (scenario.name.clone(), skip_reason(scenario));
        match groups.iter_mut().find(|g| g.cluster == name) {
            Some(group) => group.scenarios.push(entry),
            None => groups.push(new_group(name, &rendered, project_root, entry)),
        }
    }
    Grouping {
        groups,
        unrendered: errors,
    }
}

fn new_group(
    cluster: String,
    rendered: &RenderedConfig,
    project_root: &Path,
    first: (String, Option<String>),
) -> ClusterGroup {
    ClusterGroup {
        cluster,
        config: rendered
            .source
            .strip_prefix(project_root)
            .unwrap_or(&rendered.source)
            .display()
            .to_string(),
        image: rendered.image.reference(),
        host_ports: host_ports(rendered)
            .iter()
            .map(HostPort::to_string)
            .collect(),
        scenarios: vec![first],
    }
}

/// `scenarios` reordered so that the scenarios of one cluster run one after
/// another, clusters in order of their first scenario; the order within a
/// cluster is kept. Scenarios not for kind, or whose config does not
/// render, keep their place relative to each other at the end.
pub fn run_order(scenarios: Vec<Scenario>, project_root: &Path, image: NodeImage) -> Vec<Scenario> {
    let groups = cluster_groups(&scenarios, project_root, image, &|_| None).groups;
    let rank = |s: &Scenario| {
        groups
            .iter()
            .position(|g| g.scenarios.iter().any(|(n, _)| *n == s.name))
            .unwrap_or(groups.len())
    };
    let mut indexed: Vec<(usize, Scenario)> =
        scenarios.into_iter().map(|s| (rank(&s), s)).collect();
    indexed.sort_by_key(|(r, _)| *r);
    indexed.into_iter().map(|(_, s)| s).collect()
}

/// The host ports two groups share (they cannot be alive at once).
pub fn shared_ports(a: &ClusterGroup, b: &ClusterGroup) -> Vec<String> {
    a.host_ports
        .iter()
        .filter(|p| b.host_ports.contains(p))
        .cloned()
        .collect()
}

/// The overview `plan` prints before the per-scenario plans.
pub struct Overview<'a>(pub &'a [ClusterGroup]);

impl fmt::Display for Overview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups = self.0;
        writeln!(
            f,
            "=== kind clusters, in run order ({} cluster(s)); kind publishes host ports on 0.0.0.0, so clusters that share one never exist at once: each is deleted (unless --keep) before the next that needs its ports is created",
            groups.len()
        )?;
        for (i, g) in groups.iter().enumerate() {
            writeln!(f, "{}. {} (from {})", i + 1, g.cluster, g.config)?;
            writeln!(f, "   image: {}", g.image)?;
            writeln!(f, "   host ports: {}", g.host_ports.join(", "))?;
            let conflicts: Vec<String> = groups
                .iter()
                .filter(|o| o.cluster != g.cluster)
                .filter_map(|o| {
                    let shared = shared_ports(g, o);
                    (!shared.is_empty()).then(|| format!("{} ({})", o.cluster, shared.join(", ")))
                })
                .collect();
            if !conflicts.is_empty() {
                writeln!(f, "   never alive together with: {}", conflicts.join("; "))?;
            }
            writeln!(f, "   scenarios:")?;
            for (name, skip) in &g.scenarios {
                match skip {
                    Some(why) => writeln!(f, "     - {name} (would be skipped: {why})")?,
                    None => writeln!(f, "     - {name}")?,
                }
            }
        }
        Ok(())
    }
}
