//! Test support code.

#![allow(dead_code)]
pub mod apiserver;

use rayconform::scenario::Scenario;
use rayconform::targets::ScenarioRun;
use rayconform::tls::CertificateSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A minimal scenario for driving a session directly.
pub fn scenario(name: &str) -> Scenario {
    Scenario {
        path: PathBuf::from(format!("scenarios/{name}.yaml")),
        name: name.to_string(),
        description: None,
        tags: Vec::new(),
        source: None,
        targets: vec![rayconform::scenario::TargetKind::Kind],
        cluster: None,
        install: Vec::new(),
        certificates: None,
        steps: Vec::new(),
        finally: Vec::new(),
        known_bug: None,
        timeout: Duration::from_secs(60),
    }
}

/// A run of `scenario` in namespace `ns`, with folders under `dir`.
pub fn run(
    scenario: Scenario,
    ns: &str,
    dir: &std::path::Path,
    certificates: Option<CertificateSet>,
) -> ScenarioRun {
    ScenarioRun {
        scenario: Arc::new(scenario),
        run_id: "test-run".into(),
        namespace: ns.to_string(),
        work_dir: dir.join("work"),
        artifacts_dir: dir.join("artifacts"),
        project_root: dir.to_path_buf(),
        certificates: certificates.map(Arc::new),
        keep: false,
        progress: Arc::new(|_| {}),
    }
}
