//! A stream wrapper that records what the server sends first and how the
//! connection ended, so a probe can tell "SETTINGS received" from "closed
//! right after the TLS handshake" even when tonic only reports a generic
//! error.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// HTTP/2 frame type of SETTINGS.
pub const FRAME_SETTINGS: u8 = 0x4;

/// How many of the server's first bytes are kept (enough for the first
/// line of an HTTP/1 answer).
const KEPT_BYTES: usize = 64;

/// How many of them are shown as hex.
const SHOWN_BYTES: usize = 16;

/// How the server side of the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// Clean end of stream (TCP FIN, or TLS close_notify).
    Closed,
    /// A read error: reset, TLS alert, ...
    Error {
        /// `io::ErrorKind` in words.
        kind: String,
        /// The error text (a TLS alert shows up here).
        message: String,
    },
}

/// What the server has sent so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerBytes {
    /// The first bytes received (at most 64).
    pub first_bytes: Vec<u8>,
    /// Total bytes received.
    pub total: usize,
    /// When the first byte arrived (since the probe started).
    pub first_at: Option<Duration>,
    /// How and when the server side ended, if it did.
    pub end: Option<(StreamEnd, Duration)>,
}

impl ServerBytes {
    /// The type of the server's first HTTP/2 frame, once its 9-byte header arrived.
    pub fn first_frame_type(&self) -> Option<u8> {
        (self.first_bytes.len() >= 9).then(|| self.first_bytes[3])
    }

    /// The server's first frame is SETTINGS (what an HTTP/2 server sends first).
    pub fn got_settings(&self) -> bool {
        self.first_frame_type() == Some(FRAME_SETTINGS)
    }

    /// The server's first bytes cannot start an HTTP/2 server preface (a
    /// SETTINGS frame: length at most 16384, so its first byte is 0; type
    /// 0x4). Decided from the first byte on, without waiting for more.
    pub fn not_http2(&self) -> bool {
        match self.first_bytes.as_slice() {
            [] => false,
            [first, ..] if *first != 0 => true,
            [_, _, _, kind, ..] => *kind != FRAME_SETTINGS,
            _ => false,
        }
    }

    /// The first line of the server's answer when it is text (e.g.
    /// `HTTP/1.1 400 Bad Request`).
    pub fn text_first_line(&self) -> Option<String> {
        let line = self.first_bytes.split(|&b| b == b'\n').next()?;
        let line = String::from_utf8_lossy(line).trim_end().to_string();
        let printable = line.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        (line.len() >= 4 && printable).then_some(line)
    }

    /// The connection ended before the server sent a single byte.
    pub fn closed_silently(&self) -> bool {
        self.total == 0 && self.end.is_some()
    }

    /// One evidence line about the server's bytes.
    pub fn describe(&self) -> String {
        let mut text = match (self.first_at, self.first_frame_type()) {
            (None, _) => "server sent no bytes".to_string(),
            (Some(at), Some(FRAME_SETTINGS)) => {
                format!(
                    "server's first HTTP/2 frame: SETTINGS (type 0x4) at +{}ms",
                    at.as_millis()
                )
            }
            (Some(at), _) => {
                let shown = &self.first_bytes[..self.first_bytes.len().min(SHOWN_BYTES)];
                let mut text = format!(
                    "server's first bytes at +{}ms are not an HTTP/2 SETTINGS frame: {}",
                    at.as_millis(),
                    show_bytes(shown)
                );
                if let Some(line) = self.text_first_line() {
                    text.push_str(&format!(", first line {line:?}"));
                }
                text
            }
        };
        if let Some((end, at)) = &self.end {
            let how = match end {
                StreamEnd::Closed => "closed the connection".to_string(),
                StreamEnd::Error { kind, message } => {
                    format!("connection ended with {kind}: {message}")
                }
            };
            text.push_str(&format!(
                "; then {how} at +{}ms after {} bytes",
                at.as_millis(),
                self.total
            ));
        }
        text
    }
}

/// Bytes as hex plus printable ASCII, e.g. `15 03 03 00 02 ("....")`.
pub fn show_bytes(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let ascii: String = bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{} (\"{ascii}\")", hex.join(" "))
}

/// Shared view of a [`Recorded`] stream's server bytes.
#[derive(Debug, Clone)]
pub struct Recorder {
    state: Arc<Mutex<ServerBytes>>,
    changed: Arc<Notify>,
    start: Instant,
}

impl Recorder {
    /// A recorder whose times count from `start`.
    pub fn new(start: Instant) -> Self {
        Recorder {
            state: Arc::default(),
            changed: Arc::new(Notify::new()),
            start,
        }
    }

    /// A copy of what was recorded so far.
    pub fn snapshot(&self) -> ServerBytes {
        self.state.lock().expect("recorder lock").clone()
    }

