//! The nightly workflow budgets its job as issue 7 (item 10) asks: the Ray
//! image every fixture uses is pulled once and loaded into each cluster,
//! step limits fit in the job's limit, the per-scenario table goes to the
//! job summary, the JUnit is uploaded and gated (a leg that ran nothing
//! must say why), and a failed leg's diagnostics are uploaded. The k3s job
//! does the same for every pinned k3s version. Read from the YAML, not run
//! (that needs GitHub). Every scenario runs on some leg: a scenario no leg
//! can run is an error of the matrix.

use rayconform::scenario::{Scenario, TargetKind};
use serde_json::Value;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn job() -> Value {
    job_named("kind")
}

fn job_named(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join(".github/workflows/nightly.yml")).unwrap();
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    let job = doc["jobs"][name].clone();
    assert!(job.is_object(), "the nightly has no `{name}` job");
    job
}

fn steps(job: &Value) -> Vec<Value> {
    job["steps"].as_array().cloned().unwrap_or_default()
}

fn position(steps: &[Value], needle: &str) -> usize {
    steps
        .iter()
        .position(|s| s["run"].as_str().is_some_and(|r| r.contains(needle)))
        .unwrap_or_else(|| panic!("no step runs `{needle}`"))
}

#[test]
fn the_ray_image_of_every_fixture_is_pulled_once_and_loaded_into_each_cluster() {
    let job = job();
    let loaded = job["env"][rayconform::targets::kind::pool::LOAD_IMAGES_ENV]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "job env lacks {}",
                rayconform::targets::kind::pool::LOAD_IMAGES_ENV
            )
        })
        .to_string();
    let re = regex::Regex::new(r"image:\s*(rayproject/ray:\S+)").unwrap();
    let mut images = Vec::new();
    for entry in std::fs::read_dir(root().join("fixtures")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        images.extend(re.captures_iter(&text).map(|c| c[1].to_string()));
    }
    assert!(!images.is_empty(), "no Ray image in fixtures/");
    for image in &images {
        assert!(
            loaded.split([' ', ',']).any(|i| i == image),
            "{image} not in {loaded}"
        );
    }
    let steps = steps(&job);
    assert!(position(&steps, "docker pull") < position(&steps, "-- run --target kind"));
    let text = serde_json::to_string(&job).unwrap();
    assert!(
        !text.contains("RAYCONFORM_KEEP"),
        "a kept cluster would hold host ports 80/443 for the scenario run"
    );
}

#[test]
fn step_limits_fit_the_job_and_reports_always_go_out() {
    step_limits_fit_and_reports_go_out(&job(), "-- run --target kind");
}

