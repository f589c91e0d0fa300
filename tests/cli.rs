//! The command line as a user meets it: exit codes and messages.

use std::path::Path;
use std::process::{Command, Output};

const GOOD: &str = "apiVersion: rayconform.dev/v1alpha1
kind: Scenario
metadata:
  name: cli-good
  tags: [smoke]
spec:
  targets: [lab, kind]
  steps:
    - apply: fixtures/cm.yaml
    - probe:
        tcp: { address: \"${INGRESS_HTTP}\" }
";

const BAD: &str = "apiVersion: rayconform.dev/v1alpha1
kind: Scenario
metadata:
  name: cli-bad
spec:
  targets: [lab]
  steps:
    - wait: { rayCluster: rc, timeout: soon }
    - probe:
        tcp: { address: \"${NOT_A_RUN_VARIABLE_Q}\" }
";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("fixtures")).unwrap();
    std::fs::create_dir_all(dir.path().join("scenarios")).unwrap();
    std::fs::write(
        dir.path().join("fixtures/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: ${NAMESPACE}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("scenarios/good.yaml"), GOOD).unwrap();
    dir
}

fn rayconform(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rayconform"))
        .arg("--root")
        .arg(root)
        .args(args)
        .current_dir(root)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_accepts_good_files_and_locates_every_error_in_bad_ones() {
    let p = project();
    let out = rayconform(p.path(), &["validate"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("1 scenario(s) valid"), "{stdout}");

    std::fs::write(p.path().join("scenarios/bad.yaml"), BAD).unwrap();
    let out = rayconform(p.path(), &["validate", "scenarios"]);
    let (_, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "bad input is exit 2, as for run"
    );
    assert!(stderr.contains("scenarios/bad.yaml:8:40: spec.steps[0].wait.timeout: expected a duration like 90s or 5m, found 'soon'"), "{stderr}");
    assert!(
        stderr.contains(
            "scenarios/bad.yaml:9:7: spec.steps[1]: unknown variable ${NOT_A_RUN_VARIABLE_Q}"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("2 error(s) in scenario files"), "{stderr}");
}

#[test]
fn run_refuses_bad_input_with_exit_code_2_before_touching_anything() {
    let p = project();
    std::fs::write(p.path().join("scenarios/bad.yaml"), BAD).unwrap();
    let out = rayconform(p.path(), &["run", "--target", "lab", "--junit", "out.xml"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        !p.path().join("out.xml").exists(),
        "no report for a run that never started"
    );
    std::fs::remove_file(p.path().join("scenarios/bad.yaml")).unwrap();
    let out = rayconform(p.path(), &["run", "--filter", "^nothing-matches$"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("no scenario matches"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn list_shows_names_targets_and_tags() {
    let p = project();
    let out = rayconform(p.path(), &["list"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    let line = stdout
        .lines()
        .find(|l| l.starts_with("cli-good"))
        .expect("listed");
    assert!(
        line.contains("targets: lab,kind") && line.contains("tags: smoke"),
        "{line}"
    );
}

#[test]
fn plan_resolves_files_and_templates_without_running_anything() {
    let p = project();
    let out = rayconform(p.path(), &["plan", "--target", "lab"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("=== cli-good on lab"), "{stdout}");
    assert!(
        stdout.contains("1. apply fixtures/cm.yaml [apply, timeout 2m]"),
        "{stdout}"
    );
    let ns = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("NAMESPACE = "))
        .expect("namespace variable")
        .to_string();
    assert!(ns.starts_with("rc-cli-good-"), "{ns}");
    assert!(
        stdout.contains(&format!("namespace: {ns}")),
        "the manifest is templated: {stdout}"
    );
    assert!(!p.path().join("reports").exists(), "plan writes nothing");
}

#[test]
fn an_unknown_kubernetes_version_is_refused_up_front_listing_the_supported_ones() {
    let p = project();
    for cmd in ["run", "plan"] {
        let out = rayconform(p.path(), &[cmd, "--target", "lab", "--k8s-version", "1.99"]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {stderr}");
        assert!(
            stderr.contains("--k8s-version 1.99") && stderr.contains("1.35"),
            "{cmd}: {stderr}"
        );
    }
}

fn rayconform_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rayconform"))
        .arg("--root")
        .arg(root)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root)
        .output()
        .unwrap()
}

#[test]
fn a_target_asked_for_by_name_that_cannot_run_here_is_exit_2_with_the_reason() {
    let p = project();
    let empty_path = p.path().join("empty-bin");
    std::fs::create_dir_all(&empty_path).unwrap();
    let empty_path = empty_path.to_str().unwrap();
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 2] = [
        ("kind", &[("PATH", empty_path)], "`docker` not found"),
        (
            "existing",
            &[("KUBECONFIG", "/nonexistent/rayconform-kubeconfig")],
            "no kubeconfig",
        ),
    ];
    for (target, env, reason) in cases {
        let out = rayconform_env(
            p.path(),
            &["run", "--target", target, "--junit", "out.xml"],
            env,
        );
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{target}: {stderr}");
        assert!(
            stderr.contains(&format!("target `{target}` cannot run here"))
                && stderr.contains(reason),
            "{target}: {stderr}"
        );
        assert!(
            !p.path().join("out.xml").exists(),
            "{target}: nothing ran, no report"
        );
    }
}

#[test]
fn auto_says_which_target_it_fell_back_to_and_why() {
    let p = project();
    let empty_path = p.path().join("empty-bin");
    std::fs::create_dir_all(&empty_path).unwrap();
    // Neither kind (no docker) nor lab (no python3, no nginx) can run.
    let out = rayconform_env(
        p.path(),
        &["run", "--junit", "out.xml"],
        &[("PATH", empty_path.to_str().unwrap())],
    );
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("target auto → lab (kind is not usable here: `docker` not found"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("target `lab` cannot run here: `python3` not found"),
        "{stderr}"
    );
}

#[test]
fn bad_command_lines_are_caught_up_front_with_exit_2() {
    let p = project();
    let out = rayconform(p.path(), &["run", "--target", "lab", "--jobs", "0"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--jobs"), "{stderr}");

    std::fs::create_dir_all(p.path().join("a-folder")).unwrap();
    let started = std::time::Instant::now();
    let out = rayconform(p.path(), &["run", "--target", "lab", "--junit", "a-folder"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--junit a-folder: is a folder"), "{stderr}");
    assert!(
        !stderr.contains("start ") && started.elapsed() < std::time::Duration::from_secs(10),
        "refused before anything ran: {stderr}"
    );

    std::fs::create_dir_all(p.path().join("empty")).unwrap();
    for cmd in ["validate", "list", "run", "plan"] {
        let out = rayconform(p.path(), &[cmd, "empty"]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {stderr}");
        assert!(
            stderr.contains("no scenario files (*.yaml, *.yml) in empty"),
            "{cmd}: {stderr}"
        );
    }
}

#[test]
fn a_known_bug_url_error_is_located() {
    let p = project();
    std::fs::write(
        p.path().join("scenarios/good.yaml"),
        format!("{GOOD}  knownBug: {{ url: not-a-link }}\n"),
    )
    .unwrap();
    let out = rayconform(p.path(), &["validate"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("scenarios/good.yaml:12:20: spec.knownBug.url: expected an http(s) link, found `not-a-link`"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_probe_address_is_a_usage_error_not_a_failed_probe() {
    let p = project();
    let cases: [&[&str]; 6] = [
        &["probe", "tcp", "no-port-here"],
        &["probe", "tcp", "localhost:99999"],
        &["probe", "grpc-ready", "localhost", "--plaintext"],
        &[
            "probe", "mtls", "x", "--ca", "a", "--cert", "b", "--key", "c",
        ],
        &["probe", "http", "not a url"],
        &["probe", "page", "ftp://example.invalid/"],
    ];
    for args in cases {
        let out = rayconform(p.path(), args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("invalid value"), "{args:?}: {stderr}");
    }
    // A well-formed address that is closed is a verdict, not a usage error.
    let out = rayconform(
        p.path(),
        &["probe", "tcp", "127.0.0.1:1", "--timeout", "5s"],
    );
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
}
