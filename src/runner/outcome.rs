//! What happened: per step, per scenario, per run.

use crate::scenario::TargetKind;
use serde::Serialize;
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
    /// Broken infrastructure (including a timeout of a setup action).
    Error {
        /// What broke.
        message: String,
    },
    /// The target cannot do this step.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Never started (an earlier step failed, or the run was interrupted).
    NotRun {
        /// Why.
        reason: String,
    },
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
