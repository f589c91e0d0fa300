//! A mesh client for the host's probes: two relay pods in the scenario
//! namespace, one with an Istio sidecar (`mesh-client`) and one without
//! (`naked-client`), each relaying its loopback ports to the same ports of
//! a Service.
//!
//! The path a probe's bytes take: the probe (on the host) connects to a
//! local port-forward listener (`${MESH_CLIENT_<port>}`); the port-forward
//! enters the relay pod's network namespace on `127.0.0.1:<port>` (loopback
//! traffic is not captured by the sidecar); the relay dials
//! `<service>:<port>`, and that outbound connection *is* captured: in the
//! mesh pod it leaves through the sidecar with Istio mTLS, in the naked
//! pod it leaves as plaintext. So the harness's own Ray, GCS and HTTP
//! probes run as a mesh workload and as a workload outside the mesh.
//!
//! With `destinationMetrics`, the first running pod matching that label
//! selector gets its sidecar's Prometheus endpoint (`:15090`) forwarded as
//! `${DESTINATION_SIDECAR_METRICS}`.

use super::component::{Component, InvalidField, PortForwardRequest};
use super::{InstallContext, InstallError, Installed};
use crate::manifest::Manifest;
use serde::{Deserialize, Serialize};

/// The image the relays run in by default: the Ray image the scenarios'
/// RayClusters already pull (it has Python; the relay needs nothing else).
pub const DEFAULT_IMAGE: &str = "rayproject/ray:2.60.0";
/// The relay pod inside the mesh (sidecar injected).
pub const MESH_POD: &str = "mesh-client";
/// The relay pod outside the mesh (injection disabled).
pub const NAKED_POD: &str = "naked-client";
/// The label naming a relay pod (its value is the pod name).
pub const RELAY_LABEL: &str = "rayconform.dev/relay";
/// Envoy's Prometheus endpoint in an Istio sidecar.
pub const SIDECAR_METRICS_PORT: u16 = 15090;
/// The relays' ServiceAccount: the mesh relay's certificate carries its
/// SPIFFE ID (`spiffe://<trust domain>/ns/<namespace>/sa/rayconform-mesh-client`),
/// which the destination's metrics show as `source_principal`.
pub const SERVICE_ACCOUNT: &str = "rayconform-mesh-client";
/// The variable holding the forwarded destination sidecar metrics.
pub const METRICS_VARIABLE: &str = "DESTINATION_SIDECAR_METRICS";

/// The relay: one asyncio listener per port on loopback, each connection
/// piped to the same port of the Service (argv: service, ports...).
pub const RELAY_SCRIPT: &str = r#"import asyncio, sys
service = sys.argv[1]
ports = [int(p) for p in sys.argv[2:]]

async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()

def relay(port):
    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(service, port)
        except OSError as e:
            print(f"{port}: cannot reach {service}:{port}: {e}", flush=True)
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))
    return handle

async def main():
    servers = [await asyncio.start_server(relay(p), "127.0.0.1", p) for p in ports]
    print(f"relaying 127.0.0.1:{ports} to {service}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))

asyncio.run(main())
"#;

/// `install[].meshClient`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshClientInstall {
    /// The Service (in the scenario namespace) the relays dial.
    #[serde(default)]
    pub service: String,
    /// The ports relayed: each is the relay's loopback port and the
    /// Service port; published as `MESH_CLIENT_<port>` and
    /// `NAKED_CLIENT_<port>`.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Label selector of the destination pod whose sidecar metrics
    /// (`:15090`) are forwarded as `DESTINATION_SIDECAR_METRICS`.
    pub destination_metrics: Option<String>,
    /// The relays' image (needs `python`); the Ray image by default.
    pub image: Option<String>,
}

