//! Rendering kind configs per scenario and planning on the kind target,
//! without Docker: port mappings, workers, node images, duplicate host
//! ports caught before kind sees them, component support windows.

use rayconform::scenario::{Scenario, load_str};
use rayconform::targets::Target;
use rayconform::targets::TargetOptions;
use rayconform::targets::kind::{KindTarget, render, versions};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scenario(cluster: &str, install: &str) -> Scenario {
    let text = format!(
        "apiVersion: rayconform.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: render-test\nspec:\n  targets: [kind]\n{cluster}{install}  steps:\n    - wait: {{ deployment: web }}\n"
    );
    load_str(Path::new("scenarios/render-test.yaml"), &text, &root())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn scenario_ports_workers_and_image_are_rendered() {
    let s = scenario(
        "  cluster:\n    config: kind-configs/ingress-ready.yaml\n    workers: 2\n    extraPortMappings:\n      - { containerPort: 30001, hostPort: 30001 }\n",
        "  install:\n    - ingressNginx:\n        tcpServices: { \"6379\": \"${NAMESPACE}/rc-head-svc:6379\" }\n",
    );
    let image = versions::node_image("1.34").unwrap();
    let rendered = render::render(&s, &root(), image).unwrap();
    let roles: Vec<&str> = rendered
        .config
        .nodes
        .iter()
        .map(|n| n.role.value.as_str())
        .collect();
    assert_eq!(roles, ["control-plane", "worker", "worker"]);
    assert!(
        rendered
            .config
            .nodes
            .iter()
            .all(|n| n.image.as_deref() == Some(image.reference().as_str()))
    );
    let ports = rendered.tcp_host_ports();
    assert_eq!(ports.get(&30001), Some(&30001));
    assert_eq!(
        ports.get(&6379),
        Some(&6379),
        "TCP service ports get a host mapping"
    );
    assert!(
        rendered.yaml.contains("containerPort: 6379"),
        "{}",
        rendered.yaml
    );
    // The hash decides reuse: same input, same hash; another version, another.
    assert_eq!(
        render::render(&s, &root(), image).unwrap().hash,
        rendered.hash
    );
    let other = render::render(&s, &root(), versions::node_image("1.35").unwrap()).unwrap();
    assert_ne!(other.hash, rendered.hash);
}

#[test]
fn a_scenario_port_clashing_with_the_base_config_is_located() {
    let s = scenario(
        "  cluster:\n    extraPortMappings:\n      - { containerPort: 8443, hostPort: 443 }\n",
        "",
    );
    let err = render::render(&s, &root(), versions::node_image("1.35").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("host port 443 (TCP) is mapped twice: first at nodes[0].extraPortMappings[1].hostPort (line 15 column 19)"),
        "{err}"
    );
    assert!(err.contains("as rendered for render-test"), "{err}");
}

#[test]
fn the_kind_plan_shows_config_installs_and_variables() {
    let s = scenario(
        "",
        "  install:\n    - ingressNginx: { sslPassthrough: true }\n    - kuberayOperator: { headClusterIpService: true }\n",
    );
    let on = |v: &str| {
        KindTarget::new(TargetOptions {
            project_root: root(),
            k8s_version: Some(v.into()),
            ..TargetOptions::default()
        })
    };
    let plan = on("1.35").plan(&s, &root()).unwrap();
    let titles: Vec<&str> = plan.sections.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(titles[0], "kind cluster");
    assert!(titles[1].starts_with("kind config (from "), "{titles:?}");
    assert_eq!(
        &titles[2..],
        [
            "install ingressNginx v1.15.1",
            "install kuberayOperator 1.7.0"
        ]
    );
    assert!(
        plan.sections[1].1.contains("ingress-ready: \"true\""),
        "{}",
        plan.sections[1].1
    );
    assert!(plan.sections[2].1.contains("--enable-ssl-passthrough"));
    assert!(
        plan.sections[3]
            .1
            .contains("ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE")
    );
    assert_eq!(plan.variables["INGRESS_HTTPS"], "localhost:443");
    assert_eq!(plan.variables["KUBERAY_APISERVER"], "localhost:31888");
    let err = on("1.29").plan(&s, &root()).unwrap_err().to_string();
    assert!(err.contains("supported: 1.37, 1.36"), "{err}");
}

#[test]
fn an_unsupported_component_version_skips_with_the_reason() {
    let s = scenario("", "  install:\n    - ingressNginx: {}\n");
    let on = |v: &str| {
        KindTarget::new(TargetOptions {
            project_root: root(),
            k8s_version: Some(v.into()),
            ..TargetOptions::default()
        })
        .unsupported_reason(&s, &root())
    };
    assert_eq!(on("1.35"), None);
    assert_eq!(
        on("1.29"),
        None,
        "unknown versions are errors at open, not skips"
    );
    let why = on("1.36").expect("ingress-nginx 1.15 does not support 1.36");
    assert!(
        why.contains("ingressNginx v1.15.1 supports Kubernetes 1.31–1.35 only, not 1.36"),
        "{why}"
    );
}

/// `plan --target kind` shows, per cluster, its host ports, the clusters it
/// never lives with, and which scenarios run on it (each exactly once).
#[test]
fn the_plan_overview_lists_host_ports_and_scenarios_per_cluster() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let loaded = rayconform::scenario::load_all(&[root.join("scenarios")], &root);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let opts = rayconform::targets::TargetOptions {
        project_root: root.clone(),
        kube_context: None,
        k8s_version: Some("1.35".into()),
    };
    let text = rayconform::targets::kind::plan_overview(
        rayconform::scenario::TargetKind::Kind,
        &opts,
        &loaded.scenarios,
    )
    .expect("an overview on kind");
    // tcp-no-endpoint's 9000/TCP is a cluster of its own.
    assert!(text.contains("8 cluster(s)"), "{text}");
    assert_eq!(
        text.matches("   host ports: 80/TCP, 443/TCP").count(),
        8,
        "{text}"
    );
    assert!(
        text.contains("host ports: 80/TCP, 443/TCP, 6379/TCP, 10001/TCP, 31888/TCP"),
        "{text}"
    );
    assert!(text.contains("never alive together with: "), "{text}");
    for s in loaded
        .scenarios
        .iter()
        .filter(|s| s.targets.contains(&rayconform::scenario::TargetKind::Kind))
    {
        let listed = text
            .lines()
            .filter(|l| {
                l.trim_start()
                    .strip_prefix("- ")
                    .is_some_and(|rest| rest.split(' ').next() == Some(s.name.as_str()))
            })
            .count();
        assert_eq!(listed, 1, "{} listed {listed} times:\n{text}", s.name);
    }
    assert!(
        text.contains("1.35.5   needs kind v0.32.0"),
        "the image table says which kind release each image needs:\n{text}"
    );
    assert_eq!(
        rayconform::targets::kind::plan_overview(
            rayconform::scenario::TargetKind::Lab,
            &opts,
            &loaded.scenarios
        ),
        None
    );
}

