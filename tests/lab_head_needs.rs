//! What the lab decides about a scenario's Ray heads before running it,
//! on the real scenario files: whether a head of the scenario's own needs
//! its dashboard, and the cost the runner orders scenarios by.

use rayconform::scenario::{Scenario, load_file};
use rayconform::targets::lab::dashboard_need::may_reach_dashboard;
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
fn own_heads_worker_nodes_and_browsers_make_the_cost_and_skips_cost_nothing() {
    let cost = |name: &str| expected_cost(&scenario(name), Path::new(&root()));
    // A head of its own (2) and one worker.
    assert_eq!(cost("raycluster-shapes-mini"), 3);
    assert_eq!(cost("istio-mtls-ray-guide-without-mesh"), 3);
    // Two applies: 2 workers, then scaled to 3 (each counted).
    assert_eq!(cost("raycluster-shapes-heterogeneous"), 2 + 2 + 2 + 3);
    assert_eq!(cost("dashboard-rewrite-no-trailing-slash-browser"), 1);
    // A RayCluster on a shared head.
    assert_eq!(cost("ray-client-passthrough-tls"), 0);
    // The lab skips it (Istio).
    assert_eq!(cost("istio-mtls-ray-guide"), 0);
}
