//! Decisions made in one place, checked on the source: interruption is a
//! typed value (no `"interrupted"` text decides anything), only the binary
//! exits the process, a target's `StepError` becomes a step result in one
//! place, and plan and run take the skip decision and the run variables
//! from the same function. The behaviour behind the skip decision is
//! checked too: plan and run agree for every scenario on every target.
//!
//! `RAYCONFORM_CHECK_SRC` points the source checks at another `src/`
//! folder (e.g. an older commit's, extracted with `git archive`).

use async_trait::async_trait;
use rayconform::plan::{plan, skip_reason};
use rayconform::runner::{self, Cancel, RunOptions, Status};
use rayconform::scenario::{Scenario, TargetKind, load_all};
use rayconform::targets::{
    PlanError, ScenarioRun, Session, StepError, Target, TargetOptions, TargetPlan, registry,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn src_dir() -> PathBuf {
    match std::env::var_os("RAYCONFORM_CHECK_SRC") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
}

/// Every `.rs` file under `dir` with its text, paths relative to `dir`.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                found.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    found.sort();
    found
}

/// `file:line` of every line outside `allowed` files that contains `needle`
/// (comment lines aside).
fn sites(needle: &str, allowed: &[&str]) -> Vec<String> {
    sources(&src_dir())
        .iter()
        .filter(|(file, _)| !allowed.contains(&file.as_str()))
        .flat_map(|(file, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| !line.trim_start().starts_with("//"))
                .filter(|(_, line)| line.contains(needle))
                .map(move |(i, _)| format!("{file}:{}", i + 1))
        })
        .collect()
}

#[test]
fn interruption_is_a_typed_value_not_the_text_interrupted() {
    // `CancelReason`'s Display renders the word once; the JUnit writer
    // names its `type` and property `interrupted` in its output. No other
    // code creates or compares that text.
    let found = sites("\"interrupted\"", &["runner/cancel.rs", "report/junit.rs"]);
    assert!(found.is_empty(), "\"interrupted\" as a value at {found:?}");
}

#[test]
fn only_the_binary_exits_the_process() {
    let found = sites("process::exit", &["main.rs"]);
    assert!(
        found.is_empty(),
        "process::exit in the library at {found:?}"
    );
}

#[test]
fn a_step_error_becomes_a_step_result_in_one_place() {
    // Matching every variant of StepError to build a result happens in
    // `impl From<StepError> for StepResult` only.
    let found = sites("Err(StepError::Broken(", &[]);
    assert!(found.is_empty(), "StepError matched at {found:?}");
    let found = sites("StepError::Unsupported(reason) =>", &["runner/outcome.rs"]);
    assert!(found.is_empty(), "StepError mapped again at {found:?}");
}

#[test]
fn plan_and_run_take_skip_and_run_variables_from_one_function() {
    let found = sites("does not list target", &["plan.rs"]);
    assert!(found.is_empty(), "skip decided again at {found:?}");
    // The loader's list of names every run provides is a declaration, not
    // a value.
    let found = sites("\"RUN_ID\"", &["runner/naming.rs", "scenario/template.rs"]);
    assert!(found.is_empty(), "run variables built again at {found:?}");
}

/// A real target for every decision (`kind`, availability, what it can
/// stand in for) whose `open` refuses: a scenario that is not skipped
/// ends as a setup error, never touching anything.
struct NeverOpens(Arc<dyn Target>);

const NOT_OPENED: &str = "not opened in this test";

#[async_trait]
impl Target for NeverOpens {
    fn kind(&self) -> TargetKind {
        self.0.kind()
    }
    fn unavailable_reason(&self) -> Option<String> {
        self.0.unavailable_reason()
    }
    fn unsupported_reason(&self, scenario: &Scenario, root: &Path) -> Option<String> {
        self.0.unsupported_reason(scenario, root)
    }
    fn plan(&self, scenario: &Scenario, root: &Path) -> Result<TargetPlan, PlanError> {
        self.0.plan(scenario, root)
    }
    async fn open(&self, _: &ScenarioRun) -> Result<Box<dyn Session>, StepError> {
        Err(StepError::broken(NOT_OPENED))
    }
    async fn shutdown(&self, _: bool) -> Vec<String> {
        Vec::new()
    }
}

#[tokio::test]
async fn plan_and_run_skip_the_same_scenarios_on_every_target_for_the_same_reason() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let loaded = load_all(&[root.join("scenarios")], &root);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert!(!loaded.scenarios.is_empty());
    let reports = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        run_id: runner::new_run_id(),
        project_root: root.clone(),
        reports_dir: reports.path().to_path_buf(),
        k8s_version: None,
        keep: false,
        keep_failed: false,
        jobs: 1,
        retry_backoff: Duration::from_millis(10),
        certificates: std::sync::Arc::new(rayconform::runner::RunCertificates::new(false)),
        events: Arc::new(|_| {}),
    };
    let topts = TargetOptions {
        project_root: root.clone(),
        ..TargetOptions::default()
    };
    let (mut skipped, mut ran) = (0, 0);
    for kind in TargetKind::ALL {
        let target = NeverOpens(registry::build(kind, &topts));
        for scenario in &loaded.scenarios {
            let vars = runner::run_variables(&scenario.name, &opts.run_id);
            let planned = plan(scenario, &target, &root, &vars).skip;
            assert_eq!(planned, skip_reason(&target, scenario, &root));
            let outcome =
                runner::run_scenario(&target, Arc::new(scenario.clone()), &opts, &Cancel::new())
                    .await;
            let what = format!("{} on {kind}", scenario.name);
            match planned {
                Some(reason) => {
                    skipped += 1;
                    assert_eq!(outcome.status, Status::Skipped, "{what}: {outcome:#?}");
                    assert_eq!(outcome.message, reason, "{what}");
                }
                None => {
                    ran += 1;
                    assert_eq!(outcome.status, Status::Error, "{what}: {outcome:#?}");
                    assert!(outcome.message.contains(NOT_OPENED), "{what}: {outcome:#?}");
                }
            }
        }
    }
    assert!(
        skipped > 0 && ran > 0,
        "both decisions are exercised: {skipped} skipped, {ran} run"
    );
}

#[test]
fn manifests_are_read_in_one_place() {
    // The loader parses manifest files to check them; every step's
    // manifests (plan, run, the lab's planning) come from
    // `scenario::manifests`.
    let found = sites(
        "parse_manifests(&",
        &["scenario/load.rs", "scenario/manifests.rs"],
    );
    assert!(found.is_empty(), "manifests read again at {found:?}");
}

#[test]
fn only_the_probe_module_matches_over_every_probe_kind() {
    // Adding a probe touches its spec (probe/spec.rs), its file, the
    // dispatch in probe/mod.rs, its command line (probe/cli.rs) and the
    // README; the loader and the runner never list the probe kinds. (The
    // loader checks a few kinds' own fields with `if let`; a match over
    // every kind would have to name these three.)
    for variant in ["Probe::GrpcReady", "Probe::Http", "Probe::Page"] {
        let found: Vec<String> = sites(variant, &[])
            .into_iter()
            .filter(|site| !site.starts_with("probe/"))
            .collect();
        assert!(found.is_empty(), "{variant} outside probe/ at {found:?}");
    }
}
