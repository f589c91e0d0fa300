//! The kind target end to end with a stand-in `kind` program on PATH (a
//! shell script that records its arguments, hands out a kubeconfig for
//! the API double, and refuses a host port a live cluster already
//! publishes, as Docker does): create with the rendered config and pinned
//! image, reuse by name, delete only what this run created, version
//! mismatch and boot failures as broken infrastructure with kind's output,
//! no two clusters alive at once on one host port over the whole
//! `scenarios/` set, and no namespace left behind by a failed install.

mod support;

use futures::StreamExt;
use rayconform::install::ingress_nginx;
use rayconform::scenario::{IngressNginxInstall, Install, load_all};
use rayconform::targets::TargetOptions;
use rayconform::targets::kind::KindTarget;
use rayconform::targets::{ProgressFn, ScenarioRun, StepError, Target};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
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
    # Like Docker: a host port published by a live cluster cannot be published again.
    mkdir -p "$FAKE_KIND_DIR/ports"
    for port in $(sed -n 's/^ *hostPort: *//p' "$6"); do
      if cat "$FAKE_KIND_DIR"/ports/* 2>/dev/null | grep -qx "$port"; then
        echo "$4 $port" >> "$FAKE_KIND_DIR/collisions"
        echo "ERROR: failed to create cluster: Bind for 0.0.0.0:$port failed: port is already allocated" >&2
        exit 1
      fi
    done
    sed -n 's/^ *hostPort: *//p' "$6" > "$FAKE_KIND_DIR/ports/$4"
    echo "$4" >> "$FAKE_KIND_DIR/clusters"
    echo "Creating cluster \"$4\" ..." ;;
  "delete cluster")
    rm -f "$FAKE_KIND_DIR/ports/$4"
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

/// The tests share PATH, DOCKER_HOST, XDG_CACHE_HOME and the stand-in's
/// folder: they take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Puts the stand-in kind (and a docker that answers) on PATH, with a
/// kubeconfig for `double`; returns the stand-in's folder, emptied.
fn fake_kind(double: &ApiDouble) -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR
        .get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .to_path_buf();
    for leftover in ["log", "clusters", "collisions", "fail", "ports"] {
        let _ = std::fs::remove_file(dir.join(leftover));
        let _ = std::fs::remove_dir_all(dir.join(leftover));
    }
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
    let path = std::env::var("PATH").unwrap_or_default();
    // SAFETY: the tests of this binary hold SERIAL while they touch the environment.
    unsafe {
        if !path.starts_with(&bin.display().to_string()) {
            std::env::set_var("PATH", format!("{}:{path}", bin.display()));
        }
        std::env::set_var(
            "DOCKER_HOST",
            format!("unix://{}", dir.join("docker.sock").display()),
        );
        std::env::set_var("XDG_CACHE_HOME", dir.join("cache"));
        std::env::set_var("FAKE_KIND_DIR", &dir);
        std::env::remove_var("FAKE_KIND_RELEASE");
        std::env::remove_var(ingress_nginx::MANIFEST_ENV);
    }
    dir
}

fn creates(dir: &Path) -> Vec<String> {
    log(dir)
        .into_iter()
        .filter(|l| l.starts_with("create cluster"))
        .collect()
}

