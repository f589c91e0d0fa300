//! Every manifest rayconform applies, validated against the real Kubernetes
//! schemas of each supported version (`kubernetes-validate --strict`,
//! installed by scripts/setup): the files in fixtures/ (whatever is there
//! at test time) and the objects our code generates. CRD kinds cannot be
//! schema-checked there: RayClusters are checked against KubeRay's field
//! names (and their pod templates against the PodTemplate schema), the
//! other CRD kinds are skipped by an explicit list. Kind configs are
//! checked against our typed v1alpha4 model.

mod support;

use rayconform::install::{ingress_nginx, istio, kuberay_apiserver};
use rayconform::k8s::reach::ProbePod;
use rayconform::targets::cluster::{ca_secret, namespace_manifest};
use rayconform::targets::kind::config::KindConfig;
use rayconform::targets::kind::{render, versions};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// CRD kinds kubernetes-validate has no schema for, and how we check them.
const CRD_KINDS: &[(&str, &str)] = &[
    ("ray.io/v1", "RayCluster"),
    ("security.istio.io/v1", "PeerAuthentication"),
    // kubernetes-validate has no schema for the Gateway API CRDs or Envoy
    // Gateway's (it warns "Couldn't find schema" and passes them): they
    // are checked by our typed model (`rayconform::gateway_api`) instead.
    ("gateway.networking.k8s.io/v1", "GatewayClass"),
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1", "GRPCRoute"),
    ("gateway.networking.k8s.io/v1", "TLSRoute"),
    ("gateway.networking.k8s.io/v1", "TCPRoute"),
    ("gateway.envoyproxy.io/v1alpha1", "ClientTrafficPolicy"),
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyProxy"),
];

