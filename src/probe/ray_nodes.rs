//! The head's own node list, asked the way the Ray client asks it: open a
//! client session on the data stream (`Datapath` with an `InitRequest`),
//! then `ClusterInfo(NODES)` with the session's `client_id`, and compare the
//! nodes the head reports alive with the number expected.
//!
//! PING is answered by the client server's proxy without a session; NODES
//! is not: the proxy hands it to the driver it started for the session, so
//! an answer means a real Ray driver ran `ray.nodes()` against the GCS.

use super::http_answer::GrpcAnswerCheck;
use super::ray_proto::cluster_info_type::TypeEnum;
use super::ray_proto::data_request::Type as RequestType;
use super::ray_proto::data_response::Type as ResponseType;
use super::ray_proto::raylet_data_streamer_client::RayletDataStreamerClient;
use super::ray_proto::raylet_driver_client::RayletDriverClient;
use super::ray_proto::{ClusterInfoRequest, ConnectionCleanupRequest, DataRequest, InitRequest};
use futures::StreamExt;
use futures::channel::mpsc;
use tonic::Status;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// One node of the head's answer, as much of it as the evidence shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RayNode {
    /// `NodeID` (hex).
    pub id: String,
    /// `NodeManagerAddress`.
    pub address: String,
    /// `Alive`.
    pub alive: bool,
}

/// Reads `ClusterInfo(NODES)`'s JSON (`ray.nodes()`: an array of objects).
pub fn parse_nodes(json: &str) -> Result<Vec<RayNode>, String> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| format!("NODES answer is not JSON ({e}): {}", first_chars(json)))?;
    let list = value
        .as_array()
        .ok_or_else(|| format!("NODES answer is not a JSON array: {}", first_chars(json)))?;
    list.iter()
        .map(|node| {
            let text = |key: &str| node.get(key).and_then(|v| v.as_str()).map(str::to_string);
            let alive = node
                .get("Alive")
                .and_then(|v| v.as_bool())
                .ok_or_else(|| format!("a node without a boolean `Alive`: {node}"))?;
            Ok(RayNode {
                id: text("NodeID").unwrap_or_else(|| "?".into()),
                address: text("NodeManagerAddress").unwrap_or_else(|| "?".into()),
                alive,
            })
        })
        .collect()
}

/// Compares the alive nodes with `expected`: the description of every node
/// either way, `Err` when the count differs.
pub fn check_alive(nodes: &[RayNode], expected: u32) -> Result<String, String> {
    let alive = nodes.iter().filter(|n| n.alive).count();
    let listed: Vec<String> = nodes
        .iter()
        .map(|n| {
            let state = if n.alive { "alive" } else { "dead" };
            format!("{} at {} ({state})", short_id(&n.id), n.address)
        })
        .collect();
    let text = format!(
        "head reports {alive} alive node(s) of {} listed: [{}]",
        nodes.len(),
        listed.join(", ")
    );
    if alive == expected as usize {
        Ok(text)
    } else {
        Err(format!("expected {expected} alive node(s); {text}"))
    }
}

