//! What the lab refuses to stand in for, decided from the scenario alone,
//! and what its plan shows.

use rayconform::scenario::{Scenario, load_all, load_str};
use rayconform::targets::Target;
use rayconform::targets::lab::LabTarget;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scenario(install: &str, steps: &str) -> Scenario {
    let text = format!(
        "apiVersion: rayconform.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: t\nspec:\n  targets: [lab]\n  install:\n{install}\n  steps:\n{steps}\n"
    );
    load_str(Path::new("t.yaml"), &text, &root()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn reason(s: &Scenario) -> Option<String> {
    LabTarget::new(root()).unsupported_reason(s, &root())
}

const PROBE: &str = "    - probe: { tcp: { address: \"${INGRESS_HTTP}\" } }";

/// The scenarios written for the lab: each must run there.
const LAB_SCENARIOS: &[&str] = &[
    // The catalogue: RayCluster shapes with real worker groups, and the
    // TCP mapping without an endpoint.
    "raycluster-shapes-mini",
    "raycluster-shapes-heterogeneous",
    "raycluster-shapes-complete",
    "tcp-no-endpoint",
    "ray-client-passthrough-tls",
    "ray-client-passthrough-headless",
    "dashboard-rewrite-trailing-slash",
    "dashboard-rewrite-no-trailing-slash",
    "dashboard-rewrite-no-trailing-slash-browser",
    "ray-tcp-services",
    "ray-client-mtls-enforced",
    // Gateway API, with NGINX Gateway Fabric's semantics (modelled).
    "gateway-api-tlsroute-passthrough",
    "gateway-api-tlsroute-passthrough-headless",
    "gateway-api-grpcroute-underscores-default",
    "gateway-api-dashboard-rewrite-trailing-slash",
    "gateway-api-dashboard-rewrite-no-trailing-slash",
    "istio-mtls-ray-guide-without-mesh",
];

#[test]
fn the_lab_scenarios_in_the_repository_are_supported_and_the_others_say_why_not() {
    let loaded = load_all(&[root().join("scenarios")], &root());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    for name in LAB_SCENARIOS {
        let s = loaded
            .scenarios
            .iter()
            .find(|s| s.name == *name)
            .unwrap_or_else(|| panic!("scenario {name} missing"));
        assert!(
            s.targets.contains(&rayconform::scenario::TargetKind::Lab),
            "{name} must list lab"
        );
        assert_eq!(reason(s), None, "{name} should run on lab");
    }
    let others: Vec<&Scenario> = loaded
        .scenarios
        .iter()
        .filter(|s| !LAB_SCENARIOS.contains(&s.name.as_str()))
        .collect();
    assert!(
        !others.is_empty(),
        "the repository has scenarios the lab cannot run (Istio, admission webhooks)"
    );
    for s in others {
        let r = reason(s).unwrap_or_else(|| {
            panic!(
                "{}: not in LAB_SCENARIOS, so the lab must say why it cannot run it",
                s.name
            )
        });
        assert!(r.starts_with("lab cannot stand in for"), "{}: {r}", s.name);
    }
}

#[test]
fn istio_and_the_apiserver_are_named() {
    let s = scenario("    - istio: { strictMtls: true }", PROBE);
    assert!(
        reason(&s).is_some_and(|r| r.contains("Istio")),
        "{:?}",
        reason(&s)
    );
    let s = scenario("    - kuberayApiserver: {}", PROBE);
    assert!(
        reason(&s).is_some_and(|r| r.contains("KubeRay apiserver")),
        "{:?}",
        reason(&s)
    );
}

#[test]
fn admission_denials_are_not_faked() {
    let steps = "    - name: snippet refused\n      expectDenied:\n        inline: |\n          apiVersion: v1\n          kind: ConfigMap\n          metadata: { name: x }\n        messageContains: denied";
    let s = scenario("    - ingressNginx: {}", steps);
    let r = reason(&s).expect("expectDenied must be unsupported");
    assert!(
        r.contains("admission webhooks") && r.contains("snippet refused"),
        "{r}"
    );
}

#[test]
fn unsupported_annotations_and_kinds_in_applied_manifests_are_named() {
    let steps = "    - apply:\n        inline: |\n          apiVersion: networking.k8s.io/v1\n          kind: Ingress\n          metadata:\n            name: snip\n            namespace: ${NAMESPACE}\n            annotations:\n              nginx.ingress.kubernetes.io/configuration-snippet: \"more_set_headers x;\"\n          spec: {}";
    let r =
        reason(&scenario("    - ingressNginx: {}", steps)).expect("snippet annotation unsupported");
    assert!(
        r.contains("nginx.ingress.kubernetes.io/configuration-snippet"),
        "{r}"
    );

    let steps = "    - apply:\n        inline: |\n          apiVersion: apps/v1\n          kind: Deployment\n          metadata: { name: web }";
    let r = reason(&scenario("    - ingressNginx: {}", steps)).expect("Deployment unsupported");
    assert!(r.contains("apps/v1 Deployment `web`"), "{r}");

    let steps = "    - wait: { deployment: web, timeout: 1m }";
    let r =
        reason(&scenario("    - ingressNginx: {}", steps)).expect("Deployment wait unsupported");
    assert!(r.contains("Deployment"), "{r}");

    // Ray TLS with worker nodes: skipped with the reason, not failed after
    // a worker that cannot join.
    let rc = "          apiVersion: ray.io/v1\n          kind: RayCluster\n          metadata: { name: tls-workers }\n          spec:\n            headGroupSpec:\n              template:\n                spec:\n                  containers: [{ name: ray-head, env: [{ name: RAY_USE_TLS, value: \"1\" }] }]\n            workerGroupSpecs: [{ groupName: w, replicas: 1 }]";
    let steps = format!("    - apply:\n        inline: |\n{rc}");
    let r = reason(&scenario("    - kuberayOperator: {}", &steps)).expect("TLS with workers");
    assert!(
        r.contains("RayCluster `tls-workers` with Ray TLS and 1 worker replica(s)"),
        "{r}"
    );
}

#[test]
fn supported_manifests_pass_and_the_plan_shows_processes_and_nginx_conf() {
    let steps = "    - apply: fixtures/raycluster-basic.yaml\n    - apply: fixtures/ingress-dashboard-rewrite.yaml";
    let s = scenario(
        "    - ingressNginx: { tcpServices: { \"6379\": \"${NAMESPACE}/raycluster-basic-head-svc:6379\" } }",
        steps,
    );
    assert_eq!(reason(&s), None);
    let plan = LabTarget::new(root()).plan(&s, &root()).expect("plan");
    assert!(
        plan.variables.contains_key("INGRESS_TCP_6379"),
        "{:?}",
        plan.variables
    );
    let (_, processes) = &plan.sections[0];
    assert!(
        processes.contains("head for RayCluster raycluster-basic"),
        "{processes}"
    );
    let (_, conf) = &plan.sections[1];
    assert!(
        conf.contains(r#"rewrite "(?i)/ray(/|$)(.*)" /$2 break;"#),
        "{conf}"
    );
    assert!(conf.contains("# tcp-services 6379"), "{conf}");
}

#[test]
fn the_lab_is_available_after_setup() {
    assert_eq!(
        LabTarget::new(root()).unavailable_reason(),
        None,
        "run scripts/setup: the lab needs python3 and nginx with its stream module"
    );
}
