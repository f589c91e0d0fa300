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