#[async_trait::async_trait]
impl Component for MeshClientInstall {
    fn name(&self) -> &'static str {
        "meshClient"
    }

    fn version(&self) -> String {
        self.image().to_string()
    }

    fn plan(&self, namespace: &str) -> String {
        plan(self, namespace)
    }

    fn lab_skip_reason(&self) -> Option<String> {
        Some(
            "lab cannot stand in for a mesh client (install.meshClient): there are no pods \
             or sidecars on loopback to relay from"
                .into(),
        )
    }

    fn namespace_manifests(&self, namespace: &str) -> Vec<Manifest> {
        vec![
            service_account(namespace),
            relay_pod(self, namespace, MESH_POD, true),
            relay_pod(self, namespace, NAKED_POD, false),
        ]
    }

    fn port_forwards(&self) -> Vec<PortForwardRequest> {
        port_forwards(self)
    }

    fn validate(&self) -> Vec<InvalidField> {
        validate(self)
    }

    async fn install(&self, _ctx: &InstallContext) -> Result<Installed, InstallError> {
        // The relay pods are namespace objects (created with the session);
        // nothing is installed cluster-wide.
        Ok(Installed {
            component: "meshClient",
            version: self.version(),
            summary: format!(
                "mesh client: relay pods {MESH_POD} (sidecar) and {NAKED_POD} (no sidecar) → {} ports {:?}",
                self.service, self.ports
            ),
        })
    }
}

impl MeshClientInstall {
    fn image(&self) -> &str {
        self.image.as_deref().unwrap_or(DEFAULT_IMAGE)
    }
}

/// The variable a relayed port is published as, for the mesh or the
/// naked relay.
pub fn variable(mesh: bool, port: u16) -> String {
    if mesh {
        format!("MESH_CLIENT_{port}")
    } else {
        format!("NAKED_CLIENT_{port}")
    }
}

/// Every port-forward the spec asks for: each relayed port of both relays,
/// then the destination's sidecar metrics.
pub fn port_forwards(spec: &MeshClientInstall) -> Vec<PortForwardRequest> {
    let mut forwards = Vec::new();
    for (pod, mesh) in [(MESH_POD, true), (NAKED_POD, false)] {
        for port in &spec.ports {
            forwards.push(PortForwardRequest {
                variable: variable(mesh, *port),
                label_selector: format!("{RELAY_LABEL}={pod}"),
                port: *port,
            });
        }
    }
    if let Some(selector) = &spec.destination_metrics {
        forwards.push(PortForwardRequest {
            variable: METRICS_VARIABLE.to_string(),
            label_selector: selector.clone(),
            port: SIDECAR_METRICS_PORT,
        });
    }
    forwards
}

/// The relays' own ServiceAccount (their mesh identity).
pub fn service_account(namespace: &str) -> Manifest {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace}
    })
}

/// One relay pod; `sidecar` decides Istio injection (the
/// `sidecar.istio.io/inject` label).
pub fn relay_pod(spec: &MeshClientInstall, namespace: &str, name: &str, sidecar: bool) -> Manifest {
    let mut command = vec![
        "python".to_string(),
        "-u".to_string(),
        "-c".to_string(),
        RELAY_SCRIPT.to_string(),
        spec.service.clone(),
    ];
    command.extend(spec.ports.iter().map(u16::to_string));
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "rayconform-mesh-client",
                "app": name,
                RELAY_LABEL: name,
                "sidecar.istio.io/inject": if sidecar { "true" } else { "false" }
            }
        },
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "serviceAccountName": SERVICE_ACCOUNT,
            "containers": [{
                "name": "relay",
                "image": spec.image(),
                "imagePullPolicy": "IfNotPresent",
                "command": command,
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"}
                }
            }]
        }
    })
}

