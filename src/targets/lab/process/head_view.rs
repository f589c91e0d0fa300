//! What a running lab head shows of itself: whether it answers (its GCS,
//! its Ray client port, its dashboard when it runs one) and which of one
//! RayCluster's worker nodes its GCS lists alive. Read from the GCS, so a
//! head without a dashboard is observed the same way as one with.

use super::dashboard;
use super::head_pool::HeadLease;
use super::worker::RAYCLUSTER_LABEL;
use crate::probe::gcs_nodes::{self, GcsNode};
use crate::tls::{ClientIdentity, ClientTls};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpStream;

/// How long the GCS may take to list its nodes.
const GCS_TIMEOUT: Duration = Duration::from_secs(3);

/// One look at a head.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadView {
    /// Why the head is not up, when it is not.
    pub down: Option<String>,
    /// What each alive worker node of the RayCluster (not the head) offers,
    /// as its GCS lists it.
    pub alive_workers: Vec<BTreeMap<String, f64>>,
}

/// Looks at the head of `lease` (over TLS, with the head's own certificate,
/// when the head has TLS on), counting the workers labelled `raycluster`.
pub async fn look(lease: &HeadLease, raycluster: &str) -> HeadView {
    let tls = lease.tls.as_ref().map(|t| ClientTls {
        server_name: Some("localhost".into()),
        ca_cert: Some(t.ca_cert.clone()),
        insecure: false,
        identity: Some(ClientIdentity {
            cert: t.server_cert.clone(),
            key: t.server_key.clone(),
            label: "the head's own certificate".into(),
        }),
        version: None,
    });
    let gcs = format!("127.0.0.1:{}", lease.ports.gcs);
    let nodes = match gcs_nodes::list(&gcs, tls.as_ref(), GCS_TIMEOUT).await {
        Ok(nodes) => nodes,
        Err(e) => return down(format!("its GCS does not list its nodes: {e}")),
    };
    if !nodes.iter().any(|n| n.is_head && n.alive) {
        return down(format!("its GCS {gcs} does not list the head node alive"));
    }
    if TcpStream::connect(("127.0.0.1", lease.ports.client))
        .await
        .is_err()
    {
        return down(format!(
            "its client port 127.0.0.1:{} refuses connections",
            lease.ports.client
        ));
    }
    if lease.dashboard && !dashboard::answers_version(lease.ports.dashboard).await {
        return down(format!(
            "its dashboard 127.0.0.1:{} does not answer /api/version",
            lease.ports.dashboard
        ));
    }
    HeadView {
        down: None,
        alive_workers: alive_workers(&nodes, raycluster),
    }
}

fn down(why: String) -> HeadView {
    HeadView {
        down: Some(why),
        alive_workers: Vec::new(),
    }
}

/// The resources of each alive node that is not the head and carries the
/// [`RAYCLUSTER_LABEL`] `raycluster`.
pub fn alive_workers(nodes: &[GcsNode], raycluster: &str) -> Vec<BTreeMap<String, f64>> {
    nodes
        .iter()
        .filter(|n| n.alive && !n.is_head)
        .filter(|n| n.labels.get(RAYCLUSTER_LABEL).map(String::as_str) == Some(raycluster))
        .map(|n| n.resources.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(alive: bool, is_head: bool, cpus: f64, raycluster: Option<&str>) -> GcsNode {
        GcsNode {
            alive,
            is_head,
            resources: [("CPU".to_string(), cpus)].into_iter().collect(),
            labels: raycluster
                .map(|r| (RAYCLUSTER_LABEL.to_string(), r.to_string()))
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn a_rayclusters_workers_are_its_alive_labelled_nodes_other_than_the_head() {
        let nodes = [
            node(true, true, 1.0, None),
            node(true, false, 2.0, Some("raycluster-1")),
            node(false, false, 3.0, Some("raycluster-1")),
            node(true, false, 4.0, Some("raycluster-2")),
            node(true, false, 5.0, None),
        ];
        let workers = alive_workers(&nodes, "raycluster-1");
        assert_eq!(workers.len(), 1);
        assert_eq!(workers[0]["CPU"], 2.0);
        assert_eq!(alive_workers(&nodes, "raycluster-2")[0]["CPU"], 4.0);
        assert!(alive_workers(&nodes, "raycluster-3").is_empty());
    }
}
