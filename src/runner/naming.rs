//! Names for runs and per-scenario namespaces, and the template variables
//! a run sets itself (the one place both `plan` and `run` take them from).

use std::collections::BTreeMap;

/// The variable naming the scenario's namespace (a session may set its own).
pub const NAMESPACE_VAR: &str = "NAMESPACE";

/// A new run id: UTC time plus the process id, e.g. `20261121-194800-4242`.
pub fn new_run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    let stamp = now.format(&format).unwrap_or_else(|_| "run".to_string());
    format!("{stamp}-{}", std::process::id())
}

/// The namespace of a scenario in a run: a DNS label (≤ 63 characters)
/// that starts with `rc-`, names the scenario and ends with a short run hash.
pub fn namespace_for(scenario: &str, run_id: &str) -> String {
    let hash = run_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let name: String = scenario.chars().take(50).collect();
    format!("rc-{}-{:06x}", name.trim_end_matches('-'), hash & 0xff_ffff)
}

/// The variables a run sets for a scenario: `NAMESPACE`, `RUN_ID` and
/// `SCENARIO`.
///
/// ```
/// let vars = rayconform::runner::run_variables("dashboard", "20261121-194800-1");
/// assert_eq!(vars["SCENARIO"], "dashboard");
/// assert!(vars["NAMESPACE"].starts_with("rc-dashboard-"));
/// ```
pub fn run_variables(scenario: &str, run_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAMESPACE_VAR.to_string(), namespace_for(scenario, run_id)),
        ("RUN_ID".to_string(), run_id.to_string()),
        ("SCENARIO".to_string(), scenario.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_dns_labels_and_differ_per_run() {
        let long = "a".repeat(80);
        let ns = namespace_for(&long, "20261121-194800-1");
        assert!(ns.len() <= 63, "{ns}");
        assert!(
            ns.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{ns}"
        );
        assert_ne!(namespace_for("x", "run-1"), namespace_for("x", "run-2"));
        assert!(new_run_id().chars().all(|c| c.is_ascii_digit() || c == '-'));
    }
}
