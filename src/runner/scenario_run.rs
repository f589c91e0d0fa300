//! One scenario on an opened target, in the shape of a chainsaw test:
//! setup, try (the steps, stopping at the first that does not pass), catch
//! (diagnostics on failure), finally (always), cleanup (the stack, last
//! registered first), close (a cleanup action like any other).

use super::attempts::{SharedSession, deadline_after, run_step};
use super::cancel::{Cancel, CancelReason};
use super::cleanup::{CleanupResult, CleanupStack, panic_message};
use super::outcome::{NotRunReason, Phase, ScenarioOutcome, Status, StepRecord, StepResult};
use super::step::StepContext;
use super::{Event, RunOptions, interrupt, naming};
use crate::scenario::{Scenario, Step};
use crate::targets::{ProgressFn, ScenarioRun, Target};
use crate::tls::CertificateSet;
use futures::FutureExt;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The longest diagnostics collection may take.
const DIAGNOSTICS_LIMIT: Duration = Duration::from_secs(120);

/// What every phase of one scenario run needs.
pub struct ScenarioContext<'a> {
    /// Where it runs.
    pub target: &'a dyn Target,
    /// What runs.
    pub scenario: &'a Arc<Scenario>,
    /// How.
    pub opts: &'a RunOptions,
    /// Asks the run to stop.
    pub cancel: &'a Cancel,
    /// `scenario@target`, for events.
    pub id: &'a str,
    /// When the scenario's own timeout runs out.
    pub deadline: Instant,
}

impl ScenarioContext<'_> {
    fn started(&self, step: &str) {
        (self.opts.events)(Event::StepStarted {
            id: self.id.to_string(),
            step: step.to_string(),
        });
    }

    fn artifacts_dir(&self) -> PathBuf {
        self.opts.reports_dir.join(&self.opts.run_id).join(format!(
            "{}-{}",
            self.scenario.name,
            self.target.kind()
        ))
    }
}

/// What setup produced.
struct Opened {
    session: SharedSession,
    work_dir: PathBuf,
    certificates: Option<Arc<CertificateSet>>,
    /// Whether the cleanup leaves the session and work dir in place:
    /// `--keep`, or `--keep on-failure` once the scenario did not pass
    /// (decided in `conclude`, read when the cleanup runs).
    kept: Arc<AtomicBool>,
}

/// Runs the scenario on its target: every phase, whatever happens.
pub async fn run_opened(ctx: &ScenarioContext<'_>, outcome: &mut ScenarioOutcome) {
    let mut cleanup = CleanupStack::new();
    if let Some(opened) = setup(ctx, &mut cleanup, outcome).await {
        let vars = run_variables(ctx, &opened.session).await;
        let artifacts_dir = ctx.artifacts_dir();
        let steps = StepContext {
            vars: &vars,
            project_root: &ctx.opts.project_root,
            certificates: opened.certificates.as_deref(),
            artifacts_dir: Some(&artifacts_dir),
        };
        try_steps(ctx, &opened.session, &steps, outcome).await;
        finally_steps(ctx, &opened.session, &steps, outcome).await;
        conclude(ctx, &opened, outcome).await;
    }
    record_cleanup(cleanup.unwind().await, outcome);
    if outcome.status == Status::Passed && outcome.message.is_empty() {
        outcome.message = format!("{} steps passed", ctx.scenario.steps.len());
    }
}

