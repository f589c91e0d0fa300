//! The ingress-nginx manifest is pinned by its sha256 and checked always,
//! a local copy included; its admission Jobs must run the pinned certgen
//! image (issue 7, item 7). The pinned values were checked against
//! kubernetes/ingress-nginx at tag controller-v1.15.1.

use rayconform::install::ingress_nginx::{
    self, CERTGEN_IMAGE, MANIFEST_SHA256, ManifestError, check_certgen_images, check_pinned,
};
use serde_json::json;

fn job(name: &str, image: &str) -> serde_json::Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"template": {"spec": {"containers": [{"name": "create", "image": image}]}}}})
}

#[test]
fn the_pin_is_a_sha256_and_the_certgen_image_is_pinned_by_digest() {
    assert_eq!(MANIFEST_SHA256.len(), 64);
    assert!(MANIFEST_SHA256.chars().all(|c| c.is_ascii_hexdigit()));
    let (_, digest) = CERTGEN_IMAGE.split_once("@sha256:").unwrap();
    assert_eq!(digest.len(), 64, "{CERTGEN_IMAGE}");
}

#[test]
fn bytes_other_than_the_pinned_release_are_refused() {
    let err = check_pinned(b"kind: Namespace\n", "/tmp/local-copy.yaml").unwrap_err();
    match &err {
        ManifestError::WrongSha256 { origin, found } => {
            assert_eq!(origin, "/tmp/local-copy.yaml");
            assert_eq!(*found, ingress_nginx::sha256_hex(b"kind: Namespace\n"));
        }
        other => panic!("expected WrongSha256, got {other:?}"),
    }
    assert!(err.to_string().contains(MANIFEST_SHA256), "{err}");
}

#[test]
fn admission_jobs_must_run_the_pinned_certgen_image() {
    let pinned = vec![
        job("ingress-nginx-admission-create", CERTGEN_IMAGE),
        job("ingress-nginx-admission-patch", CERTGEN_IMAGE),
    ];
    assert_eq!(check_certgen_images(&pinned), Ok(()));
    let other = "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.9";
    let swapped = vec![
        job("ingress-nginx-admission-create", CERTGEN_IMAGE),
        job("ingress-nginx-admission-patch", other),
    ];
    assert_eq!(
        check_certgen_images(&swapped),
        Err(ManifestError::WrongCertgenImage {
            job: "ingress-nginx-admission-patch".into(),
            found: other.into()
        })
    );
    assert!(matches!(
        check_certgen_images(&[]),
        Err(ManifestError::Missing(_))
    ));
}

#[test]
fn the_plan_names_every_check() {
    let plan = ingress_nginx::plan(&Default::default());
    assert!(plan.contains(MANIFEST_SHA256), "{plan}");
    assert!(plan.contains(CERTGEN_IMAGE), "{plan}");
}
