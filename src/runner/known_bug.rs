//! Known bugs are strict expected failures: a scenario marked with one
//! passes while the bug still reproduces, the way it is known to fail.

use super::outcome::{Reproduction, ScenarioOutcome, Status};
use crate::scenario::{KnownBug, Scenario};

/// Strict expected failure: a known bug must keep failing.
pub fn apply_known_bug(scenario: &Scenario, outcome: &mut ScenarioOutcome) {
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
fn known_bug_mismatch(bug: &KnownBug, outcome: &ScenarioOutcome) -> Option<String> {
    let (first, (message, evidence)) = outcome
        .steps
        .iter()
        .find_map(|s| s.result.failure().map(|f| (s, f)))?;
    if let Some(step) = &bug.step
        && &first.name != step
    {
        return Some(format!(
            "step `{}` failed, expected step `{step}` to",
            first.name
        ));
    }
    if !failure_matches(bug, &message, evidence) {
        let needle = bug.failure_contains.as_deref().unwrap_or_default();
        return Some(format!("the failure does not mention {needle:?}"));
    }
    None
}

/// Whether a failure's message or evidence says what `bug.failureContains`
/// says the known bug's failure says (any failure, when it says nothing).
pub(super) fn failure_matches(bug: &KnownBug, message: &str, evidence: &[String]) -> bool {
    bug.failure_contains.as_ref().is_none_or(|needle| {
        message.contains(needle.as_str()) || evidence.iter().any(|e| e.contains(needle.as_str()))
    })
}
