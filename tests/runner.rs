//! The runner's timeout, retry, cleanup, interrupt and known-bug behaviour,
//! driven through a scripted test-double target. (The probes and targets
//! themselves are proven against real software elsewhere.)

use async_trait::async_trait;
use rayconform::report::{junit_report, write_junit};
use rayconform::runner::{
    self, Cancel, CancelReason, NotRunReason, Phase, RunOptions, ScenarioOutcome, Status,
    StepResult,
};
use rayconform::scenario::{Scenario, TargetKind, WaitSpec, load_str};
use rayconform::targets::{
    Manifest, PlanError, ScenarioRun, Session, StepError, Target, TargetPlan,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/procs.rs"]
mod procs;
use procs::alive;

/// What the double did, in order.
type Log = Arc<Mutex<Vec<String>>>;

/// A target whose session obeys `kind: Behave` manifests:
/// `spec: { sleepMs, failTimes, panic, broken, name }`.
struct ScriptedTarget {
    log: Log,
    attempts: Arc<Mutex<BTreeMap<String, u32>>>,
    unsupported: Option<String>,
    /// What its sessions answer to `settles_on_return`.
    settles: bool,
}

struct ScriptedSession {
    log: Log,
    attempts: Arc<Mutex<BTreeMap<String, u32>>>,
    settles: bool,
}

#[async_trait]
impl Target for ScriptedTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Lab
    }
    fn unavailable_reason(&self) -> Option<String> {
        None
    }
    fn unsupported_reason(&self, _: &Scenario, _: &Path) -> Option<String> {
        self.unsupported.clone()
    }
    fn plan(&self, _: &Scenario, _: &Path) -> Result<TargetPlan, PlanError> {
        Ok(TargetPlan::default())
    }
    /// `N` for a scenario named `...-cost-N`, else 0.
    fn expected_cost(&self, scenario: &Scenario, _: &Path) -> u32 {
        scenario
            .name
            .rsplit_once("-cost-")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0)
    }
    fn prepare(&self, scenarios: &[&Scenario], _: &Path) {
        let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        self.log
            .lock()
            .unwrap()
            .push(format!("prepare {}", names.join(",")));
    }
    async fn open(&self, run: &ScenarioRun) -> Result<Box<dyn Session>, StepError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("open {}", run.namespace));
        Ok(Box::new(ScriptedSession {
            log: self.log.clone(),
            attempts: self.attempts.clone(),
            settles: self.settles,
        }))
    }
    async fn shutdown(&self, _: bool) -> Vec<String> {
        self.log.lock().unwrap().push("shutdown".into());
        Vec::new()
    }
}

#[async_trait]
impl Session for ScriptedSession {
    fn variables(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("INGRESS_HOST".to_string(), "localhost".to_string())])
    }
    async fn apply(&mut self, manifests: &[Manifest]) -> Result<String, StepError> {
        let spec = &manifests[0]["spec"];
        let name = spec["name"].as_str().unwrap_or("step").to_string();
        let attempt = {
            let mut a = self.attempts.lock().unwrap();
            let n = a.entry(name.clone()).or_default();
            *n += 1;
            *n
        };
        self.log
            .lock()
            .unwrap()
            .push(format!("apply {name} #{attempt}"));
        if let Some(ms) = spec["sleepMs"].as_u64() {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            self.log.lock().unwrap().push(format!("slept {name}"));
        }
        if spec["panic"].as_bool() == Some(true) {
            panic!("scripted panic in {name}");
        }
        if spec["broken"].as_bool() == Some(true) {
            return Err(StepError::broken(format!("{name} infrastructure broke")));
        }
        if u64::from(attempt) <= spec["failTimes"].as_u64().unwrap_or(0) {
            return Err(StepError::Failed {
                message: format!("{name} wrong on attempt {attempt}"),
                evidence: vec!["saw X".into()],
            });
        }
        Ok(format!("{name} ok"))
    }
    async fn delete(&mut self, _: &[Manifest]) -> Result<String, StepError> {
        Ok("deleted".into())
    }
    async fn wait(&mut self, _: &WaitSpec, _: Duration) -> Result<String, StepError> {
        Err(StepError::Unsupported("waits are not scripted".into()))
    }
    async fn expect_denied(&mut self, _: &[Manifest], _: &str) -> Result<String, StepError> {
        Ok("denied".into())
    }
    async fn collect_diagnostics(&mut self, dir: &Path) -> Vec<PathBuf> {
        let file = dir.join("diag.txt");
        std::fs::write(&file, "scripted diagnostics").unwrap();
        self.log.lock().unwrap().push("diagnostics".into());
        vec![file]
    }
    fn settles_on_return(&self) -> bool {
        self.settles
    }
    fn how_to_reach(&self) -> String {
        "nothing to reach".into()
    }
    async fn close(&mut self, keep: bool) -> Vec<String> {
        self.log.lock().unwrap().push(format!("close keep={keep}"));
        Vec::new()
    }
}

