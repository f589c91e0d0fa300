//! The ingress-nginx install flow against the API double, from a stand-in
//! manifest (`replace_manifest_for_tests`): objects
//! applied with our changes, the controller and webhook waited for, the
//! manifest's sha256 reported, and a second install of the same spec
//! skipped as already there.

mod support;

use rayconform::install::{self, InstallContext, ingress_nginx};
use rayconform::scenario::{IngressNginxInstall, Install};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::apiserver::ApiDouble;

fn manifest() -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ingress-nginx\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ingress-nginx-controller\n  namespace: ingress-nginx\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ingress-nginx-controller\n  namespace: ingress-nginx\nspec:\n  selector:\n    matchLabels:\n      app: c\n  template:\n    metadata:\n      labels:\n        app: c\n    spec:\n      containers:\n      - name: controller\n        image: {}\n        args: [/nginx-ingress-controller]\n        ports:\n        - containerPort: 80\n          hostPort: 80\n",
        ingress_nginx::CONTROLLER_IMAGE
    )
}

/// How long the scripted controller waits for what the install creates:
/// generous, since it waits on the event itself and a loaded machine must
/// not turn into a misleading failure.
const ACTOR_BOUND: Duration = Duration::from_secs(120);

// One test in this binary: it owns the environment.
#[tokio::test]
async fn ingress_nginx_is_applied_waited_for_and_reported() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The pinned upstream manifest cannot be used offline: this stand-in
    // replaces it (and its pin check) for this process only.
    ingress_nginx::replace_manifest_for_tests(Some(manifest()));
    let messages = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = messages.clone();
    let ctx = InstallContext {
        client: double.client(),
        kubeconfig: dir.path().join("unused"),
        context: None,
        namespace: "rc-install".into(),
        progress: Arc::new(move |m| sink.lock().unwrap().push(m.to_string())),
        node_selector: BTreeMap::from([("ingress-ready".into(), "true".into())]),
    };
    let spec = IngressNginxInstall {
        ssl_passthrough: true,
        ..Default::default()
    };
    let items = vec![Install::IngressNginx(spec)];
    let mut done = Vec::new();
    let d = &double;
    let lines = {
        let installing = install::install_all(&items, &ctx, &mut done);
        let controller = async {
            // The "controller": reacts to the Deployment the install applies,
            // rolls it out, and gives the webhook's Service an endpoint.
            d.wait_for_object(
                "deployments",
                "ingress-nginx",
                "ingress-nginx-controller",
                ACTOR_BOUND,
            )
            .await;
            d.roll_out_deployment("ingress-nginx", "ingress-nginx-controller");
            d.put("endpoints", json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "ingress-nginx-controller-admission", "namespace": "ingress-nginx"},
            "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 8443}]}]}));
        };
        tokio::pin!(installing);
        // If the install ends first (it failed), its error is the story.
        let lines = tokio::select! {
            lines = &mut installing => lines,
            () = controller => installing.await,
        };
        lines
    };
    let lines = lines.unwrap_or_else(|e| panic!("{e}"));
    let sha = ingress_nginx::sha256_hex(manifest().as_bytes());
    assert_eq!(
        lines,
        vec![format!(
            "ingress-nginx v1.15.1 (--enable-ssl-passthrough), manifest sha256 {sha}"
        )]
    );
    let deployment = double
        .get("deployments", "ingress-nginx", "ingress-nginx-controller")
        .unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["args"][1], "--enable-ssl-passthrough");
    assert_eq!(pod["nodeSelector"]["ingress-ready"], "true");
    assert!(double.get("namespaces", "", "ingress-nginx").is_some());
    // The install waited for the rollout, not only for the Deployment.
    let replica_set_lists = double
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "GET"
                && r.uri
                    .starts_with("/apis/apps/v1/namespaces/ingress-nginx/replicasets")
        })
        .count();
    assert_eq!(replica_set_lists, 1, "older ReplicaSets looked up once");
    // The webhook was asked with a dry run, which stores nothing.
    let dry_runs = double
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.uri.contains("dryRun=All"))
        .count();
    assert_eq!(dry_runs, 1);
    assert!(
        double
            .get("ingresses", "rc-install", "rayconform-webhook-probe")
            .is_none()
    );
    assert_eq!(
        messages.lock().unwrap().as_slice(),
        [
            "installing ingressNginx v1.15.1",
            "waiting for the ingress-nginx controller"
        ]
    );

    // Same spec again: nothing is re-applied.
    let patches = double
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    let again = install::install_all(&items, &ctx, &mut done).await.unwrap();
    assert_eq!(
        again,
        vec!["ingressNginx v1.15.1 already installed".to_string()]
    );
    assert_eq!(
        double
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count(),
        patches
    );

    // Two scenarios with the same `tcpServices` text (`${NAMESPACE}/...`)
    // in their own namespaces: the second is not "already installed", its
    // ConfigMap points at its own namespace, not at the first one's.
    let tcp = vec![Install::IngressNginx(IngressNginxInstall {
        tcp_services: BTreeMap::from([(
            "10001".to_string(),
            "${NAMESPACE}/raycluster-tls-head-svc:10001".to_string(),
        )]),
        ..Default::default()
    })];
    for ns in ["rc-first", "rc-second"] {
        let ctx = InstallContext {
            namespace: ns.to_string(),
            client: ctx.client.clone(),
            kubeconfig: ctx.kubeconfig.clone(),
            context: None,
            progress: ctx.progress.clone(),
            node_selector: ctx.node_selector.clone(),
        };
        let lines = {
            let installing = install::install_all(&tcp, &ctx, &mut done);
            // The "controller" rolls out a changed spec (the first time:
            // new flags and ports); when nothing changed the install ends
            // first and this is dropped.
            let controller = async {
                d.wait_for("a new Deployment generation", ACTOR_BOUND, || {
                    d.get("deployments", "ingress-nginx", "ingress-nginx-controller")
                        .filter(|o| {
                            o["metadata"]["generation"] != o["status"]["observedGeneration"]
                        })
                })
                .await;
                d.roll_out_deployment("ingress-nginx", "ingress-nginx-controller");
            };
            tokio::pin!(installing);
            tokio::select! {
                lines = &mut installing => lines,
                () = controller => installing.await,
            }
        };
        let lines = lines.unwrap_or_else(|e| panic!("{ns}: {e}"));
        assert!(
            lines[0].starts_with("ingress-nginx v1.15.1 (--tcp-services-configmap"),
            "{ns}: installed, not skipped: {lines:?}"
        );
        let config = double
            .get("configmaps", "ingress-nginx", "tcp-services")
            .expect("tcp-services ConfigMap");
        assert_eq!(
            config["data"]["10001"],
            format!("{ns}/raycluster-tls-head-svc:10001"),
            "{ns}"
        );
    }
    assert_eq!(
        done.len(),
        1,
        "one ingress-nginx, the last applied: {done:?}"
    );
}
