//! The runner: executes scenarios on targets with per-step timeouts,
//! retries with backoff, a cleanup stack that always unwinds (failure,
//! panic, interrupt), and diagnostics collection on failure.

mod cleanup;
mod command;
pub mod interrupt;
mod naming;
mod outcome;
mod step;

pub use cleanup::{CleanupStack, panic_message};
pub use naming::{namespace_for, new_run_id};
pub use outcome::*;

use crate::scenario::{Scenario, Step};
use crate::targets::{ProgressFn, ScenarioRun, Session, StepError, Target};
use futures::{FutureExt, StreamExt};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// How long after a step's own timeout the runner abandons it: the action
/// ends itself at its timeout (with evidence); this only catches one that
/// does not.
const TIMEOUT_BACKSTOP: Duration = Duration::from_secs(1);

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
    /// `--k8s-version`.
    pub k8s_version: Option<String>,
    /// `--keep`: leave everything in place.
    pub keep: bool,
    /// Scenarios run at once.
    pub jobs: usize,
    /// First retry delay; doubles per retry, capped at 15 s.
    pub retry_backoff: Duration,
    /// Live events.
    pub events: EventSink,
}

/// Runs `work` (scenario × target pairs) and shuts the targets down.
pub async fn run_all(
    work: Vec<(Arc<dyn Target>, Arc<Scenario>)>,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> RunOutcome {
    let started = Instant::now();
    let mut targets: Vec<Arc<dyn Target>> = Vec::new();
    for (target, _) in &work {
        if !targets.iter().any(|t| t.kind() == target.kind()) {
            targets.push(target.clone());
        }
    }
    let mut indexed: Vec<(usize, ScenarioOutcome)> =
        futures::stream::iter(work.into_iter().enumerate())
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
    let mut shutdown_problems = Vec::new();
    for target in targets {
        for problem in target.shutdown(opts.keep).await {
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
    cancel: &CancellationToken,
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
    let skip = if !target.kind().listed_in(&scenario.targets) {
        Some(format!(
            "the scenario does not list target `{}`",
            target.kind()
        ))
    } else {
        target
            .unavailable_reason()
            .map(|r| format!("target `{}` unavailable: {r}", target.kind()))
            .or_else(|| target.unsupported_reason(&scenario, &opts.project_root))
    };
    if let Some(reason) = skip {
        outcome.status = Status::Skipped;
        outcome.message = reason;
    } else if cancel.is_cancelled() {
        outcome.status = Status::Skipped;
        outcome.message = "interrupted before it started".to_string();
        outcome.interrupted = true;
    } else {
        run_opened(target, &scenario, opts, cancel, &id, &mut outcome).await;
        apply_known_bug(&scenario, &mut outcome);
    }
    outcome.duration = started.elapsed();
    (opts.events)(Event::ScenarioFinished(Box::new(outcome.clone())));
    outcome
}

async fn run_opened(
    target: &dyn Target,
    scenario: &Arc<Scenario>,
    opts: &RunOptions,
    cancel: &CancellationToken,
    id: &str,
    outcome: &mut ScenarioOutcome,
) {
    let deadline = deadline_after(scenario.timeout);
    let mut cleanup = CleanupStack::new();
    let artifacts_dir =
        opts.reports_dir
            .join(&opts.run_id)
            .join(format!("{}-{}", scenario.name, target.kind()));
    let work_dir = match tempfile::Builder::new()
        .prefix("rayconform-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
    {
        Ok(dir) => dir.keep(),
        Err(e) => {
            return setup_error(
                outcome,
                "create work dir",
                format!("cannot create a work dir: {e}"),
            );
        }
    };
    // The work dir (0700) is the one place for this run's private keys; a
    // hard exit (second Ctrl-C) still removes it, or names it under --keep.
    interrupt::register_private_dir(&work_dir, !opts.keep);
    if !opts.keep {
        let dir = work_dir.clone();
        cleanup.push(format!("remove {}", dir.display()), move || {
            async move {
                let removed = std::fs::remove_dir_all(&dir)
                    .map_err(|e| format!("cannot remove {}: {e}", dir.display()));
                if removed.is_ok() {
                    interrupt::unregister_private_dir(&dir);
                }
                removed
            }
            .boxed()
        });
    }
    let namespace = namespace_for(&scenario.name, &opts.run_id);
    let progress: ProgressFn = {
        let events = opts.events.clone();
        let id = id.to_string();
        Arc::new(move |text: &str| {
            events(Event::Message {
                id: id.clone(),
                text: text.to_string(),
            })
        })
    };

    // Setup: certificates, then the target session.
    let certificates = match &scenario.certificates {
        None => None,
        Some(spec) => {
            match crate::tls::generate(&work_dir.join("certs"), &spec.ca, &spec.server_names) {
                Ok(set) => Some(Arc::new(set)),
                Err(e) => {
                    setup_error(
                        outcome,
                        "generate certificates",
                        format!("cannot generate certificates: {e}"),
                    );
                    finish_cleanup(&mut cleanup, outcome).await;
                    return;
                }
            }
        }
    };
    let run = ScenarioRun {
        scenario: scenario.clone(),
        run_id: opts.run_id.clone(),
        namespace: namespace.clone(),
        work_dir: work_dir.clone(),
        artifacts_dir: artifacts_dir.clone(),
        project_root: opts.project_root.clone(),
        certificates: certificates.clone(),
        k8s_version: opts.k8s_version.clone(),
        keep: opts.keep,
        progress,
    };
    (opts.events)(Event::StepStarted {
        id: id.to_string(),
        step: format!("open {}", target.kind()),
    });
    let open_started = Instant::now();
    let opened = tokio::select! {
        r = AssertUnwindSafe(target.open(&run)).catch_unwind() => Some(r),
        _ = cancel.cancelled() => None,
    };
    let session: Arc<Mutex<Box<dyn Session>>> = match opened {
        Some(Ok(Ok(session))) => {
            outcome.steps.push(StepRecord::single(
                Phase::Setup,
                format!("open {}", target.kind()),
                "setup",
                open_started.elapsed(),
                StepResult::Passed {
                    summary: "ready".into(),
                    evidence: Vec::new(),
                },
            ));
            Arc::new(Mutex::new(session))
        }
        other => {
            let (result, status, message) = match other {
                None => {
                    outcome.interrupted = true;
                    (
                        StepResult::Error {
                            message: "interrupted".into(),
                        },
                        Status::Error,
                        "interrupted during setup".to_string(),
                    )
                }
                Some(Err(panic)) => {
                    let m = format!("target setup panicked: {}", panic_message(&panic));
                    (
                        StepResult::Error {
                            message: m.to_string(),
                        },
                        Status::Error,
                        m,
                    )
                }
                Some(Ok(Err(StepError::Unsupported(reason)))) => (
                    StepResult::Skipped {
                        reason: reason.clone(),
                    },
                    Status::Skipped,
                    reason,
                ),
                Some(Ok(Err(StepError::Failed { message, evidence }))) => (
                    StepResult::Failed {
                        message: message.clone(),
                        evidence,
                    },
                    Status::Failed,
                    message,
                ),
                Some(Ok(Err(StepError::Broken(m)))) => (
                    StepResult::Error {
                        message: m.to_string(),
                    },
                    Status::Error,
                    format!("setup failed: {m}"),
                ),
                Some(Ok(Ok(_))) => unreachable!("handled above"),
            };
            outcome.steps.push(StepRecord::single(
                Phase::Setup,
                format!("open {}", target.kind()),
                "setup",
                open_started.elapsed(),
                result,
            ));
            outcome.status = status;
            outcome.message = message;
            finish_cleanup(&mut cleanup, outcome).await;
            return;
        }
    };
    {
        let session = session.clone();
        let keep = opts.keep;
        cleanup.push("close session", move || {
            async move {
                let problems = session.lock().await.close(keep).await;
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(problems.join("; "))
                }
            }
            .boxed()
        });
    }

    let mut vars: BTreeMap<String, String> = session.lock().await.variables();
    vars.insert(
        "NAMESPACE".into(),
        vars.get("NAMESPACE").cloned().unwrap_or(namespace),
    );
    vars.insert("RUN_ID".into(), opts.run_id.clone());
    vars.insert("SCENARIO".into(), scenario.name.clone());
    for (k, v) in std::env::vars() {
        vars.entry(k).or_insert(v);
    }
    let ctx = step::StepContext {
        vars: &vars,
        project_root: &opts.project_root,
        certificates: certificates.as_deref(),
    };

    // The steps: stop at the first one that does not pass.
    let mut diagnosed = false;
    let mut stopped: Option<String> = None;
    for step in &scenario.steps {
        if let Some(reason) = &stopped {
            outcome.steps.push(not_run(Phase::Steps, step, reason));
            continue;
        }
        if cancel.is_cancelled() {
            outcome.interrupted = true;
            stopped = Some("interrupted".into());
            outcome
                .steps
                .push(not_run(Phase::Steps, step, "interrupted"));
            continue;
        }
        (opts.events)(Event::StepStarted {
            id: id.to_string(),
            step: step.name.clone(),
        });
        let record = run_step(step, Phase::Steps, &session, &ctx, opts, cancel, deadline).await;
        let failed = !matches!(record.result, StepResult::Passed { .. });
        match &record.result {
            StepResult::Failed { message, .. } => {
                set_status(outcome, Status::Failed, format!("{}: {message}", step.name))
            }
            StepResult::Error { message } => {
                set_status(outcome, Status::Error, format!("{}: {message}", step.name))
            }
            StepResult::Skipped { reason } => {
                set_status(outcome, Status::Skipped, format!("{}: {reason}", step.name))
            }
            _ => {}
        }
        let interrupted =
            matches!(record.result, StepResult::Error { ref message } if message == "interrupted");
        outcome.interrupted |= interrupted;
        outcome.steps.push(record);
        if failed {
            stopped = Some(if interrupted {
                "interrupted".to_string()
            } else {
                format!("step `{}` did not pass", step.name)
            });
            if outcome.status != Status::Skipped && !diagnosed {
                diagnosed = true;
                collect_diagnostics(&session, &artifacts_dir, outcome).await;
            }
        }
    }

    // Finally steps always run (also after failure or interrupt).
    for step in &scenario.finally {
        (opts.events)(Event::StepStarted {
            id: id.to_string(),
            step: step.name.clone(),
        });
        let record = run_step(
            step,
            Phase::Finally,
            &session,
            &ctx,
            opts,
            &CancellationToken::new(),
            deadline.max(deadline_after(step.timeout)),
        )
        .await;
        let problem = match &record.result {
            StepResult::Failed { message, .. } => Some((Status::Failed, message)),
            StepResult::Error { message } => Some((Status::Error, message)),
            _ => None,
        };
        if let Some((status, message)) = problem {
            let text = format!("finally `{}`: {message}", step.name);
            if matches!(outcome.status, Status::Failed | Status::Error) {
                // The first problem stays first; this one is named too.
                outcome.message = format!("{}; then {text}", outcome.message);
            } else {
                set_status(outcome, status, text);
            }
        }
        outcome.steps.push(record);
    }
    if outcome.interrupted {
        set_status(outcome, Status::Error, "interrupted".to_string());
    }
    outcome.modelled = session.lock().await.modelled_defects();
    if opts.keep {
        let how = session.lock().await.how_to_reach();
        outcome.steps.push(StepRecord::single(
            Phase::Cleanup,
            "keep",
            "cleanup",
            Duration::ZERO,
            StepResult::Skipped {
                reason: format!(
                    "--keep: left in place; {how}; work dir {}",
                    work_dir.display()
                ),
            },
        ));
    }
    finish_cleanup(&mut cleanup, outcome).await;
    if outcome.status == Status::Passed && outcome.message.is_empty() {
        outcome.message = format!("{} steps passed", scenario.steps.len());
    }
}

/// Runs a step with its timeout, retries and panic capture.
async fn run_step(
    step: &Step,
    phase: Phase,
    session: &Arc<Mutex<Box<dyn Session>>>,
    ctx: &step::StepContext<'_>,
    opts: &RunOptions,
    cancel: &CancellationToken,
    deadline: Instant,
) -> StepRecord {
    let started = Instant::now();
    let mut retried = Vec::new();
    let mut attempts = 0;
    let result = loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let limit = step.timeout.min(remaining);
        let result = if limit.is_zero() {
            StepResult::Error {
                message: "the scenario's timeout was reached before this step".into(),
            }
        } else {
            let mut guard = session.lock().await;
            let attempt =
                AssertUnwindSafe(step::execute(step, guard.as_mut(), ctx, limit)).catch_unwind();
            // The action bounds itself by `limit` and keeps its evidence;
            // this is the backstop for one that does not.
            tokio::select! {
                r = tokio::time::timeout(limit + TIMEOUT_BACKSTOP, attempt) => match r {
                    Ok(Ok(result)) => result,
                    Ok(Err(panic)) => StepResult::Error { message: format!("step panicked: {}", panic_message(&panic)) },
                    Err(_) => StepResult::Failed {
                        message: format!("timed out after {}", humantime::format_duration(limit)),
                        evidence: Vec::new(),
                    },
                },
                _ = cancel.cancelled() => StepResult::Error { message: "interrupted".into() },
            }
        };
        let retryable = matches!(result, StepResult::Failed { .. } | StepResult::Error { .. })
            && !matches!(&result, StepResult::Error { message } if message == "interrupted");
        if !retryable || attempts > step.retries || cancel.is_cancelled() {
            break result;
        }
        let backoff = opts
            .retry_backoff
            .saturating_mul(1 << (attempts - 1).min(4))
            .min(Duration::from_secs(15));
        retried.push(result);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = cancel.cancelled() => break StepResult::Error { message: "interrupted".into() },
        }
    };
    StepRecord {
        phase,
        name: step.name.clone(),
        kind: step.action.kind().to_string(),
        attempts,
        duration: started.elapsed(),
        result,
        retried,
    }
}

/// `now + limit`, saturating: the loader bounds durations, but a scenario
/// built in code could still name one that overflows the clock.
fn deadline_after(limit: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(limit)
        .unwrap_or_else(|| now + crate::scenario::MAX_DURATION)
}

fn not_run(phase: Phase, step: &Step, reason: &str) -> StepRecord {
    let result = StepResult::NotRun {
        reason: reason.to_string(),
    };
    StepRecord::single(
        phase,
        &step.name,
        step.action.kind(),
        Duration::ZERO,
        result,
    )
}

/// Records a worse status; the first problem's message is kept.
fn set_status(outcome: &mut ScenarioOutcome, status: Status, message: String) {
    let rank = |s: Status| match s {
        Status::Passed => 0,
        Status::Skipped => 1,
        Status::Failed => 2,
        Status::Error => 3,
    };
    if outcome.status == Status::Passed
        || (rank(status) > rank(outcome.status) && outcome.status != Status::Failed)
    {
        outcome.status = status;
        outcome.message = message;
    }
}

fn setup_error(outcome: &mut ScenarioOutcome, name: &str, message: String) {
    outcome.steps.push(StepRecord::single(
        Phase::Setup,
        name.to_string(),
        "setup",
        Duration::ZERO,
        StepResult::Error {
            message: message.clone(),
        },
    ));
    outcome.status = Status::Error;
    outcome.message = message;
}

async fn collect_diagnostics(
    session: &Arc<Mutex<Box<dyn Session>>>,
    dir: &std::path::Path,
    outcome: &mut ScenarioOutcome,
) {
    if let Err(e) = std::fs::create_dir_all(dir) {
        outcome.steps.push(StepRecord::single(
            Phase::Cleanup,
            "collect diagnostics",
            "diagnostics",
            Duration::ZERO,
            StepResult::Error {
                message: format!("cannot create {}: {e}", dir.display()),
            },
        ));
        return;
    }
    let started = Instant::now();
    let mut guard = session.lock().await;
    let collected = tokio::time::timeout(
        Duration::from_secs(120),
        AssertUnwindSafe(guard.collect_diagnostics(dir)).catch_unwind(),
    )
    .await;
    let result = match collected {
        Ok(Ok(files)) => StepResult::Passed {
            summary: format!("{} files in {}", files.len(), dir.display()),
            evidence: files.iter().map(|f| f.display().to_string()).collect(),
        },
        Ok(Err(panic)) => StepResult::Error {
            message: format!("diagnostics panicked: {}", panic_message(&panic)),
        },
        Err(_) => StepResult::Error {
            message: "diagnostics did not finish within 2m".into(),
        },
    };
    outcome.artifacts = Some(dir.to_path_buf());
    outcome.steps.push(StepRecord::single(
        Phase::Cleanup,
        "collect diagnostics",
        "diagnostics",
        started.elapsed(),
        result,
    ));
}

async fn finish_cleanup(cleanup: &mut CleanupStack, outcome: &mut ScenarioOutcome) {
    for done in cleanup.unwind().await {
        let name = done.name;
        let result = match done.result {
            Ok(()) => StepResult::Passed {
                summary: "done".into(),
                evidence: Vec::new(),
            },
            Err(message) => {
                set_status(
                    outcome,
                    Status::Error,
                    format!("cleanup `{name}` failed: {message}"),
                );
                StepResult::Error { message }
            }
        };
        outcome.steps.push(StepRecord::single(
            Phase::Cleanup,
            name,
            "cleanup",
            done.duration,
            result,
        ));
    }
}

/// Strict expected failure: a known bug must keep failing.
fn apply_known_bug(scenario: &Scenario, outcome: &mut ScenarioOutcome) {
    let Some(bug) = &scenario.known_bug else {
        return;
    };
    match outcome.status {
        Status::Failed => {
            if let Some(mismatch) = known_bug_mismatch(bug, outcome) {
                outcome.message = format!(
                    "failed, but not the way known bug {} fails: {mismatch}; {}",
                    bug.url, outcome.message
                );
                return;
            }
            outcome.status = Status::Passed;
            if outcome.modelled.is_empty() {
                outcome.reproduction = Some(Reproduction::Observed);
                outcome.message = format!(
                    "known bug still reproduces ({}): {}",
                    bug.url, outcome.message
                );
            } else {
                outcome.reproduction = Some(Reproduction::Modelled);
                outcome.message = format!(
                    "known bug still reproduces, but only in the target's model of it, not in real software ({}; {}): {}",
                    bug.url,
                    outcome.modelled.join("; "),
                    outcome.message
                );
            }
        }
        Status::Passed => {
            outcome.status = Status::Failed;
            outcome.message = format!(
                "known bug {} did not reproduce: every step passed — the bug may be fixed; check upstream and drop `knownBug`",
                bug.url
            );
        }
        Status::Error | Status::Skipped => {}
    }
}

/// Why the failure is not the known bug's failure, if it is not.
fn known_bug_mismatch(
    bug: &crate::scenario::KnownBug,
    outcome: &ScenarioOutcome,
) -> Option<String> {
    let first = outcome
        .steps
        .iter()
        .find(|s| matches!(s.result, StepResult::Failed { .. }))?;
    let StepResult::Failed { message, evidence } = &first.result else {
        return None;
    };
    if let Some(step) = &bug.step
        && &first.name != step
    {
        return Some(format!(
            "step `{}` failed, expected step `{step}` to",
            first.name
        ));
    }
    if let Some(needle) = &bug.failure_contains
        && !message.contains(needle.as_str())
        && !evidence.iter().any(|e| e.contains(needle.as_str()))
    {
        return Some(format!("the failure does not mention {needle:?}"));
    }
    None
}
