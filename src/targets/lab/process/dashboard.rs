//! Questions to a local Ray head's dashboard (plain HTTP on 127.0.0.1),
//! asked with the project's HTTP client ([`crate::probe::http_client`]).

use crate::probe::http_client;
use std::time::Duration;

/// How long one dashboard request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A GET of `path` on the dashboard at `127.0.0.1:port`: the body when it
/// answers 200 within 2 s, else `None`.
pub async fn get(port: u16, path: &str) -> Option<String> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let prepared = http_client::prepare(&url, None, false, REQUEST_TIMEOUT)
        .await
        .ok()?;
    let attempt = async {
        let answer = prepared.client.get(prepared.url).send().await.ok()?;
        if answer.status() != reqwest::StatusCode::OK {
            return None;
        }
        answer.text().await.ok()
    };
    tokio::time::timeout(REQUEST_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()
}

/// Whether the dashboard answers `/api/version` with Ray's version.
pub async fn answers_version(port: u16) -> bool {
    get(port, "/api/version")
        .await
        .is_some_and(|body| body.contains("ray_version"))
}

/// How many nodes (head included) the dashboard reports ALIVE.
pub async fn alive_nodes(port: u16) -> Option<u32> {
    let body = get(port, "/api/v0/nodes?limit=100").await?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(count_alive(&json))
}

/// The `resources_total` of every ALIVE node that is not the head, from
/// the head's own node list.
pub async fn alive_worker_resources(port: u16) -> Option<Vec<serde_json::Value>> {
    let body = get(port, "/api/v0/nodes?limit=100").await?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    let mut found = Vec::new();
    worker_resources(&json, &mut found);
    Some(found)
}

fn worker_resources(v: &serde_json::Value, found: &mut Vec<serde_json::Value>) {
    match v {
        serde_json::Value::Object(o) if o.contains_key("node_id") => {
            let alive_worker = o.get("state").and_then(|s| s.as_str()) == Some("ALIVE")
                && o.get("is_head_node").and_then(|h| h.as_bool()) != Some(true);
            found.extend(
                alive_worker.then(|| o.get("resources_total").cloned().unwrap_or_default()),
            );
        }
        serde_json::Value::Object(o) => o.values().for_each(|v| worker_resources(v, found)),
        serde_json::Value::Array(a) => a.iter().for_each(|v| worker_resources(v, found)),
        _ => {}
    }
}

/// ALIVE node records (objects with a `node_id`), wherever they nest.
fn count_alive(v: &serde_json::Value) -> u32 {
    match v {
        serde_json::Value::Object(o) => {
            let own = u32::from(
                o.get("state").and_then(|s| s.as_str()) == Some("ALIVE")
                    && o.contains_key("node_id"),
            );
            own + o.values().map(count_alive).sum::<u32>()
        }
        serde_json::Value::Array(a) => a.iter().map(count_alive).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-answer HTTP/1.0 server on 127.0.0.1, as a dashboard stand-in.
    async fn answer_once(reply: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut c, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf).await;
            c.write_all(reply.as_bytes()).await.unwrap();
        });
        port
    }

    #[tokio::test]
    async fn the_body_of_a_200_and_nothing_otherwise() {
        let port = answer_once("HTTP/1.0 200 OK\r\n\r\n{\"ray_version\": \"x\"}").await;
        assert!(answers_version(port).await);
        let port = answer_once("HTTP/1.0 503 Unavailable\r\n\r\n{\"ray_version\": \"x\"}").await;
        assert_eq!(get(port, "/api/version").await, None);
        let port = answer_once(
            "HTTP/1.0 200 OK\r\n\r\n{\"data\": {\"result\": [{\"node_id\": \"a\", \"state\": \"ALIVE\"}, \
             {\"node_id\": \"b\", \"state\": \"DEAD\"}, {\"node_id\": \"c\", \"state\": \"ALIVE\"}]}}",
        )
        .await;
        assert_eq!(alive_nodes(port).await, Some(2));
        let port = answer_once(
            "HTTP/1.0 200 OK\r\n\r\n{\"data\": {\"result\": [\
             {\"node_id\": \"h\", \"state\": \"ALIVE\", \"is_head_node\": true, \"resources_total\": {\"CPU\": 1}}, \
             {\"node_id\": \"a\", \"state\": \"ALIVE\", \"is_head_node\": false, \"resources_total\": {\"CPU\": 2}}, \
             {\"node_id\": \"b\", \"state\": \"DEAD\", \"is_head_node\": false, \"resources_total\": {\"CPU\": 1}}]}}",
        )
        .await;
        assert_eq!(
            alive_worker_resources(port).await,
            Some(vec![serde_json::json!({"CPU": 2})])
        );
    }
}
