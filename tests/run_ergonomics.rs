//! Run ergonomics: `--shard k/n`, `--junit-granularity step` and
//! `--keep on-failure|always|never`.

use rayconform::report::{JunitGranularity, junit_report_with};
use rayconform::runner::{
    Phase, Reproduction, RunOutcome, ScenarioOutcome, Shard, Status, StepRecord, StepResult,
};
use rayconform::scenario::{TargetKind, load_all};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shard_values_are_k_of_n() {
    assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
    assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
    for bad in ["0/3", "4/3", "1/0", "a/b", "3", "", "1/2/3"] {
        assert!(bad.parse::<Shard>().is_err(), "{bad:?} accepted");
    }
}

#[test]
fn shards_of_the_repository_scenarios_are_disjoint_balanced_and_together_all() {
    let loaded = load_all(&[root().join("scenarios")], &root());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let all: BTreeSet<String> = loaded.scenarios.iter().map(|s| s.name.clone()).collect();
    assert!(all.len() >= 5);
    for n in 1..=4 {
        let mut union = BTreeSet::new();
        let mut sizes = Vec::new();
        for k in 1..=n {
            let shard = Shard { index: k, count: n };
            let part: Vec<String> = shard
                .select(loaded.scenarios.clone(), |s| s.name.as_str())
                .into_iter()
                .map(|s| s.name)
                .collect();
            // The same part whatever order the scenarios came in.
            let mut reversed = loaded.scenarios.clone();
            reversed.reverse();
            let again: BTreeSet<String> = shard
                .select(reversed, |s| s.name.as_str())
                .into_iter()
                .map(|s| s.name)
                .collect();
            assert_eq!(part.iter().cloned().collect::<BTreeSet<_>>(), again);
            for name in &part {
                assert!(union.insert(name.clone()), "{name} in two shards of {n}");
            }
            sizes.push(part.len());
        }
        assert_eq!(union, all, "the {n} shards together are all scenarios");
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(max - min <= 1, "unbalanced shards of {n}: {sizes:?}");
    }
}

#[test]
fn the_cli_shards_the_selection_and_refuses_a_bad_shard() {
    let plan = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rayconform"))
            .current_dir(root())
            .args(["plan", "--target", "lab"])
            .args(extra)
            .arg("scenarios")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let loaded = load_all(&[root().join("scenarios")], &root());
    let named = |text: &str| -> BTreeSet<String> {
        loaded
            .scenarios
            .iter()
            .filter(|s| {
                text.contains(&format!("scenario {} ", s.name))
                    || text.contains(&format!("=== {} ", s.name))
                    || text.contains(&format!("{} (", s.name))
            })
            .map(|s| s.name.clone())
            .collect()
    };
    let (code, whole, _) = plan(&[]);
    assert_eq!(code, Some(0));
    let (c1, one, _) = plan(&["--shard", "1/2"]);
    let (c2, two, _) = plan(&["--shard", "2/2"]);
    assert_eq!((c1, c2), (Some(0), Some(0)));
    let (a, b, all) = (named(&one), named(&two), named(&whole));
    assert_eq!(
        all.len(),
        loaded.scenarios.len(),
        "plan names every scenario:\n{whole}"
    );
    assert!(a.is_disjoint(&b), "{a:?} {b:?}");
    assert_eq!(a.union(&b).cloned().collect::<BTreeSet<_>>(), all);
    let (code, _, err) = plan(&["--shard", "3/2"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("expected k/n"), "{err}");
}

fn step(phase: Phase, name: &str, result: StepResult) -> StepRecord {
    StepRecord::single(phase, name, "probe", Duration::from_millis(7), result)
}

fn scenario(name: &str, status: Status, steps: Vec<StepRecord>) -> ScenarioOutcome {
    ScenarioOutcome {
        scenario: name.into(),
        file: PathBuf::from(format!("scenarios/{name}.yaml")),
        target: TargetKind::Lab,
        k8s_version: None,
        status,
        message: format!("{name} message"),
        known_bug: None,
        reproduction: None,
        modelled: Vec::new(),
        steps,
        artifacts: None,
        duration: Duration::from_millis(100),
        interrupted: false,
    }
}

#[test]
fn junit_step_granularity_gives_one_testcase_per_step_with_its_own_verdict() {
    let passed = || StepResult::Passed {
        summary: "ok".into(),
        evidence: vec!["answered 200".into()],
    };
    let failed = || StepResult::Failed {
        message: "expected 200, got 404".into(),
        evidence: vec!["screenshot: /r/shot.png".into()],
    };
    let not_run = StepResult::NotRun {
        reason: rayconform::runner::NotRunReason::EarlierStepDidNotPass {
            step: "page".into(),
        },
    };
    let broken = scenario(
        "broken",
        Status::Failed,
        vec![
            step(Phase::Setup, "open lab", passed()),
            step(Phase::Steps, "page", failed()),
            step(Phase::Steps, "api", not_run),
            step(Phase::Cleanup, "close session", passed()),
        ],
    );
    let mut known = scenario(
        "known",
        Status::Passed,
        vec![step(Phase::Steps, "blank page", failed())],
    );
    known.known_bug = Some("https://example.invalid/bug/1".into());
    known.reproduction = Some(Reproduction::Observed);
    let mut fixed = scenario(
        "fixed",
        Status::Failed,
        vec![step(Phase::Steps, "blank page", passed())],
    );
    fixed.known_bug = Some("https://example.invalid/bug/1".into());
    fixed.message = "known bug did not reproduce".into();
    let run = RunOutcome {
        run_id: "r".into(),
        scenarios: vec![broken, known, fixed],
        interrupted: false,
        duration: Duration::from_secs(1),
        shutdown_problems: Vec::new(),
    };

    let xml = junit_report_with(&run, JunitGranularity::Step)
        .to_string()
        .unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<(String, &str)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|c| {
            let status = ["failure", "error", "skipped"]
                .into_iter()
                .find(|t| c.children().any(|n| n.has_tag_name(*t)))
                .unwrap_or("success");
            (c.attribute("name").unwrap().to_string(), status)
        })
        .collect();
    assert_eq!(
        cases,
        [
            ("broken / [setup] open lab".to_string(), "success"),
            ("broken / [step] page".to_string(), "failure"),
            ("broken / [step] api".to_string(), "skipped"),
            ("broken / [cleanup] close session".to_string(), "success"),
            ("known / [step] blank page".to_string(), "success"),
            ("fixed / [step] blank page".to_string(), "success"),
            ("fixed / scenario verdict".to_string(), "failure"),
        ],
        "{xml}"
    );
    let page = doc
        .descendants()
        .find(|n| n.attribute("name") == Some("broken / [step] page"))
        .unwrap();
    let failure = page.children().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!(failure.attribute("message"), Some("expected 200, got 404"));
    assert_eq!(page.attribute("classname"), Some("rayconform.lab.broken"));
    let out = page
        .children()
        .find(|n| n.has_tag_name("system-out"))
        .unwrap()
        .text()
        .unwrap();
    assert!(out.contains("[[ATTACHMENT|/r/shot.png]]"), "{out}");
    assert!(xml.contains("name=\"known-bug-reproduced\" value=\"observed\""));

    // The default stays one testcase per scenario.
    let per_scenario = junit_report_with(&run, JunitGranularity::Scenario)
        .to_string()
        .unwrap();
    assert_eq!(per_scenario.matches("<testcase ").count(), 3);
    // Screenshots are named there too: a property and an attachment.
    assert!(
        per_scenario.contains("<property name=\"screenshot\" value=\"/r/shot.png\"/>"),
        "{per_scenario}"
    );
    assert!(
        per_scenario.contains("[[ATTACHMENT|/r/shot.png]]"),
        "{per_scenario}"
    );
}