    /// Waits until `done` holds for the recorded state or `limit` passes;
    /// returns the state either way.
    pub async fn wait_for(
        &self,
        limit: Duration,
        done: impl Fn(&ServerBytes) -> bool,
    ) -> ServerBytes {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            let now = self.snapshot();
            if done(&now) {
                return now;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.snapshot();
            }
        }
    }

    fn record_data(&self, data: &[u8]) {
        let mut state = self.state.lock().expect("recorder lock");
        if state.first_at.is_none() {
            state.first_at = Some(self.start.elapsed());
        }
        let room = KEPT_BYTES.saturating_sub(state.first_bytes.len());
        state
            .first_bytes
            .extend_from_slice(&data[..room.min(data.len())]);
        state.total += data.len();
        drop(state);
        self.changed.notify_waiters();
    }

    fn record_end(&self, end: StreamEnd) {
        let mut state = self.state.lock().expect("recorder lock");
        if state.end.is_none() {
            state.end = Some((end, self.start.elapsed()));
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// Wraps `inner` so its reads are recorded here.
    pub fn wrap<S>(&self, inner: S) -> Recorded<S> {
        Recorded {
            inner,
            recorder: self.clone(),
        }
    }
}

/// A stream whose reads are recorded by a [`Recorder`].
#[derive(Debug)]
pub struct Recorded<S> {
    inner: S,
    recorder: Recorder,
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &result {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if new.is_empty() {
                    self.recorder.record_end(StreamEnd::Closed);
                } else {
                    self.recorder.record_data(new);
                }
            }
            Poll::Ready(Err(e)) => {
                // rustls reports a TCP close without close_notify this way;
                // its text carries a documentation link we do not need.
                let message = if e.kind() == io::ErrorKind::UnexpectedEof {
                    "peer closed the connection without a TLS close_notify".to_string()
                } else {
                    e.to_string()
                };
                self.recorder.record_end(StreamEnd::Error {
                    kind: format!("{:?}", e.kind()),
                    message,
                })
            }
            Poll::Pending => {}
        }
        result
    }
}

impl<S> Recorded<S> {
    /// A failed write also tells how the peer ended the connection (a
    /// reset or broken pipe often shows on the write side first).
    fn note_write<T>(&self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &result {
            self.recorder.record_end(StreamEnd::Error {
                kind: format!("{:?}", e.kind()),
                message: format!("write failed: {e}"),
            });
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        self.note_write(result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.note_write(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.note_write(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn records_settings_frame_and_close() {
        let (mut server, client) = tokio::io::duplex(64);
        let recorder = Recorder::new(Instant::now());
        let mut wrapped = recorder.wrap(client);
        server
            .write_all(&[0, 0, 0, FRAME_SETTINGS, 0, 0, 0, 0, 0])
            .await
            .unwrap();
        drop(server);
        let mut all = Vec::new();
        wrapped.read_to_end(&mut all).await.unwrap();
        let seen = recorder.snapshot();
        assert!(seen.got_settings());
        assert_eq!(
            seen.end.as_ref().map(|e| e.0.clone()),
            Some(StreamEnd::Closed)
        );
        assert!(seen.describe().contains("SETTINGS"), "{}", seen.describe());
    }

    #[test]
    fn non_http2_answers_are_told_from_the_first_bytes() {
        let seen = |bytes: &[u8]| ServerBytes {
            first_bytes: bytes.to_vec(),
            total: bytes.len(),
            first_at: Some(Duration::ZERO),
            ..Default::default()
        };
        assert!(
            seen(b"H").not_http2(),
            "an HTTP/1 answer, from its first byte"
        );
        assert!(
            seen(&[0x15, 0x03, 0x03, 0x00, 0x02]).not_http2(),
            "a TLS alert record"
        );
        assert!(seen(&[0, 0, 6, 0x7]).not_http2(), "a GOAWAY first");
        assert!(
            !seen(&[0, 0]).not_http2(),
            "still a possible SETTINGS header"
        );
        assert!(!seen(&[0, 0, 0x12, FRAME_SETTINGS, 0, 0, 0, 0, 0]).not_http2());
        assert!(!seen(&[]).not_http2());
        let http1 = seen(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n");
        assert_eq!(
            http1.text_first_line().as_deref(),
            Some("HTTP/1.1 400 Bad Request")
        );
        assert!(
            http1
                .describe()
                .contains("first line \"HTTP/1.1 400 Bad Request\"")
        );
    }

    #[tokio::test]
    async fn silent_close_is_not_settings() {
        let (server, client) = tokio::io::duplex(64);
        let recorder = Recorder::new(Instant::now());
        let mut wrapped = recorder.wrap(client);
        drop(server);
        let mut all = Vec::new();
        wrapped.read_to_end(&mut all).await.unwrap();
        let seen = recorder
            .wait_for(Duration::from_millis(10), |s| s.end.is_some())
            .await;
        assert!(seen.closed_silently());
        assert!(!seen.got_settings());
    }
}
