//! What the lab decides about a scenario's Ray heads before running it,
//! on the real scenario files: whether a head of the scenario's own needs
//! its dashboard, whether its workers need a head of their own, and the
//! cost the runner orders scenarios by.

use rayconform::scenario::{Scenario, load_file};
use rayconform::targets::lab::head_needs::{
    SharedDashboards, may_reach_dashboard, may_see_node_list,
};
use rayconform::targets::lab::support::expected_cost;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scenario(name: &str) -> Scenario {
    let root = root();
    load_file(&root.join("scenarios").join(format!("{name}.yaml")), &root)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn only_scenarios_whose_steps_speak_rays_grpc_or_touch_no_port_go_without_a_dashboard() {
    for name in [
        "raycluster-shapes-mini",
        "raycluster-shapes-heterogeneous",
        "raycluster-shapes-complete",
        "istio-mtls-ray-guide-without-mesh",
        "ray-client-passthrough-tls",
        "ray-client-mtls-enforced",
    ] {
        assert!(!may_reach_dashboard(&scenario(name)), "{name}");
    }
    for name in [
        "dashboard-rewrite-trailing-slash",
        "dashboard-rewrite-no-trailing-slash-browser",
        "gateway-api-dashboard-rewrite-trailing-slash",
        // Its tcp probes could be aimed at any port: the rule keeps it.
        "ray-tcp-services",
    ] {
        assert!(may_reach_dashboard(&scenario(name)), "{name}");
    }
}

#[test]
fn only_scenarios_that_could_see_the_whole_node_list_keep_their_workers_on_a_head_of_their_own() {
    for name in [
        "raycluster-shapes-mini",
        "raycluster-shapes-heterogeneous",
        "raycluster-shapes-complete",
    ] {
        assert!(!may_see_node_list(&scenario(name)), "{name}");
    }
    for name in [
        // Its grpcReady probe counts the head's alive nodes.
        "istio-mtls-ray-guide-without-mesh",
        // It could reach the dashboard's node list.
        "dashboard-rewrite-trailing-slash",
    ] {
        assert!(may_see_node_list(&scenario(name)), "{name}");
    }
}

#[test]
fn own_heads_worker_nodes_and_browsers_make_the_cost_and_skips_cost_nothing() {
    let cost = |name: &str| expected_cost(&scenario(name), Path::new(&root()));
    // A head of its own (2: its probe counts the alive nodes) and one worker.
    assert_eq!(cost("istio-mtls-ray-guide-without-mesh"), 3);
    // One worker on the head RayClusters with workers share.
    assert_eq!(cost("raycluster-shapes-mini"), 1);
    // Two applies: 2 workers, then scaled to 3 (each counted).
    assert_eq!(cost("raycluster-shapes-heterogeneous"), 2 + 3);
    assert_eq!(cost("dashboard-rewrite-no-trailing-slash-browser"), 1);
    // A RayCluster on a shared head.
    assert_eq!(cost("ray-client-passthrough-tls"), 0);
    // The lab skips it (Istio).
    assert_eq!(cost("istio-mtls-ray-guide"), 0);
}

#[test]
fn shared_heads_run_a_dashboard_only_for_a_tls_setting_whose_scenarios_may_reach_it() {
    let root = root();
    let all: Vec<Scenario> = std::fs::read_dir(root.join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| load_file(&p, &root).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    let refs: Vec<&Scenario> = all.iter().collect();
    // The dashboard scenarios use plain heads; no TLS scenario reaches one.
    assert_eq!(
        SharedDashboards::for_run(&refs, &root),
        SharedDashboards {
            plain: true,
            tls: false
        }
    );
    let tls_only = [
        scenario("ray-client-passthrough-tls"),
        scenario("ray-client-mtls-enforced"),
    ];
    let tls_refs: Vec<&Scenario> = tls_only.iter().collect();
    assert_eq!(
        SharedDashboards::for_run(&tls_refs, &root),
        SharedDashboards {
            plain: false,
            tls: false
        }
    );
    // Not told of a run: every shared head runs it.
    assert_eq!(
        SharedDashboards::default(),
        SharedDashboards {
            plain: true,
            tls: true
        }
    );
}
