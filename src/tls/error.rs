//! Errors of certificate generation and TLS client setup.

use std::path::PathBuf;

/// Why certificates could not be generated or a TLS client configured.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen refused the parameters.
    #[error("generating certificate {what}: {source}")]
    Generate {
        /// Which certificate.
        what: String,
        /// The rcgen error.
        #[source]
        source: rcgen::Error,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file held nothing usable.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was missing or wrong.
        message: String,
    },
    /// A scenario named an authority that was not generated.
    #[error("no certificate authority named `{0}` in this run")]
    UnknownAuthority(String),
    /// A TLS version other than "1.2" or "1.3".
    #[error("unsupported TLS version `{0}` (use 1.2 or 1.3)")]
    BadVersion(String),
    /// A server name that is neither a DNS name nor an IP address.
    #[error("invalid server name `{0}`")]
    BadServerName(String),
    /// TLS without a CA to verify the server, and no explicit request to skip
    /// verification.
    #[error(
        "no CA to verify the server certificate: give one (`ca:` in the scenario, --ca on the command line), or skip verification by name (`insecureSkipVerify: true`, --insecure)"
    )]
    NoServerVerification,
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}
