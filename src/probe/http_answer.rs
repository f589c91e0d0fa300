//! Answers to a gRPC call that are not gRPC: a proxy's HTTP status and page
//! (nginx's 400 "No required SSL certificate was sent", a 502 from a dead
//! upstream, a 404 from a default backend). They are mapped to a gRPC status
//! the way gRPC's HTTP-to-status rules do, and the HTTP status, content type
//! and first bytes are kept as evidence, instead of letting the gRPC decoder
//! read an HTML page as a message ("invalid compression flag: 60").

use super::recorder::show_bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::Code;
use tonic::body::Body;
use tonic::codegen::Body as HttpBody;

/// How many bytes of a non-gRPC body are kept.
const KEPT_BYTES: usize = 512;

/// How long to wait for the body of a non-gRPC answer once its headers
/// arrived (a page comes with its headers; this only bounds a stalled one).
const BODY_WAIT: Duration = Duration::from_secs(1);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The gRPC status for an HTTP answer without `grpc-status`, per gRPC's
/// HTTP-to-status mapping.
pub fn grpc_code_for_http_status(status: u16) -> Code {
    match status {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// An HTTP answer that is not a gRPC response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonGrpcAnswer {
    /// The HTTP status code.
    pub status: u16,
    /// The `content-type` header, if any.
    pub content_type: Option<String>,
    /// The first bytes of the body (at most 512).
    pub first_bytes: Vec<u8>,
}

impl NonGrpcAnswer {
    /// The gRPC status code this answer maps to.
    pub fn grpc_code(&self) -> Code {
        grpc_code_for_http_status(self.status)
    }

    /// Whether the answer turns the client away (400, 401, 403): what a
    /// TLS-terminating proxy checking client certificates answers to a
    /// missing or foreign one.
    pub fn is_refusal(&self) -> bool {
        matches!(self.status, 400 | 401 | 403)
    }

    /// The first line of the body with text in it, trimmed.
    pub fn first_line(&self) -> Option<String> {
        String::from_utf8_lossy(&self.first_bytes)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    }

    /// The page's `<title>`, when the body is an HTML page that has one.
    pub fn title(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.first_bytes);
        let lower = text.to_ascii_lowercase();
        let start = lower.find("<title>")? + "<title>".len();
        let end = start + lower[start..].find("</title>")?;
        Some(text[start..end].trim().to_string())
    }

    /// One line of evidence: status, content type, first line (and title),
    /// first bytes, and the gRPC status it maps to.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "answered HTTP {} (content-type {}) instead of gRPC",
            self.status,
            self.content_type.as_deref().unwrap_or("none")
        );
        if let Some(line) = self.first_line() {
            text.push_str(&format!(", first line {line:?}"));
        }
        if let Some(title) = self
            .title()
            .filter(|t| Some(t) != self.first_line().as_ref())
        {
            text.push_str(&format!(", title {title:?}"));
        }
        let shown = &self.first_bytes[..self.first_bytes.len().min(16)];
        text.push_str(&format!(
            ", first bytes {}; as gRPC status: {:?}",
            if shown.is_empty() {
                "none".to_string()
            } else {
                show_bytes(shown)
            },
            self.grpc_code()
        ));
        text
    }

    async fn read(response: http::Response<Body>) -> Self {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let mut body = response.into_body();
        let mut first_bytes = Vec::new();
        let _ = tokio::time::timeout(BODY_WAIT, async {
            while first_bytes.len() < KEPT_BYTES {
                let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
                match frame {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            let room = KEPT_BYTES - first_bytes.len();
                            first_bytes.extend_from_slice(&data[..room.min(data.len())]);
                        }
                    }
                    _ => break,
                }
            }
        })
        .await;
        NonGrpcAnswer {
            status,
            content_type,
            first_bytes,
        }
    }
}

/// Whether a response is a gRPC one: it carries `grpc-status` (a
/// trailers-only answer), or it is HTTP 200 with an `application/grpc`
/// content type.
fn is_grpc(response: &http::Response<Body>) -> bool {
    let headers = response.headers();
    if headers.contains_key("grpc-status") {
        return true;
    }
    let grpc_type = headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    response.status() == http::StatusCode::OK && grpc_type
}

/// A gRPC transport (a tonic `Channel`) that turns non-gRPC answers into
/// the mapped gRPC status and remembers the answer for the evidence.
#[derive(Debug, Clone)]
pub struct GrpcAnswerCheck<S> {
    inner: S,
    seen: Arc<Mutex<Option<NonGrpcAnswer>>>,
}

impl<S> GrpcAnswerCheck<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        GrpcAnswerCheck {
            inner,
            seen: Arc::default(),
        }
    }

    /// The last non-gRPC answer any call on this transport got.
    pub fn non_grpc_answer(&self) -> Option<NonGrpcAnswer> {
        self.seen.lock().expect("answer lock").clone()
    }
}

impl<S> tower::Service<http::Request<Body>> for GrpcAnswerCheck<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let future = self.inner.call(request);
        let seen = self.seen.clone();
        Box::pin(async move {
            let response = future.await.map_err(Into::into)?;
            if is_grpc(&response) {
                return Ok(response);
            }
            let answer = NonGrpcAnswer::read(response).await;
            let status = tonic::Status::new(answer.grpc_code(), answer.describe());
            *seen.lock().expect("answer lock") = Some(answer);
            Err(Box::new(status) as BoxError)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_like_grpc() {
        let cases = [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (500, Code::Unknown),
            (200, Code::Unknown),
        ];
        for (status, code) in cases {
            assert_eq!(grpc_code_for_http_status(status), code, "HTTP {status}");
        }
    }

    #[test]
    fn a_page_is_described_by_status_type_first_line_and_title() {
        let answer = NonGrpcAnswer {
            status: 400,
            content_type: Some("text/html".into()),
            first_bytes:
                b"<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>"
                    .to_vec(),
        };
        let text = answer.describe();
        for part in [
            "HTTP 400",
            "text/html",
            "first line \"<html>\"",
            "title \"400 No required SSL certificate was sent\"",
            "Internal",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
        assert!(answer.is_refusal());
    }
}