fn step(name: &str, extra: &str, options: &str) -> String {
    format!(
        "    - name: {name}\n      apply:\n        inline: |\n          apiVersion: test/v1\n          kind: Behave\n          spec: {{ name: {name}{extra} }}\n{options}"
    )
}

fn scenario(root: &Path, steps: &[String], finally: &[String], known_bug: bool) -> Scenario {
    let mut text = String::from(
        "apiVersion: rayconform.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: scripted\nspec:\n  targets: [lab]\n  steps:\n",
    );
    steps.iter().for_each(|s| text.push_str(s));
    if !finally.is_empty() {
        text.push_str("  finally:\n");
        finally.iter().for_each(|s| text.push_str(s));
    }
    if known_bug {
        text.push_str("  knownBug: { url: \"https://example.invalid/issue/1\" }\n");
    }
    load_str(Path::new("scripted.yaml"), &text, root).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

struct Fixture {
    root: tempfile::TempDir,
    log: Log,
    target: Arc<ScriptedTarget>,
}

fn fixture() -> Fixture {
    let log = Log::default();
    let target = Arc::new(ScriptedTarget {
        log: log.clone(),
        attempts: Arc::default(),
        unsupported: None,
        settles: false,
    });
    Fixture {
        root: tempfile::tempdir().unwrap(),
        log,
        target,
    }
}

fn options(root: &Path) -> RunOptions {
    RunOptions {
        run_id: "test-run".into(),
        project_root: root.to_path_buf(),
        reports_dir: root.join("reports"),
        k8s_version: None,
        keep: false,
        keep_failed: false,
        jobs: 1,
        retry_backoff: Duration::from_millis(10),
        certificates: std::sync::Arc::new(rayconform::runner::RunCertificates::new(false)),
        events: Arc::new(|_| {}),
    }
}

/// Runs a one-off scenario of `steps` on a fresh fixture.
async fn run_steps(
    steps: &[String],
    finally: &[String],
    known_bug: bool,
) -> (Fixture, ScenarioOutcome) {
    let f = fixture();
    let s = scenario(f.root.path(), steps, finally, known_bug);
    let o = run_one(&f, s, &Cancel::new()).await;
    (f, o)
}

async fn run_one(f: &Fixture, s: Scenario, cancel: &Cancel) -> ScenarioOutcome {
    runner::run_scenario(
        f.target.as_ref(),
        Arc::new(s),
        &options(f.root.path()),
        cancel,
    )
    .await
}

fn result_of<'a>(o: &'a ScenarioOutcome, name: &str) -> &'a StepResult {
    &o.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name} in {:#?}", o.steps))
        .result
}

