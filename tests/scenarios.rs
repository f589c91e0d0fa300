//! `cargo test` integration: every scenario × target it lists is a trial.
//!
//! Trials for targets that cannot run on this machine (no Docker engine for
//! kind or k3s, no cluster for existing) are reported as ignored with the reason at
//! run time — never as passed. A scenario that is not supported on a target
//! (e.g. Istio on lab) is ignored with the target's reason. Scenario files
//! that do not load are failing trials.

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use rayconform::report::step_log;
use rayconform::runner::{self, RunOptions, Status};
use rayconform::scenario::{TargetKind, load_all};
use rayconform::targets::Target;
use rayconform::targets::{TargetOptions, registry};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Arguments::from_args();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runtime = Arc::new(tokio::runtime::Runtime::new().expect("tokio runtime"));
    let k8s_version = std::env::var("RAYCONFORM_K8S_VERSION").ok();
    let topts = TargetOptions {
        project_root: root.clone(),
        k8s_version: k8s_version.clone(),
        ..TargetOptions::default()
    };
    let targets: Vec<Arc<dyn Target>> = TargetKind::ALL
        .iter()
        .map(|k| registry::build(*k, &topts))
        .collect();
    let opts = RunOptions {
        run_id: runner::new_run_id(),
        project_root: root.clone(),
        reports_dir: root.join("reports"),
        k8s_version,
        keep: false,
        keep_failed: false,
        jobs: 1,
        retry_backoff: Duration::from_secs(1),
        certificates: std::sync::Arc::new(rayconform::runner::RunCertificates::new(false)),
        events: Arc::new(|_| {}),
    };

    let loaded = load_all(&[root.join("scenarios")], &root);
    let mut trials: Vec<Trial> = loaded
        .errors
        .iter()
        .map(|e| {
            let message = e.to_string();
            Trial::test(format!("load::{}", e.file.display()), move || {
                Err(Failed::from(message))
            })
        })
        .collect();
    for scenario in loaded.scenarios {
        let scenario = Arc::new(scenario);
        // Every target that takes the scenario (k3s also runs kind's).
        for kind in TargetKind::ALL
            .iter()
            .filter(|k| k.listed_in(&scenario.targets))
        {
            let target = targets
                .iter()
                .find(|t| t.kind() == *kind)
                .expect("every kind is built")
                .clone();
            let name = format!("{kind}::{}", scenario.name);
            let (scenario, runtime, opts) = (scenario.clone(), runtime.clone(), opts.clone());
            trials.push(Trial::ignorable_test(name, move || {
                if let Some(reason) = target.unavailable_reason() {
                    return Ok(Completion::ignored_with(format!(
                        "target {} unavailable: {reason}",
                        target.kind()
                    )));
                }
                let outcome = runtime.block_on(runner::run_scenario(
                    target.as_ref(),
                    scenario,
                    &opts,
                    &runner::Cancel::new(),
                ));
                match outcome.status {
                    Status::Passed => Ok(Completion::Completed),
                    Status::Skipped => Ok(Completion::ignored_with(outcome.message)),
                    Status::Failed | Status::Error => Err(Failed::from(format!(
                        "{}\n{}",
                        outcome.message,
                        step_log(&outcome)
                    ))),
                }
            }));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    runtime.block_on(async {
        for target in &targets {
            for problem in target.shutdown(false).await {
                eprintln!("target {} shutdown: {problem}", target.kind());
            }
        }
    });
    // `exit` skips destructors: the run's certificates (private keys) go
    // now, and a folder that outlives its last owner fails the run.
    let certificates = opts.certificates.dir();
    drop(opts);
    if let Some(dir) = certificates.filter(|d| d.exists()) {
        eprintln!("the run's certificates outlived the run: {}", dir.display());
        std::process::exit(101);
    }
    conclusion.exit();
}
