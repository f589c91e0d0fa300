//! What happened: per step, per scenario, per run.

use super::cancel::CancelReason;
use crate::scenario::TargetKind;
use crate::targets::StepError;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The final state of one scenario on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything held (or a known bug still reproduces).
    Passed,
    /// The system under test behaved wrongly (JUnit `failure`).
    Failed,
    /// The harness or its infrastructure broke (JUnit `error`).
    Error,
    /// Not run here, with a reason (JUnit `skipped`).
    Skipped,
}

/// How a known bug that still reproduces was reproduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reproduction {
    /// By real software (real Ray, real nginx, a real cluster): an upstream
    /// fix would show.
    Observed,
    /// Only by a model of the defect in the target itself (the lab's model
    /// of ingress-nginx): it would keep "reproducing" after an upstream fix.
    Modelled,
}

impl Reproduction {
    /// The word reports use: `observed` or `modelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reproduction::Observed => "observed",
            Reproduction::Modelled => "modelled",
        }
    }
}

/// The part of a scenario a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Opening the target (cluster, installs, processes, certificates).
    Setup,
    /// `spec.steps`.
    Steps,
    /// `spec.finally`.
    Finally,
    /// Unwinding the cleanup stack.
    Cleanup,
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "result")]
pub enum StepResult {
    /// It did what it should.
    Passed {
        /// One line.
        summary: String,
        /// Supporting facts.
        evidence: Vec<String>,
    },
    /// Wrong behaviour of the system under test.
    Failed {
        /// One line: expected vs actual.
        message: String,
        /// Supporting facts.
        evidence: Vec<String>,
    },
    /// The step did not end within its timeout and was abandoned (a wrong
    /// verdict, like [`StepResult::Failed`], reported as a timeout).
    TimedOut {
        /// The limit it was given.
        #[serde(with = "millis")]
        after: Duration,
    },
    /// Broken infrastructure (including a timeout of a setup action).
    Error {
        /// What broke.
        message: String,
    },
    /// Stopped while it ran, or before it could start, for `reason`.
    Cancelled {
        /// Why.
        reason: CancelReason,
    },
    /// The target cannot do this step.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Never started.
    NotRun {
        /// Why.
        reason: NotRunReason,
    },
}

impl StepResult {
    /// Whether the step did what it should.
    pub fn passed(&self) -> bool {
        matches!(self, StepResult::Passed { .. })
    }

    /// The interruption that stopped this step (or kept it from starting).
    pub fn interruption(&self) -> Option<CancelReason> {
        match self {
            StepResult::Cancelled { reason }
            | StepResult::NotRun {
                reason: NotRunReason::Cancelled(reason),
            } if reason.is_interruption() => Some(*reason),
            _ => None,
        }
    }

    /// Whether another attempt could end differently: a wrong verdict, a
    /// timeout or broken infrastructure, never a cancellation or a skip.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            StepResult::Failed { .. } | StepResult::TimedOut { .. } | StepResult::Error { .. }
        )
    }

    /// The scenario status this result leads to, with its one-line text;
    /// `None` for a result that changes nothing (passed, not run).
    pub fn verdict(&self) -> Option<(Status, String)> {
        match self {
            StepResult::Passed { .. } | StepResult::NotRun { .. } => None,
            StepResult::Failed { message, .. } => Some((Status::Failed, message.clone())),
            StepResult::TimedOut { .. } => Some((Status::Failed, self.to_string())),
            StepResult::Error { message } => Some((Status::Error, message.clone())),
            StepResult::Cancelled { reason } => Some((Status::Error, reason.to_string())),
            StepResult::Skipped { reason } => Some((Status::Skipped, reason.clone())),
        }
    }

    /// The message and evidence of a wrong verdict (failed or timed out).
    pub fn failure(&self) -> Option<(String, &[String])> {
        match self {
            StepResult::Failed { message, evidence } => Some((message.clone(), evidence)),
            StepResult::TimedOut { .. } => Some((self.to_string(), &[])),
            _ => None,
        }
    }
}

/// One line: the summary, message or reason.
impl fmt::Display for StepResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepResult::Passed { summary, .. } => f.write_str(summary),
            StepResult::Failed { message, .. } | StepResult::Error { message } => {
                f.write_str(message)
            }
            StepResult::TimedOut { after } => {
                write!(f, "timed out after {}", humantime::format_duration(*after))
            }
            StepResult::Cancelled { reason } => write!(f, "{reason}"),
            StepResult::Skipped { reason } => f.write_str(reason),
            StepResult::NotRun { reason } => write!(f, "{reason}"),
        }
    }
}