#[tokio::test]
async fn a_step_over_its_timeout_fails_and_later_steps_do_not_run() {
    let f = fixture();
    let s = scenario(
        f.root.path(),
        &[
            step("slow", ", sleepMs: 5000", "      timeout: 200ms\n"),
            step("after", "", ""),
        ],
        &[],
        false,
    );
    let started = Instant::now();
    let o = run_one(&f, s, &Cancel::new()).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout cut the step short"
    );
    assert_eq!(o.status, Status::Failed, "{o:#?}");
    let slow = result_of(&o, "slow");
    assert_eq!(
        slow,
        &StepResult::TimedOut {
            after: Duration::from_millis(200)
        },
        "a timeout is its own result"
    );
    assert_eq!(slow.to_string(), "timed out after 200ms");
    assert!(
        o.message.contains("timed out after 200ms"),
        "the scenario says so: {}",
        o.message
    );
    assert!(matches!(
        result_of(&o, "after"),
        StepResult::NotRun { reason: NotRunReason::EarlierStepDidNotPass { step } } if step == "slow"
    ));
    let log = f.log.lock().unwrap().clone();
    assert!(
        log.contains(&"diagnostics".to_string()) && log.last().unwrap().starts_with("close"),
        "{log:?}"
    );
    let diag = o
        .artifacts
        .as_ref()
        .expect("artifacts recorded")
        .join("diag.txt");
    assert!(diag.is_file(), "diagnostics written to {}", diag.display());
}

#[tokio::test]
async fn retries_back_off_and_are_recorded() {
    let (_f, o) = run_steps(
        &[step("flaky", ", failTimes: 2", "      retries: 3\n")],
        &[],
        false,
    )
    .await;
    assert_eq!(o.status, Status::Passed, "{o:#?}");
    let rec = o.steps.iter().find(|s| s.name == "flaky").unwrap();
    assert_eq!(rec.attempts, 3);
    assert_eq!(rec.retried.len(), 2);
    assert!(
        rec.duration >= Duration::from_millis(30),
        "backoff 10ms + 20ms elapsed: {:?}",
        rec.duration
    );

    let (_f, o) = run_steps(
        &[step("hopeless", ", failTimes: 9", "      retries: 1\n")],
        &[],
        false,
    )
    .await;
    assert_eq!(o.status, Status::Failed);
    assert_eq!(
        o.steps
            .iter()
            .find(|s| s.name == "hopeless")
            .unwrap()
            .attempts,
        2
    );
}

#[tokio::test]
async fn a_panicking_step_is_an_error_and_cleanup_still_runs() {
    let (f, o) = run_steps(
        &[step("boom", ", panic: true", "")],
        &[step("tidy", "", "")],
        false,
    )
    .await;
    assert_eq!(o.status, Status::Error, "{o:#?}");
    assert!(
        matches!(result_of(&o, "boom"), StepResult::Error { message } if message.contains("scripted panic in boom"))
    );
    let log = f.log.lock().unwrap().clone();
    let tidy = log
        .iter()
        .position(|l| l == "apply tidy #1")
        .expect("finally ran");
    let close = log
        .iter()
        .position(|l| l.starts_with("close"))
        .expect("session closed");
    assert!(tidy < close, "finally before cleanup: {log:?}");
    let cleanup: Vec<_> = o
        .steps
        .iter()
        .filter(|s| s.phase == Phase::Cleanup)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        cleanup.iter().filter(|n| n.starts_with("remove ")).count(),
        1,
        "{cleanup:?}"
    );
    assert!(cleanup.contains(&"close session"), "{cleanup:?}");
}

#[tokio::test]
async fn a_failure_in_finally_fails_a_passing_scenario() {
    let (_f, o) = run_steps(
        &[step("fine", "", "")],
        &[step("bad-finally", ", failTimes: 1", "")],
        false,
    )
    .await;
    assert_eq!(o.status, Status::Failed);
    assert!(o.message.contains("finally `bad-finally`"), "{}", o.message);
}