/// KubeRay v1 RayCluster field names (ray-operator/apis/ray/v1).
const RAYCLUSTER_SPEC_FIELDS: &[&str] = &[
    "rayVersion",
    "enableInTreeAutoscaling",
    "autoscalerOptions",
    "headServiceAnnotations",
    "headGroupSpec",
    "workerGroupSpecs",
    "suspend",
    "managedBy",
    "gcsFaultToleranceOptions",
    "upgradeStrategy",
    "authOptions",
];
const HEAD_GROUP_FIELDS: &[&str] = &[
    "serviceType",
    "headService",
    "enableIngress",
    "rayStartParams",
    "template",
];
const WORKER_GROUP_FIELDS: &[&str] = &[
    "groupName",
    "replicas",
    "minReplicas",
    "maxReplicas",
    "idleTimeoutSeconds",
    "rayStartParams",
    "template",
    "scaleStrategy",
    "suspend",
    "numOfHosts",
];
const RAYCLUSTER_STATUS_FIELDS: &[&str] = &[
    "state",
    "reason",
    "conditions",
    "readyWorkerReplicas",
    "availableWorkerReplicas",
    "desiredWorkerReplicas",
    "minWorkerReplicas",
    "maxWorkerReplicas",
    "desiredCPU",
    "desiredMemory",
    "desiredGPU",
    "desiredTPU",
    "lastUpdateTime",
    "stateTransitionTimes",
    "endpoints",
    "head",
    "observedGeneration",
];
const RAYCLUSTER_HEAD_STATUS_FIELDS: &[&str] = &["podIP", "serviceIP", "podName", "serviceName"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> PathBuf {
    let tool = root().join(".lab/tools-venv/bin/kubernetes-validate");
    assert!(
        tool.exists(),
        "{} is missing: run scripts/setup (it installs kubernetes-validate into .lab/tools-venv)",
        tool.display()
    );
    tool
}

fn supported_minors() -> Vec<String> {
    let mut minors: Vec<String> = versions::NODE_IMAGES
        .iter()
        .map(|i| i.minor().to_string())
        .collect();
    minors.sort();
    minors.dedup();
    minors
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")));
    files.sort();
    files
}

/// Fills `${VAR}` placeholders the way a run would (values only matter for
/// their type: every template variable is a string).
fn fill_templates(text: &str) -> String {
    let re = regex::Regex::new(r"\$\{([A-Z0-9_]+)\}").unwrap();
    re.replace_all(text, |c: &regex::Captures| match &c[1] {
        "NAMESPACE" => "rc-validate".to_string(),
        _ => "localhost".to_string(),
    })
    .into_owned()
}

/// The generated objects, by a name that says where they come from.
fn generated() -> Vec<(String, Value)> {
    let ns = "rc-validate";
    let upstream = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ingress-nginx-controller\n  namespace: ingress-nginx\nspec:\n  selector:\n    matchLabels:\n      app: c\n  template:\n    metadata:\n      labels:\n        app: c\n    spec:\n      containers:\n      - name: controller\n        image: {}\n        args: [/nginx-ingress-controller]\n        ports:\n        - containerPort: 80\n          hostPort: 80\n          protocol: TCP\n",
        ingress_nginx::CONTROLLER_IMAGE
    );
    let spec = rayconform::scenario::IngressNginxInstall {
        ssl_passthrough: true,
        tcp_services: BTreeMap::from([("6379".into(), "${NAMESPACE}/svc:6379".into())]),
        config: BTreeMap::new(),
        ..Default::default()
    };
    let mut out = vec![
        (
            "scenario namespace".to_string(),
            namespace_manifest(
                ns,
                &BTreeMap::from([("istio-injection".into(), "enabled".into())]),
            ),
        ),
        (
            "CA secret".to_string(),
            ca_secret(ns, "ca-tls", "pem", "key"),
        ),
        (
            "apiserver NodePort service".to_string(),
            kuberay_apiserver::nodeport_service(
                json!({"app.kubernetes.io/name": "kuberay-apiserver"}),
            ),
        ),
        (
            "webhook probe ingress".to_string(),
            ingress_nginx::webhook_probe_ingress(ns),
        ),
        (
            "probe pod (mesh)".to_string(),
            ProbePod::manifest(ns, "probe", true),
        ),
        (
            "probe pod (no mesh)".to_string(),
            ProbePod::manifest(ns, "probe", false),
        ),
        (
            "PeerAuthentication".to_string(),
            istio::strict_peer_authentication(ns),
        ),
    ];
    for (i, doc) in rayconform::install::gateway_api::gateway_objects(
        &rayconform::install::gateway_api::GatewayApiInstall {
            allow_underscores_in_headers: true,
            ..Default::default()
        },
        &BTreeMap::from([("ingress-ready".into(), "true".into())]),
    )
    .into_iter()
    .enumerate()
    {
        out.push((format!("gateway-api install #{i}"), doc));
    }
    let mesh_client = rayconform::install::mesh_client::MeshClientInstall {
        service: "raycluster-guide-head-svc".into(),
        ports: vec![10001, 6379, 8265, 8000],
        destination_metrics: None,
        image: None,
    };
    for (i, doc) in rayconform::install::Component::namespace_manifests(&mesh_client, ns)
        .into_iter()
        .enumerate()
    {
        out.push((format!("mesh client #{i}"), doc));
    }
    let mut customized = ingress_nginx::customize(&upstream, &spec, ns).unwrap();
    ingress_nginx::pin_to_nodes(
        &mut customized,
        &BTreeMap::from([("ingress-ready".into(), "true".into())]),
    );
    for (i, doc) in customized.into_iter().enumerate() {
        out.push((format!("ingress-nginx customized #{i}"), doc));
    }
    let pinned = rayconform::scenario::IngressNginxInstall {
        host_network: true,
        node_selector: BTreeMap::from([("ingress-ready".into(), "true".into())]),
        ..Default::default()
    };
    for doc in ingress_nginx::customize(&upstream, &pinned, ns).unwrap() {
        if doc["kind"] == "Deployment" {
            out.push(("ingress-nginx pinned gateway Deployment".to_string(), doc));
        }
    }
    out
}

fn is_crd(doc: &Value) -> bool {
    CRD_KINDS
        .iter()
        .any(|(v, k)| doc["apiVersion"] == *v && doc["kind"] == *k)
}

fn unknown_fields(object: &Value, allowed: &[&str], at: &str, problems: &mut Vec<String>) {
    if let Some(map) = object.as_object() {
        for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
            problems.push(format!("{at}.{key} is not a KubeRay RayCluster field"));
        }
    }
}

