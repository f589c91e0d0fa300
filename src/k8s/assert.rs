//! The `assert` step: an eventually-true field match on live objects.
//!
//! [`judge`] decides one observation (any target can call it on the objects
//! it has); [`run`] lists the selected objects from an API server until the
//! judgement passes or the time is up, keeping the last observation.

use super::query::{self, QueryError};
use super::select_spec::AssertSpec;
use crate::json_match::MatchError;
use kube::Client;
use std::time::{Duration, Instant};

/// How often [`run`] lists the objects again.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// One look at the selected objects: did they satisfy the assertion, and
/// what was seen (every path on every object, expected vs actual).
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// Whether the assertion holds.
    pub passed: bool,
    /// One line: the count and the first mismatch.
    pub summary: String,
    /// One line per object and path.
    pub evidence: Vec<String>,
}

/// Judges `objects` (the selected ones, JSON) against the assertion.
pub fn judge(spec: &AssertSpec, objects: &[serde_json::Value]) -> Result<Judgement, MatchError> {
    let mut evidence = Vec::new();
    let mut first_problem: Option<String> = None;
    if let Some(want) = spec.count {
        let ok = objects.len() == want as usize;
        evidence.push(format!(
            "count: {} {} (expected {want})",
            if ok { "ok" } else { "MISMATCH" },
            objects.len()
        ));
        if !ok {
            first_problem = Some(format!("{} object(s), expected {want}", objects.len()));
        }
    } else if objects.is_empty() && !spec.fields.is_empty() {
        evidence.push("count: MISMATCH 0 (expected at least 1 to check fields on)".into());
        first_problem = Some("no object matches".into());
    }
    for object in objects {
        let label = object_label(object);
        for field in &spec.fields {
            let check = field.check(object)?;
            if !check.passed && first_problem.is_none() {
                first_problem = Some(format!("{label}: {}", check.line));
            }
            evidence.push(format!("{label}: {}", check.line));
        }
    }
    let passed = first_problem.is_none();
    let summary = match first_problem {
        None => format!(
            "{} object(s) of {}, {} field check(s) each: all hold",
            objects.len(),
            spec.object,
            spec.fields.len()
        ),
        Some(problem) => problem,
    };
    Ok(Judgement {
        passed,
        summary,
        evidence,
    })
}

/// `Kind namespace/name` of a JSON object.
pub fn object_label(object: &serde_json::Value) -> String {
    let text = |p: &str| object.pointer(p).and_then(|v| v.as_str()).unwrap_or("");
    match text("/metadata/namespace") {
        "" => format!("{} {}", text("/kind"), text("/metadata/name")),
        ns => format!("{} {ns}/{}", text("/kind"), text("/metadata/name")),
    }
}

/// Why an assertion did not pass.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssertError {
    /// The time was up; the last observation says what was seen instead.
    #[error("timed out after {:.1}s: {}", waited.as_secs_f64(), last.summary)]
    TimedOut {
        /// How long it tried.
        waited: Duration,
        /// The last look.
        last: Judgement,
    },
    /// The objects could not be listed (and never were within the time).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A matcher cannot be used (the loader normally refuses it first).
    #[error(transparent)]
    Match(#[from] MatchError),
}

/// Lists the selected objects until the assertion holds or `timeout`
/// passes. A list error is retried until the deadline; if no list ever
/// answered, it is the error returned.
pub async fn run(
    client: &Client,
    namespace: &str,
    spec: &AssertSpec,
    timeout: Duration,
) -> Result<Judgement, AssertError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut last: Option<Judgement> = None;
    let mut last_error: Option<QueryError> = None;
    loop {
        match query::list(client, &spec.object, namespace).await {
            Ok(objects) => {
                let judgement = judge(spec, &objects)?;
                if judgement.passed {
                    return Ok(judgement);
                }
                last = Some(judgement);
            }
            Err(e @ QueryError::UnknownKind { .. }) if last.is_none() => return Err(e.into()),
            Err(e) => last_error = Some(e),
        }
        if Instant::now() + POLL_INTERVAL > deadline {
            return match (last, last_error) {
                (Some(last), _) => Err(AssertError::TimedOut {
                    waited: started.elapsed(),
                    last,
                }),
                (None, Some(e)) => Err(e.into()),
                (None, None) => unreachable!("the loop looks at least once"),
            };
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_match::FieldMatch;
    use crate::k8s::select_spec::ObjectSelector;
    use serde_json::json;

    fn spec(count: Option<u32>, fields: Vec<FieldMatch>) -> AssertSpec {
        AssertSpec {
            object: ObjectSelector {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: None,
                name: None,
                label_selector: None,
            },
            count,
            fields,
        }
    }

    fn pod(name: &str, phase: &str) -> serde_json::Value {
        json!({"kind": "Pod", "metadata": {"name": name, "namespace": "ns"}, "status": {"phase": phase}})
    }

    #[test]
    fn count_and_fields_with_observed_values() {
        let running = FieldMatch::equals("$.status.phase", json!("Running"));
        let objects = [pod("a", "Running"), pod("b", "Pending")];
        let j = judge(&spec(Some(2), vec![running.clone()]), &objects).unwrap();
        assert!(!j.passed);
        assert_eq!(
            j.summary,
            "Pod ns/b: $.status.phase: MISMATCH observed \"Pending\" (expected equals \"Running\")"
        );
        assert_eq!(j.evidence.len(), 3, "{:?}", j.evidence);
        let j = judge(&spec(Some(1), vec![]), &objects).unwrap();
        assert!(!j.passed);
        assert_eq!(j.evidence, ["count: MISMATCH 2 (expected 1)"]);
        let j = judge(&spec(Some(0), vec![]), &[]).unwrap();
        assert!(j.passed, "{j:?}");
        let j = judge(&spec(None, vec![running.clone()]), &[]).unwrap();
        assert!(!j.passed, "fields on nothing must not pass");
        let j = judge(&spec(Some(1), vec![running]), &objects[..1]).unwrap();
        assert!(j.passed, "{j:?}");
    }
}