#[tokio::test]
async fn known_bugs_are_strict_expected_failures() {
    let (_f, o) = run_steps(&[step("bug", ", failTimes: 1", "")], &[], true).await;
    assert_eq!(o.status, Status::Passed);
    assert!(
        o.message
            .starts_with("known bug still reproduces (https://example.invalid/issue/1)"),
        "{}",
        o.message
    );

    let f = fixture();
    let s = scenario(f.root.path(), &[step("fixed", "", "")], &[], true);
    let o = run_one(&f, s, &Cancel::new()).await;
    assert_eq!(o.status, Status::Failed);
    assert!(o.message.contains("may be fixed"), "{}", o.message);

    // A failure elsewhere than the named step, or without the named text, is a real failure.
    for (bug_step, contains) in [("other", "wrong"), ("bug", "something else")] {
        let f = fixture();
        let mut s = scenario(
            f.root.path(),
            &[step("bug", ", failTimes: 1", "")],
            &[],
            true,
        );
        let known = s.known_bug.as_mut().unwrap();
        known.step = Some(bug_step.to_string());
        known.failure_contains = Some(contains.to_string());
        let o = run_one(&f, s, &Cancel::new()).await;
        assert_eq!(
            o.status,
            Status::Failed,
            "{bug_step}/{contains}: {}",
            o.message
        );
        assert!(o.message.contains("not the way known bug"), "{}", o.message);
    }
    let f = fixture();
    let mut s = scenario(
        f.root.path(),
        &[step("bug", ", failTimes: 1", "")],
        &[],
        true,
    );
    let known = s.known_bug.as_mut().unwrap();
    known.step = Some("bug".to_string());
    known.failure_contains = Some("saw X".to_string());
    assert_eq!(
        run_one(&f, s, &Cancel::new()).await.status,
        Status::Passed,
        "matching step and evidence"
    );

    let f = fixture();
    let s = scenario(
        f.root.path(),
        &[step("infra", ", broken: true", "")],
        &[],
        true,
    );
    assert_eq!(
        run_one(&f, s, &Cancel::new()).await.status,
        Status::Error,
        "broken infrastructure is never an expected failure"
    );
}

/// On a target that settles before a step returns, the known bug's step
/// failing the way the bug fails is final at once; anywhere else, or with
/// another failure, retries run to the limit.
#[tokio::test]
async fn a_known_bugs_failure_on_a_settled_target_is_not_retried() {
    let run = |settles: bool, contains: &'static str| async move {
        let mut f = fixture();
        f.target = Arc::new(ScriptedTarget {
            log: f.log.clone(),
            attempts: Arc::default(),
            unsupported: None,
            settles,
        });
        let mut s = scenario(
            f.root.path(),
            &[step("bug", ", failTimes: 9", "      retries: 3\n")],
            &[],
            true,
        );
        let known = s.known_bug.as_mut().unwrap();
        known.step = Some("bug".to_string());
        known.failure_contains = Some(contains.to_string());
        let o = run_one(&f, s, &Cancel::new()).await;
        let rec = o.steps.iter().find(|r| r.name == "bug").unwrap().clone();
        (o, rec)
    };

    let (o, rec) = run(true, "saw X").await;
    assert_eq!(o.status, Status::Passed, "{}", o.message);
    assert_eq!(rec.attempts, 1, "{rec:#?}");
    let (_, evidence) = rec.result.failure().expect("a failure");
    assert!(
        evidence
            .iter()
            .any(|e| e.starts_with("not retried (3 retries allowed)")
                && e.contains("https://example.invalid/issue/1")),
        "{evidence:?}"
    );

    let (o, rec) = run(false, "saw X").await;
    assert_eq!(o.status, Status::Passed, "{}", o.message);
    assert_eq!(rec.attempts, 4, "a cluster converges: retried to the limit");

    let (o, rec) = run(true, "something else").await;
    assert_eq!(o.status, Status::Failed, "{}", o.message);
    assert_eq!(rec.attempts, 4, "another failure is retried to the limit");
}

#[tokio::test]
async fn an_interrupt_stops_new_steps_and_unwinds() {
    let f = fixture();
    let s = scenario(
        f.root.path(),
        &[step("long", ", sleepMs: 10000", ""), step("next", "", "")],
        &[step("tidy", "", "")],
        false,
    );
    let cancel = Cancel::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.interrupt();
    });
    let started = Instant::now();
    let o = run_one(&f, s, &cancel).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not wait for the long step"
    );
    assert!(o.interrupted);
    assert_eq!(o.status, Status::Error);
    assert_eq!(
        result_of(&o, "next"),
        &StepResult::NotRun {
            reason: NotRunReason::Cancelled(CancelReason::Interrupted { signal: None })
        }
    );
    assert_eq!(
        result_of(&o, "long"),
        &StepResult::Cancelled {
            reason: CancelReason::Interrupted { signal: None }
        },
        "the running step ends as cancelled, with the reason"
    );
    let log = f.log.lock().unwrap().clone();
    assert!(
        log.contains(&"apply tidy #1".to_string()),
        "finally still ran: {log:?}"
    );
    assert!(log.last().unwrap().starts_with("close"), "{log:?}");
}

