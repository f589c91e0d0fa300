//! The run's certificates: scenarios asking for the same CA and server names
//! get the same files (so a lab head serving them can be shared), others get
//! their own; the private folder goes with the run unless kept.

use rayconform::runner::RunCertificates;
use rayconform::scenario::CertificatesSpec;
use std::os::unix::fs::PermissionsExt;

fn spec(ca: &str, names: &[&str]) -> CertificatesSpec {
    CertificatesSpec {
        ca: ca.into(),
        server_names: names.iter().map(|n| n.to_string()).collect(),
    }
}

#[test]
fn the_same_request_gets_the_same_files_and_another_gets_its_own() {
    let certs = RunCertificates::new(false);
    let a = certs.get(&spec("ca-tls", &[])).unwrap();
    let again = certs.get(&spec("ca-tls", &[])).unwrap();
    let named = certs.get(&spec("ca-tls", &["ray.example"])).unwrap();
    let other = certs.get(&spec("ca-other", &[])).unwrap();
    let files = |s: &rayconform::tls::CertificateSet, ca: &str| {
        let a = s.get(ca).unwrap();
        (a.server_cert.clone(), a.ca_cert.clone())
    };
    assert_eq!(files(&a, "ca-tls"), files(&again, "ca-tls"));
    assert_ne!(files(&a, "ca-tls"), files(&named, "ca-tls"));
    assert!(other.get("ca-other").is_some() && other.get("ca-tls").is_none());
    assert!(
        a.get("foreign").is_some(),
        "the foreign CA comes with every set"
    );

    let dir = certs.dir().expect("a folder once certificates exist");
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    drop(certs);
    assert!(!dir.exists(), "{} outlived the run", dir.display());
}

#[test]
fn kept_certificates_stay_after_the_run() {
    let certs = RunCertificates::new(true);
    certs.get(&spec("ca-tls", &[])).unwrap();
    let dir = certs.dir().unwrap();
    drop(certs);
    assert!(dir.join("set-1/ca-tls/ca.crt").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn certificates_kept_after_the_fact_stay_too() {
    let certs = RunCertificates::new(false);
    certs.get(&spec("ca-tls", &[])).unwrap();
    let dir = certs.dir().unwrap();
    certs.keep();
    drop(certs);
    assert!(dir.join("set-1/ca-tls/server.key").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_without_certificates_makes_no_folder() {
    assert!(RunCertificates::new(false).dir().is_none());
}
