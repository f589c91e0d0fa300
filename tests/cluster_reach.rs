//! Reaching workloads through the API double's websocket subresources:
//! a port-forward served on loopback, and a probe pod whose commands run
//! by exec.

mod support;

use rayconform::k8s::reach::{PortForward, ProbePod};
use serde_json::json;
use std::time::Duration;
use support::apiserver::ApiDouble;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "rc-reach";
/// How long the scripted kubelet waits for the pod: generous, since it
/// waits on the event itself and a loaded machine must not turn into a
/// misleading failure.
const ACTOR_BOUND: Duration = Duration::from_secs(120);

#[tokio::test]
async fn a_port_forward_carries_bytes_both_ways() {
    let double = ApiDouble::start().await;
    let forward = PortForward::start(&double.client(), NS, "rc-head", 10001)
        .await
        .unwrap();
    assert!(forward.local.ip().is_loopback());
    for message in [&b"first connection"[..], &b"second"[..]] {
        let mut conn = tokio::net::TcpStream::connect(forward.local).await.unwrap();
        conn.write_all(message).await.unwrap();
        let mut echoed = vec![0; message.len()];
        tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut echoed))
            .await
            .expect("echo within 5s")
            .unwrap();
        assert_eq!(echoed, message);
    }
    let upgrades: Vec<String> = double
        .requests()
        .into_iter()
        .filter(|r| r.method == "UPGRADE")
        .map(|r| r.uri)
        .collect();
    assert_eq!(
        upgrades.len(),
        2,
        "one port-forward stream per connection: {upgrades:?}"
    );
    assert!(
        upgrades[0].starts_with(&format!(
            "/api/v1/namespaces/{NS}/pods/rc-head/portforward?"
        )),
        "{upgrades:?}"
    );
    assert!(upgrades[0].contains("ports=10001"), "{upgrades:?}");
}

#[tokio::test]
async fn a_probe_pod_is_launched_waited_for_and_exec_d_into() {
    let double = ApiDouble::start().await;
    let client = double.client();
    let d = &double;
    let launching = ProbePod::launch(&client, NS, "probe", false, Duration::from_secs(120));
    let kubelet = async {
        // The "kubelet": the pod the launch creates becomes Ready.
        d.wait_for_object("pods", NS, "probe", ACTOR_BOUND).await;
        d.set_status(
            "pods",
            NS,
            "probe",
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
        );
    };
    tokio::pin!(launching);
    // If the launch ends first (it failed), its error is the story.
    let launched = tokio::select! {
        launched = &mut launching => launched,
        () = kubelet => launching.await,
    };
    let pod = launched.unwrap();
    let stored = double.get("pods", NS, "probe").unwrap();
    assert_eq!(
        stored["metadata"]["annotations"]["sidecar.istio.io/inject"],
        "false"
    );
    let argv = ["curl", "-sS", "http://rc-head-svc:8265/api/version"];
    double.set_exec(NS, "probe", "probe", &argv, "{\"ray_version\": \"2.60.0\"}");
    assert_eq!(
        pod.exec(&argv).await.unwrap(),
        "{\"ray_version\": \"2.60.0\"}"
    );
    pod.remove().await.unwrap();
    assert!(double.get("pods", NS, "probe").is_none());
}

#[tokio::test]
async fn a_probe_pod_that_never_gets_ready_fails_with_its_state() {
    let double = ApiDouble::start().await;
    let err = ProbePod::launch(
        &double.client(),
        NS,
        "probe",
        true,
        Duration::from_millis(300),
    )
    .await
    .err()
    .expect("times out");
    let text = err.to_string();
    assert!(
        text.starts_with("probe pod probe: timed out after"),
        "{text}"
    );
    assert!(text.contains("probe: Unknown, ready=false"), "{text}");
}

fn pod(name: &str, relay: Option<&str>, phase: &str) -> serde_json::Value {
    let mut labels = json!({});
    if let Some(r) = relay {
        labels["rayconform.dev/relay"] = json!(r);
    }
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": NS, "labels": labels},
           "status": {"phase": phase}})
}

async fn echoes(local: std::net::SocketAddr, message: &[u8]) -> bool {
    let mut conn = tokio::net::TcpStream::connect(local).await.unwrap();
    conn.write_all(message).await.unwrap();
    let mut echoed = vec![0; message.len()];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut echoed)).await,
        Ok(Ok(_))
    ) && echoed == message
}

fn forwarded_pods(double: &ApiDouble) -> Vec<String> {
    double
        .requests()
        .into_iter()
        .filter(|r| r.method == "UPGRADE")
        .filter_map(|r| {
            r.uri
                .strip_prefix(&format!("/api/v1/namespaces/{NS}/pods/"))
                .and_then(|rest| rest.split('/').next())
                .map(str::to_string)
        })
        .collect()
}