#[tokio::test]
async fn unsupported_scenarios_are_skipped_with_the_reason() {
    let mut f = fixture();
    f.target = Arc::new(ScriptedTarget {
        log: f.log.clone(),
        attempts: Arc::default(),
        unsupported: Some("lab cannot stand in for Istio".into()),
        settles: false,
    });
    let s = scenario(f.root.path(), &[step("x", "", "")], &[], false);
    let o = run_one(&f, s, &Cancel::new()).await;
    assert_eq!(
        (o.status, o.message.as_str()),
        (Status::Skipped, "lab cannot stand in for Istio")
    );
    assert!(f.log.lock().unwrap().is_empty(), "nothing was opened");
}

#[tokio::test]
async fn junit_matches_what_happened_and_is_written_atomically() {
    let f = fixture();
    let scenarios = [
        ("pass-one", vec![step("a", "", "")], false),
        ("fail-one", vec![step("b", ", failTimes: 5", "")], false),
        ("error-one", vec![step("c", ", broken: true", "")], false),
        ("xfail-one", vec![step("d", ", failTimes: 5", "")], true),
        (
            "flaky-one",
            vec![step("e", ", failTimes: 1", "      retries: 2\n")],
            false,
        ),
    ];
    let work = scenarios
        .iter()
        .map(|(name, steps, bug)| {
            let mut s = scenario(f.root.path(), steps, &[], *bug);
            s.name = name.to_string();
            (f.target.clone() as Arc<dyn Target>, Arc::new(s))
        })
        .collect();
    let run = runner::run_all(work, &options(f.root.path()), &Cancel::new()).await;
    assert_eq!(run.totals(), (3, 1, 1, 0));
    assert!(!run.success());
    assert_eq!(f.log.lock().unwrap().last().unwrap(), "shutdown");
    let path = f.root.path().join("out/junit.xml");
    write_junit(&run, &path).unwrap();
    let xml = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 5);
    let case = |name: &str| {
        *cases
            .iter()
            .find(|c| c.attribute("name") == Some(name))
            .unwrap()
    };
    assert!(
        case("pass-one")
            .children()
            .all(|c| !c.has_tag_name("failure") && !c.has_tag_name("error"))
    );
    let failure = case("fail-one")
        .children()
        .find(|c| c.has_tag_name("failure"))
        .expect("failure element");
    assert!(
        failure
            .attribute("message")
            .unwrap()
            .contains("b wrong on attempt 1")
    );
    assert!(
        case("error-one")
            .children()
            .any(|c| c.has_tag_name("error"))
    );
    let flaky: Vec<_> = case("flaky-one")
        .children()
        .filter(|c| c.has_tag_name("flakyFailure"))
        .collect();
    assert_eq!(flaky.len(), 1, "one failed attempt before the pass");
    assert_eq!(
        flaky[0].attribute("message"),
        Some("step `e`: e wrong on attempt 1")
    );
    assert!(
        case("pass-one")
            .children()
            .all(|c| !c.has_tag_name("flakyFailure"))
    );
    let out = case("xfail-one")
        .children()
        .find(|c| c.has_tag_name("system-out"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        out.contains("d wrong on attempt 1"),
        "step log in system-out: {out}"
    );
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(
        (
            suite.attribute("tests"),
            suite.attribute("failures"),
            suite.attribute("errors")
        ),
        (Some("5"), Some("1"), Some("1"))
    );
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temp files left: {leftovers:?}");
    assert_eq!(junit_report(&run).to_string().unwrap(), xml);
    assert_valid_junit(&path);
    let failure_body = failure.text().unwrap();
    assert!(
        !failure_body.contains("<apply> ok"),
        "the failure body lists only problems: {failure_body}"
    );
}

