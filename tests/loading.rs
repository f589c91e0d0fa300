//! Loading scenario files: good input, and every error path with its location.

use rayconform::scenario::{
    Action, Install, LoadErrors, Probe, RayClusterCondition, TargetKind, WaitTarget, load_all,
    load_str,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A project root with one fixture file.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("fixtures")).unwrap();
    std::fs::write(
        dir.path().join("fixtures/rc.yaml"),
        "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata:\n  name: rc\n  namespace: ${NAMESPACE}\n",
    )
    .unwrap();
    dir
}

fn load(root: &Path, text: &str) -> Result<rayconform::scenario::Scenario, LoadErrors> {
    load_str(Path::new("s.yaml"), text, root)
}

const GOOD: &str = r#"apiVersion: rayconform.dev/v1alpha1
kind: Scenario
metadata:
  name: ray-client-through-passthrough
  description: The Ray client through SSL passthrough.
  tags: [ingress-nginx, tls]
  source: https://github.com/ray-project/kuberay/pull/1051
spec:
  targets: [kind, lab]
  install:
    - ingressNginx: { sslPassthrough: true, tcpServices: { "10001": "${NAMESPACE}/rc-head-svc:10001" } }
    - kuberayOperator: { headClusterIpService: true }
  certificates: { ca: ca-tls }
  timeout: 10m
  steps:
    - apply: fixtures/rc.yaml
    - wait: { rayCluster: rc, condition: HeadPodReady, timeout: 5m }
    - name: client is ready
      probe:
        grpcReady: { address: "${INGRESS_HTTPS}", tls: { serverName: localhost, ca: ca-tls, clientCert: ca-tls } }
      retries: 3
      timeout: 90s
    - apply:
        inline: |
          apiVersion: v1
          kind: ConfigMap
          metadata: { name: x }
  finally:
    - command: { argv: [echo, done] }
  knownBug:
    url: https://github.com/kubernetes/ingress-nginx/issues/1718
"#;

#[test]
fn a_good_scenario_loads_with_everything_resolved() {
    let root = project();
    let s = load(root.path(), GOOD).unwrap();
    assert_eq!(s.name, "ray-client-through-passthrough");
    assert_eq!(s.targets, vec![TargetKind::Kind, TargetKind::Lab]);
    assert_eq!(s.timeout, Duration::from_secs(600));
    assert_eq!(s.install.len(), 2);
    assert!(
        matches!(&s.install[0], Install::IngressNginx(n) if n.ssl_passthrough && n.tcp_services.len() == 1)
    );
    assert_eq!(s.steps.len(), 4);
    assert!(
        matches!(&s.steps[0].action, Action::Apply(src) if src.file.as_deref() == Some("fixtures/rc.yaml"))
    );
    assert_eq!(
        s.steps[0].timeout,
        Duration::from_secs(120),
        "default apply timeout"
    );
    match &s.steps[1].action {
        Action::Wait(w) => {
            assert_eq!(w.target, WaitTarget::RayCluster("rc".into()));
            assert_eq!(w.condition, Some(RayClusterCondition::HeadPodReady));
        }
        other => panic!("expected a wait, got {other:?}"),
    }
    assert_eq!(
        s.steps[1].timeout,
        Duration::from_secs(300),
        "wait.timeout becomes the step timeout"
    );
    assert_eq!(
        (s.steps[2].name.as_str(), s.steps[2].retries),
        ("client is ready", 3)
    );
    assert_eq!(s.steps[2].timeout, Duration::from_secs(90));
    assert!(
        matches!(&s.steps[2].action, Action::Probe(Probe::GrpcReady(g)) if g.ray_ping && g.address == "${INGRESS_HTTPS}")
    );
    assert_eq!((s.steps[2].line, s.steps[2].column), (18, 7));
    assert_eq!(s.finally.len(), 1);
    assert!(s.known_bug.is_some());
}

