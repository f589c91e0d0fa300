//! The `existing` target end to end against the API double: kubeconfig from
//! KUBECONFIG (and a named context), the scenario namespace created and
//! deleted, nothing else touched.

mod support;

use rayconform::scenario::TargetKind;
use rayconform::targets::Target;
use rayconform::targets::TargetOptions;
use rayconform::targets::existing::ExistingTarget;
use serde_json::json;
use support::apiserver::ApiDouble;

const NS: &str = "rc-existing";

fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: http://127.0.0.1:1\n- name: double\n  cluster:\n    server: {url}\nusers:\n- name: tester\n  user: {{}}\ncontexts:\n- name: wrong\n  context:\n    cluster: other\n    user: tester\n- name: the-double\n  context:\n    cluster: double\n    user: tester\ncurrent-context: wrong\n"
    )
}

// One test in this binary: it owns the process environment.
#[tokio::test]
async fn runs_a_scenario_namespace_on_a_cluster_from_kubeconfig() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    let opts = |context: Option<&str>| TargetOptions {
        project_root: dir.path().to_path_buf(),
        kube_context: context.map(str::to_string),
        k8s_version: None,
    };

    // SAFETY: this test binary has a single test; nothing else reads the
    // environment concurrently.
    unsafe { std::env::set_var("KUBECONFIG", &path) };
    let missing = ExistingTarget::new(opts(None))
        .unavailable_reason()
        .expect("no file yet");
    assert!(missing.contains("does not exist"), "{missing}");

    std::fs::write(&path, kubeconfig(&double.url)).unwrap();
    let target = ExistingTarget::new(opts(Some("the-double")));
    assert_eq!(target.kind(), TargetKind::Existing);
    assert_eq!(target.unavailable_reason(), None);

    let run = support::run(support::scenario("existing"), NS, dir.path(), None);
    let mut session = target.open(&run).await.expect("session on the double");
    assert!(double.get("namespaces", "", NS).is_some());
    assert_eq!(session.variables()["INGRESS_HTTP"], "localhost:80");
    session
        .apply(&[json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})])
        .await
        .unwrap();
    assert_eq!(double.get("configmaps", NS, "c").unwrap()["data"]["k"], "v");
    assert!(
        session.how_to_reach().contains("context the-double"),
        "{}",
        session.how_to_reach()
    );
    assert!(session.close(false).await.is_empty());
    assert!(
        double.get("namespaces", "", NS).is_none(),
        "only the scenario namespace is deleted"
    );
    assert!(target.shutdown(false).await.is_empty());

    // Nothing else touched: every write the double received stayed inside
    // the scenario namespace (the Namespace object itself included).
    let writes: Vec<(String, String)> = double
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| {
            (
                r.method,
                r.uri.split('?').next().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        writes.len() >= 3,
        "namespace created, ConfigMap applied, namespace deleted: {writes:?}"
    );
    let outside: Vec<&(String, String)> = writes
        .iter()
        .filter(|(_, path)| !in_namespace(path, NS))
        .collect();
    assert!(outside.is_empty(), "writes outside {NS}: {outside:?}");
    let deletions: Vec<&str> = writes
        .iter()
        .filter(|(method, _)| method == "DELETE")
        .map(|(_, path)| path.as_str())
        .collect();
    assert_eq!(
        deletions,
        [
            format!("/api/v1/namespaces/{NS}/configmaps/c"),
            format!("/api/v1/namespaces/{NS}")
        ],
        "the only deletions are what the scenario applied, then its namespace"
    );
}

/// Whether an API path is the namespace `ns` itself or an object inside it
/// (`/api/v1/namespaces/<ns>[/...]`, `/apis/<group>/<version>/namespaces/<ns>[/...]`).
fn in_namespace(path: &str, ns: &str) -> bool {
    let rest = if let Some(rest) = path.strip_prefix("/api/v1/") {
        rest
    } else if let Some(rest) = path.strip_prefix("/apis/") {
        match rest.splitn(3, '/').nth(2) {
            Some(rest) => rest,
            None => return false,
        }
    } else {
        return false;
    };
    rest.strip_prefix(&format!("namespaces/{ns}"))
        .is_some_and(|r| r.is_empty() || r.starts_with('/'))
}
