//! rustls client configurations for probes: which CA verifies the server,
//! which client certificate (if any) is presented, ALPN, TLS version.

use super::TlsError;
use super::pem::{load_certs, load_key};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// Installs ring as rustls's process-wide crypto provider (needed before
/// reqwest or tonic touch TLS). Harmless when already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A pinned TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2.
    V12,
    /// TLS 1.3.
    V13,
}

impl FromStr for TlsVersion {
    type Err = TlsError;
    fn from_str(s: &str) -> Result<Self, TlsError> {
        match s.trim() {
            "1.2" | "TLS1.2" | "tls1.2" => Ok(TlsVersion::V12),
            "1.3" | "TLS1.3" | "tls1.3" => Ok(TlsVersion::V13),
            other => Err(TlsError::BadVersion(other.to_string())),
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::V12 => "TLS 1.2",
            TlsVersion::V13 => "TLS 1.3",
        })
    }
}

/// A client certificate and its key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Certificate chain PEM.
    pub cert: PathBuf,
    /// Private key PEM.
    pub key: PathBuf,
    /// Shown in evidence, e.g. `ca-tls client cert` or the file path.
    pub label: String,
}

/// TLS settings with credentials resolved to files: the common input of
/// scenario probes (from their TLS settings and the run's certificates) and the
/// CLI (from PEM paths).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// SNI and the name the certificate must match; the address's host when unset.
    pub server_name: Option<String>,
    /// CA certificate verifying the server. Required unless `insecure`.
    pub ca_cert: Option<PathBuf>,
    /// Accept the server's certificate without verifying it. Only when asked
    /// for by name (`insecureSkipVerify: true`, `--insecure`); verdicts then
    /// say "server certificate NOT verified".
    pub insecure: bool,
    /// The client certificate presented, if any.
    pub identity: Option<ClientIdentity>,
    /// Pinned version; 1.2 and 1.3 allowed when unset.
    pub version: Option<TlsVersion>,
}

impl ClientTls {
    /// The name used for SNI and verification: `server_name`, else `host`.
    pub fn server_name_for(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(name.to_string())
            .map_err(|_| TlsError::BadServerName(name.to_string()))
    }

    /// A rustls client configuration offering `alpn` protocols.
    pub fn config(&self, alpn: &[&[u8]]) -> Result<ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&'static rustls::SupportedProtocolVersion] = match self.version {
            Some(TlsVersion::V12) => &[&rustls::version::TLS12],
            Some(TlsVersion::V13) => &[&rustls::version::TLS13],
            None => rustls::DEFAULT_VERSIONS,
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)?;
        let builder = match &self.ca_cert {
            // A CA given together with `insecure`: the CA wins (verification on).
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in load_certs(path)? {
                    roots.add(cert)?;
                }
                builder.with_root_certificates(roots)
            }
            None if self.insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider))),
            None => return Err(TlsError::NoServerVerification),
        };
        let mut config = match &self.identity {
            Some(id) => builder.with_client_auth_cert(load_certs(&id.cert)?, load_key(&id.key)?)?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }

    /// The server's certificate goes unverified (no CA, `insecure` asked for).
    pub fn skips_verification(&self) -> bool {
        self.ca_cert.is_none() && self.insecure
    }

    /// One line for evidence: name, CA, client cert, version.
    pub fn describe(&self, host: &str) -> String {
        format!(
            "server name {}, CA {}, client cert {}, version {}",
            self.server_name.as_deref().unwrap_or(host),
            self.ca_cert
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| if self.insecure {
                    "none: server certificate NOT verified (insecure, as asked)".into()
                } else {
                    "none".into()
                }),
            self.identity
                .as_ref()
                .map(|i| i.label.clone())
                .unwrap_or_else(|| "none".into()),
            self.version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "1.2 or 1.3".into()),
        )
    }
}

/// Accepts any server certificate (signatures are still checked): used only
/// when asked for by name, and the verdict then says the server is unverified.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