/// Loads `text` and returns the rendered errors.
fn errors(text: &str) -> Vec<String> {
    let root = project();
    match load(root.path(), text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(LoadErrors(errs)) => errs.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn an_unknown_field_is_located_and_names_the_expected_ones() {
    let text = GOOD.replace(
        "    - apply: fixtures/rc.yaml\n",
        "    - apply: fixtures/rc.yaml\n      bogus: 1\n",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("s.yaml:17:7: unknown field `bogus`, expected one of"),
        "{}",
        errs[0]
    );
    assert!(
        errs[0].contains("bogus: 1") && errs[0].contains('^'),
        "has a snippet: {}",
        errs[0]
    );
}

#[test]
fn a_bad_duration_names_path_location_and_expectation() {
    let text = GOOD.replace("timeout: 5m }", "timeout: soon }");
    let errs = errors(&text);
    assert_eq!(
        errs[0].lines().next().unwrap(),
        "s.yaml:17:65: spec.steps[1].wait.timeout: expected a duration like 90s or 5m, found 'soon'"
    );
}

#[test]
fn several_errors_in_one_file_are_all_reported() {
    let text = GOOD
        .replace(
            "apiVersion: rayconform.dev/v1alpha1",
            "apiVersion: rayconform.dev/v9",
        )
        .replace("targets: [kind, lab]", "targets: [kind, moon]")
        .replace("timeout: 5m }", "timeout: soon }")
        .replace("      timeout: 90s\n", "      timeout: later\n")
        .replace("condition: HeadPodReady", "condition: Sunny");
    let errs = errors(&text);
    let firsts: Vec<&str> = errs.iter().map(|e| e.lines().next().unwrap()).collect();
    let expect = [
        "s.yaml:1:13: apiVersion: expected `rayconform.dev/v1alpha1`, found `rayconform.dev/v9`",
        "s.yaml:9:19: spec.targets[1]: expected one of kind, existing, lab, found `moon`",
        "s.yaml:17:58: spec.steps[1].wait.timeout: expected a duration like 90s or 5m, found 'soon'",
        "s.yaml:17:42: spec.steps[1].wait.condition: expected one of Ready, HeadPodReady, RayClusterProvisioned, found `Sunny`",
        "s.yaml:22:16: spec.steps[2].timeout: expected a duration like 90s or 5m, found 'later'",
    ];
    for e in expect {
        assert!(firsts.contains(&e), "missing {e:?} in {firsts:#?}");
    }
    assert_eq!(firsts.len(), expect.len(), "{firsts:#?}");
}

#[test]
fn a_step_needs_exactly_one_action() {
    let text = GOOD.replace(
        "    - apply: fixtures/rc.yaml\n",
        "    - apply: fixtures/rc.yaml\n      delete: fixtures/rc.yaml\n",
    );
    let errs = errors(&text);
    assert!(
        errs[0].starts_with("s.yaml:16:7: spec.steps[0]: expected exactly one of apply, delete"),
        "{errs:?}"
    );
    let text = GOOD.replace("    - apply: fixtures/rc.yaml\n", "    - name: nothing\n");
    assert!(errors(&text)[0].contains("found 0"));
}

#[test]
fn missing_files_unknown_variables_and_bad_probes_are_errors() {
    let text = GOOD
        .replace("apply: fixtures/rc.yaml", "apply: fixtures/missing.yaml")
        .replace("\"${INGRESS_HTTPS}\"", "\"${NO_SUCH_VARIABLE_XYZ}\"")
        .replace(
            "clientCert: ca-tls }",
            "clientCert: ca-tls, version: \"1.1\" }",
        );
    let errs = errors(&text).join("\n");
    assert!(
        errs.contains("spec.steps[0].apply: cannot read manifest file"),
        "{errs}"
    );
    assert!(
        errs.contains("spec.steps[2]: unknown variable ${NO_SUCH_VARIABLE_XYZ}"),
        "{errs}"
    );
    assert!(
        errs.contains(
            "spec.steps[2].probe.grpcReady.tls.version: expected \"1.2\" or \"1.3\", found `1.1`"
        ),
        "{errs}"
    );
}

#[test]
fn a_known_bug_must_name_an_existing_step() {
    let text = GOOD.replace(
        "    url: https://github.com/kubernetes/ingress-nginx/issues/1718\n",
        "    url: https://github.com/kubernetes/ingress-nginx/issues/1718\n    step: no such step\n",
    );
    let errs = errors(&text).join("\n");
    assert!(
        errs.contains("spec.knownBug.step: no step is named `no such step`"),
        "{errs}"
    );
    let text = GOOD.replace(
        "    url: https://github.com/kubernetes/ingress-nginx/issues/1718\n",
        "    url: https://github.com/kubernetes/ingress-nginx/issues/1718\n    step: client is ready\n",
    );
    let root = project();
    assert!(load(root.path(), &text).is_ok());
}

#[test]
fn inline_manifests_must_be_objects_with_kind() {
    let text = GOOD.replace("          kind: ConfigMap\n", "");
    let errs = errors(&text).join("\n");
    assert!(
        errs.contains("inline manifests document 1: expected an object with apiVersion and kind"),
        "{errs}"
    );
}

#[test]
fn wrong_types_and_install_shapes_are_located() {
    let errs = errors(&GOOD.replace("retries: 3", "retries: many"));
    assert!(errs[0].starts_with("s.yaml:21:16: "), "{errs:?}");
    let errs = errors(&GOOD.replace(
        "    - kuberayOperator: { headClusterIpService: true }\n",
        "    - {}\n",
    ));
    assert!(
        errs[0].contains("spec.install[1]: expected exactly one of ingressNginx"),
        "{errs:?}"
    );
    let errs = errors(&GOOD.replace(
        "\"10001\": \"${NAMESPACE}/rc-head-svc:10001\"",
        "\"443\": \"nope\"",
    ));
    let all = errs.join("\n");
    assert!(
        all.contains("port `443`") && all.contains("expected `namespace/service:port`"),
        "{all}"
    );
}

#[test]
fn load_all_reports_duplicates_and_bad_files_but_keeps_good_ones() {
    let root = project();
    let dir = root.path().join("scenarios");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::write(dir.join("a.yaml"), GOOD).unwrap();
    std::fs::write(dir.join("nested/b.yml"), GOOD).unwrap();
    std::fs::write(dir.join("c.yaml"), "apiVersion: [").unwrap();
    std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
    let loaded = load_all(&[PathBuf::from(&dir)], root.path());
    assert_eq!(loaded.scenarios.len(), 1);
    let errs: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs.iter().any(|e| e.contains("c.yaml:1:")), "{errs:#?}");
    assert!(
        errs.iter()
            .any(|e| e.contains("nested/b.yml") && e.contains("already used by")),
        "{errs:#?}"
    );
}

#[test]
fn non_utf8_and_oversized_files_are_refused_with_a_reason() {
    let root = project();
    let bin = root.path().join("bin.yaml");
    std::fs::write(&bin, b"apiVersion: x\nkind: \xff\xfe\n").unwrap();
    let err = rayconform::scenario::load_file(&bin, root.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bin.yaml:2:7: not UTF-8"), "{err}");
    let big = root.path().join("big.yaml");
    std::fs::write(&big, "#".repeat(2 * 1024 * 1024)).unwrap();
    let err = rayconform::scenario::load_file(&big, root.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("limited to 1048576 bytes"), "{err}");
}

#[test]
fn durations_and_retries_are_bounded_at_load_time_with_a_location() {
    let text = GOOD
        .replace("  timeout: 10m\n", "  timeout: 18446744073709551615s\n")
        .replace("      timeout: 90s\n", "      timeout: 25h\n")
        .replace("retries: 3", "retries: 4294967295");
    let errs = errors(&text);
    let firsts: Vec<&str> = errs.iter().map(|e| e.lines().next().unwrap()).collect();
    for expected in [
        "s.yaml:14:12: spec.timeout: expected a duration of at most 1day, found '18446744073709551615s'",
        "s.yaml:22:16: spec.steps[2].timeout: expected a duration of at most 1day, found '25h'",
        "s.yaml:21:16: spec.steps[2].retries: expected at most 100 retries, found 4294967295",
    ] {
        assert!(
            firsts.contains(&expected),
            "missing {expected:?} in {firsts:#?}"
        );
    }
    let root = project();
    let ok = GOOD.replace("  timeout: 10m\n", "  timeout: 24h\n");
    assert_eq!(
        load(root.path(), &ok).unwrap().timeout,
        Duration::from_secs(24 * 3600)
    );
}

#[test]
fn a_certificate_authority_the_scenario_does_not_generate_is_a_located_error() {
    let text = GOOD.replace(
        "ca: ca-tls, clientCert: ca-tls }",
        "ca: no-such-ca, clientCert: foreign }",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("s.yaml:20:9: spec.steps[2].probe.grpcReady.tls.ca: unknown certificate authority `no-such-ca`: expected one of ca-tls, foreign"),
        "{}",
        errs[0]
    );
    let mtls = GOOD.replace(
        "grpcReady: { address: \"${INGRESS_HTTPS}\", tls: { serverName: localhost, ca: ca-tls, clientCert: ca-tls } }",
        "mtls: { address: \"${INGRESS_HTTPS}\", ca: true }",
    );
    let errs = errors(&mtls);
    assert!(
        errs.iter().any(|e| e.starts_with(
            "s.yaml:20:9: spec.steps[2].probe.mtls.ca: unknown certificate authority `true`"
        )),
        "{errs:#?}"
    );
    let no_certs = GOOD.replace("  certificates: { ca: ca-tls }\n", "");
    let errs = errors(&no_certs);
    assert_eq!(errs.len(), 2, "ca and clientCert: {errs:#?}");
    assert!(
        errs.iter()
            .all(|e| e.contains("this scenario generates no certificates")),
        "{errs:#?}"
    );
}

/// Runs `f` on a thread; fails the test if it takes longer than 10 s.
fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("did not return within 10 s (reading without a cap, or blocked)")
}

#[test]
fn devices_fifos_and_folders_are_refused_without_reading_them() {
    let root = project();
    let fifo = root.path().join("pipe.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // The FIFO first: a reader without the fix blocks there instead of
    // filling memory from /dev/zero.
    let cases = [
        (fifo.clone(), "not a regular file (a FIFO)"),
        (
            PathBuf::from("/dev/zero"),
            "not a regular file (a character device)",
        ),
        (
            root.path().join("fixtures"),
            "not a regular file (a folder)",
        ),
    ];
    for (path, reason) in cases {
        let root_path = root.path().to_path_buf();
        let shown = path.display().to_string();
        let err = within_10s(move || {
            rayconform::scenario::load_file(&path, &root_path)
                .unwrap_err()
                .to_string()
        });
        assert!(err.contains(&shown) && err.contains(reason), "{err}");
    }
    // Manifest files a step names are read the same way.
    let text = GOOD.replace("apply: fixtures/rc.yaml", "apply: /dev/zero");
    let root_path = root.path().to_path_buf();
    let errs = within_10s(move || match load(&root_path, &text) {
        Ok(_) => panic!("/dev/zero is not a manifest"),
        Err(LoadErrors(errs)) => errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
    });
    assert!(
        errs.iter().any(|e| e.contains(
            "spec.steps[0].apply: cannot read manifest file `/dev/zero`: not a regular file"
        )),
        "{errs:#?}"
    );
}

#[test]
fn a_malformed_probe_address_without_variables_is_a_load_error() {
    let text = GOOD.replace("\"${INGRESS_HTTPS}\"", "\"localhost\"");
    let errs = errors(&text);
    assert!(
        errs[0].starts_with("s.yaml:20:9: spec.steps[2].probe.grpcReady.address: expected host:port, found `localhost`"),
        "{errs:#?}"
    );
}

#[test]
fn every_unknown_field_and_wrong_type_in_a_file_is_reported_in_one_pass() {
    let text = GOOD
        .replace(
            "  tags: [ingress-nginx, tls]\n",
            "  tags: [ingress-nginx, tls]\n  colour: blue\n",
        )
        .replace(
            "    - apply: fixtures/rc.yaml\n",
            "    - apply: fixtures/rc.yaml\n      bogus: 1\n",
        )
        .replace("retries: 3", "retries: many")
        .replace("sslPassthrough: true", "sslPassthrough: sometimes")
        .replace(
            "    url: https://github.com",
            "    urll: x\n    url: https://github.com",
        );
    let errs = errors(&text);
    let firsts: Vec<&str> = errs.iter().map(|e| e.lines().next().unwrap()).collect();
    let expect = [
        "s.yaml:7:3: unknown field `colour`, expected one of `name`, `description`, `tags`, `source`",
        "s.yaml:12:39: invalid type: string \"sometimes\", expected a boolean",
        "s.yaml:18:7: unknown field `bogus`",
        "s.yaml:23:16: invalid type: string \"many\", expected u32",
        "s.yaml:33:5: unknown field `urll`",
    ];
    for e in expect {
        assert!(
            firsts.iter().any(|f| f.starts_with(e)),
            "missing {e:?} in {firsts:#?}"
        );
    }
    assert_eq!(firsts.len(), expect.len(), "{firsts:#?}");
    assert!(
        errs.iter().all(|e| e.contains('^')),
        "each with its source line: {errs:#?}"
    );
}

#[test]
fn a_name_used_twice_is_located_at_the_second_name() {
    let root = project();
    let dir = root.path().join("scenarios");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), GOOD).unwrap();
    std::fs::write(dir.join("b.yaml"), GOOD).unwrap();
    let loaded = load_all(&[PathBuf::from(&dir)], root.path());
    let errs: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let expected = format!(
        "{}:4:9: metadata.name: `ray-client-through-passthrough` is already used by {}",
        dir.join("b.yaml").display(),
        dir.join("a.yaml").display()
    );
    assert!(errs[0].starts_with(&expected), "{}", errs[0]);
}