/// Ports below 1024 need privileges the Ray image's user lacks; Envoy
/// listens on 15000–15090 in the mesh pod itself.
fn validate(spec: &MeshClientInstall) -> Vec<InvalidField> {
    let mut problems = Vec::new();
    if spec.service.is_empty() {
        problems.push(InvalidField {
            field: "service".into(),
            message: "expected the Service the relays dial".into(),
        });
    }
    if spec.ports.is_empty() {
        problems.push(InvalidField {
            field: "ports".into(),
            message: "expected at least one port to relay".into(),
        });
    }
    for (i, port) in spec.ports.iter().enumerate() {
        if *port < 1024 || (15000..=15090).contains(port) {
            problems.push(InvalidField {
                field: format!("ports.{i}"),
                message: format!(
                    "port {port} cannot be relayed: the relay runs unprivileged (>= 1024) and \
                     Istio's sidecar owns 15000-15090"
                ),
            });
        }
        if spec.ports[..i].contains(port) {
            problems.push(InvalidField {
                field: format!("ports.{i}"),
                message: format!("port {port} is listed twice"),
            });
        }
    }
    problems
}

/// The plan text.
pub fn plan(spec: &MeshClientInstall, namespace: &str) -> String {
    let mut lines = vec![
        format!(
            "ServiceAccount {namespace}/{SERVICE_ACCOUNT}; Pod {namespace}/{MESH_POD} (sidecar.istio.io/inject=true) and {namespace}/{NAKED_POD} \
             (sidecar.istio.io/inject=false), image {}: a python relay from 127.0.0.1:<port> to \
             {}:<port> for ports {:?}",
            spec.image(),
            spec.service,
            spec.ports
        ),
        "path: probe on the host → port-forward → relay pod's loopback → relay's outbound \
         connection (through the sidecar with mTLS in the mesh pod, plaintext in the naked pod)"
            .to_string(),
    ];
    for forward in port_forwards(spec) {
        lines.push(format!(
            "${{{}}}: port-forward 127.0.0.1:<port chosen at run time> → pod ({}) port {}",
            forward.variable, forward.label_selector, forward.port
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MeshClientInstall {
        MeshClientInstall {
            service: "raycluster-guide-head-svc".into(),
            ports: vec![10001, 6379],
            destination_metrics: Some("ray.io/node-type=head".into()),
            image: None,
        }
    }

    #[test]
    fn forwards_every_port_of_both_relays_and_the_metrics() {
        let forwards = port_forwards(&spec());
        let names: Vec<&str> = forwards.iter().map(|f| f.variable.as_str()).collect();
        assert_eq!(
            names,
            [
                "MESH_CLIENT_10001",
                "MESH_CLIENT_6379",
                "NAKED_CLIENT_10001",
                "NAKED_CLIENT_6379",
                "DESTINATION_SIDECAR_METRICS"
            ]
        );
        assert_eq!(
            forwards[0].label_selector,
            "rayconform.dev/relay=mesh-client"
        );
        assert_eq!(
            forwards[2].label_selector,
            "rayconform.dev/relay=naked-client"
        );
        assert_eq!(forwards[4].port, 15090);
    }

    #[test]
    fn only_the_mesh_relay_gets_a_sidecar() {
        let s = spec();
        let mesh = relay_pod(&s, "ns", MESH_POD, true);
        let naked = relay_pod(&s, "ns", NAKED_POD, false);
        assert_eq!(
            mesh["metadata"]["labels"]["sidecar.istio.io/inject"],
            "true"
        );
        assert_eq!(
            naked["metadata"]["labels"]["sidecar.istio.io/inject"],
            "false"
        );
        let argv = mesh["spec"]["containers"][0]["command"].as_array().unwrap();
        let tail: Vec<&str> = argv[4..].iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(tail, ["raycluster-guide-head-svc", "10001", "6379"]);
    }

    #[test]
    fn sidecar_and_privileged_ports_are_refused() {
        let mut s = spec();
        s.ports = vec![15090, 80, 8000, 8000];
        let fields: Vec<String> = validate(&s).into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["ports.0", "ports.1", "ports.3"]);
        assert!(validate(&spec()).is_empty());
    }
}