#[test]
fn the_k3s_job_runs_every_pinned_version_with_the_same_gates() {
    let job = job_named("k3s");
    let legs: Vec<String> = job["strategy"]["matrix"]["k8s"]
        .as_array()
        .expect("a k8s matrix")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let pinned: Vec<&str> = rayconform::targets::k3s::versions::K3S_IMAGES
        .iter()
        .map(|i| i.minor())
        .collect();
    assert_eq!(legs, pinned, "one leg per pinned k3s image");
    assert_eq!(job["env"]["RAYCONFORM_K8S_VERSION"], "${{ matrix.k8s }}");
    let steps = steps(&job);
    let run = steps[position(&steps, "-- run --target k3s")]["run"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(run.contains("--k8s-version \"${{ matrix.k8s }}\""), "{run}");
    assert!(run.contains("--junit \"$JUNIT\""), "{run}");
    let plan = position(&steps, "plan --target k3s");
    assert!(plan < position(&steps, "-- run --target k3s"));
    step_limits_fit_and_reports_go_out(&job, "-- run --target k3s");
    let text = serde_json::to_string(&job).unwrap();
    assert!(!text.contains("kind/dl"), "the k3s job needs no kind");
}

#[test]
fn each_job_runs_only_its_own_real_cluster_trials() {
    for (name, other) in [("kind", "k3s"), ("k3s", "kind")] {
        let job = job_named(name);
        let steps = steps(&job);
        let run = steps[position(&steps, "--test cluster_real")]["run"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            run.contains(&format!("--skip {other}::")),
            "the {name} job would also boot {other}: {run}"
        );
    }
}

fn step_limits_fit_and_reports_go_out(job: &Value, run_step: &str) {
    let limit = job["timeout-minutes"].as_u64().unwrap();
    let steps = steps(job);
    let budget: u64 = steps
        .iter()
        .filter_map(|s| s["timeout-minutes"].as_u64())
        .sum();
    assert!(
        budget <= limit,
        "step limits {budget} min > job limit {limit} min"
    );
    for needle in ["cargo test", run_step] {
        let step = &steps[position(&steps, needle)];
        assert!(
            step["timeout-minutes"].as_u64().is_some(),
            "`{needle}` has no step limit"
        );
    }
    let always = |needle: &str| {
        let step = &steps[position(&steps, needle)];
        assert_eq!(
            step["if"], "always()",
            "`{needle}` must run after a failure too"
        );
        step.clone()
    };
    let summary = always("scripts/junit-summary");
    assert!(
        summary["run"]
            .as_str()
            .unwrap()
            .contains("$GITHUB_STEP_SUMMARY")
    );
    always("scripts/check-coverage");
    let uploads: Vec<&Value> = steps
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .collect();
    assert!(
        uploads.iter().any(|s| s["if"] == "always()"
            && s["with"]["path"]
                .as_str()
                .is_some_and(|p| p.contains("JUNIT"))),
        "the JUnit is uploaded on every leg"
    );
    assert!(
        uploads
            .iter()
            .any(|s| s["if"] == "failure()" && s["with"]["path"] == "reports/"),
        "a failed leg's diagnostics are uploaded"
    );
}

/// The nightly's legs: (target, Kubernetes version) for every matrix entry
/// of the kind and k3s jobs.
fn nightly_legs() -> Vec<(TargetKind, String)> {
    let kind = job_named("kind");
    let k3s = job_named("k3s");
    let kind_versions = kind["strategy"]["matrix"]["include"]
        .as_array()
        .expect("the kind job's matrix lists versions under include")
        .iter()
        .map(|e| e["k8s"].as_str().unwrap().to_string());
    let k3s_versions = k3s["strategy"]["matrix"]["k8s"]
        .as_array()
        .expect("the k3s job's matrix lists versions under k8s")
        .iter()
        .map(|v| v.as_str().unwrap().to_string());
    kind_versions
        .map(|v| (TargetKind::Kind, v))
        .chain(k3s_versions.map(|v| (TargetKind::K3s, v)))
        .collect()
}

/// The legs that would run `scenario`: the target runs what the scenario
/// lists, and every install supports the leg's Kubernetes version. Tools
/// are not checked: the nightly installs them.
fn legs_running(scenario: &Scenario, legs: &[(TargetKind, String)]) -> Vec<String> {
    legs.iter()
        .filter(|(target, version)| {
            target.listed_in(&scenario.targets)
                && scenario
                    .install
                    .iter()
                    .all(|i| i.component().unsupported_on(version).is_none())
        })
        .map(|(target, version)| format!("{target} {version}"))
        .collect()
}

#[test]
fn every_leg_names_a_version_its_target_pins() {
    for (target, version) in nightly_legs() {
        let pinned = match target {
            TargetKind::Kind => rayconform::targets::kind::versions::node_image(&version).is_ok(),
            TargetKind::K3s => rayconform::targets::k3s::versions::image_for(&version).is_ok(),
            other => panic!("the nightly has a {other} leg, which this test does not know"),
        };
        assert!(pinned, "nightly leg {target} {version} has no pinned image");
    }
}

#[test]
fn every_scenario_runs_on_some_nightly_leg() {
    let legs = nightly_legs();
    let loaded = rayconform::scenario::load_all(&[root().join("scenarios")], &root());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert!(!loaded.scenarios.is_empty());
    let orphans: Vec<&str> = loaded
        .scenarios
        .iter()
        .filter(|s| legs_running(s, &legs).is_empty())
        .map(|s| s.name.as_str())
        .collect();
    assert!(
        orphans.is_empty(),
        "no nightly leg runs these scenarios: {orphans:?}"
    );

    // The check can say no: a scenario only for `existing`, or whose
    // install no leg's Kubernetes supports, has no leg.
    let mut only_existing = loaded.scenarios[0].clone();
    only_existing.targets = vec![TargetKind::Existing];
    assert_eq!(legs_running(&only_existing, &legs), Vec::<String>::new());
    let with_ingress = loaded
        .scenarios
        .iter()
        .find(|s| {
            s.install
                .iter()
                .any(|i| i.component().name() == "ingressNginx")
        })
        .expect("a scenario installs ingress-nginx");
    let running = legs_running(with_ingress, &legs);
    assert!(
        running
            .iter()
            .all(|l| !l.ends_with("1.36") && !l.ends_with("1.37")),
        "ingress-nginx supports Kubernetes up to 1.35, yet runs on {running:?}"
    );
}

/// Issue 9: the gateway-api scenarios run on every nightly leg whose
/// Kubernetes version Envoy Gateway v1.9.0 supports (its compatibility
/// matrix at the tag: 1.33–1.36), on kind and on k3s, and on no other.
#[test]
fn gateway_api_scenarios_run_on_every_leg_envoy_gateway_supports() {
    let legs = nightly_legs();
    let loaded = rayconform::scenario::load_all(&[root().join("scenarios")], &root());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let gateway: Vec<&Scenario> = loaded
        .scenarios
        .iter()
        .filter(|s| {
            s.install
                .iter()
                .any(|i| i.component().name() == "gatewayApi")
        })
        .collect();
    assert!(
        gateway.len() >= 4,
        "the gateway-api scenarios (issue 9 items 1-4) are missing: {}",
        gateway.len()
    );
    let supported = ["1.33", "1.34", "1.35", "1.36"];
    let expected: Vec<String> = legs
        .iter()
        .filter(|(_, v)| supported.contains(&v.as_str()))
        .map(|(t, v)| format!("{t} {v}"))
        .collect();
    assert!(
        expected.iter().any(|l| l == "kind 1.36") && expected.iter().any(|l| l == "k3s 1.36"),
        "the nightly has no 1.36 leg for Gateway API: {expected:?}"
    );
    for scenario in gateway {
        assert!(
            scenario.name.starts_with("gateway-api-"),
            "{} installs gatewayApi but is not named gateway-api-*",
            scenario.name
        );
        assert_eq!(
            legs_running(scenario, &legs),
            expected,
            "{} does not run on exactly the legs Envoy Gateway v1.9.0 supports",
            scenario.name
        );
    }
}
