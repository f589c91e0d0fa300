//! A known bug that still reproduces is reported as *observed* (real
//! software failed) or *modelled* (only the target's own model of the defect
//! failed), in the outcome, the JUnit properties and the summary.

use async_trait::async_trait;
use rayconform::report::{junit_report, summary_text};
use rayconform::runner::{self, Cancel, Reproduction, RunOptions, Status};
use rayconform::scenario::{Scenario, TargetKind, WaitSpec, load_str};
use rayconform::targets::{
    Manifest, PlanError, ScenarioRun, Session, StepError, Target, TargetPlan,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A target whose every apply fails; its session reports `modelled`.
struct FailingTarget {
    modelled: Vec<String>,
}

struct FailingSession {
    modelled: Vec<String>,
}

#[async_trait]
impl Target for FailingTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Lab
    }
    fn unavailable_reason(&self) -> Option<String> {
        None
    }
    fn unsupported_reason(&self, _: &Scenario, _: &Path) -> Option<String> {
        None
    }
    fn plan(&self, _: &Scenario, _: &Path) -> Result<TargetPlan, PlanError> {
        Ok(TargetPlan::default())
    }
    async fn open(&self, _: &ScenarioRun) -> Result<Box<dyn Session>, StepError> {
        Ok(Box::new(FailingSession {
            modelled: self.modelled.clone(),
        }))
    }
    async fn shutdown(&self, _: bool) -> Vec<String> {
        Vec::new()
    }
}

#[async_trait]
impl Session for FailingSession {
    fn variables(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    async fn apply(&mut self, _: &[Manifest]) -> Result<String, StepError> {
        Err(StepError::Failed {
            message: "the ingress dropped the connection".into(),
            evidence: vec!["stage: TLS".into()],
        })
    }
    async fn delete(&mut self, _: &[Manifest]) -> Result<String, StepError> {
        Ok("deleted".into())
    }
    async fn wait(&mut self, _: &WaitSpec, _: Duration) -> Result<String, StepError> {
        Ok("ready".into())
    }
    async fn expect_denied(&mut self, _: &[Manifest], _: &str) -> Result<String, StepError> {
        Ok("denied".into())
    }
    async fn collect_diagnostics(&mut self, _: &Path) -> Vec<PathBuf> {
        Vec::new()
    }
    fn modelled_defects(&self) -> Vec<String> {
        self.modelled.clone()
    }
    fn how_to_reach(&self) -> String {
        String::new()
    }
    async fn close(&mut self, _: bool) -> Vec<String> {
        Vec::new()
    }
}

const SCENARIO: &str = "apiVersion: rayconform.dev/v1alpha1
kind: Scenario
metadata:
  name: NAME
spec:
  targets: [lab]
  steps:
    - apply: { inline: \"apiVersion: v1\\nkind: ConfigMap\\nmetadata: { name: x }\\n\" }
  knownBug: { url: \"https://example.invalid/issue/7\" }
";

async fn run(modelled: &[&str], name: &str) -> runner::RunOutcome {
    let root = tempfile::tempdir().unwrap();
    let text = SCENARIO.replace("NAME", name);
    let scenario = load_str(Path::new("s.yaml"), &text, root.path()).unwrap();
    let target: Arc<dyn Target> = Arc::new(FailingTarget {
        modelled: modelled.iter().map(|m| m.to_string()).collect(),
    });
    let opts = RunOptions {
        run_id: "r".into(),
        project_root: root.path().to_path_buf(),
        reports_dir: root.path().join("reports"),
        k8s_version: None,
        keep: false,
        keep_failed: false,
        jobs: 1,
        retry_backoff: Duration::from_millis(10),
        certificates: std::sync::Arc::new(rayconform::runner::RunCertificates::new(false)),
        events: Arc::new(|_| {}),
    };
    runner::run_all(vec![(target, Arc::new(scenario))], &opts, &Cancel::new()).await
}

fn property(xml: &str, name: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(name))
        .and_then(|n| n.attribute("value"))
        .map(str::to_string)
}

#[tokio::test]
async fn a_known_bug_reproduced_only_by_the_targets_model_is_modelled() {
    let model =
        "passthrough to headless Service ns/svc dropped by the lab's model of ingress-nginx";
    let run = run(&[model], "modelled-bug").await;
    let o = &run.scenarios[0];
    assert_eq!(o.status, Status::Passed, "{o:#?}");
    assert_eq!(o.reproduction, Some(Reproduction::Modelled));
    assert!(
        o.message.contains("only in the target's model") && o.message.contains(model),
        "{}",
        o.message
    );
    let xml = junit_report(&run).to_string().unwrap();
    assert_eq!(
        property(&xml, "known-bug-reproduced").as_deref(),
        Some("modelled"),
        "{xml}"
    );
    assert_eq!(
        property(&xml, "modelled-by-target").as_deref(),
        Some(model),
        "{xml}"
    );
    let summary = summary_text(&run);
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("XFAIL") && l.contains("modelled-bug [modelled]")),
        "{summary}"
    );
    assert!(
        summary.contains("known bugs still reproducing: 0 observed, 1 modelled"),
        "{summary}"
    );
}

#[tokio::test]
async fn a_known_bug_reproduced_by_real_software_is_observed() {
    let run = run(&[], "observed-bug").await;
    let o = &run.scenarios[0];
    assert_eq!(o.status, Status::Passed, "{o:#?}");
    assert_eq!(o.reproduction, Some(Reproduction::Observed));
    let xml = junit_report(&run).to_string().unwrap();
    assert_eq!(
        property(&xml, "known-bug-reproduced").as_deref(),
        Some("observed"),
        "{xml}"
    );
    assert_eq!(property(&xml, "modelled-by-target"), None, "{xml}");
    let summary = summary_text(&run);
    assert!(!summary.contains("[modelled]"), "{summary}");
    assert!(
        summary.contains("known bugs still reproducing: 1 observed, 0 modelled"),
        "{summary}"
    );
}
