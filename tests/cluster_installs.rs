//! Install planning and the ingress-nginx manifest changes, checked on a
//! manifest shaped like the upstream kind deploy manifest.

use rayconform::install::ingress_nginx::{self, CONTROLLER_IMAGE, ManifestError};
use rayconform::install::{self as install, istio};
use rayconform::scenario::{IngressNginxInstall, Install, IstioInstall, KuberayOperatorInstall};
use rayconform::targets::cluster::{installs_unsupported, tcp_service_ports};
use rayconform::tools::{HELM, ISTIOCTL};
use std::collections::BTreeMap;

fn upstream_like(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: ingress-nginx
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ingress-nginx-controller
  namespace: ingress-nginx
data: null
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ingress-nginx-controller
  namespace: ingress-nginx
spec:
  template:
    spec:
      containers:
      - name: controller
        image: {image}
        args:
        - /nginx-ingress-controller
        - --watch-ingress-without-class=true
        - --publish-status-address=localhost
        ports:
        - containerPort: 80
          hostPort: 80
          name: http
          protocol: TCP
"#
    )
}

fn spec() -> IngressNginxInstall {
    IngressNginxInstall {
        ssl_passthrough: true,
        tcp_services: BTreeMap::from([(
            "6379".to_string(),
            "${NAMESPACE}/rc-head-svc:6379".to_string(),
        )]),
        config: BTreeMap::from([("allow-snippet-annotations".to_string(), "true".to_string())]),
        ..Default::default()
    }
}

#[test]
fn the_manifest_gets_passthrough_tcp_services_and_config() {
    let docs =
        ingress_nginx::customize(&upstream_like(CONTROLLER_IMAGE), &spec(), "rc-ns").unwrap();
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let controller = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = controller["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"--enable-ssl-passthrough"), "{args:?}");
    assert!(
        args.contains(&"--tcp-services-configmap=ingress-nginx/tcp-services"),
        "{args:?}"
    );
    assert!(
        args.contains(&"--publish-status-address=localhost"),
        "upstream args kept: {args:?}"
    );
    let port = controller["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["containerPort"] == 6379)
        .unwrap();
    assert_eq!(port["hostPort"], 6379);
    let tcp = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "tcp-services")
        .unwrap();
    assert_eq!(tcp["data"]["6379"], "rc-ns/rc-head-svc:6379");
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "ingress-nginx-controller")
        .unwrap();
    assert_eq!(config["data"]["allow-snippet-annotations"], "true");
}

