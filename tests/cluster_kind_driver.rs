//! The kind target end to end with a stand-in `kind` program on PATH (a
//! shell script that records its arguments and hands out a kubeconfig for
//! the API double): create with the rendered config and pinned image,
//! reuse by name, delete only what this run created, version mismatch and
//! boot failures as broken infrastructure with kind's output.

mod support;

use rayconform::target::kind::KindTarget;
use rayconform::target::registry::TargetOptions;
use rayconform::target::{ScenarioRun, StepError, Target};
use std::path::{Path, PathBuf};
use support::apiserver::ApiDouble;

const FAKE_KIND: &str = r#"#!/bin/sh
echo "$*" >> "$FAKE_KIND_DIR/log"
case "$1 $2" in
  "version "*) echo "kind ${FAKE_KIND_RELEASE:-v0.33.0} go1.24.5 linux/amd64" ;;
  "get clusters") cat "$FAKE_KIND_DIR/clusters" 2>/dev/null; true ;;
  "get kubeconfig") cat "$FAKE_KIND_DIR/kubeconfig" ;;
  "create cluster")
    cp "$6" "$FAKE_KIND_DIR/last-config.yaml"
    if [ -f "$FAKE_KIND_DIR/fail" ]; then
      echo "ERROR: failed to create cluster: command \"docker run\" failed: port is already allocated" >&2
      exit 1
    fi
    echo "$4" >> "$FAKE_KIND_DIR/clusters"
    echo "Creating cluster \"$4\" ..." ;;
  "delete cluster")
    grep -v "^$4\$" "$FAKE_KIND_DIR/clusters" > "$FAKE_KIND_DIR/clusters.new" 2>/dev/null
    mv "$FAKE_KIND_DIR/clusters.new" "$FAKE_KIND_DIR/clusters" ;;
esac
"#;

fn log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn target(root: &Path) -> KindTarget {
    KindTarget::new(TargetOptions {
        project_root: root.to_path_buf(),
        kube_context: None,
        k8s_version: Some("1.35".into()),
    })
}

fn run_in(root: &Path, work: &Path, namespace: &str) -> ScenarioRun {
    let mut run = support::run(scenario(), namespace, work, None);
    run.project_root = root.to_path_buf();
    run
}

fn scenario() -> rayconform::scenario::Scenario {
    let mut s = support::scenario("kind-driver");
    s.cluster = Some(rayconform::scenario::ClusterSpec {
        config: Some("kind-configs/ingress-ready.yaml".into()),
        extra_port_mappings: Vec::new(),
        workers: 1,
    });
    s
}

