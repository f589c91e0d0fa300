//! Carrying out one step: templating, then the session or a probe.

use super::outcome::StepResult;
use crate::scenario::{
    Action, AssertSpec, CommandSpec, LogsSpec, ObjectSelector, Probe, Step, WaitSpec, template,
};
use crate::targets::{Observed, Session, StepError};
use crate::tls::CertificateSet;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What a step needs besides the session.
pub struct StepContext<'a> {
    /// Template variables (run + session + environment lookups happen in `render`).
    pub vars: &'a BTreeMap<String, String>,
    /// The project root for relative files.
    pub project_root: &'a Path,
    /// Certificates of this scenario run.
    pub certificates: Option<&'a CertificateSet>,
    /// The scenario's artifacts folder: files a step makes (a browser
    /// probe's screenshot) go into a sub-folder named after the step.
    pub artifacts_dir: Option<&'a Path>,
}

/// Runs one attempt of `step`; the action bounds itself by `limit` (so a
/// timeout keeps its evidence), the caller keeps a backstop.
pub async fn execute(
    step: &Step,
    session: &mut dyn Session,
    ctx: &StepContext<'_>,
    limit: Duration,
) -> StepResult {
    let result = match &step.action {
        Action::Apply(src) => match manifests(ctx, src.file.as_deref(), src.inline.as_deref()) {
            Ok(docs) => session.apply(&docs).await,
            Err(e) => Err(e),
        },
        Action::Delete(src) => match manifests(ctx, src.file.as_deref(), src.inline.as_deref()) {
            Ok(docs) => session.delete(&docs).await,
            Err(e) => Err(e),
        },
        Action::ExpectDenied(d) => match manifests(ctx, d.file.as_deref(), d.inline.as_deref()) {
            Ok(docs) => session.expect_denied(&docs, &d.message_contains).await,
            Err(e) => Err(e),
        },
        Action::Wait(spec) => match rendered::<WaitSpec>(spec, ctx.vars) {
            Ok(spec) => session.wait(&spec, limit).await,
            Err(e) => Err(e),
        },
        Action::Probe(probe) => {
            return match rendered::<Probe>(probe, ctx.vars) {
                Ok(probe) => {
                    let artifacts = ctx.artifacts_dir.map(|d| d.join(step_folder(&step.name)));
                    let run = crate::probe::run_step_probe(
                        &probe,
                        ctx.certificates,
                        limit,
                        artifacts.as_deref(),
                    );
                    let verdict = match run.await {
                        Ok(verdict) => verdict,
                        Err(reason) => return StepResult::Skipped { reason },
                    };
                    if verdict.passed {
                        StepResult::Passed {
                            summary: verdict.summary.clone(),
                            evidence: verdict_lines(&verdict),
                        }
                    } else {
                        StepResult::Failed {
                            message: verdict.summary.clone(),
                            evidence: verdict_lines(&verdict),
                        }
                    }
                }
                Err(e) => e.into(),
            };
        }
        Action::Command(cmd) => match rendered::<CommandSpec>(cmd, ctx.vars) {
            Ok(cmd) => super::command::run_command(&cmd, ctx.project_root, limit).await,
            Err(e) => Err(e),
        },
        Action::Assert(spec) => {
            return match rendered::<AssertSpec>(spec, ctx.vars) {
                Ok(spec) => observed(session.assert(&spec, limit).await),
                Err(e) => e.into(),
            };
        }
        Action::Logs(spec) => {
            return match rendered::<LogsSpec>(spec, ctx.vars) {
                Ok(spec) => observed(session.logs(&spec, limit).await),
                Err(e) => e.into(),
            };
        }
        Action::DeleteSelected(selector) => match rendered::<ObjectSelector>(selector, ctx.vars) {
            Ok(selector) => session.delete_selected(&selector).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(summary) => StepResult::Passed {
            summary,
            evidence: Vec::new(),
        },
        Err(error) => error.into(),
    }
}

/// A step's artifacts sub-folder: its name with anything but letters,
/// digits, `.` and `-` turned into `-`.
pub fn step_folder(name: &str) -> String {
    let folder: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    folder.trim_matches('-').to_string()
}

/// A passing observation keeps its evidence.
fn observed(result: Result<Observed, StepError>) -> StepResult {
    match result {
        Ok(Observed { summary, evidence }) => StepResult::Passed { summary, evidence },
        Err(error) => error.into(),
    }
}

fn verdict_lines(v: &crate::verdict::Verdict) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(stage) = v.stage {
        lines.push(format!("stage: {stage}"));
    }
    lines.push(format!("expected: {}", v.expected));
    lines.push(format!("actual: {}", v.actual));
    lines.extend(v.evidence.iter().cloned());
    lines
}

fn manifests(
    ctx: &StepContext<'_>,
    file: Option<&str>,
    inline: Option<&str>,
) -> Result<Vec<crate::targets::Manifest>, StepError> {
    crate::scenario::manifests::read(ctx.project_root, file, inline, ctx.vars)
        .map_err(|e| StepError::broken_by("", e))
}

/// Fills `${VAR}` templates in every string of `value`.
fn rendered<T: Serialize + DeserializeOwned>(
    value: &T,
    vars: &BTreeMap<String, String>,
) -> Result<T, StepError> {
    let mut json = serde_json::to_value(value).map_err(|e| StepError::broken_by("", e))?;
    template::render_json(&mut json, vars).map_err(|e| StepError::broken_by("", e))?;
    serde_json::from_value(json).map_err(|e| StepError::broken_by("after templating", e))
}
