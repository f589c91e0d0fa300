//! The runner: executes scenarios on targets with per-step timeouts,
//! retries with backoff, a cleanup stack that always unwinds (failure,
//! panic, interrupt), and diagnostics collection on failure.
//!
//! [`run_all`] runs scenario × target pairs; [`run_scenario`] decides skip
//! ([`crate::plan::skip_reason`], as `plan` does) and otherwise runs the
//! phases of `scenario_run` (setup, try, catch, finally, cleanup), each
//! step through `attempts` (timeout, retries, cancellation). A stop
//! arrives as a [`Cancel`] carrying a typed [`CancelReason`]; a timeout is
//! [`StepResult::TimedOut`]; the binary alone turns them into exit codes.

mod attempts;
mod cancel;
mod cleanup;
mod command;
pub mod interrupt;
mod known_bug;
mod naming;
mod outcome;
mod run_certificates;
mod scenario_run;
mod shard;
mod step;

pub use cancel::{Cancel, CancelReason, Signal};
pub use cleanup::{CleanupStack, panic_message};
pub use naming::{namespace_for, new_run_id, run_variables};
pub use outcome::*;
pub use run_certificates::RunCertificates;
pub use shard::{Shard, ShardError};

use crate::plan::skip_reason;
use crate::scenario::Scenario;
use crate::targets::Target;
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Something the runner reports while it works (for live progress).
#[derive(Debug, Clone)]
pub enum Event {
    /// A scenario started on a target.
    ScenarioStarted {
        /// `scenario@target`.
        id: String,
    },
    /// A step (or setup/cleanup action) started.
    StepStarted {
        /// `scenario@target`.
        id: String,
        /// The step's name.
        step: String,
    },
    /// A progress message from a long operation.
    Message {
        /// `scenario@target`.
        id: String,
        /// The message.
        text: String,
    },
    /// A scenario finished.
    ScenarioFinished(Box<ScenarioOutcome>),
}

/// Receives [`Event`]s.
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Identifies the run; names the reports sub-folder.
    pub run_id: String,
    /// Relative paths in scenarios resolve here.
    pub project_root: PathBuf,
    /// Where diagnostics go: `<reports_dir>/<run_id>/<scenario>-<target>/`.
    pub reports_dir: PathBuf,
    /// `--k8s-version` (the target's [`crate::targets::TargetOptions`] owns
    /// it; copied here only to label the outcomes).
    pub k8s_version: Option<String>,
    /// `--keep`: leave everything in place.
    pub keep: bool,
    /// `--keep on-failure`: leave in place what a scenario that did not
    /// pass (failed, error, interrupted) used, and the shared resources
    /// (clusters, Ray heads) when any scenario did not pass.
    pub keep_failed: bool,
    /// Scenarios run at once.
    pub jobs: usize,
    /// First retry delay; doubles per retry, capped at 15 s.
    pub retry_backoff: Duration,
    /// The run's certificate authorities, shared by scenarios asking for the
    /// same ones.
    pub certificates: Arc<RunCertificates>,
    /// Live events.
    pub events: EventSink,
}

/// Runs `work` (scenario × target pairs) and shuts the targets down.
pub async fn run_all(
    work: Vec<(Arc<dyn Target>, Arc<Scenario>)>,
    opts: &RunOptions,
    cancel: &Cancel,
) -> RunOutcome {
    let started = Instant::now();
    let mut targets: Vec<Arc<dyn Target>> = Vec::new();
    for (target, _) in &work {
        if !targets.iter().any(|t| t.kind() == target.kind()) {
            targets.push(target.clone());
        }
    }
    for target in &targets {
        let theirs: Vec<&Scenario> = work
            .iter()
            .filter(|(t, _)| t.kind() == target.kind())
            .map(|(_, scenario)| scenario.as_ref())
            .collect();
        target.prepare(&theirs, &opts.project_root);
    }
    // The costliest start first (outcomes are put back in order below).
    let mut ordered: Vec<_> = work.into_iter().enumerate().collect();
    ordered.sort_by_cached_key(|(_, (target, scenario))| {
        std::cmp::Reverse(target.expected_cost(scenario, &opts.project_root))
    });
    let mut indexed: Vec<(usize, ScenarioOutcome)> = futures::stream::iter(ordered)
        .map(|(i, (target, scenario))| async move {
            (
                i,
                run_scenario(target.as_ref(), scenario, opts, cancel).await,
            )
        })
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await;
    indexed.sort_by_key(|(i, _)| *i);
    let any_failed = indexed
        .iter()
        .any(|(_, o)| matches!(o.status, Status::Failed | Status::Error));
    let keep_shared = opts.keep || (opts.keep_failed && any_failed);
    if keep_shared {
        // Kept Ray heads and clusters serve these certificates.
        opts.certificates.keep();
    }
    let mut shutdown_problems = Vec::new();
    for target in targets {
        for problem in target.shutdown(keep_shared).await {
            shutdown_problems.push(format!("{}: {problem}", target.kind()));
        }
    }
    RunOutcome {
        run_id: opts.run_id.clone(),
        scenarios: indexed.into_iter().map(|(_, o)| o).collect(),
        interrupted: cancel.is_cancelled(),
        duration: started.elapsed(),
        shutdown_problems,
    }
}

/// Runs one scenario on one target. Never panics; every problem ends up in
/// the outcome.
pub async fn run_scenario(
    target: &dyn Target,
    scenario: Arc<Scenario>,
    opts: &RunOptions,
    cancel: &Cancel,
) -> ScenarioOutcome {
    let started = Instant::now();
    let id = format!("{}@{}", scenario.name, target.kind());
    (opts.events)(Event::ScenarioStarted { id: id.clone() });
    let mut outcome = ScenarioOutcome {
        scenario: scenario.name.clone(),
        file: scenario.path.clone(),
        target: target.kind(),
        k8s_version: opts.k8s_version.clone(),
        status: Status::Passed,
        message: String::new(),
        known_bug: scenario.known_bug.as_ref().map(|b| b.url.clone()),
        reproduction: None,
        modelled: Vec::new(),
        steps: Vec::new(),
        artifacts: None,
        duration: Duration::ZERO,
        interrupted: false,
    };
    if let Some(reason) = skip_reason(target, &scenario, &opts.project_root) {
        outcome.status = Status::Skipped;
        outcome.message = reason;
    } else if let Some(reason) = cancel.reason() {
        outcome.status = Status::Skipped;
        outcome.message = format!("{reason} before it started");
        outcome.interrupted = reason.is_interruption();
    } else {
        let ctx = scenario_run::ScenarioContext {
            target,
            scenario: &scenario,
            opts,
            cancel,
            id: &id,
            deadline: attempts::deadline_after(scenario.timeout),
        };
        scenario_run::run_opened(&ctx, &mut outcome).await;
        known_bug::apply_known_bug(&scenario, &mut outcome);
    }
    outcome.duration = started.elapsed();
    (opts.events)(Event::ScenarioFinished(Box::new(outcome.clone())));
    outcome
}
