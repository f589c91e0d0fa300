//! One gRPC connection taken stage by stage (TCP, TLS, ALPN, HTTP/2
//! SETTINGS) and one real Ray call over it, with the progression noted the
//! way gRPC names connectivity states (IDLE, CONNECTING, READY,
//! TRANSIENT_FAILURE).

use super::connection::{ByteStream, require_h2, split_address, tcp_connect, tls_handshake};
use super::failure::{Failure, before};
use super::http_answer::GrpcAnswerCheck;
use super::ray_proto::cluster_info_type::TypeEnum;
use super::ray_proto::node_info_gcs_service_client::NodeInfoGcsServiceClient;
use super::ray_proto::raylet_driver_client::RayletDriverClient;
use super::ray_proto::{ClusterInfoRequest, GetClusterIdRequest};
use super::recorder::{Recorder, ServerBytes, StreamEnd};
use super::timeline::Timeline;
use crate::tls::ClientTls;
use crate::verdict::Stage;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint, Uri};

/// The answer PING gets from a healthy Ray client server.
pub const RAY_PING_ANSWER: &str = "{}";

/// The Ray client's data stream, whose session metadata the probe checks.
const DATAPATH: &str = "/ray.rpc.RayletDataStreamer/Datapath";

/// The channel the probe's calls go over: one connection, non-gRPC answers
/// turned into mapped statuses.
pub(crate) type ProbeChannel = GrpcAnswerCheck<Channel>;

/// Which call proves the connection works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcCall {
    /// No call: READY once the server's SETTINGS frame arrived.
    None,
    /// `/ray.rpc.RayletDriver/ClusterInfo` with type PING; answer `{}`.
    RayPing,
    /// `/ray.rpc.NodeInfoGcsService/GetClusterId`.
    GcsClusterId,
    /// [`GrpcCall::RayPing`], then a client session whose
    /// `ClusterInfo(NODES)` must list this many alive nodes.
    RayPingAliveNodes(u32),
}

impl GrpcCall {
    /// Parses the `call` field of a TCP follow-up (`rayPing`, `gcsClusterId`).
    pub fn parse(name: &str) -> Option<GrpcCall> {
        match name {
            "rayPing" => Some(GrpcCall::RayPing),
            "gcsClusterId" => Some(GrpcCall::GcsClusterId),
            "none" => Some(GrpcCall::None),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            GrpcCall::None => "no call",
            GrpcCall::RayPing => "/ray.rpc.RayletDriver/ClusterInfo(PING) + Datapath session check",
            GrpcCall::GcsClusterId => "/ray.rpc.NodeInfoGcsService/GetClusterId",
            GrpcCall::RayPingAliveNodes(_) => {
                "/ray.rpc.RayletDriver/ClusterInfo(PING) + Datapath session check + client session ClusterInfo(NODES)"
            }
        }
    }
}

/// What a successful session established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcSuccess {
    /// The call's answer in words (`json "{}"`, `cluster id 28 bytes`), or
    /// `SETTINGS received` without a call.
    pub answer: String,
    /// Time from start to READY.
    pub ready_after: Duration,
}

/// Connects to `address` (TLS when `tls` is set, else h2c prior knowledge),
/// makes `call` and reports each stage in `timeline`. The whole session
/// ends by `deadline`.
pub async fn run_session(
    address: &str,
    tls: Option<&ClientTls>,
    call: GrpcCall,
    deadline: Instant,
    timeline: &mut Timeline,
) -> Result<GrpcSuccess, Failure> {
    let mode = match tls {
        Some(t) => format!(
            "TLS ({})",
            t.describe(&split_address(address).map(|a| a.0).unwrap_or_default())
        ),
        None => "plaintext HTTP/2 (h2c prior knowledge)".to_string(),
    };
    timeline.note(format!(
        "IDLE: channel to {address} over {mode}, call {}",
        call.name()
    ));
    let result = connect_and_call(address, tls, call, deadline, timeline).await;
    match &result {
        Ok(success) => timeline.note(format!("READY: {}", success.answer)),
        Err(failure) => timeline.note(format!(
            "TRANSIENT_FAILURE at stage {}: {}",
            failure.stage, failure.message
        )),
    }
    result
}

