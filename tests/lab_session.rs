//! A lab session end to end with real Ray and nginx: variables, a
//! RayCluster with a worker node, an Ingress, waits, delete, diagnostics,
//! and a close that leaves no process behind.

use rayconform::scenario::{RayClusterCondition, WaitSpec, WaitTarget, load_str, parse_manifests};
use rayconform::targets::lab::LabTarget;
use rayconform::targets::{ScenarioRun, StepError, Target};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A lab run of `scenario` in namespace `ns`, its folders under `dir`.
fn lab_run(scenario: Arc<rayconform::scenario::Scenario>, ns: &str, dir: &Path) -> ScenarioRun {
    ScenarioRun {
        scenario,
        run_id: "t".into(),
        namespace: ns.into(),
        work_dir: dir.to_path_buf(),
        artifacts_dir: dir.join("artifacts"),
        project_root: root(),
        certificates: None,
        keep: false,
        progress: Arc::new(|_| {}),
    }
}

const SCENARIO: &str = r#"
apiVersion: rayconform.dev/v1alpha1
kind: Scenario
metadata: { name: session-test }
spec:
  targets: [lab]
  install:
    - ingressNginx: { tcpServices: { "6379": "${NAMESPACE}/rc-head-svc:6379" } }
    - kuberayOperator: {}
  steps:
    - probe: { tcp: { address: "${INGRESS_TCP_6379}" } }
"#;

const MANIFESTS: &str = r#"
apiVersion: ray.io/v1
kind: RayCluster
metadata: { name: rc, namespace: ns-test }
spec:
  headGroupSpec:
    rayStartParams: { num-cpus: "1" }
    template:
      spec:
        containers: [{ name: ray-head, image: "rayproject/ray:2.60.0" }]
  workerGroupSpecs:
    - groupName: w
      replicas: 1
      rayStartParams: {}
      template:
        spec:
          containers: [{ name: ray-worker, image: "rayproject/ray:2.60.0" }]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: dash, namespace: ns-test }
spec:
  rules:
    - host: localhost
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: { service: { name: rc-head-svc, port: { number: 8265 } } }
"#;

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false)
}

