//! The human summary: one line per scenario, a totals line, and a step log.

use crate::runner::{Phase, Reproduction, RunOutcome, ScenarioOutcome, Status, StepResult};
use std::fmt::Write;

/// One line for a finished scenario, e.g. `PASS  lab  dashboard-rewrite (4.2s)`.
pub fn outcome_line(o: &ScenarioOutcome) -> String {
    let mark = match o.status {
        Status::Passed if o.known_bug.is_some() => "XFAIL",
        Status::Passed => "PASS",
        Status::Failed => "FAIL",
        Status::Error => "ERROR",
        Status::Skipped => "SKIP",
    };
    let version = o
        .k8s_version
        .as_deref()
        .map(|v| format!(" k8s {v}"))
        .unwrap_or_default();
    let how = match o.reproduction {
        Some(Reproduction::Modelled) => " [modelled]",
        // A pass that only the target's model of the software produced
        // (e.g. Gateway API routes on lab, with NGINX Gateway Fabric's
        // semantics) says so too.
        None if o.status == Status::Passed && !o.modelled.is_empty() => " [modelled]",
        _ => "",
    };
    format!(
        "{mark:<5} {:<8} {}{how} ({:.1}s){}",
        format!("{}{version}", o.target),
        o.scenario,
        o.duration.as_secs_f64(),
        if o.message.is_empty() {
            String::new()
        } else {
            format!(" — {}", o.message)
        }
    )
}

/// Every scenario line and the totals.
pub fn summary_text(run: &RunOutcome) -> String {
    let mut out = String::new();
    for o in &run.scenarios {
        let _ = writeln!(out, "{}", outcome_line(o));
        if let Some(dir) = &o.artifacts {
            let _ = writeln!(out, "      artifacts: {}", dir.display());
        }
        for s in o
            .steps
            .iter()
            .filter(|s| s.phase == Phase::Cleanup && s.name == "keep")
        {
            if let StepResult::Skipped { reason } = &s.result {
                let _ = writeln!(out, "      kept: {reason}");
            }
        }
    }
    for line in super::coverage::coverage(run)
        .iter()
        .filter_map(|c| c.line())
    {
        let _ = writeln!(out, "{line}");
    }
    for p in &run.shutdown_problems {
        let _ = writeln!(out, "ERROR shutdown: {p}");
    }
    if let Some(line) = known_bugs_line(run) {
        let _ = writeln!(out, "{line}");
    }
    let (passed, failed, errors, skipped) = run.totals();
    let _ = write!(
        out,
        "{} scenarios in {:.1}s: {passed} passed, {failed} failed, {errors} errors, {skipped} skipped{}",
        run.scenarios.len(),
        run.duration.as_secs_f64(),
        if run.interrupted {
            " (INTERRUPTED)"
        } else {
            ""
        }
    );
    out
}

/// How the known bugs that still reproduce were reproduced, when any were:
/// observed (real software) or modelled (only the target's own model).
fn known_bugs_line(run: &RunOutcome) -> Option<String> {
    let count = |r: Reproduction| {
        run.scenarios
            .iter()
            .filter(|o| o.reproduction == Some(r))
            .count()
    };
    let (observed, modelled) = (count(Reproduction::Observed), count(Reproduction::Modelled));
    if observed + modelled == 0 {
        return None;
    }
    let mut line =
        format!("known bugs still reproducing: {observed} observed, {modelled} modelled");
    if modelled > 0 {
        line.push_str(
            " (modelled: only the lab's own model of the defect fails, so an upstream fix would not show; run on kind or existing to observe it)",
        );
    }
    Some(line)
}

/// Every step with its phase, timing, attempts, result and evidence.
pub fn step_log(o: &ScenarioOutcome) -> String {
    steps_text(o, false)
}

/// Only the steps that did not pass (failed, errored, skipped), with evidence.
pub fn problem_log(o: &ScenarioOutcome) -> String {
    steps_text(o, true)
}

fn steps_text(o: &ScenarioOutcome, problems_only: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario {} on {} ({})",
        o.scenario,
        o.target,
        o.file.display()
    );
    for s in &o.steps {
        if problems_only
            && matches!(
                s.result,
                StepResult::Passed { .. } | StepResult::NotRun { .. }
            )
        {
            continue;
        }
        let phase = match s.phase {
            Phase::Setup => "setup",
            Phase::Steps => "step",
            Phase::Finally => "finally",
            Phase::Cleanup => "cleanup",
        };
        let evidence: &[String] = match &s.result {
            StepResult::Passed { evidence, .. } | StepResult::Failed { evidence, .. } => evidence,
            _ => &[],
        };
        let (mark, text) = (mark(&s.result), s.result.to_string());
        let attempts = if s.attempts > 1 {
            format!(", {} attempts", s.attempts)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "[{phase}] {} <{}> {mark} in {} ms{attempts}: {text}",
            s.name,
            s.kind,
            s.duration.as_millis()
        );
        for (i, earlier) in s.retried.iter().enumerate() {
            let _ = writeln!(out, "    attempt {} : {}", i + 1, brief(earlier));
        }
        for line in evidence {
            let _ = writeln!(out, "    | {line}");
        }
    }
    out
}

/// The step log's word for a result.
fn mark(r: &StepResult) -> &'static str {
    match r {
        StepResult::Passed { .. } => "ok",
        StepResult::Failed { .. } => "FAILED",
        StepResult::TimedOut { .. } => "TIMED OUT",
        StepResult::Error { .. } => "ERROR",
        StepResult::Cancelled { .. } => "CANCELLED",
        StepResult::Skipped { .. } => "skipped",
        StepResult::NotRun { .. } => "not run",
    }
}

fn brief(r: &StepResult) -> String {
    format!("{}: {r}", mark(r).to_lowercase())
}