/// A gRPC channel over one connection to `address`, taken stage by stage
/// (TCP, TLS with ALPN h2 when `tls` is set, HTTP/2), each noted in
/// `timeline`; with the recorder of what the server sent.
pub(crate) async fn open_staged(
    address: &str,
    tls: Option<&ClientTls>,
    deadline: Instant,
    timeline: &mut Timeline,
) -> Result<(ProbeChannel, Recorder), Failure> {
    let started = timeline.start();
    let (host, port) = split_address(address)?;
    timeline.note("CONNECTING: TCP");
    let tcp = before(
        deadline,
        started,
        Stage::Tcp,
        tcp_connect(address, timeline),
    )
    .await?;
    let stream: Box<dyn ByteStream> = match tls {
        Some(tls) => {
            let (stream, facts) = before(
                deadline,
                started,
                Stage::Tls,
                tls_handshake(tcp, &host, tls, &[b"h2"], timeline),
            )
            .await?;
            require_h2(&facts, timeline)?;
            Box::new(stream)
        }
        None => Box::new(tcp),
    };

    let recorder = Recorder::new(started);
    let authority = match tls.and_then(|t| t.server_name.clone()) {
        Some(name) => format!("{name}:{port}"),
        None => format!("{}:{port}", bracket_ipv6(&host)),
    };
    let channel = GrpcAnswerCheck::new(
        before(
            deadline,
            started,
            Stage::Http2,
            open_channel(stream, &recorder, &authority),
        )
        .await?,
    );
    timeline.note("HTTP/2 connection preface sent; waiting for the server");
    Ok((channel, recorder))
}

async fn connect_and_call(
    address: &str,
    tls: Option<&ClientTls>,
    call: GrpcCall,
    deadline: Instant,
    timeline: &mut Timeline,
) -> Result<GrpcSuccess, Failure> {
    let started = timeline.start();
    let (channel, recorder) = open_staged(address, tls, deadline, timeline).await?;
    let answer = match call {
        GrpcCall::None => {
            let limit = deadline.saturating_duration_since(Instant::now());
            let seen = recorder
                .wait_for(limit, |s| {
                    s.first_frame_type().is_some() || s.not_http2() || s.end.is_some()
                })
                .await;
            timeline.note(seen.describe());
            if !seen.got_settings() {
                return Err(not_ready(&seen, tls.is_some(), deadline, started));
            }
            "server SETTINGS received".to_string()
        }
        GrpcCall::RayPing | GrpcCall::GcsClusterId | GrpcCall::RayPingAliveNodes(_) => {
            let result = tokio::time::timeout_at(deadline, make_call(channel.clone(), call)).await;
            // No wait for the connection's end: whatever made the call fail
            // was read through the recorder before the call saw it.
            let seen = recorder.snapshot();
            timeline.note(seen.describe());
            match result {
                Ok(Ok(answer)) => {
                    timeline.note(format!("{} answered: {answer}", call.name()));
                    answer
                }
                Ok(Err(status)) => {
                    timeline.note(format!("{} failed: {}", call.name(), show_status(&status)));
                    if let Some(answer) = channel.non_grpc_answer() {
                        timeline.note(format!("the server {}", answer.describe()));
                    }
                    return Err(call_failure(&seen, tls.is_some(), &channel, &status));
                }
                Err(_) => {
                    timeline.note(format!("{} got no answer before the deadline", call.name()));
                    return Err(not_ready(&seen, tls.is_some(), deadline, started));
                }
            }
        }
    };
    Ok(GrpcSuccess {
        answer,
        ready_after: timeline.elapsed(),
    })
}

/// Hands the established stream to tonic through a one-shot connector: the
/// channel never reconnects behind the probe's back.
async fn open_channel(
    stream: Box<dyn ByteStream>,
    recorder: &Recorder,
    authority: &str,
) -> Result<Channel, Failure> {
    let slot = Arc::new(Mutex::new(Some(recorder.wrap(stream))));
    let connector = tower::service_fn(move |_: Uri| {
        let taken = slot.lock().expect("connector slot").take();
        async move {
            taken.map(TokioIo::new).ok_or_else(|| {
                std::io::Error::other("the probe's single connection was already used")
            })
        }
    });
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| Failure::new(Stage::Http2, format!("bad authority {authority}: {e}")))?;
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| Failure::new(Stage::Http2, format!("HTTP/2 handshake: {e}")))
}