/// The kind plan names the cluster (`CLUSTER_NAME`, the prefix of its node
/// names) and the variables installs and the session add at run time: the
/// mesh client's port-forwards and the ingress node's IP.
#[test]
fn the_kind_plan_names_the_cluster_and_the_run_time_addresses() {
    let s = scenario(
        "",
        "  install:\n    - meshClient: { service: head-svc, ports: [10001], destinationMetrics: \"ray.io/node-type=head\" }\n",
    );
    let target = KindTarget::new(TargetOptions {
        project_root: root(),
        k8s_version: Some("1.35".into()),
        ..TargetOptions::default()
    });
    let plan = target.plan(&s, &root()).unwrap();
    let overview = &plan.sections[0].1;
    let name = &plan.variables["CLUSTER_NAME"];
    assert!(name.starts_with("rayconform-"), "{name}");
    assert!(overview.contains(name.as_str()), "{overview}");
    for forwarded in [
        "MESH_CLIENT_10001",
        "NAKED_CLIENT_10001",
        "DESTINATION_SIDECAR_METRICS",
    ] {
        assert!(
            plan.variables[forwarded].starts_with("127.0.0.1:<port-forward"),
            "{forwarded}: {:?}",
            plan.variables.get(forwarded)
        );
    }
    assert!(plan.variables["INGRESS_NODE_IP"].contains("InternalIP"));
}