// One test in this binary: it owns PATH, DOCKER_HOST and XDG_CACHE_HOME.
#[tokio::test]
async fn kind_clusters_are_created_reused_and_deleted() {
    let double = ApiDouble::start().await;
    let fake = tempfile::tempdir().unwrap();
    let dir = fake.path().to_path_buf();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("kind"), FAKE_KIND).unwrap();
    std::fs::write(bin.join("docker"), "#!/bin/sh\nexit 0\n").unwrap();
    for tool in ["kind", "docker"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join(tool), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(dir.join("docker.sock"), "").unwrap();
    std::fs::write(
        dir.join("kubeconfig"),
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: kind\n  cluster:\n    server: {}\nusers:\n- name: kind\n  user: {{}}\ncontexts:\n- name: kind\n  context:\n    cluster: kind\n    user: kind\ncurrent-context: kind\n", double.url),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: single test in this binary; no other thread reads the environment.
    unsafe {
        std::env::set_var("PATH", path);
        std::env::set_var(
            "DOCKER_HOST",
            format!("unix://{}", dir.join("docker.sock").display()),
        );
        std::env::set_var("XDG_CACHE_HOME", dir.join("cache"));
        std::env::set_var("FAKE_KIND_DIR", &dir);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();

    // Create, use, and delete at shutdown.
    let kind = target(&root);
    assert_eq!(kind.unavailable_reason(), None);
    let run = run_in(&root, work.path(), "rc-kind-1");
    let mut session = kind.open(&run).await.unwrap_or_else(|e| panic!("{e}"));
    let creates: Vec<String> = log(&dir)
        .into_iter()
        .filter(|l| l.starts_with("create cluster"))
        .collect();
    assert_eq!(creates.len(), 1, "{:?}", log(&dir));
    let name = creates[0].split_whitespace().nth(3).unwrap().to_string();
    assert!(name.starts_with("rayconform-"), "{name}");
    assert!(
        creates[0].contains("--image kindest/node:v1.35.8@sha256:07b2536e30b8"),
        "{}",
        creates[0]
    );
    assert!(creates[0].ends_with("--wait 5m"), "{}", creates[0]);
    let config =
        rayconform::target::kind::config::KindConfig::load(&dir.join("last-config.yaml")).unwrap();
    assert_eq!(config.nodes.len(), 2, "control plane + 1 worker");
    let cached = dir
        .join("cache/rayconform/kind")
        .join(format!("{name}.yaml"));
    assert_eq!(std::fs::read_to_string(cached).unwrap(), config.to_yaml());
    assert!(double.get("namespaces", "", "rc-kind-1").is_some());
    assert_eq!(session.variables()["INGRESS_HTTPS"], "localhost:443");
    assert!(session.how_to_reach().contains(&name));
    session.close(false).await;
    // A second scenario with the same config shares the cluster.
    let run2 = run_in(&root, work.path(), "rc-kind-2");
    kind.open(&run2).await.unwrap().close(false).await;
    assert_eq!(
        log(&dir)
            .iter()
            .filter(|l| l.starts_with("create cluster"))
            .count(),
        1
    );
    assert!(kind.shutdown(false).await.is_empty());
    assert!(
        log(&dir).contains(&format!("delete cluster --name {name}")),
        "{:?}",
        log(&dir)
    );

    // A cluster of that name left by an earlier --keep is reused, and left alone.
    std::fs::write(dir.join("clusters"), format!("{name}\n")).unwrap();
    std::fs::remove_file(dir.join("log")).unwrap();
    let kind = target(&root);
    kind.open(&run).await.unwrap().close(false).await;
    assert!(kind.shutdown(false).await.is_empty());
    let calls = log(&dir);
    assert!(
        !calls
            .iter()
            .any(|l| l.starts_with("create cluster") || l.starts_with("delete cluster")),
        "{calls:?}"
    );

    // A kind release that did not build the node image is refused up front.
    std::fs::write(dir.join("clusters"), "").unwrap();
    unsafe { std::env::set_var("FAKE_KIND_RELEASE", "v0.31.0") };
    let why = target(&root)
        .unavailable_reason()
        .expect("kind v0.31.0 cannot boot 1.35.8");
    assert!(
        why.contains("kind v0.31.0 is on PATH") && why.contains("needs kind v0.33.0"),
        "{why}"
    );
    match target(&root).open(&run).await.err() {
        Some(StepError::Broken(m)) => {
            assert!(
                m.contains("kind on PATH is v0.31.0") && m.contains("built for kind v0.33.0"),
                "{m}"
            )
        }
        other => panic!("expected Broken, got {other:?}"),
    }
    unsafe { std::env::remove_var("FAKE_KIND_RELEASE") };

    // An unknown Kubernetes version is an error listing the supported ones.
    let unknown = KindTarget::new(TargetOptions {
        project_root: root.clone(),
        kube_context: None,
        k8s_version: Some("1.29".into()),
    });
    assert_eq!(unknown.unsupported_reason(&run.scenario, &root), None);
    match unknown.open(&run).await.err() {
        Some(StepError::Broken(m)) => assert!(
            m.contains("`1.29` is not supported on kind; supported: 1.37"),
            "{m}"
        ),
        other => panic!("expected Broken, got {other:?}"),
    }

    // A failed boot is broken infrastructure with kind's own words, and the
    // half-made cluster is deleted.
    std::fs::write(dir.join("fail"), "").unwrap();
    std::fs::remove_file(dir.join("log")).unwrap();
    match target(&root).open(&run).await.err() {
        Some(StepError::Broken(m)) => {
            assert!(
                m.contains(&format!("kind could not create cluster {name}")),
                "{m}"
            );
            assert!(m.contains("port is already allocated"), "{m}");
        }
        other => panic!("expected Broken, got {other:?}"),
    }
    assert!(
        log(&dir).contains(&format!("delete cluster --name {name}")),
        "{:?}",
        log(&dir)
    );
}
