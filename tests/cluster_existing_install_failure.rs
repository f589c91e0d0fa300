//! A failed install on the `existing` target does not leak the scenario
//! namespace: it was created before the install, so the target deletes it
//! before reporting the failure (issue 7, item 6). Its own binary because
//! it owns KUBECONFIG and the manifest variable.

mod support;

use rayconform::install::ingress_nginx;
use rayconform::scenario::{IngressNginxInstall, Install};
use rayconform::targets::TargetOptions;
use rayconform::targets::existing::ExistingTarget;
use rayconform::targets::{StepError, Target};
use support::apiserver::ApiDouble;

const NS: &str = "rc-existing-failed-install";

#[tokio::test]
async fn a_failed_install_deletes_the_namespace_it_was_opened_in() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: d\n  cluster:\n    server: {}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: d\n  context:\n    cluster: d\n    user: u\ncurrent-context: d\n", double.url),
    )
    .unwrap();
    // Not the pinned manifest: the install refuses it after the namespace exists.
    let manifest = dir.path().join("deploy.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ingress-nginx\n",
    )
    .unwrap();
    // SAFETY: the only test in this binary.
    unsafe {
        std::env::set_var("KUBECONFIG", &kubeconfig);
        std::env::set_var(ingress_nginx::MANIFEST_ENV, &manifest);
    }
    let target = ExistingTarget::new(TargetOptions {
        project_root: dir.path().to_path_buf(),
        kube_context: None,
        k8s_version: None,
    });
    let mut scenario = support::scenario("existing-failed-install");
    scenario.install = vec![Install::IngressNginx(IngressNginxInstall::default())];
    let run = support::run(scenario, NS, dir.path(), None);
    match target.open(&run).await.err() {
        Some(StepError::Broken(m)) => {
            let m = m.to_string();
            assert!(
                m.starts_with("install failed:") && m.contains("sha256"),
                "{m}"
            )
        }
        other => panic!("expected a broken install, got {other:?}"),
    }
    let created = double
        .requests()
        .iter()
        .any(|r| r.method == "PATCH" && r.uri.contains(&format!("/namespaces/{NS}")));
    assert!(created, "the namespace was created before the install");
    assert!(
        double.get("namespaces", "", NS).is_none(),
        "the scenario namespace leaked after the failed install"
    );
}