async fn make_call(channel: ProbeChannel, call: GrpcCall) -> Result<String, tonic::Status> {
    match call {
        GrpcCall::None => Ok(String::new()),
        GrpcCall::RayPingAliveNodes(expected) => {
            let ping = Box::pin(make_call(channel.clone(), GrpcCall::RayPing)).await?;
            let nodes = super::ray_nodes::alive_nodes(channel, expected).await?;
            Ok(format!("{ping}; {nodes}"))
        }
        GrpcCall::RayPing => {
            let request = ClusterInfoRequest {
                r#type: TypeEnum::Ping as i32,
            };
            let reply = RayletDriverClient::new(channel.clone())
                .cluster_info(request)
                .await?
                .into_inner();
            if reply.json == RAY_PING_ANSWER {
                let session = check_client_session(channel).await?;
                Ok(format!("json {:?}; {session}", reply.json))
            } else {
                Err(tonic::Status::data_loss(format!(
                    "PING answered json {:?}, expected {RAY_PING_ANSWER:?}",
                    reply.json
                )))
            }
        }
        GrpcCall::GcsClusterId => {
            let reply = NodeInfoGcsServiceClient::new(channel)
                .get_cluster_id(GetClusterIdRequest {})
                .await?
                .into_inner();
            let status = reply.status.unwrap_or_default();
            if status.code != 0 {
                return Err(tonic::Status::unknown(format!(
                    "GCS status {}: {}",
                    status.code, status.message
                )));
            }
            let hex: String = reply
                .cluster_id
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Ok(format!(
                "cluster id {hex} ({} bytes)",
                reply.cluster_id.len()
            ))
        }
    }
}

/// Checks that the Ray client's session metadata survives the path.
///
/// PING needs no metadata, but the real client's data and log streams carry
/// a `client_id` header; a proxy that drops it (ingress-nginx drops header
/// names with underscores unless `enable-underscores-in-headers` is on)
/// leaves a path where PING works and the real client fails. The probe
/// opens the data stream the way a reconnecting client does (`client_id` and
/// `reconnecting: True`, no message sent) for a session Ray never saw. The
/// Ray client server answers at once either way, with no session started:
/// NOT_FOUND ("reconnect a session that has already been cleaned up") when
/// `client_id` arrived, FAILED_PRECONDITION when it did not. A control
/// stream without `client_id`, sent alongside, must get FAILED_PRECONDITION.
async fn check_client_session(channel: ProbeChannel) -> Result<String, tonic::Status> {
    let started = Instant::now();
    // Shaped like the real client's id (32 hex digits); unique per probe.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let client_id = format!("{:032x}", now.as_nanos());
    let control = async {
        match reconnect_datapath(channel.clone(), None).await {
            Err(status) if status.code() == tonic::Code::FailedPrecondition => Ok(()),
            Err(status) => Err(tonic::Status::new(
                status.code(),
                format!(
                    "session check: Datapath without client_id: expected FAILED_PRECONDITION from a Ray client server, got {}",
                    show_status(&status)
                ),
            )),
            Ok(()) => Err(tonic::Status::unknown(
                "session check: Datapath without client_id was accepted: not the Ray client server's behaviour",
            )),
        }
    };
    let with_id = async {
        match reconnect_datapath(channel.clone(), Some(&client_id)).await {
            Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                Err(tonic::Status::failed_precondition(format!(
                    "session check: Datapath WITH client_id metadata was refused like one without it ({}): the metadata did not reach Ray — a proxy on the way dropped it (ingress-nginx drops header names with underscores unless enable-underscores-in-headers is \"true\"); the real Ray client fails the same way",
                    show_status(&status)
                )))
            }
            Err(status) => Err(tonic::Status::new(
                status.code(),
                format!(
                    "session check: Datapath with client_id failed: {}",
                    show_status(&status)
                ),
            )),
            Ok(()) => Err(tonic::Status::unknown(
                "session check: Datapath reconnect of an unknown session was accepted: not the Ray client server's behaviour",
            )),
        }
    };
    futures::future::try_join(control, with_id).await?;
    Ok(format!(
        "session check: Datapath without client_id refused (FAILED_PRECONDITION), with client_id answered NOT_FOUND for an unknown session (the metadata reaches Ray) in {} ms",
        started.elapsed().as_millis()
    ))
}