/// Checks a RayCluster's field names; returns its pod templates as
/// PodTemplate objects for schema validation.
fn check_raycluster(doc: &Value, problems: &mut Vec<String>) -> Vec<Value> {
    let name = doc["metadata"]["name"].as_str().unwrap_or("?");
    let spec = &doc["spec"];
    unknown_fields(spec, RAYCLUSTER_SPEC_FIELDS, "spec", problems);
    unknown_fields(
        &spec["headGroupSpec"],
        HEAD_GROUP_FIELDS,
        "spec.headGroupSpec",
        problems,
    );
    let mut templates = vec![(
        format!("{name}-head"),
        spec["headGroupSpec"]["template"].clone(),
    )];
    for (i, group) in spec["workerGroupSpecs"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        unknown_fields(
            group,
            WORKER_GROUP_FIELDS,
            &format!("spec.workerGroupSpecs[{i}]"),
            problems,
        );
        templates.push((format!("{name}-worker-{i}"), group["template"].clone()));
    }
    templates
        .into_iter()
        .filter(|(_, t)| !t.is_null())
        .map(|(n, t)| json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": n}, "template": t}))
        .collect()
}

fn validate_all(docs: &[(String, Value)]) {
    let tool = validator();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for (i, (origin, doc)) in docs.iter().enumerate() {
        let mut schema_checked = vec![doc.clone()];
        if doc["kind"] == "RayCluster" {
            schema_checked = check_raycluster(doc, &mut problems);
        } else if doc["kind"] == "PeerAuthentication" {
            unknown_fields(
                &doc["spec"],
                &["selector", "mtls", "portLevelMtls"],
                "PeerAuthentication spec",
                &mut problems,
            );
            let mode = doc["spec"]["mtls"]["mode"].as_str().unwrap_or("");
            if !["UNSET", "DISABLE", "PERMISSIVE", "STRICT"].contains(&mode) {
                problems.push(format!("{origin}: PeerAuthentication mode `{mode}`"));
            }
            schema_checked.clear();
        } else if rayconform::gateway_api::owns(doc["apiVersion"].as_str().unwrap_or_default()) {
            if let Err(e) = rayconform::gateway_api::from_value(doc) {
                problems.push(format!("{origin}: {e}"));
            }
            schema_checked.clear();
        } else if is_crd(doc) {
            schema_checked.clear();
        }
        for (j, object) in schema_checked.iter().enumerate() {
            let path = dir.path().join(format!("{i:03}-{j}.yaml"));
            std::fs::write(&path, serde_json::to_string(object).unwrap()).unwrap();
            files.push((path, origin.clone()));
        }
    }
    assert!(
        problems.is_empty(),
        "field name problems:\n{}",
        problems.join("\n")
    );
    let minors = supported_minors();
    assert!(minors.len() >= 7, "{minors:?}");
    for minor in &minors {
        let out = Command::new(&tool)
            .args([
                "--strict",
                "--quiet",
                "--no-warn",
                "-k",
                &format!("{minor}.0"),
            ])
            .args(files.iter().map(|(p, _)| p))
            .output()
            .expect("run kubernetes-validate");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let text = files.iter().fold(text, |t, (p, origin)| {
            t.replace(&p.display().to_string(), origin)
        });
        assert!(out.status.success(), "Kubernetes {minor}:\n{text}");
    }
    println!(
        "validated {} objects against Kubernetes {}",
        files.len(),
        minors.join(", ")
    );
}

#[test]
fn generated_manifests_validate_on_every_supported_version() {
    validate_all(&generated());
}

/// Files under fixtures/ that scenarios apply (`apply:`, `delete:`,
/// `expectDenied:`).
fn fixtures_used_by_scenarios() -> Vec<PathBuf> {
    let loaded = rayconform::scenario::load_all(&[root().join("scenarios")], &root());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let mut used: Vec<PathBuf> = loaded
        .scenarios
        .iter()
        .flat_map(|s| s.steps.iter().chain(&s.finally))
        .filter_map(|step| match &step.action {
            rayconform::scenario::Action::Apply(src)
            | rayconform::scenario::Action::Delete(src) => src.file.clone(),
            rayconform::scenario::Action::ExpectDenied(d) => d.file.clone(),
            _ => None,
        })
        .map(|f| root().join(f))
        .collect();
    used.sort();
    used.dedup();
    used
}

#[test]
fn fixtures_validate_on_every_supported_version() {
    let mut docs = Vec::new();
    let fixtures = yaml_files(&root().join("fixtures"));
    // Not vacuous: every fixture a scenario applies is among those checked.
    let used = fixtures_used_by_scenarios();
    assert!(!used.is_empty(), "the scenarios apply no fixture file");
    for file in &used {
        assert!(
            fixtures.contains(file),
            "{} is applied by a scenario but not validated here",
            file.display()
        );
    }
    for file in &fixtures {
        let text = fill_templates(&std::fs::read_to_string(file).unwrap());
        let parsed = rayconform::scenario::parse_manifests(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(!parsed.is_empty(), "{} holds no object", file.display());
        for (i, doc) in parsed.into_iter().enumerate() {
            docs.push((format!("{}#{}", file.display(), i + 1), doc));
        }
    }
    println!("{} fixture files, {} objects", fixtures.len(), docs.len());
    validate_all(&docs);
}

#[test]
fn a_wrong_manifest_is_caught() {
    // The check can fail, for the right reason: an unknown Service field is
    // named, and the same object with the field spelled right passes.
    let tool = validator();
    let dir = tempfile::tempdir().unwrap();
    let validate = |name: &str, spec_field: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"x"}},"spec":{{"{spec_field}":[]}}}}"#
            ),
        )
        .unwrap();
        let out = Command::new(&tool)
            .args(["--strict", "--quiet", "-k", "1.35.0"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = validate("bad.yaml", "prots");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("bad.yaml did not validate") && text.contains("'prots' was unexpected"),
        "{text}"
    );
    let (code, text) = validate("good.yaml", "ports");
    assert_eq!(code, Some(0), "{text}");
    let mut problems = Vec::new();
    check_raycluster(
        &json!({"metadata": {"name": "r"}, "spec": {"headGroupSpec": {"rayStartParam": {}}}}),
        &mut problems,
    );
    assert_eq!(
        problems,
        vec!["spec.headGroupSpec.rayStartParam is not a KubeRay RayCluster field"]
    );
}

