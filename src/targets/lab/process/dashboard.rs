//! Questions to a local Ray head's dashboard (plain HTTP on 127.0.0.1),
//! asked with the project's HTTP client ([`crate::probe::http_client`]).
//! The head's node list comes from its GCS instead ([`super::head_view`]),
//! so heads without a dashboard are observed too.

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
    }
}
