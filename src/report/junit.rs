//! JUnit XML: one testcase per scenario × target (× Kubernetes version).

use crate::runner::StepResult;
use crate::runner::{RunOutcome, ScenarioOutcome, Status};
use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};
use std::io::Write;
use std::path::Path;

/// Builds the JUnit report: a test suite per target (and Kubernetes version).
pub fn junit_report(run: &RunOutcome) -> Report {
    let mut report = Report::new("rayconform");
    report.set_time(run.duration);
    let mut suites: Vec<TestSuite> = Vec::new();
    let coverage = super::coverage::coverage(run);
    for outcome in &run.scenarios {
        let suite_name = suite_name(outcome);
        let index = match suites.iter().position(|s| s.name.as_str() == suite_name) {
            Some(i) => i,
            None => {
                let mut suite = TestSuite::new(suite_name.clone());
                suite.add_property(Property::new("run-id", run.run_id.clone()));
                suite.add_property(Property::new("interrupted", run.interrupted.to_string()));
                add_coverage_properties(&mut suite, &coverage, outcome);
                suites.push(suite);
                suites.len() - 1
            }
        };
        suites[index].add_test_case(test_case(outcome, run.interrupted));
    }
    if !run.shutdown_problems.is_empty() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(run.shutdown_problems.join("; "));
        let mut case = TestCase::new("target shutdown", status);
        case.set_classname("rayconform.shutdown");
        let mut suite = TestSuite::new("rayconform.shutdown");
        suite.add_test_case(case);
        suites.push(suite);
    }
    report.add_test_suites(suites);
    report
}

/// Per target × version: how many scenarios ran, how many were skipped
/// because a component does not support the version, and the summary
/// line when there is one (e.g. nothing ran).
fn add_coverage_properties(
    suite: &mut TestSuite,
    coverage: &[super::coverage::VersionCoverage],
    outcome: &ScenarioOutcome,
) {
    let Some(c) = coverage
        .iter()
        .find(|c| c.target == outcome.target.to_string() && c.k8s_version == outcome.k8s_version)
    else {
        return;
    };
    suite.add_property(Property::new("scenarios-ran", c.ran.to_string()));
    suite.add_property(Property::new(
        "scenarios-skipped-component-unsupported",
        c.component_unsupported.to_string(),
    ));
    if let Some(line) = c.line() {
        suite.add_property(Property::new("coverage", line));
    }
}

fn suite_name(outcome: &ScenarioOutcome) -> String {
    match &outcome.k8s_version {
        Some(v) => format!("rayconform.{}.k8s-{v}", outcome.target),
        None => format!("rayconform.{}", outcome.target),
    }
}

fn test_case(outcome: &ScenarioOutcome, interrupted_run: bool) -> TestCase {
    let status = match outcome.status {
        Status::Passed => TestCaseStatus::success(),
        Status::Failed | Status::Error => {
            let kind = if outcome.status == Status::Failed {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut status = TestCaseStatus::non_success(kind);
            status.set_message(outcome.message.clone());
            status.set_type(problem_type(outcome));
            status.set_description(super::problem_log(outcome));
            status
        }
        Status::Skipped => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(outcome.message.clone());
            status
        }
    };
    let mut status = status;
    record_retries(outcome, &mut status);
    let mut case = TestCase::new(outcome.scenario.clone(), status);
    case.set_classname(suite_name(outcome));
    case.set_time(outcome.duration);
    case.add_property(Property::new("file", outcome.file.display().to_string()));
    case.add_property(Property::new("target", outcome.target.to_string()));
    if let Some(bug) = &outcome.known_bug {
        case.add_property(Property::new("known-bug", bug.clone()));
    }
    if super::coverage::skipped_for_component(outcome) {
        case.add_property(Property::new(
            super::coverage::SKIP_CATEGORY_PROPERTY,
            super::coverage::COMPONENT_UNSUPPORTED,
        ));
    }
    if let Some(how) = outcome.reproduction {
        case.add_property(Property::new("known-bug-reproduced", how.as_str()));
    }
    for model in &outcome.modelled {
        case.add_property(Property::new("modelled-by-target", model.clone()));
    }
    if let Some(dir) = &outcome.artifacts {
        case.add_property(Property::new("artifacts", dir.display().to_string()));
    }
    if interrupted_run {
        case.add_property(Property::new(
            "interrupted",
            outcome.interrupted.to_string(),
        ));
    }
    let mut out = super::step_log(outcome);
    for shot in outcome.steps.iter().flat_map(|s| s.screenshots()) {
        case.add_property(Property::new("screenshot", shot.display().to_string()));
        out.push_str(&format!(
            "{ATTACHMENT_OPEN}{}{ATTACHMENT_CLOSE}\n",
            shot.display()
        ));
    }
    case.set_system_out(out);
    case
}

/// How `system-out` names an attached file: `[[ATTACHMENT|path]]`, the
/// convention Jenkins (junit-attachments) and GitLab read.
const ATTACHMENT_OPEN: &str = "[[ATTACHMENT|";
const ATTACHMENT_CLOSE: &str = "]]";

/// The `type` of a failure or error: what kind of problem decided it.
fn problem_type(outcome: &ScenarioOutcome) -> &'static str {
    let timed_out = || {
        outcome
            .steps
            .iter()
            .find(|s| s.result.failure().is_some())
            .is_some_and(|s| matches!(s.result, StepResult::TimedOut { .. }))
    };
    if outcome.interrupted {
        "interrupted"
    } else if outcome.status == Status::Failed && timed_out() {
        "timed-out"
    } else if outcome.status == Status::Failed {
        "wrong-verdict"
    } else {
        "infrastructure"
    }
}

/// Writes the report atomically: a temporary file in the same folder,
/// then a rename, so readers never see half a file.
pub fn write_junit(run: &RunOutcome, path: &Path) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let xml = junit_report(run)
        .to_string()
        .map_err(std::io::Error::other)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(xml.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Failed attempts of retried steps, the way nextest records them: as
/// `flakyFailure` on a passing testcase, `rerunFailure` on a failing one.
fn record_retries(outcome: &ScenarioOutcome, status: &mut TestCaseStatus) {
    let attempts: Vec<TestRerun> = outcome
        .steps
        .iter()
        .flat_map(|step| step.retried.iter().map(move |r| (step, r)))
        .map(|(step, result)| {
            let kind = match result {
                StepResult::Error { .. } => NonSuccessKind::Error,
                _ => NonSuccessKind::Failure,
            };
            let message = result.to_string();
            let mut rerun = TestRerun::new(kind);
            rerun.set_message(format!("step `{}`: {message}", step.name));
            rerun
        })
        .collect();
    if attempts.is_empty() {
        return;
    }
    match status {
        TestCaseStatus::Success { flaky_runs } => flaky_runs.extend(attempts),
        TestCaseStatus::NonSuccess { .. } => {
            status.add_reruns(attempts);
        }
        TestCaseStatus::Skipped { .. } => {}
    }
}
