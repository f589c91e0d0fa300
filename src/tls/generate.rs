//! Generating a run's certificate authorities with rcgen.

use super::{Authority, CertificateSet, FOREIGN, TlsError};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use time::{Duration, OffsetDateTime};

/// Common name of every generated client certificate.
pub const CLIENT_COMMON_NAME: &str = "rayconform-client";

/// Generates the authority `ca_name` and the [`FOREIGN`] one in `dir`
/// (created 0700; every file 0600). Server certificates name localhost,
/// 127.0.0.1, ::1 and `extra_server_names` (IP-looking names become IP SANs)
/// and carry both serverAuth and clientAuth, since Ray presents its server
/// certificate as its client certificate too.
pub fn generate(
    dir: &Path,
    ca_name: &str,
    extra_server_names: &[String],
) -> Result<CertificateSet, TlsError> {
    make_private_dir(dir)?;
    let mut authorities = vec![generate_authority(dir, ca_name, extra_server_names)?];
    if ca_name != FOREIGN {
        authorities.push(generate_authority(dir, FOREIGN, extra_server_names)?);
    }
    Ok(CertificateSet {
        dir: dir.to_path_buf(),
        authorities,
    })
}

fn generate_authority(
    dir: &Path,
    name: &str,
    extra_server_names: &[String],
) -> Result<Authority, TlsError> {
    let folder = dir.join(name);
    make_private_dir(&folder)?;
    let authority = Authority {
        name: name.to_string(),
        ca_cert: folder.join("ca.crt"),
        ca_key: folder.join("ca.key"),
        server_cert: folder.join("server.crt"),
        server_key: folder.join("server.key"),
        client_cert: folder.join("client.crt"),
        client_key: folder.join("client.key"),
    };

    let ca_key = new_key(name)?;
    let mut ca_params = base_params(&format!("rayconform {name} CA"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|source| gen_err(name, "CA", source))?;
    write_private(&authority.ca_cert, &ca_cert.pem())?;
    write_private(&authority.ca_key, &ca_key.serialize_pem())?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = new_key(name)?;
    let mut server_params = base_params(&format!("rayconform {name} server"));
    server_params.subject_alt_names = server_sans(extra_server_names, name)?;
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server_params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .map_err(|source| gen_err(name, "server", source))?;
    write_private(&authority.server_cert, &server_cert.pem())?;
    write_private(&authority.server_key, &server_key.serialize_pem())?;

    let client_key = new_key(name)?;
    let mut client_params = base_params(CLIENT_COMMON_NAME);
    client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params
        .signed_by(&client_key, &issuer)
        .map_err(|source| gen_err(name, "client", source))?;
    write_private(&authority.client_cert, &client_cert.pem())?;
    write_private(&authority.client_key, &client_key.serialize_pem())?;

    Ok(authority)
}

fn base_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "rayconform");
    params.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(30);
    params
}

fn server_sans(extra: &[String], authority: &str) -> Result<Vec<SanType>, TlsError> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for name in extra {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
        .into_iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => name
                .as_str()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|source| gen_err(authority, &format!("server SAN {name}"), source)),
        })
        .collect()
}

fn new_key(authority: &str) -> Result<KeyPair, TlsError> {
    KeyPair::generate().map_err(|source| gen_err(authority, "key", source))
}

fn gen_err(authority: &str, what: &str, source: rcgen::Error) -> TlsError {
    TlsError::Generate {
        what: format!("{what} of authority {authority}"),
        source,
    }
}

fn make_private_dir(dir: &Path) -> Result<(), TlsError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| TlsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    // `mode` does not apply to a folder that already existed.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
        TlsError::Io {
            path: dir.to_path_buf(),
            source,
        }
    })
}

fn write_private(path: &Path, text: &str) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::pem::{load_certs, load_key};
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    fn verify_server(
        set: &CertificateSet,
        server_of: &str,
        ca_of: &str,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in load_certs(&set.get(ca_of).unwrap().ca_cert).unwrap() {
            roots.add(cert).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let chain = load_certs(&set.get(server_of).unwrap().server_cert).unwrap();
        verifier
            .verify_server_cert(
                &chain[0],
                &[],
                &ServerName::try_from(name.to_string()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    fn verify_client(
        set: &CertificateSet,
        client_of: &str,
        ca_of: &str,
    ) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in load_certs(&set.get(ca_of).unwrap().ca_cert).unwrap() {
            roots.add(cert).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let chain = load_certs(&set.get(client_of).unwrap().client_cert).unwrap();
        verifier
            .verify_client_cert(&chain[0], &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn files_are_private_and_chains_verify() {
        let dir = tempfile::tempdir().unwrap();
        let certs_dir = dir.path().join("certs");
        let set = generate(
            &certs_dir,
            "ca-tls",
            &["ray.example".to_string(), "10.1.2.3".to_string()],
        )
        .unwrap();
        assert_eq!(set.authorities.len(), 2);
        assert!(set.get(FOREIGN).is_some());
        assert_eq!(
            std::fs::metadata(&certs_dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        for a in &set.authorities {
            for f in [
                &a.ca_cert,
                &a.ca_key,
                &a.server_cert,
                &a.server_key,
                &a.client_cert,
                &a.client_key,
            ] {
                let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", f.display());
            }
            load_key(&a.server_key).unwrap();
        }
        verify_server(&set, "ca-tls", "ca-tls", "localhost").unwrap();
        verify_server(&set, "ca-tls", "ca-tls", "127.0.0.1").unwrap();
        verify_server(&set, "ca-tls", "ca-tls", "::1").unwrap();
        verify_server(&set, "ca-tls", "ca-tls", "ray.example").unwrap();
        verify_server(&set, "ca-tls", "ca-tls", "10.1.2.3").unwrap();
        verify_server(&set, "ca-tls", "ca-tls", "other.example").unwrap_err();
        verify_server(&set, "ca-tls", FOREIGN, "localhost").unwrap_err();
        verify_client(&set, "ca-tls", "ca-tls").unwrap();
        verify_client(&set, FOREIGN, "ca-tls").unwrap_err();
    }
}