#[tokio::test]
async fn kind_clusters_are_created_reused_and_deleted() {
    let _turn = SERIAL.lock().await;
    let double = ApiDouble::start().await;
    let dir = fake_kind(&double);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();

    // Create, use, and delete at shutdown.
    let kind = target(&root);
    assert_eq!(kind.unavailable_reason(), None);
    let run = run_in(&root, work.path(), "rc-kind-1");
    let mut session = kind.open(&run).await.unwrap_or_else(|e| panic!("{e}"));
    let made = creates(&dir);
    assert_eq!(made.len(), 1, "{:?}", log(&dir));
    let name = made[0].split_whitespace().nth(3).unwrap().to_string();
    assert!(name.starts_with("rayconform-"), "{name}");
    assert!(
        made[0].contains("--image kindest/node:v1.35.8@sha256:07b2536e30b8"),
        "{}",
        made[0]
    );
    assert!(made[0].ends_with("--wait 5m"), "{}", made[0]);
    let config =
        rayconform::targets::kind::config::KindConfig::load(&dir.join("last-config.yaml")).unwrap();
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

    // A minor picks the image built for the kind on PATH: kind v0.32.0
    // boots 1.35 with its own 1.35.5 image.
    std::fs::write(dir.join("clusters"), "").unwrap();
    std::fs::remove_file(dir.join("log")).unwrap();
    unsafe { std::env::set_var("FAKE_KIND_RELEASE", "v0.32.0") };
    let v032 = target(&root);
    assert_eq!(v032.unavailable_reason(), None);
    v032.open(&run)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .close(false)
        .await;
    let made = creates(&dir);
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(
        made[0].contains("--image kindest/node:v1.35.5@sha256:ce977ae6d659"),
        "{}",
        made[0]
    );
    assert!(v032.shutdown(false).await.is_empty());

    // A kind release with no image of the asked minor is refused up front,
    // naming the release it needs and what the installed one can boot.
    unsafe { std::env::set_var("FAKE_KIND_RELEASE", "v0.31.0") };
    let v037 = |root: &Path| {
        KindTarget::new(TargetOptions {
            project_root: root.to_path_buf(),
            kube_context: None,
            k8s_version: Some("1.37".into()),
        })
    };
    let why = v037(&root)
        .unavailable_reason()
        .expect("kind v0.31.0 cannot boot 1.37.0");
    assert!(
        why.contains("kind v0.31.0 is on PATH")
            && why.contains("Kubernetes 1.37.0 needs kind v0.33.0")
            && why.contains("images for kind v0.31.0: 1.35.0, 1.34.3"),
        "{why}"
    );
    match v037(&root).open(&run).await.err() {
        Some(StepError::Broken(m)) => {
            let m = m.to_string();
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
        Some(StepError::Broken(m)) => {
            let m = m.to_string();
            assert!(
                m.contains("`1.29` is not supported on kind; supported: 1.37"),
                "{m}"
            )
        }
        other => panic!("expected Broken, got {other:?}"),
    }

    // A failed boot is broken infrastructure with kind's own words, and the
    // half-made cluster is deleted.
    std::fs::write(dir.join("fail"), "").unwrap();
    std::fs::remove_file(dir.join("log")).unwrap();
    match target(&root).open(&run).await.err() {
        Some(StepError::Broken(m)) => {
            let m = m.to_string();
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

fn progress_into(lines: &Arc<std::sync::Mutex<Vec<String>>>) -> ProgressFn {
    let sink = lines.clone();
    Arc::new(move |m: &str| sink.lock().unwrap().push(m.to_string()))
}

/// Runs every kind scenario of `scenarios/` as far as its cluster, `jobs`
/// at a time, each holding its cluster a little while as a real scenario
/// would; returns the stand-in's log.
async fn hold_clusters(
    kind: &KindTarget,
    scenarios: Vec<rayconform::scenario::Scenario>,
    jobs: usize,
    progress: &ProgressFn,
) {
    let results: Vec<Result<(), String>> = futures::stream::iter(scenarios)
        .map(|s| async move {
            let lease = kind
                .acquire_cluster(&s, None, false, progress)
                .await
                .map_err(|e| format!("{}: {e}", s.name))?;
            tokio::time::sleep(Duration::from_millis(30)).await;
            drop(lease);
            Ok(())
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    for r in results {
        r.unwrap_or_else(|e| panic!("{e}"));
    }
}

#[tokio::test]
async fn no_two_clusters_alive_at_once_share_a_host_port_over_all_scenarios() {
    let _turn = SERIAL.lock().await;
    let double = ApiDouble::start().await;
    let dir = fake_kind(&double);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let loaded = load_all(&[root.join("scenarios")], &root);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let scenarios: Vec<_> = loaded
        .scenarios
        .into_iter()
        .filter(|s| s.targets.contains(&rayconform::scenario::TargetKind::Kind))
        .collect();
    assert!(scenarios.len() >= 8, "{}", scenarios.len());
    let kind = target(&root);
    let grouping = kind.cluster_groups(&scenarios).unwrap();
    assert!(grouping.unrendered.is_empty(), "{grouping:?}");
    let groups = grouping.groups;
    assert!(groups.len() >= 4, "{groups:?}");
    // The premise: some clusters share host ports (80 and 443 at least).
    assert!(
        groups
            .iter()
            .all(|g| g.host_ports.contains(&"80/TCP".to_string())),
        "{groups:?}"
    );
    let messages = Arc::new(std::sync::Mutex::new(Vec::new()));
    let progress = progress_into(&messages);
    // The Ray image is pulled once by the job and loaded into each cluster.
    unsafe {
        std::env::set_var(
            rayconform::targets::kind::pool::LOAD_IMAGES_ENV,
            "rayproject/ray:2.60.0",
        )
    };

    // In run order, two scenarios at a time: each cluster is created once,
    // and never while another on one of its host ports is alive.
    let ordered = kind.run_order(scenarios.clone());
    let order: Vec<&str> = ordered.iter().map(|s| s.name.as_str()).collect();
    let grouped: Vec<&str> = groups
        .iter()
        .flat_map(|g| g.scenarios.iter().map(|(n, _)| n.as_str()))
        .collect();
    assert_eq!(order, grouped, "run order is group by group");
    hold_clusters(&kind, ordered, 2, &progress).await;
    let collisions = std::fs::read_to_string(dir.join("collisions")).unwrap_or_default();
    assert_eq!(collisions, "", "clusters alive at once on one host port");
    assert_eq!(creates(&dir).len(), groups.len(), "{:?}", log(&dir));
    for (i, line) in log(&dir).iter().enumerate() {
        if let Some(rest) = line.strip_prefix("create cluster --name ") {
            let name = rest.split_whitespace().next().unwrap();
            assert_eq!(
                log(&dir).get(i + 1).map(String::as_str),
                Some(format!("load docker-image rayproject/ray:2.60.0 --name {name}").as_str()),
                "the image is loaded right after each create"
            );
        }
    }
    unsafe { std::env::remove_var(rayconform::targets::kind::pool::LOAD_IMAGES_ENV) };
    assert!(kind.shutdown(false).await.is_empty());
    let left = std::fs::read_to_string(dir.join("clusters")).unwrap_or_default();
    assert_eq!(left.trim(), "", "every cluster this run created is deleted");
    let said = messages.lock().unwrap().join("\n");
    assert!(
        said.contains("deleting kind cluster rayconform-")
            && said.contains("needs its host port(s) 80/TCP"),
        "{said}"
    );

    // In file order, three at a time (scenarios of different clusters
    // interleaved): still never two clusters on one host port.
    let _ = std::fs::remove_file(dir.join("log"));
    let kind = target(&root);
    hold_clusters(&kind, scenarios.clone(), 3, &progress).await;
    let collisions = std::fs::read_to_string(dir.join("collisions")).unwrap_or_default();
    assert_eq!(collisions, "", "clusters alive at once on one host port");
    assert!(creates(&dir).len() >= groups.len());
    assert!(kind.shutdown(false).await.is_empty());

    // With --keep nothing is deleted: a cluster whose ports are held by a
    // kept one is refused, naming it, instead of colliding.
    let _ = std::fs::remove_file(dir.join("log"));
    let kind = target(&root);
    let first = &groups[0].scenarios[0].0;
    let second = &groups[1].scenarios[0].0;
    let by_name = |n: &str| scenarios.iter().find(|s| s.name == n).unwrap().clone();
    drop(
        kind.acquire_cluster(&by_name(first), None, true, &progress)
            .await
            .unwrap(),
    );
    match kind
        .acquire_cluster(&by_name(second), None, true, &progress)
        .await
        .err()
    {
        Some(StepError::Broken(m)) => {
            let m = m.to_string();
            assert!(
                m.contains(&format!(
                    "kind cluster {} (kept by --keep) holds host port(s) 80/TCP",
                    groups[0].cluster
                )),
                "{m}"
            )
        }
        other => panic!("expected Broken, got {:?}", other.map(|e| e.to_string())),
    }
    assert_eq!(creates(&dir).len(), 1, "{:?}", log(&dir));
    assert!(kind.shutdown(true).await.is_empty());

    // That kept cluster, seen by the next run: it is named as the holder of
    // the ports before kind is asked to create a colliding cluster.
    let _ = std::fs::remove_file(dir.join("log"));
    let kind = target(&root);
    match kind
        .acquire_cluster(&by_name(second), None, false, &progress)
        .await
        .err()
    {
        Some(StepError::Broken(m)) => {
            let m = m.to_string();
            assert!(
                m.contains(&format!(
                    "kind cluster {} (left by an earlier run) holds host port(s) 80/TCP, 443/TCP",
                    groups[0].cluster
                )) && m.contains(&format!("kind delete cluster --name {}", groups[0].cluster)),
                "{m}"
            )
        }
        other => panic!("expected Broken, got {:?}", other.map(|e| e.to_string())),
    }
    assert_eq!(creates(&dir).len(), 0, "{:?}", log(&dir));
    // Its own config is reused, and never deleted.
    drop(
        kind.acquire_cluster(&by_name(first), None, false, &progress)
            .await
            .unwrap(),
    );
    assert!(kind.shutdown(false).await.is_empty());
    assert!(
        !log(&dir).iter().any(|l| l.starts_with("delete cluster")),
        "{:?}",
        log(&dir)
    );
}

#[tokio::test]
async fn a_failed_install_leaves_no_namespace_behind() {
    let _turn = SERIAL.lock().await;
    let double = ApiDouble::start().await;
    let dir = fake_kind(&double);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Not the pinned manifest: the install refuses it after the namespace exists.
    let manifest = dir.join("deploy.yaml");
    std::fs::write(&manifest, "kind: Namespace\n").unwrap();
    unsafe { std::env::set_var(ingress_nginx::MANIFEST_ENV, &manifest) };
    let mut s = scenario();
    s.install = vec![Install::IngressNginx(IngressNginxInstall::default())];
    let work = tempfile::tempdir().unwrap();
    let mut run = support::run(s, "rc-kind-failed-install", work.path(), None);
    run.project_root = root.clone();
    let kind = target(&root);
    match kind.open(&run).await.err() {
        Some(StepError::Broken(m)) => {
            let m = m.to_string();
            assert!(
                m.starts_with("install failed:") && m.contains("sha256"),
                "{m}"
            )
        }
        other => panic!(
            "expected a broken install, got {:?}",
            other.map(|e| e.to_string())
        ),
    }
    assert!(
        double
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.uri.contains("/namespaces/rc-kind-failed-install")),
        "the namespace was created before the install"
    );
    assert!(
        double
            .get("namespaces", "", "rc-kind-failed-install")
            .is_none(),
        "the scenario namespace leaked after the failed install"
    );
    unsafe { std::env::remove_var(ingress_nginx::MANIFEST_ENV) };
    assert!(kind.shutdown(false).await.is_empty());
}
