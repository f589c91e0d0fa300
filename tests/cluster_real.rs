//! Real-cluster tests of the cluster targets (`kind::` and `k3s::`): a kind
//! cluster from our rendered config or a k3s container, ingress-nginx
//! installed from the pinned manifest, server-side apply, watch-based
//! waits, an admission webhook denial and diagnostics.
//!
//! Runs for real where a Docker engine (and, for kind, the pinned kind
//! release) is present (the nightly workflow); elsewhere every trial is
//! reported as ignored with the reason, decided at run time. `RAYCONFORM_K8S_VERSION` picks the Kubernetes
//! version. One command: `cargo test --test cluster_real`.
//!
//! Safe to re-run against a kept cluster (`RAYCONFORM_KEEP=1` keeps it):
//! each run names its namespaces and artifacts folders after a fresh run
//! id, so a namespace an earlier run left (kept, or still terminating)
//! never meets this one, and closing a check waits until its namespace is
//! gone. The `logic::` trials check that naming without a cluster.

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use rayconform::scenario::{IngressNginxInstall, Install, TargetKind, WaitSpec, WaitTarget};
use rayconform::targets::TargetOptions;
use rayconform::targets::k3s::K3sTarget;
use rayconform::targets::kind::KindTarget;
use rayconform::targets::{ScenarioRun, Session, Target};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

type Check = for<'a> fn(
    &'a mut dyn Session,
    &'a ScenarioRun,
) -> futures::future::BoxFuture<'a, Result<(), String>>;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Arguments::from_args();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runtime = Arc::new(tokio::runtime::Runtime::new().expect("tokio runtime"));
    let opts = TargetOptions {
        project_root: root.clone(),
        kube_context: None,
        k8s_version: std::env::var("RAYCONFORM_K8S_VERSION").ok(),
    };
    let targets: Vec<(Arc<dyn Target>, &str)> = vec![
        (
            Arc::new(KindTarget::new(opts.clone())),
            "needs a Docker engine and the pinned kind release",
        ),
        (Arc::new(K3sTarget::new(opts)), "needs a Docker engine"),
    ];
    let run_id = rayconform::runner::new_run_id();
    let checks: Vec<(&str, Check)> = vec![
        ("apply_wait_and_endpoints", |s, _| {
            Box::pin(apply_wait_and_endpoints(s))
        }),
        ("webhook_denies_snippets", |s, _| {
            Box::pin(webhook_denies_snippets(s))
        }),
        ("diagnostics_collected", |s, run| {
            Box::pin(diagnostics_collected(s, run.artifacts_dir.clone()))
        }),
    ];
    let names: Vec<&'static str> = checks.iter().map(|(name, _)| *name).collect();
    let mut trials: Vec<Trial> = vec![Trial::test(
        "logic::each_run_gets_its_own_namespaces",
        move || each_run_gets_its_own_namespaces(&names).map_err(Failed::from),
    )];
    for (target, needs) in &targets {
        trials.extend(checks.iter().map(|&(name, check)| {
            let (target, runtime, root, run_id, needs) = (
                target.clone(),
                runtime.clone(),
                root.clone(),
                run_id.clone(),
                needs.to_string(),
            );
            Trial::ignorable_test(format!("{}::{name}", target.kind()), move || {
                if let Some(reason) = target.unavailable_reason() {
                    return Ok(Completion::ignored_with(format!("{needs}: {reason}")));
                }
                // The 1.36/1.37 legs: ingress-nginx 1.15 does not support them.
                let probe_run = scenario_run(&root, &run_id, name, Path::new("."));
                if let Some(reason) = target.unsupported_reason(&probe_run.scenario, &root) {
                    return Ok(Completion::ignored_with(reason));
                }
                runtime
                    .block_on(run_check(target.as_ref(), &root, &run_id, name, check))
                    .map(|()| Completion::Completed)
                    .map_err(Failed::from)
            })
        }));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    runtime.block_on(async {
        for (target, _) in &targets {
            for problem in target
                .shutdown(std::env::var_os("RAYCONFORM_KEEP").is_some())
                .await
            {
                eprintln!("{} shutdown: {problem}", target.kind());
            }
        }
    });
    conclusion.exit();
}

/// The run of check `name` in run `run_id`: its own namespace and
/// artifacts folder, named after both.
fn scenario_run(root: &Path, run_id: &str, name: &str, work_dir: &Path) -> ScenarioRun {
    let scenario = rayconform::scenario::Scenario {
        path: PathBuf::from(format!("tests/cluster_real.rs#{name}")),
        name: name.to_string(),
        description: None,
        tags: Vec::new(),
        source: None,
        targets: vec![TargetKind::Kind],
        cluster: None,
        install: vec![Install::IngressNginx(IngressNginxInstall::default())],
        certificates: None,
        steps: Vec::new(),
        finally: Vec::new(),
        known_bug: None,
        timeout: Duration::from_secs(1200),
    };
    ScenarioRun {
        scenario: Arc::new(scenario),
        run_id: run_id.to_string(),
        namespace: rayconform::runner::namespace_for(
            &format!("real-{name}").replace('_', "-"),
            run_id,
        ),
        work_dir: work_dir.join("work"),
        artifacts_dir: root
            .join("reports")
            .join("cluster_real")
            .join(run_id)
            .join(name),
        project_root: root.to_path_buf(),
        certificates: None,
        keep: false,
        progress: Arc::new(|m| eprintln!("  {m}")),
    }
}