#[test]
fn customizing_twice_does_not_repeat_flags() {
    let once = ingress_nginx::customize(&upstream_like(CONTROLLER_IMAGE), &spec(), "ns").unwrap();
    let text = serde_saphyr::to_string_multiple(&once).unwrap();
    let twice = ingress_nginx::customize(&text, &spec(), "ns").unwrap();
    let count = |docs: &[serde_json::Value]| {
        docs.iter().find(|d| d["kind"] == "Deployment").unwrap()["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array().unwrap().len()
    };
    assert_eq!(count(&once), count(&twice));
}

#[test]
fn another_controller_image_is_refused() {
    let err = ingress_nginx::customize(
        &upstream_like("registry.k8s.io/ingress-nginx/controller:v1.15.0"),
        &spec(),
        "ns",
    )
    .unwrap_err();
    assert!(matches!(err, ManifestError::WrongImage { .. }), "{err}");
}

#[test]
fn sha256_is_the_real_sha256() {
    assert_eq!(
        ingress_nginx::sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn istio_plans_injection_and_strict_mtls() {
    let item = Install::Istio(IstioInstall {
        version: None,
        inject_namespace: true,
        strict_mtls: true,
    });
    let (title, text) = install::plan(&item, "rc-ns");
    assert_eq!(title, "install istio 1.30.4");
    assert!(
        text.contains("istioctl install --set profile=minimal -y"),
        "{text}"
    );
    assert!(
        text.contains("label namespace rc-ns: istio-injection=enabled"),
        "{text}"
    );
    let labels = install::namespace_labels(std::slice::from_ref(&item));
    assert_eq!(
        labels.get("istio-injection").map(String::as_str),
        Some("enabled")
    );
    let objects = install::namespace_manifests(&[item], "rc-ns");
    assert_eq!(objects, vec![istio::strict_peer_authentication("rc-ns")]);
    assert_eq!(objects[0]["spec"]["mtls"]["mode"], "STRICT");
}

#[test]
fn on_kind_the_controller_runs_on_the_ingress_ready_node() {
    let mut docs =
        ingress_nginx::customize(&upstream_like(CONTROLLER_IMAGE), &spec(), "ns").unwrap();
    let selector = BTreeMap::from([("ingress-ready".to_string(), "true".to_string())]);
    ingress_nginx::pin_to_nodes(&mut docs, &selector);
    ingress_nginx::pin_to_nodes(&mut docs, &selector);
    let pod = &docs.iter().find(|d| d["kind"] == "Deployment").unwrap()["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["ingress-ready"], "true");
    let tolerations = pod["tolerations"].as_array().unwrap();
    assert_eq!(tolerations.len(), 1, "added once: {tolerations:?}");
    assert_eq!(
        tolerations[0]["key"],
        "node-role.kubernetes.io/control-plane"
    );
}

/// The pinned gateway (issue 8, 4b): `hostNetwork` puts the controller on
/// its node's network with the DNS policy a host-network pod needs, and
/// `nodeSelector` says which node; without them the upstream pod spec keeps
/// the pod network. The lab has no nodes to pin to: it skips with why.
#[test]
fn the_pinned_gateway_uses_host_network_on_the_selected_node() {
    let pinned = IngressNginxInstall {
        host_network: true,
        node_selector: BTreeMap::from([("ingress-ready".to_string(), "true".to_string())]),
        ..Default::default()
    };
    let upstream = upstream_like(CONTROLLER_IMAGE).replace(
        "    spec:\n      containers:",
        "    spec:\n      dnsPolicy: ClusterFirst\n      nodeSelector:\n        kubernetes.io/os: linux\n      containers:",
    );
    let pod_of = |spec: &IngressNginxInstall| {
        let docs = ingress_nginx::customize(&upstream, spec, "ns").unwrap();
        docs.iter().find(|d| d["kind"] == "Deployment").unwrap()["spec"]["template"]["spec"].clone()
    };
    let pod = pod_of(&pinned);
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    assert_eq!(pod["nodeSelector"]["ingress-ready"], "true");
    assert_eq!(
        pod["nodeSelector"]["kubernetes.io/os"], "linux",
        "upstream selector kept"
    );
    let plain = pod_of(&IngressNginxInstall::default());
    assert!(plain.get("hostNetwork").is_none(), "{plain}");
    assert_eq!(plain["dnsPolicy"], "ClusterFirst");
    assert!(
        plain["nodeSelector"].get("ingress-ready").is_none(),
        "{plain}"
    );
    let plan = ingress_nginx::plan(&pinned);
    assert!(
        plan.contains("hostNetwork: true, dnsPolicy: ClusterFirstWithHostNet"),
        "{plan}"
    );
    assert!(plan.contains("nodeSelector: ingress-ready=true"), "{plan}");
    use rayconform::install::Component;
    assert!(pinned.lab_skip_reason().unwrap().contains("no nodes"));
    assert_eq!(IngressNginxInstall::default().lab_skip_reason(), None);
}

/// Each registered component, as a scenario entry `{name: {}}` reads.
fn every_component() -> Vec<Install> {
    Install::NAMES
        .iter()
        .map(|name| {
            let raw: rayconform::scenario::raw::RawInstall =
                serde_json::from_value(serde_json::json!({ *name: {} })).unwrap();
            let mut found = raw.into_installs();
            assert_eq!(found.len(), 1, "{name}");
            found.remove(0)
        })
        .collect()
}

#[test]
fn every_registered_component_plans_under_its_name_and_pinned_version() {
    let pinned = [
        ("ingressNginx", ingress_nginx::VERSION),
        ("kuberayOperator", install::kuberay_operator::CHART_VERSION),
        (
            "kuberayApiserver",
            install::kuberay_apiserver::CHART_VERSION,
        ),
        ("istio", istio::VERSION),
        ("gatewayApi", install::gateway_api::ENVOY_GATEWAY_VERSION),
        ("meshClient", install::mesh_client::DEFAULT_IMAGE),
    ];
    let components = every_component();
    assert_eq!(components.len(), pinned.len());
    for (item, (name, version)) in components.iter().zip(pinned) {
        assert_eq!(install::component_name(item), name);
        assert_eq!(install::version(item), version);
        let (title, text) = install::plan(item, "rc-ns");
        assert_eq!(title, format!("install {name} {version}"));
        assert!(!text.is_empty(), "{name}");
        if let Some(reason) = item.component().lab_skip_reason() {
            assert!(
                reason.starts_with("lab cannot stand in for"),
                "{name}: {reason}"
            );
        }
    }
}

#[test]
fn unsupported_versions_are_decided_before_missing_tools() {
    let istio_1_30 = Install::Istio(IstioInstall {
        version: Some("1.30.4".into()),
        ..Default::default()
    });
    let why = installs_unsupported(std::slice::from_ref(&istio_1_30), "1.31").unwrap();
    assert_eq!(
        why,
        "istio 1.30.4 supports Kubernetes 1.32–1.36 only, not 1.31"
    );
    let nginx = Install::IngressNginx(IngressNginxInstall::default());
    let why = installs_unsupported(&[istio_1_30.clone(), nginx.clone()], "1.36.4").unwrap();
    assert_eq!(
        why,
        "ingressNginx v1.15.1 supports Kubernetes 1.31–1.35 only, not 1.36.4"
    );
    assert_eq!(
        installs_unsupported(std::slice::from_ref(&nginx), "1.35"),
        None
    );

    // In a supported window, what is left is the tool each one needs.
    let operator = Install::KuberayOperator(KuberayOperatorInstall::default());
    let expected = match HELM.find() {
        Ok(_) => None,
        Err(missing) => Some(format!("kuberayOperator needs {missing}")),
    };
    assert_eq!(installs_unsupported(&[nginx, operator], "1.35"), expected);
    let expected = match ISTIOCTL.find() {
        Ok(_) => None,
        Err(missing) => Some(format!("istio needs {missing}")),
    };
    assert_eq!(installs_unsupported(&[istio_1_30], "1.35"), expected);
}

#[test]
fn raw_tcp_ports_and_applied_templates_come_from_the_component() {
    let items = vec![
        Install::KuberayOperator(KuberayOperatorInstall::default()),
        Install::IngressNginx(spec()),
    ];
    assert_eq!(tcp_service_ports(&items), vec![6379]);
    let applied = install::as_applied(&items[1], "rc-ns");
    let Install::IngressNginx(applied) = applied else {
        panic!("still ingress-nginx: {applied:?}");
    };
    assert_eq!(applied.tcp_services["6379"], "rc-ns/rc-head-svc:6379");
    assert_eq!(install::as_applied(&items[0], "rc-ns"), items[0]);
}