/// Opens a Ray client session over `channel`, asks `ClusterInfo(NODES)` in
/// it and checks that `expected` nodes are alive. The session is ended
/// (connection cleanup) before returning.
pub async fn alive_nodes(
    channel: GrpcAnswerCheck<Channel>,
    expected: u32,
) -> Result<String, Status> {
    let started = std::time::Instant::now();
    let client_id = session_id();
    let id_value: MetadataValue<_> = client_id
        .parse()
        .map_err(|_| Status::internal("client_id is not a valid header value"))?;

    let (requests, outgoing) = mpsc::unbounded::<DataRequest>();
    requests
        .unbounded_send(DataRequest {
            req_id: 1,
            r#type: Some(RequestType::Init(InitRequest {
                job_config: Vec::new(),
                ray_init_kwargs: "{}".into(),
                reconnect_grace_period: 0,
            })),
        })
        .map_err(|_| Status::internal("data stream closed before the init request"))?;
    let mut open = tonic::Request::new(outgoing);
    open.metadata_mut().insert("client_id", id_value.clone());
    let mut responses = RayletDataStreamerClient::new(channel.clone())
        .datapath(open)
        .await
        .map_err(|s| context("session init: Datapath", s))?
        .into_inner();
    match responses.next().await {
        Some(Ok(reply)) => match reply.r#type {
            Some(ResponseType::Init(init)) if init.ok => {}
            Some(ResponseType::Init(init)) => {
                return Err(Status::failed_precondition(format!(
                    "session init refused by the Ray client server: {}",
                    last_line(&init.msg)
                )));
            }
            other => {
                return Err(Status::unknown(format!(
                    "session init: expected an init response, got {other:?}"
                )));
            }
        },
        Some(Err(status)) => return Err(context("session init", status)),
        None => {
            return Err(Status::unavailable(
                "session init: the data stream ended without an answer",
            ));
        }
    }
    let init_took = started.elapsed();

    let mut ask = tonic::Request::new(ClusterInfoRequest {
        r#type: TypeEnum::Nodes as i32,
    });
    ask.metadata_mut().insert("client_id", id_value);
    let answer = RayletDriverClient::new(channel)
        .cluster_info(ask)
        .await
        .map_err(|s| context("ClusterInfo(NODES)", s));

    // End the session whatever the answer was: the server stops the driver
    // it started for it.
    let _ = requests.unbounded_send(DataRequest {
        req_id: 2,
        r#type: Some(RequestType::ConnectionCleanup(ConnectionCleanupRequest {})),
    });
    drop(requests);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(Ok(_)) = responses.next().await {}
    })
    .await;

    let json = answer?.into_inner().json;
    let nodes = parse_nodes(&json).map_err(Status::data_loss)?;
    let text = check_alive(&nodes, expected).map_err(Status::failed_precondition)?;
    Ok(format!(
        "ClusterInfo(NODES) in a client session (init {} ms): {text}",
        init_took.as_millis()
    ))
}

fn context(what: &str, status: Status) -> Status {
    Status::new(status.code(), format!("{what}: {}", status.message()))
}

/// A session id shaped like the real client's (32 hex digits).
fn session_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{:032x}",
        now.as_nanos() ^ (u128::from(std::process::id()) << 64)
    )
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn first_chars(text: &str) -> String {
    text.chars().take(200).collect()
}

/// The last non-empty line of a server traceback (the error itself).
fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_NODES: &str = r#"[
        {"NodeID": "aaaaaaaaaaaaaaaaaaaa", "Alive": true, "NodeManagerAddress": "10.0.0.1", "Resources": {"CPU": 1.0}},
        {"NodeID": "bbbbbbbbbbbbbbbbbbbb", "Alive": true, "NodeManagerAddress": "10.0.0.2"},
        {"NodeID": "cccccccccccccccccccc", "Alive": false, "NodeManagerAddress": "10.0.0.3"}
    ]"#;

    #[test]
    fn counts_only_alive_nodes() {
        let nodes = parse_nodes(TWO_NODES).unwrap();
        assert_eq!(nodes.len(), 3);
        let ok = check_alive(&nodes, 2).unwrap();
        assert!(ok.contains("2 alive node(s) of 3"), "{ok}");
        assert!(ok.contains("cccccccccccc at 10.0.0.3 (dead)"), "{ok}");
        let err = check_alive(&nodes, 3).unwrap_err();
        assert!(err.starts_with("expected 3 alive node(s)"), "{err}");
    }

    #[test]
    fn refuses_answers_that_are_not_a_node_list() {
        assert!(parse_nodes("{}").unwrap_err().contains("not a JSON array"));
        assert!(parse_nodes("nope").unwrap_err().contains("not JSON"));
        assert!(
            parse_nodes(r#"[{"NodeID": "x"}]"#)
                .unwrap_err()
                .contains("boolean `Alive`")
        );
    }
}
