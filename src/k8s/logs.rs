//! The `logs` step on a cluster: read the selected pods' logs (since a
//! time) until a line matches or the time is up.

use super::select_spec::{LineMatch, PodSelector};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, LogParams};
use kube::{Client, ResourceExt};
use std::time::{Duration, Instant, SystemTime};

/// How often the logs are read again.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How many of a pod's last lines a timeout shows.
const TAIL_LINES: usize = 5;

/// The line that matched, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `namespace/pod`.
    pub pod: String,
    /// The line.
    pub line: String,
}

/// What the last read of the logs showed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogsObserved {
    /// One line per pod: how many lines, and the last few; or why none.
    pub lines: Vec<String>,
}

/// Why no line matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogsError {
    /// The time was up.
    #[error("timed out after {:.1}s: no pod logged {wanted} since {since}", waited.as_secs_f64())]
    TimedOut {
        /// How long it read.
        waited: Duration,
        /// What was looked for.
        wanted: String,
        /// From when lines counted (RFC 3339).
        since: String,
        /// The last read.
        last: LogsObserved,
    },
}

/// `since`, down to the whole second: the API's `sinceTime` has second
/// precision, and rounding up could drop the first lines.
fn since_time(since: SystemTime) -> Timestamp {
    let seconds = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Timestamp::from_second(i64::try_from(seconds).unwrap_or(0)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Reads the logs of the selected pods (container `container`) from
/// `since` until a line satisfies `wanted` or `timeout` passes.
pub async fn run(
    client: &Client,
    namespace: &str,
    pods: &PodSelector,
    container: Option<&str>,
    wanted: &LineMatch,
    since: SystemTime,
    timeout: Duration,
) -> Result<LogLine, LogsError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let ns = pods.namespace.as_deref().unwrap_or(namespace);
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut list = ListParams::default();
    if let Some(name) = &pods.name {
        list = list.fields(&format!("metadata.name={name}"));
    }
    if let Some(labels) = &pods.label_selector {
        list = list.labels(labels);
    }
    let params = LogParams {
        container: container.map(str::to_string),
        since_time: Some(since_time(since)),
        ..LogParams::default()
    };
    loop {
        let mut observed = LogsObserved::default();
        match api.list(&list).await {
            Ok(listed) if listed.items.is_empty() => {
                observed.lines.push(format!("no pod in {ns} matches"));
            }
            Ok(listed) => {
                for pod in listed.items {
                    let name = pod.name_any();
                    match api.logs(&name, &params).await {
                        Ok(text) => {
                            if let Some(line) = text.lines().find(|l| wanted.matches(l)) {
                                return Ok(LogLine {
                                    pod: format!("{ns}/{name}"),
                                    line: line.to_string(),
                                });
                            }
                            observed.lines.push(describe(ns, &name, &text));
                        }
                        Err(e) => observed
                            .lines
                            .push(format!("{ns}/{name}: logs not readable: {e}")),
                    }
                }
            }
            Err(e) => observed
                .lines
                .push(format!("listing pods in {ns} failed: {e}")),
        }
        if Instant::now() + POLL_INTERVAL > deadline {
            return Err(LogsError::TimedOut {
                waited: started.elapsed(),
                wanted: wanted.to_string(),
                since: since_time(since).to_string(),
                last: observed,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// `ns/pod: N line(s) since …; last: …`.
pub fn describe(namespace: &str, pod: &str, text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
    if tail.is_empty() {
        format!("{namespace}/{pod}: no lines")
    } else {
        format!(
            "{namespace}/{pod}: {} line(s), last: {}",
            lines.len(),
            tail.join(" | ")
        )
    }
}