/// The one place a target's [`StepError`] becomes a step's result.
impl From<StepError> for StepResult {
    fn from(error: StepError) -> Self {
        match error {
            StepError::Failed { message, evidence } => StepResult::Failed { message, evidence },
            StepError::Broken(broken) => StepResult::Error {
                message: broken.to_string(),
            },
            StepError::Unsupported(reason) => StepResult::Skipped { reason },
        }
    }
}

/// Why a step never started (reports show it as its one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRunReason {
    /// An earlier step of the scenario did not pass.
    EarlierStepDidNotPass {
        /// That step's name.
        step: String,
    },
    /// The run (or the scenario's time) was stopped first.
    Cancelled(CancelReason),
}

impl fmt::Display for NotRunReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotRunReason::EarlierStepDidNotPass { step } => {
                write!(f, "step `{step}` did not pass")
            }
            NotRunReason::Cancelled(reason) => write!(f, "{reason}"),
        }
    }
}

impl Serialize for NotRunReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One step's record.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// Phase.
    pub phase: Phase,
    /// Step name.
    pub name: String,
    /// Action kind.
    pub kind: String,
    /// How many attempts ran.
    pub attempts: u32,
    /// Wall time over all attempts.
    #[serde(with = "millis")]
    pub duration: Duration,
    /// The last attempt's result.
    pub result: StepResult,
    /// Results of earlier attempts that were retried.
    pub retried: Vec<StepResult>,
}

impl StepRecord {
    /// A record of something done once (setup, cleanup, diagnostics).
    pub fn single(
        phase: Phase,
        name: impl Into<String>,
        kind: impl Into<String>,
        duration: Duration,
        result: StepResult,
    ) -> Self {
        let attempts = u32::from(!matches!(result, StepResult::NotRun { .. }));
        StepRecord {
            phase,
            name: name.into(),
            kind: kind.into(),
            attempts,
            duration,
            result,
            retried: Vec::new(),
        }
    }

    /// The screenshots (browser probes) the last attempt's evidence names.
    pub fn screenshots(&self) -> Vec<PathBuf> {
        match &self.result {
            StepResult::Passed { evidence, .. } | StepResult::Failed { evidence, .. } => {
                crate::probe::browser::screenshots_in(evidence)
            }
            _ => Vec::new(),
        }
    }
}

/// One scenario on one target.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioOutcome {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub file: PathBuf,
    /// Target.
    pub target: TargetKind,
    /// Kubernetes version, when one was asked for.
    pub k8s_version: Option<String>,
    /// Final status.
    pub status: Status,
    /// One line saying why (failure, error or skip reason; pass summary).
    pub message: String,
    /// The known bug this scenario reproduces.
    pub known_bug: Option<String>,
    /// Set when the known bug still reproduces: observed or modelled.
    pub reproduction: Option<Reproduction>,
    /// The target's own models of upstream defects that were in effect
    /// (see [`crate::targets::Session::modelled_defects`]).
    pub modelled: Vec<String>,
    /// Every step, including finally and cleanup.
    pub steps: Vec<StepRecord>,
    /// Where diagnostics were written, if anything was.
    pub artifacts: Option<PathBuf>,
    /// Wall time.
    #[serde(with = "millis")]
    pub duration: Duration,
    /// The run was interrupted while this scenario ran.
    pub interrupted: bool,
}

/// A whole `rayconform run`.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    /// The run id (also the reports sub-folder).
    pub run_id: String,
    /// Every scenario × target.
    pub scenarios: Vec<ScenarioOutcome>,
    /// Interrupted by a signal.
    pub interrupted: bool,
    /// Wall time.
    #[serde(with = "millis")]
    pub duration: Duration,
    /// Problems releasing shared target resources at the end.
    pub shutdown_problems: Vec<String>,
}

impl RunOutcome {
    /// Counts by status: (passed, failed, errors, skipped).
    pub fn totals(&self) -> (usize, usize, usize, usize) {
        let count = |s: Status| self.scenarios.iter().filter(|o| o.status == s).count();
        (
            count(Status::Passed),
            count(Status::Failed),
            count(Status::Error),
            count(Status::Skipped),
        )
    }

    /// True when nothing failed or errored and the run was not interrupted.
    pub fn success(&self) -> bool {
        let (_, failed, errors, _) = self.totals();
        failed == 0 && errors == 0 && !self.interrupted && self.shutdown_problems.is_empty()
    }
}

mod millis {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}