fn pids(text: &str) -> Vec<u32> {
    // "pid 123" and "worker pids [1, 2]" in how_to_reach.
    let mut found = Vec::new();
    for part in text.split("pid").skip(1) {
        let digits: String = part
            .trim_start_matches(['s', ' ', '['])
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if let Ok(p) = digits.parse() {
            found.push(p);
        }
        if let Some(list) = part.strip_prefix("s [") {
            found.extend(
                list.split(']')
                    .next()
                    .unwrap_or("")
                    .split(", ")
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

async fn get(url: &str) -> u16 {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    match client.get(url).timeout(Duration::from_secs(5)).send().await {
        Ok(r) => r.status().as_u16(),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_runs_a_cluster_with_a_worker_routes_it_and_cleans_up() {
    rayconform::tls::install_crypto_provider();
    let scenario =
        Arc::new(load_str(Path::new("session.yaml"), SCENARIO, &root()).expect("scenario"));
    let work = tempfile::tempdir().unwrap();
    let target = LabTarget::new(root());
    assert_eq!(target.unavailable_reason(), None, "run scripts/setup");
    let run = lab_run(scenario, "ns-test", work.path());
    let mut session = target.open(&run).await.expect("open");
    let vars = session.variables();
    assert_eq!(vars["NAMESPACE"], "ns-test");
    assert_eq!(vars["CLUSTER_NAME"], "lab");
    let http = vars["INGRESS_HTTP"].clone();
    assert!(vars.contains_key("INGRESS_TCP_6379"), "{vars:?}");
    assert_eq!(
        get(&format!("http://{http}/")).await,
        404,
        "default backend before any Ingress"
    );

    let manifests = parse_manifests(MANIFESTS).unwrap();
    let summary = session.apply(&manifests).await.expect("apply");
    assert!(summary.contains("1 worker(s)"), "{summary}");
    let ready = WaitSpec {
        target: WaitTarget::RayCluster("rc".into()),
        condition: Some(RayClusterCondition::Ready),
        namespace: None,
        ready_workers: None,
    };
    let waited = session.wait(&ready, Duration::from_secs(90)).await;
    assert!(
        waited.is_ok(),
        "cluster with one worker must become Ready: {waited:?}\n{}",
        session.how_to_reach()
    );
    assert_eq!(get(&format!("http://{http}/api/version")).await, 200);

    let missing = WaitSpec {
        target: WaitTarget::RayCluster("nope".into()),
        ..ready.clone()
    };
    match session.wait(&missing, Duration::from_millis(500)).await {
        Err(StepError::Failed { evidence, .. }) => {
            assert!(evidence.join(" ").contains("not applied"), "{evidence:?}")
        }
        other => panic!("waiting for an unknown RayCluster must fail: {other:?}"),
    }
    let deployment = WaitSpec {
        target: WaitTarget::Deployment("web".into()),
        ..ready.clone()
    };
    assert!(matches!(
        session.wait(&deployment, Duration::from_secs(1)).await,
        Err(StepError::Unsupported(_))
    ));

    let reach = session.how_to_reach();
    let running = pids(&reach);
    assert!(
        running.len() >= 3,
        "nginx, head and worker pids expected in: {reach}"
    );
    assert!(running.iter().all(|p| alive(*p)), "{reach}");

    let diagnostics = session.collect_diagnostics(&work.path().join("diag")).await;
    let names: Vec<String> = diagnostics
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in [
        "nginx.conf",
        "nginx-error.log",
        "lab-notes.txt",
        "ray-ns-test-rc.log",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    // Deleting the RayCluster takes its endpoints away: 503, as on a cluster.
    session.delete(&manifests[..1]).await.expect("delete");
    assert_eq!(get(&format!("http://{http}/api/version")).await, 503);

    let problems = session.close(false).await;
    assert!(problems.is_empty(), "{problems:?}");
    let problems = target.shutdown(false).await;
    assert!(problems.is_empty(), "{problems:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left: Vec<u32> = running.into_iter().filter(|p| alive(*p)).collect();
    assert!(
        left.is_empty(),
        "processes left running after close + shutdown: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passthrough_to_a_headless_service_is_reported_as_the_labs_model() {
    rayconform::tls::install_crypto_provider();
    let text = "
apiVersion: rayconform.dev/v1alpha1
kind: Scenario
metadata: { name: modelled-test }
spec:
  targets: [lab]
  install:
    - ingressNginx: { sslPassthrough: true }
  steps:
    - probe: { tcp: { address: \"${INGRESS_HTTPS}\" } }
";
    let scenario = Arc::new(load_str(Path::new("m.yaml"), text, &root()).expect("scenario"));
    let work = tempfile::tempdir().unwrap();
    let target = LabTarget::new(root());
    let run = lab_run(scenario, "ns-m", work.path());
    let mut session = target.open(&run).await.expect("open");
    let service = |headless: bool| {
        format!(
            "apiVersion: v1
kind: Service
metadata: {{ name: svc, namespace: ns-m }}
spec:
  clusterIP: {}
  selector: {{ ray.io/cluster: rc }}
  ports: [{{ name: client, port: 10001 }}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: pass
  namespace: ns-m
  annotations: {{ nginx.ingress.kubernetes.io/ssl-passthrough: \"true\" }}
spec:
  rules:
    - host: localhost
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {{ service: {{ name: svc, port: {{ number: 10001 }} }} }}
",
            if headless { "None" } else { "null" }
        )
    };
    session
        .apply(&parse_manifests(&service(false)).unwrap())
        .await
        .expect("apply");
    assert!(
        session.modelled_defects().is_empty(),
        "a ClusterIP Service models nothing: {:?}",
        session.modelled_defects()
    );
    session
        .apply(&parse_manifests(&service(true)).unwrap())
        .await
        .expect("apply");
    let modelled = session.modelled_defects();
    assert_eq!(modelled.len(), 1, "{modelled:?}");
    assert!(
        modelled[0].contains("ns-m/svc") && modelled[0].contains("issues/1718"),
        "{modelled:?}"
    );
    assert!(session.close(false).await.is_empty());
    assert!(target.shutdown(false).await.is_empty());
}

/// A Ray head that cannot start breaks the apply with the lab's own typed
/// error as the cause (not a flattened string), and the same text as
/// before: `RayCluster <name>: Ray head did not start: ...`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_cannot_start_breaks_the_apply_with_a_typed_cause() {
    use rayconform::targets::lab::LabError;
    use std::os::unix::fs::PermissionsExt;
    if std::env::var_os("RAYCONFORM_RAY_VENV").is_some() {
        panic!("RAYCONFORM_RAY_VENV is set: this test needs the project root's venv path");
    }
    let fake = tempfile::tempdir().unwrap();
    let bin = fake.path().join(".lab/ray-venv/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, text) in [
        ("ray", "#!/bin/sh\necho \"ray refused: $*\" >&2\nexit 1\n"),
        ("python", "#!/bin/sh\nexit 1\n"),
    ] {
        std::fs::write(bin.join(name), text).unwrap();
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let scenario =
        Arc::new(load_str(Path::new("session.yaml"), SCENARIO, &root()).expect("scenario"));
    let work = tempfile::tempdir().unwrap();
    let target = LabTarget::new(fake.path().to_path_buf());
    let mut run = lab_run(scenario, "ns-test", work.path());
    run.project_root = fake.path().to_path_buf();
    let mut session = target.open(&run).await.expect("open");
    let manifests = parse_manifests(MANIFESTS).unwrap();
    let err = session
        .apply(&manifests[..1])
        .await
        .expect_err("a head that exits at once cannot be applied");
    let StepError::Broken(broken) = &err else {
        panic!("expected broken infrastructure, got {err:?}");
    };
    assert!(
        matches!(
            broken.cause_as::<LabError>(),
            Some(LabError::StartFailed { what, .. }) if what == "Ray head"
        ),
        "the cause is the lab's typed error: {broken:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("RayCluster rc: Ray head did not start: `ray start` exited early"),
        "{text}"
    );
    assert!(text.contains("ray refused: start --head --block"), "{text}");
    assert!(session.close(false).await.is_empty());
    target.shutdown(false).await;
}
