//! Certificates generated per run: a CA, server and client certificates, and
//! a foreign CA with its own client certificate for negative checks.

pub mod client;
pub mod error;
pub mod generate;
pub mod pem;

pub use client::{ClientIdentity, ClientTls, TlsVersion, install_crypto_provider};
pub use error::TlsError;
pub use generate::generate;

use std::path::PathBuf;

/// The name of the always-present foreign authority.
pub const FOREIGN: &str = "foreign";

/// PEM files of one authority, all in the run's private folder (0600).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// The authority's name (`certificates.ca`, or [`FOREIGN`]).
    pub name: String,
    /// CA certificate.
    pub ca_cert: PathBuf,
    /// CA private key.
    pub ca_key: PathBuf,
    /// Server certificate (SANs: localhost, 127.0.0.1, ::1, the extra names).
    pub server_cert: PathBuf,
    /// Server private key.
    pub server_key: PathBuf,
    /// Client certificate signed by this CA.
    pub client_cert: PathBuf,
    /// Client private key.
    pub client_key: PathBuf,
}

/// Every authority generated for one scenario run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSet {
    /// Folder holding the files.
    pub dir: PathBuf,
    /// By name; always contains [`FOREIGN`].
    pub authorities: Vec<Authority>,
}

impl CertificateSet {
    /// The authority with this name.
    pub fn get(&self, name: &str) -> Option<&Authority> {
        self.authorities.iter().find(|a| a.name == name)
    }
}