/// Validates a JUnit file against tests/data/junit.xsd with `xmlschema`
/// from the tools venv (installed by scripts/setup).
fn assert_valid_junit(path: &Path) {
    if let Err(e) = junit_schema_errors(path) {
        panic!("JUnit schema validation failed: {e}");
    }
}

/// The schema validator's complaint about `path`, if any. A missing
/// validator is a panic, never a complaint.
fn junit_schema_errors(path: &Path) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".lab/tools-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/setup (it installs xmlschema)",
        python.display()
    );
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, xmlschema; xmlschema.XMLSchema(sys.argv[1]).validate(sys.argv[2])",
        ])
        .arg(root.join("tests/data/junit.xsd"))
        .arg(path)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn the_schema_check_rejects_a_report_that_breaks_it() {
    let dir = tempfile::tempdir().unwrap();
    let report = |testcase: &str| {
        format!(
            "<testsuites name=\"x\" tests=\"1\" failures=\"0\" errors=\"0\"><testsuite name=\"s\" tests=\"1\" failures=\"0\" errors=\"0\">{testcase}</testsuite></testsuites>"
        )
    };
    let good = dir.path().join("good.xml");
    std::fs::write(
        &good,
        report("<testcase name=\"t\" classname=\"c\" time=\"1\"/>"),
    )
    .unwrap();
    assert_eq!(
        junit_schema_errors(&good),
        Ok(()),
        "the control report is valid"
    );
    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, report("<testcase classname=\"c\" time=\"1\"/>")).unwrap();
    let error = junit_schema_errors(&bad).expect_err("a testcase without a name must be rejected");
    assert!(
        error.contains("missing required attribute") && error.contains("'name'"),
        "the schema names the missing attribute: {error}"
    );
}

#[tokio::test]
async fn jobs_run_scenarios_at_once_and_keep_report_order() {
    let f = fixture();
    // Later scenarios sleep less: run at once, they finish in reverse order;
    // run one after another, they would finish in input order.
    let sleeps = [900, 500, 100];
    let work: Vec<(Arc<dyn Target>, Arc<Scenario>)> = sleeps
        .iter()
        .enumerate()
        .map(|(i, ms)| {
            let mut s = scenario(
                f.root.path(),
                &[step(&format!("s{i}"), &format!(", sleepMs: {ms}"), "")],
                &[],
                false,
            );
            s.name = format!("parallel-{i}");
            (f.target.clone() as Arc<dyn Target>, Arc::new(s))
        })
        .collect();
    let mut opts = options(f.root.path());
    opts.jobs = 3;
    let run = runner::run_all(work, &opts, &Cancel::new()).await;
    let finished: Vec<String> = f
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.starts_with("slept "))
        .cloned()
        .collect();
    assert_eq!(
        finished,
        ["slept s2", "slept s1", "slept s0"],
        "the three scenarios overlapped"
    );
    let names: Vec<&str> = run.scenarios.iter().map(|o| o.scenario.as_str()).collect();
    assert_eq!(
        names,
        ["parallel-0", "parallel-1", "parallel-2"],
        "the report keeps input order"
    );
    assert!(run.success());
}

#[tokio::test]
async fn the_target_is_told_its_scenarios_then_the_costliest_start_first_and_the_report_keeps_input_order()
 {
    let f = fixture();
    let costs = [0, 5, 2, 5];
    let work: Vec<(Arc<dyn Target>, Arc<Scenario>)> = costs
        .iter()
        .enumerate()
        .map(|(i, cost)| {
            let mut s = scenario(f.root.path(), &[step(&format!("s{i}"), "", "")], &[], false);
            s.name = format!("ordered-{i}-cost-{cost}");
            (f.target.clone() as Arc<dyn Target>, Arc::new(s))
        })
        .collect();
    let run = runner::run_all(work, &options(f.root.path()), &Cancel::new()).await;
    let log = f.log.lock().unwrap().clone();
    assert_eq!(
        log.first().map(String::as_str),
        Some("prepare ordered-0-cost-0,ordered-1-cost-5,ordered-2-cost-2,ordered-3-cost-5"),
        "the target is told every scenario before the first opens: {log:?}"
    );
    let started: Vec<String> = log
        .iter()
        .filter(|line| line.starts_with("apply "))
        .cloned()
        .collect();
    assert_eq!(
        started,
        ["apply s1 #1", "apply s3 #1", "apply s2 #1", "apply s0 #1"],
        "costliest first; equal costs in input order"
    );
    let names: Vec<&str> = run.scenarios.iter().map(|o| o.scenario.as_str()).collect();
    assert_eq!(
        names,
        [
            "ordered-0-cost-0",
            "ordered-1-cost-5",
            "ordered-2-cost-2",
            "ordered-3-cost-5"
        ],
        "the report keeps input order"
    );
}