#[test]
fn our_raycluster_status_fields_are_kuberay_fields() {
    use rayconform::k8s::raycluster::RayClusterStatus;
    for f in RayClusterStatus::FIELD_NAMES {
        assert!(
            RAYCLUSTER_STATUS_FIELDS.contains(f),
            "status.{f} is not a KubeRay field"
        );
    }
    for f in RayClusterStatus::HEAD_FIELD_NAMES {
        assert!(
            RAYCLUSTER_HEAD_STATUS_FIELDS.contains(f),
            "status.head.{f} is not a KubeRay field"
        );
    }
}

#[test]
fn kind_configs_load_and_render_for_every_supported_version() {
    let configs = yaml_files(&root().join("kind-configs"));
    assert!(configs.len() >= 3, "{configs:?}");
    for file in &configs {
        let config = KindConfig::load(file).unwrap_or_else(|e| panic!("{e}"));
        let control_plane = config
            .nodes
            .iter()
            .find(|n| n.role.value == "control-plane")
            .unwrap();
        assert_eq!(
            control_plane
                .labels
                .get("ingress-ready")
                .map(String::as_str),
            Some("true"),
            "{}",
            file.display()
        );
        let ports: Vec<u16> = control_plane
            .extra_port_mappings
            .iter()
            .map(|m| m.host_port.value)
            .collect();
        assert!(
            ports.contains(&80) && ports.contains(&443),
            "{}: {ports:?}",
            file.display()
        );
        // The renderer itself, for every supported image: what kind would
        // read parses again, every node runs that image, and the hash (the
        // cluster name) differs per image.
        let mut scenario = support::scenario("render-check");
        scenario.cluster = Some(rayconform::scenario::ClusterSpec {
            config: Some(file.strip_prefix(root()).unwrap().display().to_string()),
            extra_port_mappings: Vec::new(),
            workers: 0,
        });
        let mut hashes = Vec::new();
        for image in versions::NODE_IMAGES {
            let rendered = render::render(&scenario, &root(), *image)
                .unwrap_or_else(|e| panic!("{} on {}: {e}", file.display(), image.version));
            assert_eq!(rendered.image, *image);
            let again = KindConfig::parse(file, &rendered.yaml)
                .unwrap_or_else(|e| panic!("{} on {}: {e}", file.display(), image.version));
            assert_eq!(again.nodes.len(), config.nodes.len(), "{}", file.display());
            for node in &again.nodes {
                assert_eq!(
                    node.image.as_deref(),
                    Some(image.reference().as_str()),
                    "{} on {}",
                    file.display(),
                    image.version
                );
            }
            hashes.push(rendered.hash);
        }
        let distinct: std::collections::BTreeSet<&String> = hashes.iter().collect();
        assert_eq!(
            distinct.len(),
            versions::NODE_IMAGES.len(),
            "{}",
            file.display()
        );
    }
}