/// The work dir, certificates and the target session; `None` (with the
/// reason in `outcome`) when one of them could not be had.
async fn setup(
    ctx: &ScenarioContext<'_>,
    cleanup: &mut CleanupStack,
    outcome: &mut ScenarioOutcome,
) -> Option<Opened> {
    let kept = Arc::new(AtomicBool::new(ctx.opts.keep));
    let work_dir = match create_work_dir(ctx.opts, &kept, cleanup) {
        Ok(dir) => dir,
        Err(e) => {
            let message = format!("cannot create a work dir: {e}");
            setup_error(outcome, "create work dir", message);
            return None;
        }
    };
    let certificates = match certificates_for(ctx) {
        Ok(set) => set,
        Err(e) => {
            let message = format!("cannot generate certificates: {e}");
            setup_error(outcome, "generate certificates", message);
            return None;
        }
    };
    let run = ScenarioRun {
        scenario: ctx.scenario.clone(),
        run_id: ctx.opts.run_id.clone(),
        namespace: naming::namespace_for(&ctx.scenario.name, &ctx.opts.run_id),
        work_dir: work_dir.clone(),
        artifacts_dir: ctx.artifacts_dir(),
        project_root: ctx.opts.project_root.clone(),
        certificates: certificates.clone(),
        keep: ctx.opts.keep,
        progress: progress_messages(ctx),
    };
    let session = open_session(ctx, &run, outcome).await?;
    register_close(cleanup, &session, &kept);
    Some(Opened {
        session,
        work_dir,
        certificates,
        kept,
    })
}

/// A private (0700) work dir: the one place for this run's private keys.
/// Removed by the cleanup stack (unless `kept`); a hard exit (second
/// signal) still removes it, or names it under `--keep` (any policy).
fn create_work_dir(
    opts: &RunOptions,
    kept: &Arc<AtomicBool>,
    cleanup: &mut CleanupStack,
) -> std::io::Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix("rayconform-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()?
        .keep();
    interrupt::register_private_dir(&dir, !(opts.keep || opts.keep_failed));
    if !opts.keep {
        let removed = dir.clone();
        let kept = kept.clone();
        let name = if opts.keep_failed {
            format!("remove {} (unless kept)", dir.display())
        } else {
            format!("remove {}", dir.display())
        };
        cleanup.push(name, move || {
            async move {
                if kept.load(Ordering::SeqCst) {
                    return Ok(());
                }
                std::fs::remove_dir_all(&removed)
                    .map_err(|e| format!("cannot remove {}: {e}", removed.display()))?;
                interrupt::unregister_private_dir(&removed);
                Ok(())
            }
            .boxed()
        });
    }
    Ok(dir)
}

/// The scenario's certificates: the run's set for its `certificates:`.
fn certificates_for(
    ctx: &ScenarioContext<'_>,
) -> Result<Option<Arc<CertificateSet>>, crate::tls::TlsError> {
    let Some(spec) = &ctx.scenario.certificates else {
        return Ok(None);
    };
    ctx.opts.certificates.get(spec).map(Some)
}

/// Long operations' messages, as events of this scenario.
fn progress_messages(ctx: &ScenarioContext<'_>) -> ProgressFn {
    let events = ctx.opts.events.clone();
    let id = ctx.id.to_string();
    Arc::new(move |text: &str| {
        events(Event::Message {
            id: id.clone(),
            text: text.to_string(),
        })
    })
}

/// Opens the target session, recording it as the setup step; `None` (with
/// the reason in `outcome`) when it failed, panicked or was cancelled.
async fn open_session(
    ctx: &ScenarioContext<'_>,
    run: &ScenarioRun,
    outcome: &mut ScenarioOutcome,
) -> Option<SharedSession> {
    let name = format!("open {}", ctx.target.kind());
    ctx.started(&name);
    let started = Instant::now();
    let opened = tokio::select! {
        r = AssertUnwindSafe(ctx.target.open(run)).catch_unwind() => Ok(r),
        reason = ctx.cancel.cancelled() => Err(reason),
    };
    let (result, message) = match opened {
        Ok(Ok(Ok(session))) => {
            let ready = StepResult::Passed {
                summary: "ready".into(),
                evidence: Vec::new(),
            };
            let record = StepRecord::single(Phase::Setup, name, "setup", started.elapsed(), ready);
            outcome.steps.push(record);
            return Some(Arc::new(Mutex::new(session)));
        }
        Ok(Ok(Err(error))) => {
            let result = StepResult::from(error);
            let message = match &result {
                StepResult::Error { message } => format!("setup failed: {message}"),
                other => other.to_string(),
            };
            (result, message)
        }
        Ok(Err(panic)) => {
            let message = format!("target setup panicked: {}", panic_message(&panic));
            let result = StepResult::Error {
                message: message.clone(),
            };
            (result, message)
        }
        Err(reason) => (
            StepResult::Cancelled { reason },
            format!("{reason} during setup"),
        ),
    };
    outcome.interrupted |= result.interruption().is_some();
    outcome.status = result.verdict().map_or(Status::Error, |(status, _)| status);
    outcome.message = message;
    let record = StepRecord::single(Phase::Setup, name, "setup", started.elapsed(), result);
    outcome.steps.push(record);
    None
}

