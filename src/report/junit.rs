//! JUnit XML: one testcase per scenario × target (× Kubernetes version),
//! or, with [`JunitGranularity::Step`], one per step of each.

use crate::runner::StepResult;
use crate::runner::{Phase, RunOutcome, ScenarioOutcome, Status, StepRecord};
use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};
use std::io::Write;
use std::path::Path;

/// How many testcases a scenario gives (`--junit-granularity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum JunitGranularity {
    /// One per scenario × target (× version), its steps in `system-out`.
    #[default]
    Scenario,
    /// One per step (setup, steps, finally, cleanup), each with its own
    /// verdict and evidence, for readers that want step-level failures.
    Step,
}

/// Builds the JUnit report: a test suite per target (and Kubernetes version).
pub fn junit_report(run: &RunOutcome) -> Report {
    junit_report_with(run, JunitGranularity::Scenario)
}

/// [`junit_report`] with one testcase per scenario or per step.
pub fn junit_report_with(run: &RunOutcome, granularity: JunitGranularity) -> Report {
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
        match granularity {
            JunitGranularity::Scenario => {
                suites[index].add_test_case(test_case(outcome, run.interrupted));
            }
            JunitGranularity::Step => {
                suites[index].add_test_cases(step_cases(outcome));
            }
        }
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

/// One testcase per step: named `<scenario> / [<phase>] <step>`, with its
/// own status, evidence, retries and screenshots. A failure the scenario
/// expects (its known bug still reproducing) is a success that says so; a
/// scenario that failed with no failing step (a known bug that did not
/// reproduce) adds a testcase with the scenario's own failure.
fn step_cases(outcome: &ScenarioOutcome) -> Vec<TestCase> {
    let expected_failure = outcome.status == Status::Passed && outcome.known_bug.is_some();
    let mut cases: Vec<TestCase> = outcome
        .steps
        .iter()
        .map(|step| step_case(outcome, step, expected_failure))
        .collect();
    let shown = cases
        .iter()
        .any(|c| matches!(c.status, TestCaseStatus::NonSuccess { .. }));
    if matches!(outcome.status, Status::Failed | Status::Error) && !shown {
        let mut case = test_case(outcome, false);
        case.name = format!("{} / scenario verdict", outcome.scenario).into();
        case.set_classname(format!("{}.{}", suite_name(outcome), outcome.scenario));
        cases.push(case);
    }
    cases
}

fn step_case(outcome: &ScenarioOutcome, step: &StepRecord, expected_failure: bool) -> TestCase {
    let phase = match step.phase {
        Phase::Setup => "setup",
        Phase::Steps => "step",
        Phase::Finally => "finally",
        Phase::Cleanup => "cleanup",
    };
    let mut known_bug_failure = false;
    let mut status = match &step.result {
        StepResult::Passed { .. } => TestCaseStatus::success(),
        StepResult::Failed { .. } | StepResult::TimedOut { .. } if expected_failure => {
            known_bug_failure = true;
            TestCaseStatus::success()
        }
        StepResult::Failed { .. } | StepResult::TimedOut { .. } => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(step.result.to_string());
            s.set_type(if matches!(step.result, StepResult::TimedOut { .. }) {
                "timed-out"
            } else {
                "wrong-verdict"
            });
            s
        }
        StepResult::Error { .. } | StepResult::Cancelled { .. } => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(step.result.to_string());
            s.set_type(if step.result.interruption().is_some() {
                "interrupted"
            } else {
                "infrastructure"
            });
            s
        }
        StepResult::Skipped { .. } | StepResult::NotRun { .. } => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(step.result.to_string());
            s
        }
    };
    let reruns: Vec<TestRerun> = step
        .retried
        .iter()
        .map(|r| {
            let kind = match r {
                StepResult::Error { .. } => NonSuccessKind::Error,
                _ => NonSuccessKind::Failure,
            };
            let mut rerun = TestRerun::new(kind);
            rerun.set_message(r.to_string());
            rerun
        })
        .collect();
    match &mut status {
        TestCaseStatus::Success { flaky_runs } => flaky_runs.extend(reruns),
        TestCaseStatus::NonSuccess { .. } => {
            status.add_reruns(reruns);
        }
        TestCaseStatus::Skipped { .. } => {}
    }
    let name = format!("{} / [{phase}] {}", outcome.scenario, step.name);
    let mut case = TestCase::new(name, status);
    case.set_classname(format!("{}.{}", suite_name(outcome), outcome.scenario));
    case.set_time(step.duration);
    case.add_property(Property::new("file", outcome.file.display().to_string()));
    case.add_property(Property::new("target", outcome.target.to_string()));
    case.add_property(Property::new("kind", step.kind.clone()));
    case.add_property(Property::new("attempts", step.attempts.to_string()));
    if known_bug_failure {
        if let Some(bug) = &outcome.known_bug {
            case.add_property(Property::new("known-bug", bug.clone()));
        }
        if let Some(how) = outcome.reproduction {
            case.add_property(Property::new("known-bug-reproduced", how.as_str()));
        }
    }
    let mut out = format!("{}\n", step.result);
    if let StepResult::Passed { evidence, .. } | StepResult::Failed { evidence, .. } = &step.result
    {
        for line in evidence {
            out.push_str(&format!("    | {line}\n"));
        }
    }
    for shot in step.screenshots() {
        case.add_property(Property::new("screenshot", shot.display().to_string()));
        out.push_str(&format!(
            "{ATTACHMENT_OPEN}{}{ATTACHMENT_CLOSE}\n",
            shot.display()
        ));
    }
    case.set_system_out(out);
    case
}

/// Writes the report atomically: a temporary file in the same folder,
/// then a rename, so readers never see half a file.
pub fn write_junit(run: &RunOutcome, path: &Path) -> std::io::Result<()> {
    write_junit_with(run, path, JunitGranularity::Scenario)
}

/// [`write_junit`] with one testcase per scenario or per step.
pub fn write_junit_with(
    run: &RunOutcome,
    path: &Path,
    granularity: JunitGranularity,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let xml = junit_report_with(run, granularity)
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