/// A forward by label selector may start before its pod exists (a
/// connection then is closed, nothing is forwarded); once pods exist,
/// each connection goes to the running pod the selector matches — not to
/// a pending one with the same label, not to a running one without it.
#[tokio::test]
async fn a_selector_forward_goes_to_the_running_matching_pod() {
    use rayconform::k8s::reach::ForwardTo;
    let double = ApiDouble::start().await;
    let forward = PortForward::start_to(
        &double.client(),
        NS,
        ForwardTo::Selected("rayconform.dev/relay=mesh-client".into()),
        10001,
    )
    .await
    .unwrap();
    assert!(
        !echoes(forward.local, b"before the pod").await,
        "no pod yet: nothing to echo"
    );
    assert!(forwarded_pods(&double).is_empty());

    double.put("pods", pod("a-pending", Some("mesh-client"), "Pending"));
    double.put("pods", pod("b-running", Some("mesh-client"), "Running"));
    double.put("pods", pod("a-other", Some("naked-client"), "Running"));
    assert!(echoes(forward.local, b"through the relay").await);
    assert_eq!(forwarded_pods(&double), ["b-running"]);
}

/// The cluster session starts the forwards a scenario's installs ask for
/// (here the mesh client's) and publishes each as its template variable,
/// a loopback address that reaches the selected pod's port.
#[tokio::test]
async fn the_session_publishes_each_install_forward_as_a_variable() {
    use rayconform::install::mesh_client::{MeshClientInstall, port_forwards};
    use rayconform::targets::Session;
    use rayconform::targets::cluster::{ClusterSession, SessionSetup};
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let run = support::run(support::scenario("forwards"), NS, dir.path(), None);
    let mut session = ClusterSession::open(double.client(), &run, SessionSetup::default())
        .await
        .expect("session opens");
    let spec = MeshClientInstall {
        service: "raycluster-guide-head-svc".into(),
        ports: vec![10001],
        destination_metrics: Some("ray.io/node-type=head".into()),
        image: None,
    };
    session
        .start_port_forwards(&port_forwards(&spec))
        .await
        .unwrap();
    let vars = session.variables();
    for name in [
        "MESH_CLIENT_10001",
        "NAKED_CLIENT_10001",
        "DESTINATION_SIDECAR_METRICS",
    ] {
        let address: std::net::SocketAddr = vars[name]
            .parse()
            .unwrap_or_else(|e| panic!("{name} = {:?} is not an address: {e}", vars[name]));
        assert!(address.ip().is_loopback(), "{name} = {address}");
    }
    double.put("pods", pod("naked-client", Some("naked-client"), "Running"));
    let mut head = pod("raycluster-guide-head-x", None, "Running");
    head["metadata"]["labels"]["ray.io/node-type"] = json!("head");
    double.put("pods", head);
    assert!(echoes(vars["NAKED_CLIENT_10001"].parse().unwrap(), b"naked").await);
    assert!(
        echoes(
            vars["DESTINATION_SIDECAR_METRICS"].parse().unwrap(),
            b"stats"
        )
        .await
    );
    let upgrades: Vec<String> = double
        .requests()
        .into_iter()
        .filter(|r| r.method == "UPGRADE")
        .map(|r| r.uri)
        .collect();
    assert!(
        upgrades[0].contains("/pods/naked-client/portforward?")
            && upgrades[0].contains("ports=10001"),
        "{upgrades:?}"
    );
    assert!(
        upgrades[1].contains("/pods/raycluster-guide-head-x/portforward?")
            && upgrades[1].contains("ports=15090"),
        "{upgrades:?}"
    );
    session.close(false).await;
}

/// `INGRESS_NODE_IP` comes from the node the ingress is pinned to: the
/// `InternalIP` of the node carrying the selector's labels, not another
/// node's, not another address type; no matching node, no address.
#[tokio::test]
async fn the_ingress_node_ip_is_the_labelled_nodes_internal_ip() {
    use rayconform::k8s::reach::node_internal_ip;
    let double = ApiDouble::start().await;
    let node = |name: &str, labelled: bool, ip: &str| {
        let labels = if labelled {
            json!({"ingress-ready": "true"})
        } else {
            json!({})
        };
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": name, "labels": labels},
               "status": {"addresses": [
                   {"type": "Hostname", "address": name},
                   {"type": "InternalIP", "address": ip}]}})
    };
    let client = double.client();
    assert_eq!(
        node_internal_ip(&client, "ingress-ready=true")
            .await
            .unwrap(),
        None
    );
    double.put("nodes", node("kind-worker", false, "172.18.0.3"));
    double.put("nodes", node("kind-control-plane", true, "172.18.0.2"));
    assert_eq!(
        node_internal_ip(&client, "ingress-ready=true")
            .await
            .unwrap()
            .as_deref(),
        Some("172.18.0.2")
    );
}