fn register_close(cleanup: &mut CleanupStack, session: &SharedSession, kept: &Arc<AtomicBool>) {
    let session = session.clone();
    let kept = kept.clone();
    cleanup.push("close session", move || {
        async move {
            let keep = kept.load(Ordering::SeqCst);
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

/// The session's variables with the run's own on top (the session may
/// name the namespace), then the environment for what neither sets.
async fn run_variables(
    ctx: &ScenarioContext<'_>,
    session: &SharedSession,
) -> BTreeMap<String, String> {
    let mut vars = session.lock().await.variables();
    for (name, value) in naming::run_variables(&ctx.scenario.name, &ctx.opts.run_id) {
        if name == naming::NAMESPACE_VAR {
            vars.entry(name).or_insert(value);
        } else {
            vars.insert(name, value);
        }
    }
    for (k, v) in std::env::vars() {
        vars.entry(k).or_insert(v);
    }
    vars
}

/// Try: the steps in order, stopping at the first that does not pass
/// (the rest are recorded as not run, with why); catch: diagnostics once.
async fn try_steps(
    ctx: &ScenarioContext<'_>,
    session: &SharedSession,
    steps: &StepContext<'_>,
    outcome: &mut ScenarioOutcome,
) {
    let mut stopped: Option<NotRunReason> = None;
    let settles = session.lock().await.settles_on_return();
    for step in &ctx.scenario.steps {
        if stopped.is_none()
            && let Some(reason) = ctx.cancel.reason()
        {
            outcome.interrupted = true;
            stopped = Some(NotRunReason::Cancelled(reason));
        }
        if let Some(reason) = &stopped {
            outcome
                .steps
                .push(not_run(Phase::Steps, step, reason.clone()));
            continue;
        }
        ctx.started(&step.name);
        let final_known_bug = ctx
            .scenario
            .known_bug
            .as_ref()
            .filter(|bug| bug.step.as_deref() == Some(step.name.as_str()) && settles);
        let record = run_step(
            step,
            Phase::Steps,
            session,
            steps,
            ctx.opts.retry_backoff,
            ctx.cancel,
            ctx.deadline,
            final_known_bug,
        )
        .await;
        if let Some((status, text)) = record.result.verdict() {
            set_status(outcome, status, format!("{}: {text}", step.name));
        }
        let interruption = record.result.interruption();
        outcome.interrupted |= interruption.is_some();
        let passed = record.result.passed();
        outcome.steps.push(record);
        if !passed {
            stopped = Some(match interruption {
                Some(reason) => NotRunReason::Cancelled(reason),
                None => NotRunReason::EarlierStepDidNotPass {
                    step: step.name.clone(),
                },
            });
            if outcome.status != Status::Skipped {
                collect_diagnostics(session, &ctx.artifacts_dir(), outcome).await;
            }
        }
    }
}

/// Finally: every step runs, also after a failure or an interrupt (never
/// cancelled, each with at least its own timeout). A problem here is named
/// after the first one, or becomes the scenario's.
async fn finally_steps(
    ctx: &ScenarioContext<'_>,
    session: &SharedSession,
    steps: &StepContext<'_>,
    outcome: &mut ScenarioOutcome,
) {
    let never = Cancel::new();
    for step in &ctx.scenario.finally {
        ctx.started(&step.name);
        let deadline = ctx.deadline.max(deadline_after(step.timeout));
        let record = run_step(
            step,
            Phase::Finally,
            session,
            steps,
            ctx.opts.retry_backoff,
            &never,
            deadline,
            None,
        )
        .await;
        let problem = record
            .result
            .verdict()
            .filter(|(status, _)| matches!(status, Status::Failed | Status::Error));
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
}

/// After the steps: an interrupted scenario is an error, the session's
/// modelled defects are noted, and `--keep` says what was left where.
async fn conclude(ctx: &ScenarioContext<'_>, opened: &Opened, outcome: &mut ScenarioOutcome) {
    if outcome.interrupted {
        let reason = ctx
            .cancel
            .reason()
            .unwrap_or(CancelReason::Interrupted { signal: None });
        set_status(outcome, Status::Error, reason.to_string());
    }
    outcome.modelled = opened.session.lock().await.modelled_defects();
    let did_not_pass = matches!(outcome.status, Status::Failed | Status::Error);
    if ctx.opts.keep_failed && did_not_pass {
        opened.kept.store(true, Ordering::SeqCst);
    }
    if opened.kept.load(Ordering::SeqCst) {
        let how = opened.session.lock().await.how_to_reach();
        let policy = if ctx.opts.keep {
            "--keep"
        } else {
            "--keep on-failure"
        };
        let kept = StepResult::Skipped {
            reason: format!(
                "{policy}: left in place; {how}; work dir {}",
                opened.work_dir.display()
            ),
        };
        let record = StepRecord::single(Phase::Cleanup, "keep", "cleanup", Duration::ZERO, kept);
        outcome.steps.push(record);
    }
}

fn not_run(phase: Phase, step: &Step, reason: NotRunReason) -> StepRecord {
    let result = StepResult::NotRun { reason };
    StepRecord::single(
        phase,
        &step.name,
        step.action.kind(),
        Duration::ZERO,
        result,
    )
}

/// Records a worse status; the first problem's message is kept.
pub fn set_status(outcome: &mut ScenarioOutcome, status: Status, message: String) {
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

/// Catch: the session's diagnostics into `dir`, bounded in time.
async fn collect_diagnostics(session: &SharedSession, dir: &Path, outcome: &mut ScenarioOutcome) {
    let started = Instant::now();
    let result = match std::fs::create_dir_all(dir) {
        Err(e) => StepResult::Error {
            message: format!("cannot create {}: {e}", dir.display()),
        },
        Ok(()) => {
            outcome.artifacts = Some(dir.to_path_buf());
            diagnostics_into(session, dir).await
        }
    };
    outcome.steps.push(StepRecord::single(
        Phase::Cleanup,
        "collect diagnostics",
        "diagnostics",
        started.elapsed(),
        result,
    ));
}

async fn diagnostics_into(session: &SharedSession, dir: &Path) -> StepResult {
    let mut guard = session.lock().await;
    let collected = tokio::time::timeout(
        DIAGNOSTICS_LIMIT,
        AssertUnwindSafe(guard.collect_diagnostics(dir)).catch_unwind(),
    )
    .await;
    match collected {
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
    }
}

/// Cleanup: one record per unwound action; a failure is an error.
fn record_cleanup(done: Vec<CleanupResult>, outcome: &mut ScenarioOutcome) {
    for action in done {
        let result = match action.result {
            Ok(()) => StepResult::Passed {
                summary: "done".into(),
                evidence: Vec::new(),
            },
            Err(message) => {
                let text = format!("cleanup `{}` failed: {message}", action.name);
                set_status(outcome, Status::Error, text);
                StepResult::Error { message }
            }
        };
        let record = StepRecord::single(
            Phase::Cleanup,
            action.name,
            "cleanup",
            action.duration,
            result,
        );
        outcome.steps.push(record);
    }
}