/// Whether `pid` is a live process (not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// `rayconform run --keep on-failure` on lab with a passing and a failing
/// scenario: the failing one's nginx and work dir stay (and the output says
/// how to reach them), the passing one's are gone.
#[test]
fn keep_on_failure_keeps_only_what_failed_and_says_how_to_reach_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let write = |name: &str, expect: &str| -> PathBuf {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &file,
            format!(
                "apiVersion: rayconform.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: {name}\nspec:\n  targets: [lab]\n  steps:\n    - probe: {{ tcp: {{ address: \"127.0.0.1:{port}\", expect: {expect} }} }}\n      timeout: 5s\n"
            ),
        )
        .unwrap();
        file
    };
    let good = write("keep-test-passes", "refused");
    let bad = write("keep-test-fails", "open");
    let out = Command::new(env!("CARGO_BIN_EXE_rayconform"))
        .current_dir(root())
        .args(["run", "--target", "lab", "--keep", "on-failure", "--junit"])
        .arg(dir.path().join("junit.xml"))
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "one scenario fails:\n{stdout}");
    let kept: Vec<&str> = stdout.lines().filter(|l| l.contains("kept: ")).collect();
    assert_eq!(
        kept.len(),
        1,
        "only the failing scenario is kept:\n{stdout}"
    );
    let line = kept[0];
    assert!(
        line.contains("--keep on-failure: left in place; lab nginx pid "),
        "{line}"
    );
    let pid: i32 = line
        .split("lab nginx pid ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no nginx pid in {line}"));
    let work_dir = PathBuf::from(line.rsplit("work dir ").next().unwrap().trim());
    let still_running = alive(pid);
    let work_dir_kept = work_dir.is_dir();
    // Stop what was kept (by pid) and remove its work dir before asserting.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = std::fs::remove_dir_all(&work_dir);
    assert!(
        still_running,
        "the failing scenario's nginx {pid} was stopped"
    );
    assert!(work_dir_kept, "{} removed", work_dir.display());
    // The passing scenario's work dir went with its cleanup.
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let passing = doc
        .descendants()
        .find(|n| n.attribute("name") == Some("keep-test-passes"))
        .unwrap();
    assert!(passing.children().all(|n| !n.has_tag_name("failure")));
    let log = passing
        .children()
        .find(|n| n.has_tag_name("system-out"))
        .unwrap()
        .text()
        .unwrap();
    let removed = log
        .lines()
        .find_map(|l| l.strip_prefix("[cleanup] remove "))
        .and_then(|r| r.split(" (unless kept)").next())
        .unwrap_or_else(|| panic!("no work dir cleanup:\n{log}"));
    assert!(
        !Path::new(removed).exists(),
        "{removed} left behind:\n{log}"
    );

    // Plain `--keep` still means always.
    let out = Command::new(env!("CARGO_BIN_EXE_rayconform"))
        .current_dir(root())
        .args(["run", "--target", "lab", "--keep", "--junit"])
        .arg(dir.path().join("junit2.xml"))
        .arg(&good)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("kept: --keep: left in place; lab nginx pid "))
        .unwrap_or_else(|| panic!("a passing scenario is kept under --keep:\n{stdout}"));
    let pid: i32 = line
        .split("lab nginx pid ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let work_dir = PathBuf::from(line.rsplit("work dir ").next().unwrap().trim());
    let was_alive = alive(pid);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = std::fs::remove_dir_all(&work_dir);
    assert!(was_alive, "nginx {pid} kept by --keep");
}
