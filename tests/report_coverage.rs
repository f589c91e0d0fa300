//! A run on a Kubernetes version no scenario supports says so (issue 7,
//! item 9): the summary and JUnit carry, per target and version, how many
//! scenarios ran and how many were skipped because a component does not
//! support that version; `scripts/check-coverage` (the nightly's gate)
//! accepts a leg that ran nothing only for that reason.

use rayconform::report::{summary_text, write_junit};
use rayconform::runner::{RunOutcome, ScenarioOutcome, Status};
use rayconform::scenario::{Scenario, TargetKind, load_all};
use rayconform::targets::Target;
use rayconform::targets::TargetOptions;
use rayconform::targets::kind::KindTarget;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kind_scenarios() -> Vec<Scenario> {
    let loaded = load_all(&[root().join("scenarios")], &root());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let s: Vec<Scenario> = loaded
        .scenarios
        .into_iter()
        .filter(|s| s.targets.contains(&TargetKind::Kind))
        .collect();
    assert!(s.len() >= 8, "{}", s.len());
    s
}

fn outcome(name: &str, version: &str, status: Status, message: &str) -> ScenarioOutcome {
    ScenarioOutcome {
        scenario: name.to_string(),
        file: PathBuf::from(format!("scenarios/{name}.yaml")),
        target: TargetKind::Kind,
        k8s_version: Some(version.to_string()),
        status,
        message: message.to_string(),
        known_bug: None,
        reproduction: None,
        modelled: Vec::new(),
        steps: Vec::new(),
        artifacts: None,
        duration: Duration::from_millis(1),
        interrupted: false,
    }
}

fn run_of(scenarios: Vec<ScenarioOutcome>) -> RunOutcome {
    RunOutcome {
        run_id: "test".into(),
        scenarios,
        interrupted: false,
        duration: Duration::from_secs(1),
        shutdown_problems: Vec::new(),
    }
}

/// Every kind scenario a component does not support on `version`, skipped
/// with the reason the kind target gives (component support is decided
/// before tools). KubeRay-only scenarios (raycluster-shapes-*,
/// kuberay-apiserver-*) run on every version, so a leg where nothing runs
/// is made of the others.
fn leg(version: &str) -> Vec<ScenarioOutcome> {
    let kind = KindTarget::new(TargetOptions {
        project_root: root(),
        kube_context: None,
        k8s_version: Some(version.into()),
    });
    kind_scenarios()
        .iter()
        .filter(|s| {
            s.install
                .iter()
                .any(|i| i.component().unsupported_on(version).is_some())
        })
        .map(|s| {
            let why = kind
                .unsupported_reason(s, &root())
                .unwrap_or_else(|| panic!("{} should not run on {version}", s.name));
            outcome(&s.name, version, Status::Skipped, &why)
        })
        .collect()
}

fn check(junit: &Path) -> (i32, String) {
    let out = Command::new(root().join("scripts/check-coverage"))
        .arg(junit)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_version_no_scenario_supports_says_so_in_summary_and_junit() {
    let outcomes = leg("1.37");
    let total = outcomes.len();
    let run = run_of(outcomes);
    let summary = summary_text(&run);
    let expected = format!(
        "kind k8s 1.37: 0 of {total} scenario(s) ran; {total} skipped because a component does not support it (ingressNginx v1.15.1 supports Kubernetes 1.31–1.35 only, not 1.37; gatewayApi v1.9.0 supports Kubernetes 1.33–1.36 only, not 1.37; istio 1.30.4 supports Kubernetes 1.32–1.36 only, not 1.37) — NO scenario ran: none is supported on this version"
    );
    assert!(summary.contains(&expected), "{summary}");

    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    write_junit(&run, &junit).unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"name="scenarios-ran" value="0""#), "{xml}");
    assert!(
        xml.contains(&format!(
            r#"name="scenarios-skipped-component-unsupported" value="{total}""#
        )),
        "{xml}"
    );
    assert_eq!(
        xml.matches(r#"name="skip-category" value="component-unsupported""#)
            .count(),
        total
    );
    let (code, said) = check(&junit);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("NO scenario ran: none is supported"),
        "{said}"
    );

    // The job summary: one row per scenario, and the leg's coverage line.
    let out = Command::new(root().join("scripts/junit-summary"))
        .arg(&junit)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    let rows = table
        .lines()
        .filter(|l| l.starts_with("| rayconform.kind.k8s-1.37 |"))
        .count();
    assert_eq!(rows, total, "{table}");
    assert!(
        table.contains(
            "| SKIP | 0.0 | ingressNginx v1.15.1 supports Kubernetes 1.31–1.35 only, not 1.37 |"
        ),
        "{table}"
    );
    assert!(
        table.contains("- **rayconform.kind.k8s-1.37**: kind k8s 1.37: 0 of"),
        "{table}"
    );
}

#[test]
fn a_leg_that_ran_nothing_for_another_reason_fails_the_gate() {
    let missing_tool = "kuberayOperator needs `helm` not found on PATH: install helm 3";
    let mut outcomes = leg("1.37");
    outcomes[0].message = missing_tool.into();
    let run = run_of(outcomes);
    let summary = summary_text(&run);
    assert!(summary.contains("— NO scenario ran\n"), "{summary}");
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    write_junit(&run, &junit).unwrap();
    let (code, said) = check(&junit);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("no scenario ran, and not because a component does not support this version")
            && said.contains(missing_tool),
        "{said}"
    );

    // An empty report is no better.
    let empty = dir.path().join("empty.xml");
    write_junit(&run_of(Vec::new()), &empty).unwrap();
    assert_eq!(check(&empty).0, 1);
}

#[test]
fn a_supported_version_that_ran_scenarios_passes_the_gate_quietly() {
    let run = run_of(vec![
        outcome("a", "1.35", Status::Passed, "3 steps passed"),
        outcome("b", "1.35", Status::Failed, "wrong"),
    ]);
    assert!(!summary_text(&run).contains("because a component"));
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    write_junit(&run, &junit).unwrap();
    let (code, said) = check(&junit);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("rayconform.kind.k8s-1.35: 2 of 2 scenario(s) ran"),
        "{said}"
    );
}