#[tokio::test]
async fn a_huge_timeout_built_in_code_does_not_overflow_the_clock() {
    let f = fixture();
    let mut s = scenario(
        f.root.path(),
        &[step("a", "", "")],
        &[step("b", "", "")],
        false,
    );
    s.timeout = Duration::MAX;
    s.steps[0].timeout = Duration::MAX;
    s.finally[0].timeout = Duration::MAX;
    let o = run_one(&f, s, &Cancel::new()).await;
    assert_eq!(o.status, Status::Passed, "{o:#?}");
}

/// Live (non-zombie) processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    procs::live_processes()
        .into_iter()
        .filter(|p| p.pgid == pgid)
        .map(|p| p.pid)
        .collect()
}

/// A command step whose shell writes its pid (= its process group) to
/// `pidfile`, prints a line, starts `sleep 60` as a child (its pid in
/// `<pidfile>.child`), then runs `then` (`wait`: stay; `true`: exit).
fn command_step(name: &str, pidfile: &Path, then: &str, options: &str) -> String {
    let pid = pidfile.display();
    // `$$$$` is the shell's `$$` once the scenario's templating has run.
    format!(
        "    - name: {name}\n      command: {{ argv: [sh, -c, 'echo $$$$ > {pid}; echo partial-output; sleep 60 & echo $! > {pid}.child; {then}'] }}\n{options}"
    )
}