/// Two runs never share a namespace or an artifacts folder, and the checks
/// of one run do not share one either; every namespace is a DNS label.
fn each_run_gets_its_own_namespaces(names: &[&str]) -> Result<(), String> {
    let root = Path::new("/project");
    let work = Path::new("/work");
    let earlier = "20261121-194800-4242";
    let later = "20261121-194801-4242";
    let mut seen = std::collections::BTreeSet::new();
    for run_id in [earlier, later] {
        for name in names {
            let run = scenario_run(root, run_id, name, work);
            let ns = &run.namespace;
            let label = ns.len() <= 63
                && ns.starts_with(|c: char| c.is_ascii_lowercase())
                && !ns.ends_with('-')
                && ns
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !label {
                return Err(format!("{ns} is not a DNS label"));
            }
            for used in [ns.clone(), run.artifacts_dir.display().to_string()] {
                if !seen.insert(used.clone()) {
                    return Err(format!(
                        "run {run_id} check {name} reuses {used}: a re-run against a kept cluster would meet an earlier run's"
                    ));
                }
            }
        }
    }
    Ok(())
}

async fn run_check(
    target: &dyn Target,
    root: &Path,
    run_id: &str,
    name: &str,
    check: Check,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let run = scenario_run(root, run_id, name, dir.path());
    let mut session = target.open(&run).await.map_err(|e| e.to_string())?;
    let result = check(session.as_mut(), &run).await;
    if result.is_err() {
        session.collect_diagnostics(&run.artifacts_dir).await;
    }
    let problems = session.close(false).await;
    result?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn wait_spec(target: WaitTarget) -> WaitSpec {
    WaitSpec {
        target,
        condition: None,
        namespace: None,
        ready_workers: None,
    }
}

async fn apply_wait_and_endpoints(s: &mut dyn Session) -> Result<(), String> {
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pause"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "pause"}},
                 "template": {"metadata": {"labels": {"app": "pause"}},
                              "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                                       "ports": [{"containerPort": 8080}]}]}}}});
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "pause"},
        "spec": {"selector": {"app": "pause"}, "ports": [{"port": 8080}]}});
    s.apply(&[deployment.clone(), service.clone()])
        .await
        .map_err(|e| e.to_string())?;
    s.apply(&[deployment, service])
        .await
        .map_err(|e| format!("re-apply: {e}"))?;
    let timeout = Duration::from_secs(180);
    for target in [
        WaitTarget::Deployment("pause".into()),
        WaitTarget::Pods("app=pause".into()),
        WaitTarget::Endpoints("pause".into()),
    ] {
        let summary = s
            .wait(&wait_spec(target), timeout)
            .await
            .map_err(|e| e.to_string())?;
        eprintln!("  {summary}");
    }
    let missing = s
        .wait(
            &wait_spec(WaitTarget::Deployment("absent".into())),
            Duration::from_secs(2),
        )
        .await;
    match missing {
        Err(rayconform::targets::StepError::Failed { evidence, .. })
            if evidence
                .first()
                .is_some_and(|e| e.contains("does not exist")) =>
        {
            Ok(())
        }
        other => Err(format!("waiting for a missing Deployment: {other:?}")),
    }
}

async fn webhook_denies_snippets(s: &mut dyn Session) -> Result<(), String> {
    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "snippet", "annotations": {"nginx.ingress.kubernetes.io/configuration-snippet": "more_set_headers \"X: y\";"}},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "snippet.invalid", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "none", "port": {"number": 80}}}}]}}]}});
    s.expect_denied(&[ingress], "validate.nginx.ingress.kubernetes.io")
        .await
        .map(|summary| eprintln!("  {summary}"))
        .map_err(|e| e.to_string())
}

async fn diagnostics_collected(s: &mut dyn Session, dir: PathBuf) -> Result<(), String> {
    let files = s.collect_diagnostics(&dir).await;
    let conf = files
        .iter()
        .find(|f| f.to_string_lossy().ends_with(".nginx.conf"));
    match conf {
        Some(path) if std::fs::read_to_string(path).is_ok_and(|t| t.contains("http {")) => Ok(()),
        _ => Err(format!("no rendered nginx.conf among {files:?}")),
    }
}
