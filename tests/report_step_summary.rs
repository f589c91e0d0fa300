//! `GITHUB_STEP_SUMMARY`: the run's matrix appended as Markdown to the file
//! GitHub Actions names, after whatever the job wrote there before.

use rayconform::report::{STEP_SUMMARY_ENV, append_step_summary, step_summary_markdown};
use rayconform::runner::{Reproduction, RunOutcome, ScenarioOutcome, Status};
use rayconform::scenario::TargetKind;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn outcome(name: &str, version: &str, status: Status, message: &str) -> ScenarioOutcome {
    ScenarioOutcome {
        scenario: name.into(),
        file: PathBuf::from(format!("scenarios/{name}.yaml")),
        target: TargetKind::Kind,
        k8s_version: Some(version.into()),
        status,
        message: message.into(),
        known_bug: None,
        reproduction: None,
        modelled: Vec::new(),
        steps: Vec::new(),
        artifacts: None,
        duration: Duration::from_millis(61_000),
        interrupted: false,
    }
}

fn run() -> RunOutcome {
    let mut known = outcome(
        "no-slash",
        "1.35",
        Status::Passed,
        "known bug still reproduces",
    );
    known.known_bug = Some("https://github.com/ray-project/kuberay/pull/1312".into());
    known.reproduction = Some(Reproduction::Observed);
    RunOutcome {
        run_id: "20261124-140000-1".into(),
        scenarios: vec![
            outcome("passthrough", "1.35", Status::Passed, "3 steps passed"),
            outcome(
                "passthrough",
                "1.34",
                Status::Failed,
                "step `grpc`: refused | at TLS\nsecond line",
            ),
            known,
            outcome(
                "istio",
                "1.34",
                Status::Skipped,
                "Istio 1.30 supports 1.32-1.36",
            ),
        ],
        interrupted: false,
        duration: Duration::from_secs(300),
        shutdown_problems: Vec::new(),
    }
}

#[test]
fn the_matrix_is_appended_after_what_the_job_wrote_before() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("summary.md");
    std::fs::write(&file, "# earlier step\n").unwrap();
    append_step_summary(&run(), &file).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# earlier step\n"), "{text}");
    let expected_table = "\
| scenario | kind k8s 1.35 | kind k8s 1.34 |
|---|---|---|
| passthrough | ✅ PASS 61.0s | ❌ FAIL 61.0s |
| no-slash | ✅ XFAIL 61.0s ([known bug](https://github.com/ray-project/kuberay/pull/1312)) | — |
| istio | — | ⏭️ SKIP 61.0s |
";
    assert!(text.contains(expected_table), "{text}");
    assert!(text.contains("4 scenario run(s) in 300.0s: 2 passed, 1 failed, 0 errors, 1 skipped"));
    assert!(
        text.contains("- `passthrough` on kind: step `grpc`: refused | at TLS second line\n"),
        "a failure on one line: {text}"
    );
    // A second run (another job step) appends again.
    append_step_summary(&run(), &file).unwrap();
    let again = std::fs::read_to_string(&file).unwrap();
    assert_eq!(again.matches("### rayconform run").count(), 2);
}

#[test]
fn pipes_in_names_do_not_break_the_table() {
    let mut r = run();
    r.scenarios[0].scenario = "a|b".into();
    let md = step_summary_markdown(&r);
    assert!(md.contains("| a\\|b | ✅ PASS"), "{md}");
}

/// `rayconform run` appends when `GITHUB_STEP_SUMMARY` is set (the lab must
/// be set up: `scripts/setup`).
#[test]
fn rayconform_run_appends_to_github_step_summary() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let scenario = dir.path().join("step-summary-probe.yaml");
    std::fs::write(
        &scenario,
        format!(
            "apiVersion: rayconform.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: step-summary-probe\nspec:\n  targets: [lab]\n  steps:\n    - probe: {{ tcp: {{ address: \"127.0.0.1:{port}\", expect: refused }} }}\n"
        ),
    )
    .unwrap();
    let summary = dir.path().join("step_summary.md");
    let out = Command::new(env!("CARGO_BIN_EXE_rayconform"))
        .current_dir(&root)
        .env(STEP_SUMMARY_ENV, &summary)
        .args(["run", "--target", "lab", "--junit"])
        .arg(dir.path().join("junit.xml"))
        .arg(&scenario)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&summary).expect("the summary file is written");
    assert!(text.contains("| scenario | lab |"), "{text}");
    assert!(text.contains("| step-summary-probe | ✅ PASS"), "{text}");
}