/// The shell's and its child's pids once both are written.
fn command_pids(pidfile: &Path) -> (u32, u32) {
    (
        read_pid(pidfile),
        read_pid(&pidfile.with_extension("child")),
    )
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// Waits up to 5 s for the shell, its child and its group to be gone
/// (SIGKILL delivery is async).
fn assert_group_gone(pidfile: &Path) {
    let (shell, child) = command_pids(pidfile);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut left = group_members(shell);
        left.extend([shell, child].into_iter().filter(|p| alive(*p)));
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes of the command (group {shell}) outlived the step: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_timed_out_command_ends_its_whole_process_group_and_keeps_its_output() {
    let f = fixture();
    let pidfile = f.root.path().join("pid");
    let s = scenario(
        f.root.path(),
        &[command_step(
            "slow",
            &pidfile,
            "wait",
            "      timeout: 700ms\n",
        )],
        &[],
        false,
    );
    let started = Instant::now();
    let o = run_one(&f, s, &Cancel::new()).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    match result_of(&o, "slow") {
        StepResult::Failed { message, evidence } => {
            assert!(message.contains("did not finish within 700ms"), "{message}");
            assert!(
                evidence
                    .iter()
                    .any(|e| e.starts_with("stdout (until the timeout)")
                        && e.contains("partial-output")),
                "the partial output is evidence: {evidence:#?}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_group_gone(&pidfile);
}

#[tokio::test]
async fn an_interrupted_command_ends_its_whole_process_group() {
    let f = fixture();
    let pidfile = f.root.path().join("pid");
    let s = scenario(
        f.root.path(),
        &[command_step(
            "long",
            &pidfile,
            "wait",
            "      timeout: 10m\n",
        )],
        &[],
        false,
    );
    let cancel = Cancel::new();
    let trigger = cancel.clone();
    let marker = pidfile.clone();
    tokio::spawn(async move {
        while !marker.with_extension("child").exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.interrupt();
    });
    let o = run_one(&f, s, &cancel).await;
    assert!(o.interrupted, "{o:#?}");
    assert_group_gone(&pidfile);
}

#[tokio::test]
async fn a_command_that_exits_leaves_nothing_running_and_is_not_held_by_its_leftovers() {
    let f = fixture();
    let pidfile = f.root.path().join("pid");
    let s = scenario(
        f.root.path(),
        &[command_step(
            "quick",
            &pidfile,
            "echo done",
            "      timeout: 20s\n",
        )],
        &[],
        false,
    );
    let started = Instant::now();
    let o = run_one(&f, s, &Cancel::new()).await;
    assert_eq!(o.status, Status::Passed, "{o:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a background child holding the output pipe does not hold the step: {:?}",
        started.elapsed()
    );
    assert_group_gone(&pidfile);
}

#[tokio::test]
async fn a_failing_finally_after_a_failing_step_is_named_next_to_it_in_junit() {
    let (_f, o) = run_steps(
        &[step("first", ", failTimes: 1", "")],
        &[step("tidy", ", failTimes: 1", "")],
        false,
    )
    .await;
    assert_eq!(o.status, Status::Failed);
    let run = runner::RunOutcome {
        run_id: "r".into(),
        scenarios: vec![o],
        interrupted: false,
        duration: Duration::ZERO,
        shutdown_problems: Vec::new(),
    };
    let xml = junit_report(&run).to_string().unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let message = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .and_then(|n| n.attribute("message"))
        .expect("a failure with a message")
        .to_string();
    assert!(
        message.contains("first: first wrong on attempt 1")
            && message.contains("finally `tidy`: tidy wrong on attempt 1"),
        "{message}"
    );
}

/// The JUnit `type` of a scenario's failure or error.
fn junit_problem_type(o: ScenarioOutcome, interrupted: bool) -> String {
    let run = runner::RunOutcome {
        run_id: "r".into(),
        scenarios: vec![o],
        interrupted,
        duration: Duration::ZERO,
        shutdown_problems: Vec::new(),
    };
    let xml = junit_report(&run).to_string().unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    doc.descendants()
        .find(|n| n.has_tag_name("failure") || n.has_tag_name("error"))
        .and_then(|n| n.attribute("type"))
        .expect("a failure or error with a type")
        .to_string()
}

#[tokio::test]
async fn a_signal_reaches_the_step_as_a_typed_reason_and_junit_says_interrupted() {
    let f = fixture();
    let s = scenario(
        f.root.path(),
        &[step("long", ", sleepMs: 10000", ""), step("next", "", "")],
        &[],
        false,
    );
    let cancel = Cancel::new();
    let trigger = cancel.clone();
    let reason = CancelReason::Interrupted {
        signal: Some(runner::Signal::Terminate),
    };
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel(reason);
    });
    let o = run_one(&f, s, &cancel).await;
    assert_eq!(
        result_of(&o, "long"),
        &StepResult::Cancelled { reason },
        "{o:#?}"
    );
    assert_eq!(
        result_of(&o, "next"),
        &StepResult::NotRun {
            reason: NotRunReason::Cancelled(reason)
        }
    );
    assert!(o.interrupted && o.status == Status::Error, "{o:#?}");
    assert!(o.message.contains("SIGTERM"), "{}", o.message);
    assert_eq!(junit_problem_type(o, true), "interrupted");
}

#[tokio::test]
async fn a_timed_out_step_is_a_failure_of_type_timed_out_in_junit() {
    let (_f, o) = run_steps(
        &[step("slow", ", sleepMs: 5000", "      timeout: 200ms\n")],
        &[],
        false,
    )
    .await;
    assert_eq!(o.status, Status::Failed, "{o:#?}");
    assert!(!o.interrupted);
    assert_eq!(junit_problem_type(o, false), "timed-out");
    let (_f, o) = run_steps(&[step("wrong", ", failTimes: 1", "")], &[], false).await;
    assert_eq!(junit_problem_type(o, false), "wrong-verdict");
}
