//! The double's websocket subresources: pod `exec` (scripted output on the
//! stdout channel, then a Success status) and `portforward` (an echo
//! server behind the requested port), in the v4 channel protocol kube-rs
//! speaks.

use super::{Body, State, status};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

const PROTOCOL: &str = "v4.channel.k8s.io";

/// Whether a request asks for a websocket upgrade.
pub fn is_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(hyper::header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// Answers `/api/v1/namespaces/<ns>/pods/<pod>/(exec|portforward)`.
pub fn upgrade(state: Arc<Mutex<State>>, mut req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ["api", "v1", "namespaces", ns, "pods", pod, sub] = parts.as_slice() else {
        return status(404, "NotFound", "no websocket endpoint here");
    };
    let (ns, pod, sub) = (ns.to_string(), pod.to_string(), sub.to_string());
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let Some(key) = req.headers().get(hyper::header::SEC_WEBSOCKET_KEY).cloned() else {
        return status(400, "BadRequest", "no Sec-WebSocket-Key");
    };
    let upgrade = hyper::upgrade::on(&mut req);
    let job = match sub.as_str() {
        "exec" => {
            let container = pairs
                .iter()
                .find(|(k, _)| k == "container")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let argv: Vec<String> = pairs
                .iter()
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v.clone())
                .collect();
            let output = state
                .lock()
                .unwrap()
                .exec_outputs
                .get(&(ns.clone(), pod.clone(), container.clone(), argv.join(" ")))
                .cloned();
            let Some(output) = output else {
                return status(
                    404,
                    "NotFound",
                    &format!("no scripted exec for {pod}/{container}: {}", argv.join(" ")),
                );
            };
            Job::Exec(output)
        }
        "portforward" => {
            let port = pairs
                .iter()
                .find(|(k, _)| k == "ports")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0u16);
            Job::EchoForward(port)
        }
        _ => return status(404, "NotFound", "unknown subresource"),
    };
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        job.serve(ws).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(hyper::header::CONNECTION, "Upgrade")
        .header(hyper::header::UPGRADE, "websocket")
        .header(
            hyper::header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .header(hyper::header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL)
        .body(Empty::<Bytes>::new().boxed())
        .unwrap()
}

enum Job {
    Exec(String),
    EchoForward(u16),
}

fn framed(channel: u8, data: &[u8]) -> Message {
    let mut bin = Vec::with_capacity(data.len() + 1);
    bin.push(channel);
    bin.extend_from_slice(data);
    Message::binary(bin)
}

impl Job {
    async fn serve<S>(self, mut ws: WebSocketStream<S>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        match self {
            Job::Exec(stdout) => {
                let _ = ws.send(framed(1, stdout.as_bytes())).await;
                let _ = ws
                    .send(framed(3, br#"{"metadata":{},"status":"Success"}"#))
                    .await;
                let _ = ws.close(None).await;
            }
            Job::EchoForward(port) => {
                let init = port.to_le_bytes();
                let _ = ws.send(framed(0, &init)).await;
                let _ = ws.send(framed(1, &init)).await;
                while let Some(Ok(message)) = ws.next().await {
                    let echo = match message {
                        Message::Binary(bin) if bin.first() == Some(&0) && bin.len() > 1 => {
                            framed(0, &bin[1..])
                        }
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if ws.send(echo).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
}
