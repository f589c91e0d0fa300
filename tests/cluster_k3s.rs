//! The `k3s` target as a user meets it without a Docker engine: `run`
//! refuses it (exit 2, with the reason), `plan` shows the pinned image
//! per Kubernetes version, and it takes the scenarios written for kind.

use rayconform::scenario::TargetKind;
use rayconform::targets::k3s::{self, versions};
use rayconform::targets::{TargetOptions, registry};
use std::path::Path;
use std::process::{Command, Output};

const NO_ENGINE: &str = "unix:///nonexistent/rayconform-docker.sock";

fn rayconform(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rayconform"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("DOCKER_HOST", NO_ENGINE)
        .current_dir(root)
        .output()
        .unwrap()
}

fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn run_on_k3s_without_a_docker_engine_is_exit_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("out.xml");
    let out = rayconform(
        project_root(),
        &[
            "run",
            "--target",
            "k3s",
            "--junit",
            junit.to_str().unwrap(),
            "scenarios",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("target `k3s` cannot run here")
            && stderr
                .contains("no Docker engine: socket /nonexistent/rayconform-docker.sock not found"),
        "{stderr}"
    );
    assert!(!junit.exists(), "nothing ran, no report");
}

#[test]
fn plan_on_k3s_shows_the_pinned_image_of_every_version() {
    let out = rayconform(project_root(), &["plan", "--target", "k3s", "scenarios"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("=== ray-client-passthrough-tls on k3s"),
        "{stdout}"
    );
    // The chosen image, and the whole table.
    let default = versions::image_for(versions::DEFAULT_VERSION).unwrap();
    assert!(
        stdout.contains(&format!(
            "image: {} (Kubernetes {}",
            default.reference(),
            default.version
        )),
        "{stdout}"
    );
    for image in versions::K3S_IMAGES {
        assert!(
            stdout.contains(&format!(
                "Kubernetes {}: rancher/k3s:{}",
                image.version, image.tag
            )),
            "{} missing: {stdout}",
            image.tag
        );
    }
    assert!(stdout.contains("--disable=traefik"), "{stdout}");
    // Scenarios written for kind are not skipped for not listing k3s.
    assert!(!stdout.contains("does not list target `k3s`"), "{stdout}");
}

#[test]
fn plan_on_k3s_with_a_version_shows_that_image() {
    let out = rayconform(
        project_root(),
        &[
            "plan",
            "--target",
            "k3s",
            "--k8s-version",
            "1.37",
            "scenarios",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("image: rancher/k3s:v1.37.1-k3s1 (Kubernetes 1.37.1"),
        "{stdout}"
    );
}

#[test]
fn k3s_takes_the_scenarios_written_for_kind_and_no_others() {
    assert!(TargetKind::K3s.listed_in(&[TargetKind::Kind]));
    assert!(TargetKind::K3s.listed_in(&[TargetKind::K3s]));
    assert!(!TargetKind::K3s.listed_in(&[TargetKind::Lab, TargetKind::Existing]));
    assert!(!TargetKind::Kind.listed_in(&[TargetKind::K3s]));
    assert_eq!(TargetKind::parse("k3s"), Some(TargetKind::K3s));
}

#[test]
fn the_registry_builds_k3s_and_it_maps_the_ingress_ports() {
    let target = registry::build(TargetKind::K3s, &TargetOptions::default());
    assert_eq!(target.kind(), TargetKind::K3s);
    let loaded =
        rayconform::scenario::load_all(&[project_root().join("scenarios")], project_root());
    let tcp = loaded
        .scenarios
        .iter()
        .find(|s| s.name == "ray-tcp-services")
        .expect("the TCP services scenario");
    let ports = k3s::ingress_ports(tcp);
    assert_eq!(&ports[..2], [80, 443]);
    assert!(
        ports.len() > 2,
        "its raw TCP ports are mapped too: {ports:?}"
    );
}

/// The multi-node scenarios check kind's nodes by name: k3s (one node)
/// skips them with that reason; the others it runs as kind does.
#[test]
fn k3s_skips_the_scenarios_that_name_kind_nodes() {
    let loaded =
        rayconform::scenario::load_all(&[project_root().join("scenarios")], project_root());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let named: Vec<&str> = loaded
        .scenarios
        .iter()
        .filter(|s| k3s::names_kind_nodes(s).is_some())
        .map(|s| s.name.as_str())
        .collect();
    assert!(named.contains(&"pinned-gateway"), "{named:?}");
    assert!(named.contains(&"external-ip-drift"), "{named:?}");
    assert!(!named.contains(&"ray-tcp-services"), "{named:?}");
    assert!(!named.contains(&"istio-mtls-ray-guide"), "{named:?}");
}