/// Opens `/ray.rpc.RayletDataStreamer/Datapath` as a reconnecting client
/// (request stream left open, nothing sent) and waits for the first
/// message or the end.
async fn reconnect_datapath(
    channel: ProbeChannel,
    client_id: Option<&str>,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(tonic::Status::from_error)?;
    let mut request = tonic::Request::new(futures::stream::pending::<()>());
    request.metadata_mut().insert(
        "reconnecting",
        tonic::metadata::MetadataValue::from_static("True"),
    );
    if let Some(id) = client_id {
        let value = id
            .parse()
            .map_err(|_| tonic::Status::internal("client_id is not a valid header value"))?;
        request.metadata_mut().insert("client_id", value);
    }
    // The messages themselves do not matter: no request is sent, and an
    // answer is only waited for, not read.
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = http::uri::PathAndQuery::from_static(DATAPATH);
    let mut stream = grpc.streaming(request, path, codec).await?.into_inner();
    stream.message().await?;
    Ok(())
}

/// A failed call explained by what the server did on the wire.
fn call_failure(
    seen: &ServerBytes,
    tls: bool,
    channel: &ProbeChannel,
    status: &tonic::Status,
) -> Failure {
    if let Some(refusal) = wire_refusal(seen, tls) {
        return Failure::new(refusal.0, refusal.1.clone()).refused(refusal.1);
    }
    if let Some(answer) = channel.non_grpc_answer() {
        let message = format!("the server {}", answer.describe());
        let failure = Failure::new(Stage::Rpc, message.clone());
        return if answer.is_refusal() {
            failure.refused(message)
        } else {
            failure
        };
    }
    if !seen.got_settings() {
        // The server never spoke HTTP/2: that is where it stopped, whatever
        // error the client library reported for the call.
        let what = if seen.total == 0 {
            "no HTTP/2 SETTINGS from the server".to_string()
        } else {
            format!(
                "server does not speak HTTP/2 (first bytes {})",
                super::recorder::show_bytes(&seen.first_bytes)
            )
        };
        return Failure::new(
            Stage::Http2,
            format!("{what}; call failed: {}", show_status(status)),
        );
    }
    Failure::new(
        Stage::Rpc,
        format!("gRPC call failed: {}", show_status(status)),
    )
}

/// The deadline passed: say at which stage the connection was waiting.
fn not_ready(
    seen: &ServerBytes,
    tls: bool,
    deadline: Instant,
    started: std::time::Instant,
) -> Failure {
    if let Some(refusal) = wire_refusal(seen, tls) {
        return Failure::new(refusal.0, refusal.1.clone()).refused(refusal.1);
    }
    let stage = if seen.got_settings() {
        Stage::Rpc
    } else {
        Stage::Http2
    };
    let _ = deadline;
    Failure::timeout(stage, started.elapsed())
}

/// When the server's bytes show a refusal (close without SETTINGS, reset,
/// TLS alert, non-HTTP/2 answer), its stage and description.
fn wire_refusal(seen: &ServerBytes, tls: bool) -> Option<(Stage, String)> {
    if seen.got_settings() {
        return None;
    }
    if seen.not_http2() {
        // Whatever it is (nginx's `HTTP/1.1 400` to plaintext, a TLS alert
        // record, a banner), it is not an HTTP/2 server's preface: the
        // attempt is refused, whether or not the close was seen yet.
        return Some((
            Stage::Http2,
            format!(
                "server answered with something that is not an HTTP/2 server preface: {}",
                seen.describe()
            ),
        ));
    }
    let (end, _) = seen.end.as_ref()?;
    let after = if tls {
        "right after the TLS handshake"
    } else {
        "right after the HTTP/2 preface"
    };
    Some(match end {
        StreamEnd::Error { message, .. } if message.contains("alert") => (
            Stage::Tls,
            format!("server sent a TLS alert {after}: {message}"),
        ),
        StreamEnd::Error { kind, message } if seen.total == 0 => (
            Stage::Http2,
            format!("connection ended ({kind}) {after} before any server bytes: {message}"),
        ),
        StreamEnd::Closed if seen.total == 0 => (
            Stage::Http2,
            format!("server closed the connection {after} without sending HTTP/2 SETTINGS"),
        ),
        _ => (
            Stage::Http2,
            format!(
                "server answered with non-HTTP/2 bytes and ended the connection: {}",
                seen.describe()
            ),
        ),
    })
}

/// A status with its code, message and the chain of causes behind it
/// (tonic's "transport error" alone says nothing).
fn show_status(status: &tonic::Status) -> String {
    let mut text = format!("status {:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    text
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}
