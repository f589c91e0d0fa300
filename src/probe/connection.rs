//! The stages of a probe connection done by hand, so each is observable:
//! resolve, TCP connect, TLS handshake, ALPN.

use super::failure::Failure;
use super::timeline::{Timeline, ms};
use crate::tls::ClientTls;
use crate::verdict::Stage;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A byte stream a probe can speak over (plain TCP or TLS).
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for T {}

/// `host:port` split into its parts (`[::1]:443` gives `::1`).
pub fn split_address(address: &str) -> Result<(String, u16), Failure> {
    let bad = || Failure::new(Stage::Resolve, format!("`{address}` is not host:port"));
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Resolves `address` and connects over TCP, noting both in the timeline.
pub async fn tcp_connect(address: &str, timeline: &mut Timeline) -> Result<TcpStream, Failure> {
    let (host, port) = split_address(address)?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| Failure::new(Stage::Resolve, format!("resolving {host}: {e}")))?
        .collect();
    let Some(first) = addrs.first() else {
        return Err(Failure::new(
            Stage::Resolve,
            format!("{host} resolved to no address"),
        ));
    };
    let mut last_error = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                timeline.note(format!("TCP connected to {addr}"));
                return Ok(stream);
            }
            Err(e) => {
                timeline.note(format!("TCP connect to {addr} failed: {}", describe_io(&e)));
                last_error = Some(e);
            }
        }
    }
    let e = last_error.expect("at least one address was tried");
    let mut failure = Failure::new(
        Stage::Tcp,
        format!("TCP connect to {first}: {}", describe_io(&e)),
    );
    failure.refusal = refusal_of_io(&e);
    Err(failure)
}

/// What the TLS handshake settled on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFacts {
    /// e.g. `TLSv1_3`.
    pub version: String,
    /// The negotiated ALPN protocol, if any.
    pub alpn: Option<String>,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
}

/// Runs the TLS handshake over `tcp` offering `alpn`; failures land on stage
/// TLS (or ALPN when the server refused every offered protocol).
pub async fn tls_handshake(
    tcp: TcpStream,
    host: &str,
    tls: &ClientTls,
    alpn: &[&[u8]],
    timeline: &mut Timeline,
) -> Result<(TlsStream<TcpStream>, TlsFacts), Failure> {
    let config = tls
        .config(alpn)
        .map_err(|e| Failure::new(Stage::Tls, format!("TLS client setup: {e}")))?;
    let name = tls
        .server_name_for(host)
        .map_err(|e| Failure::new(Stage::Tls, e.to_string()))?;
    timeline.note(format!("TLS handshake starting: {}", tls.describe(host)));
    let connector = TlsConnector::from(Arc::new(config));
    match connector.connect(name, tcp).await {
        Ok(stream) => {
            let (_, conn) = stream.get_ref();
            let facts = TlsFacts {
                version: conn
                    .protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_else(|| "?".into()),
                alpn: conn
                    .alpn_protocol()
                    .map(|p| String::from_utf8_lossy(p).into_owned()),
                cipher: conn
                    .negotiated_cipher_suite()
                    .map(|c| format!("{:?}", c.suite()))
                    .unwrap_or_else(|| "?".into()),
            };
            timeline.note(format!(
                "TLS handshake complete: {}, cipher {}, ALPN {}",
                facts.version,
                facts.cipher,
                facts.alpn.as_deref().unwrap_or("none")
            ));
            Ok((stream, facts))
        }
        Err(e) => {
            let message = describe_io(&e);
            let stage = if message.contains("NoApplicationProtocol") {
                Stage::Alpn
            } else {
                Stage::Tls
            };
            timeline.note(format!("TLS handshake failed: {message}"));
            let mut failure = Failure::new(stage, format!("TLS handshake failed: {message}"));
            failure.refusal = refusal_of_io(&e);
            Err(failure)
        }
    }
}

/// Checks that ALPN settled on `h2`.
pub fn require_h2(facts: &TlsFacts, timeline: &mut Timeline) -> Result<(), Failure> {
    match facts.alpn.as_deref() {
        Some("h2") => Ok(()),
        other => {
            let got = other.unwrap_or("no protocol");
            timeline.note(format!("ALPN negotiated {got}, expected h2"));
            Err(Failure::new(
                Stage::Alpn,
                format!("ALPN negotiated {got} instead of h2"),
            ))
        }
    }
}

/// An I/O error in words; a rustls error inside is shown by its own text.
pub fn describe_io(e: &io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => format!("{tls} ({tls:?})"),
        None => match e.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused".into(),
            io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
            io::ErrorKind::UnexpectedEof => format!("connection closed by peer ({e})"),
            _ => format!("{e} ({:?})", e.kind()),
        },
    }
}

/// The way the peer turned us away, when the error is one: a refusal,
/// reset, close or TLS alert. `None` for local errors (e.g. we rejected
/// the server's certificate).
pub fn refusal_of_io(e: &io::Error) -> Option<String> {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::AlertReceived(alert) => Some(format!("TLS alert {alert:?}")),
            _ => None,
        };
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Some("TCP connection refused".into()),
        io::ErrorKind::ConnectionReset => Some("connection reset".into()),
        io::ErrorKind::ConnectionAborted => Some("connection aborted".into()),
        io::ErrorKind::BrokenPipe => Some("connection closed (broken pipe)".into()),
        io::ErrorKind::UnexpectedEof => Some("connection closed during the TLS handshake".into()),
        _ => None,
    }
}

/// Elapsed time in words for summaries.
pub fn took(timeline: &Timeline) -> String {
    ms(timeline.elapsed())
}
