//! A Ray head's node list straight from its GCS
//! (`/ray.rpc.NodeInfoGcsService/GetAllNodeInfo`): every node it knows,
//! alive or dead, with the resources and labels each registered with.
//!
//! Unlike [`super::ray_nodes`] (a client session's `ray.nodes()`), this
//! needs neither a client session nor the dashboard: the lab asks it to
//! see which worker nodes joined a head.

use super::grpc_session::open_staged;
use super::ray_proto::GetAllNodeInfoRequest;
use super::ray_proto::gcs_node_info::GcsNodeState;
use super::ray_proto::node_info_gcs_service_client::NodeInfoGcsServiceClient;
use super::timeline::Timeline;
use crate::tls::ClientTls;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// One node as the GCS lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct GcsNode {
    /// State ALIVE (else DEAD).
    pub alive: bool,
    /// The head node.
    pub is_head: bool,
    /// `resources_total`: what the node offers (`CPU`, custom resources).
    pub resources: BTreeMap<String, f64>,
    /// The node's labels.
    pub labels: BTreeMap<String, String>,
}

/// Every node the GCS at `address` lists, asked over one connection (TLS
/// when `tls` is set) within `timeout`. The error says at which stage it
/// stopped.
pub async fn list(
    address: &str,
    tls: Option<&ClientTls>,
    timeout: Duration,
) -> Result<Vec<GcsNode>, String> {
    let deadline = Instant::now() + timeout;
    let mut timeline = Timeline::new();
    let (channel, _recorder) = open_staged(address, tls, deadline, &mut timeline)
        .await
        .map_err(|f| format!("GCS {address}: stage {}: {}", f.stage, f.message))?;
    let mut client = NodeInfoGcsServiceClient::new(channel);
    let call = client.get_all_node_info(GetAllNodeInfoRequest {});
    let reply = tokio::time::timeout_at(deadline, call)
        .await
        .map_err(|_| format!("GCS {address}: GetAllNodeInfo got no answer within {timeout:?}"))?
        .map_err(|s| format!("GCS {address}: GetAllNodeInfo: {}", s.message()))?
        .into_inner();
    let status = reply.status.unwrap_or_default();
    if status.code != 0 {
        return Err(format!(
            "GCS {address}: GetAllNodeInfo status {}: {}",
            status.code, status.message
        ));
    }
    Ok(reply
        .node_info_list
        .into_iter()
        .map(|n| GcsNode {
            alive: n.state == GcsNodeState::Alive as i32,
            is_head: n.is_head_node,
            resources: n.resources_total.into_iter().collect(),
            labels: n.labels.into_iter().collect(),
        })
        .collect())
}
