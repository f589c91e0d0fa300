//! One step with its limits: attempts bounded by the step's timeout and
//! the scenario's remaining time, retries with backoff, panics captured,
//! and cancellation as a typed result.

use super::cancel::{Cancel, CancelReason};
use super::cleanup::panic_message;
use super::known_bug::failure_matches;
use super::outcome::{Phase, StepRecord, StepResult};
use super::step::{self, StepContext};
use crate::scenario::{KnownBug, Step};
use crate::targets::Session;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A session shared by the steps, diagnostics and the cleanup stack.
pub type SharedSession = Arc<Mutex<Box<dyn Session>>>;

/// How long after a step's own timeout the runner abandons it: the action
/// ends itself at its timeout (with evidence); this only catches one that
/// does not.
const TIMEOUT_BACKSTOP: Duration = Duration::from_secs(1);

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// Runs `step` until it passes, runs out of retries, or is cancelled.
///
/// `final_known_bug`: the scenario's known bug when this is its step and the
/// session settles on return ([`crate::targets::Session::settles_on_return`]):
/// a failure the way that bug fails is then final on its first attempt (a
/// retry would see the same configuration), so it is not retried, and the
/// evidence says why.
#[allow(clippy::too_many_arguments)]
pub async fn run_step(
    step: &Step,
    phase: Phase,
    session: &SharedSession,
    ctx: &StepContext<'_>,
    retry_backoff: Duration,
    cancel: &Cancel,
    deadline: Instant,
    final_known_bug: Option<&KnownBug>,
) -> StepRecord {
    let started = Instant::now();
    let mut retried = Vec::new();
    let mut attempts = 0;
    let result = loop {
        attempts += 1;
        let mut result = attempt(step, session, ctx, cancel, deadline).await;
        if !result.retryable() || attempts > step.retries || cancel.is_cancelled() {
            break result;
        }
        if let Some(bug) = final_known_bug
            && let StepResult::Failed { message, evidence } = &mut result
            && failure_matches(bug, message, evidence)
        {
            evidence.push(format!(
                "not retried ({} retries allowed): this target settles before a step returns, so a retry sees the same configuration, and this failure is the one known bug {} describes",
                step.retries, bug.url
            ));
            break result;
        }
        retried.push(result);
        if let Err(reason) = back_off(retry_backoff, attempts, cancel).await {
            break StepResult::Cancelled { reason };
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

/// One attempt: bounded by the step's timeout and what is left of the
/// scenario's; a panic is an error, a cancellation ends it at once.
async fn attempt(
    step: &Step,
    session: &SharedSession,
    ctx: &StepContext<'_>,
    cancel: &Cancel,
    deadline: Instant,
) -> StepResult {
    let limit = step
        .timeout
        .min(deadline.saturating_duration_since(Instant::now()));
    if limit.is_zero() {
        return StepResult::Cancelled {
            reason: CancelReason::ScenarioBudget,
        };
    }
    let mut guard = session.lock().await;
    let action = AssertUnwindSafe(step::execute(step, guard.as_mut(), ctx, limit)).catch_unwind();
    // The action bounds itself by `limit` and keeps its evidence; this is
    // the backstop for one that does not.
    tokio::select! {
        r = tokio::time::timeout(limit + TIMEOUT_BACKSTOP, action) => match r {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => StepResult::Error {
                message: format!("step panicked: {}", panic_message(&panic)),
            },
            Err(_) => StepResult::TimedOut { after: limit },
        },
        reason = cancel.cancelled() => StepResult::Cancelled { reason },
    }
}

/// Waits before attempt `attempts + 1`: `first` doubled per retry, capped.
async fn back_off(first: Duration, attempts: u32, cancel: &Cancel) -> Result<(), CancelReason> {
    let delay = first
        .saturating_mul(1 << (attempts - 1).min(4))
        .min(MAX_BACKOFF);
    tokio::select! {
        _ = tokio::time::sleep(delay) => Ok(()),
        reason = cancel.cancelled() => Err(reason),
    }
}

/// `now + limit`, saturating: the loader bounds durations, but a scenario
/// built in code could still name one that overflows the clock.
pub fn deadline_after(limit: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(limit)
        .unwrap_or_else(|| now + crate::scenario::MAX_DURATION)
}
