//! Plans: what running one scenario on one target would do, fully resolved
//! (files read, templates filled with what is known before the run, the
//! target's own additions such as a rendered kind config), without touching
//! anything.

use crate::scenario::{Action, Scenario, Step, manifests, template};
use crate::targets::{Manifest, Target};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Why the scenario will not run on `target`, or `None` when it will: the
/// one decision both `plan` and `run` use.
///
/// In order: the scenario does not list the target; the target cannot run
/// on this machine; the target cannot stand in for something the scenario
/// needs.
pub fn skip_reason(
    target: &dyn Target,
    scenario: &Scenario,
    project_root: &Path,
) -> Option<String> {
    let kind = target.kind();
    if !kind.listed_in(&scenario.targets) {
        return Some(format!("the scenario does not list target `{kind}`"));
    }
    target
        .unavailable_reason()
        .map(|r| format!("target `{kind}` unavailable: {r}"))
        .or_else(|| target.unsupported_reason(scenario, project_root))
}

/// One scenario on one target.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The scenario's name.
    pub scenario: String,
    /// The target's name.
    pub target: String,
    /// Why the scenario would be skipped there, if it would.
    pub skip: Option<String>,
    /// Template variables as known before the run.
    pub variables: BTreeMap<String, String>,
    /// Titled blocks the target adds (kind config, installs, lab processes).
    pub sections: Vec<(String, String)>,
    /// The steps, in order.
    pub steps: Vec<PlannedStep>,
    /// The steps that always run afterwards.
    pub finally: Vec<PlannedStep>,
    /// The known bug the scenario reproduces, if any.
    pub known_bug: Option<String>,
}

/// One resolved step.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    /// The step's name.
    pub name: String,
    /// Its kind (`apply`, `wait`, ...).
    pub kind: String,
    /// Its deadline, e.g. `5m`.
    pub timeout: String,
    /// Retries after a failure.
    pub retries: u32,
    /// The resolved content: manifests or the action's fields, as YAML.
    pub detail: String,
}

/// Plans `scenario` on `target`. `run_vars` are the variables the run
/// itself would set (`runner::run_variables`).
pub fn plan(
    scenario: &Scenario,
    target: &dyn Target,
    project_root: &Path,
    run_vars: &BTreeMap<String, String>,
) -> Plan {
    let kind = target.kind();
    let skip = skip_reason(target, scenario, project_root);
    let (mut variables, sections) = match target.plan(scenario, project_root) {
        Ok(p) => (p.variables, p.sections),
        Err(e) => (
            BTreeMap::new(),
            vec![("target plan error".to_string(), e.to_string())],
        ),
    };
    variables.extend(run_vars.clone());
    let steps = scenario
        .steps
        .iter()
        .map(|s| plan_step(s, project_root, &variables))
        .collect();
    let finally = scenario
        .finally
        .iter()
        .map(|s| plan_step(s, project_root, &variables))
        .collect();
    Plan {
        scenario: scenario.name.clone(),
        target: kind.to_string(),
        skip,
        variables,
        sections,
        steps,
        finally,
        known_bug: scenario.known_bug.as_ref().map(|b| b.url.clone()),
    }
}

fn plan_step(step: &Step, root: &Path, vars: &BTreeMap<String, String>) -> PlannedStep {
    let detail = match &step.action {
        Action::Apply(src) | Action::Delete(src) => {
            match manifests::read(root, src.file.as_deref(), src.inline.as_deref(), vars) {
                Ok(docs) => to_yaml_documents(&docs),
                Err(e) => format!("# cannot resolve: {e}"),
            }
        }
        Action::ExpectDenied(d) => {
            match manifests::read(root, d.file.as_deref(), d.inline.as_deref(), vars) {
                Ok(docs) => format!(
                    "# must be refused with a message containing {:?}\n{}",
                    d.message_contains,
                    to_yaml_documents(&docs)
                ),
                Err(e) => format!("# cannot resolve: {e}"),
            }
        }
        action => {
            let mut value = serde_json::to_value(action).unwrap_or_default();
            match template::render_json(&mut value, vars) {
                Ok(()) => to_yaml(&value),
                Err(e) => format!("# cannot resolve: {e}\n{}", to_yaml(&value)),
            }
        }
    };
    PlannedStep {
        name: step.name.clone(),
        kind: step.action.kind().to_string(),
        timeout: humantime::format_duration(step.timeout).to_string(),
        retries: step.retries,
        detail,
    }
}

fn to_yaml(value: &serde_json::Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|e| format!("# cannot render: {e}"))
}

fn to_yaml_documents(docs: &[Manifest]) -> String {
    docs.iter().map(to_yaml).collect::<Vec<_>>().join("---\n")
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "=== {} on {}", self.scenario, self.target)?;
        if let Some(reason) = &self.skip {
            writeln!(f, "would be SKIPPED: {reason}")?;
        }
        if let Some(bug) = &self.known_bug {
            writeln!(f, "known bug (expected to fail): {bug}")?;
        }
        writeln!(f, "variables:")?;
        for (k, v) in &self.variables {
            writeln!(f, "  {k} = {v}")?;
        }
        for (title, body) in &self.sections {
            writeln!(f, "{title}:")?;
            for line in body.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        for (label, steps) in [("steps", &self.steps), ("finally", &self.finally)] {
            if steps.is_empty() {
                continue;
            }
            writeln!(f, "{label}:")?;
            for (i, s) in steps.iter().enumerate() {
                let retries = if s.retries > 0 {
                    format!(", {} retries", s.retries)
                } else {
                    String::new()
                };
                writeln!(
                    f,
                    "  {}. {} [{}, timeout {}{retries}]",
                    i + 1,
                    s.name,
                    s.kind,
                    s.timeout
                )?;
                for line in s.detail.lines() {
                    writeln!(f, "       {line}")?;
                }
            }
        }
        Ok(())
    }
}
