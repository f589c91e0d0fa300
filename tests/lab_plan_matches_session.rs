//! The nginx config `rayconform plan` shows for a lab scenario is the one a
//! lab session renders once the scenario's manifests are applied: both come
//! from the one builder in `lab/model/config.rs`. Checked for every scenario
//! in scenarios/ that runs on lab, with a real session (real nginx) whose
//! Ray heads and workers are a fake `ray` that opens the head's ports and
//! says it blocks, so no real Ray is started.

use rayconform::scenario::{Action, TargetKind, load_file, parse_manifests, template};
use rayconform::targets::lab::LabTarget;
use rayconform::targets::lab::model::config::{IngressPorts, tcp_service_ports};
use rayconform::targets::lab::target::PLANNED_CONFIG_SECTION;
use rayconform::targets::{ScenarioRun, Target};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Ray venv whose `ray start` opens the head's dashboard (answering
/// `/api/version`) and client ports, prints the `--block` line and waits;
/// a worker (no `--head`) only prints the line and waits.
fn fake_ray_venv(dir: &Path) -> PathBuf {
    let venv = dir.join("ray-venv");
    let bin = venv.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = r#"#!/usr/bin/env python3
import socket, sys, threading
flags = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:] if "=" in a)
def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(port)))
    s.listen(16)
    return s
if "--head" in sys.argv:
    dashboard = listen(flags["dashboard-port"])
    client = listen(flags["ray-client-server-port"])
    def serve():
        while True:
            c, _ = dashboard.accept()
            c.recv(4096)
            c.sendall(b'HTTP/1.0 200 OK\r\n\r\n{"ray_version": "fake"}')
            c.close()
    threading.Thread(target=serve, daemon=True).start()
print("This command will now block forever until terminated by a signal.", flush=True)
threading.Event().wait()
"#;
    for (name, text) in [("ray", script), ("python", "#!/bin/sh\nexit 1\n")] {
        let path = bin.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    venv
}

/// `text` with every `127.0.0.1:<port>` named by its role (`<http>`,
/// `<tcp 6379>`, `<client 0>`: the client port of the first head, ...) and
/// the ports of no known role by order of first appearance (`<p1>`, ...),
/// `ssl_certificate*` files hidden and `namespace` written as the plan
/// writes it: equal results mean equal configs up to the ports chosen at
/// run time.
fn normalized(text: &str, namespace: &str, roles: &BTreeMap<u16, String>) -> String {
    let text = text.replace(namespace, "<NAMESPACE>");
    let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("ssl_certificate") {
            let directive = trimmed.split_whitespace().next().unwrap();
            out.push_str(&format!("{directive} <file>;\n"));
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("127.0.0.1:") {
            let (before, after) = rest.split_at(at + "127.0.0.1:".len());
            out.push_str(before);
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                rest = after;
                continue;
            }
            match roles.get(&digits.parse::<u16>().unwrap()) {
                Some(role) => out.push_str(&format!("<{role}>")),
                None => {
                    let next = unknown.len() + 1;
                    let n = *unknown.entry(digits.clone()).or_insert(next);
                    out.push_str(&format!("<p{n}>"));
                }
            }
            rest = &after[digits.len()..];
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

/// The digits right after `marker` in `text`.
fn port_after(text: &str, marker: &str) -> Option<u16> {
    let at = text.find(marker)? + marker.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The roles of the plan's example ports: http 18080, https 18443, the
/// tcp-services from 19000, heads from 20000 in steps of 10 (gcs, client,
/// dashboard).
fn planned_roles(
    scenario: &rayconform::scenario::Scenario,
    planned: &str,
) -> BTreeMap<u16, String> {
    let ports = IngressPorts::example(&tcp_service_ports(&scenario.install));
    let mut roles: BTreeMap<u16, String> = [
        (ports.http, "http".to_string()),
        (ports.https, "https".to_string()),
    ]
    .into_iter()
    .chain(ports.tcp.iter().map(|(p, l)| (*l, format!("tcp {p}"))))
    .collect();
    let mut bases: Vec<u16> = Vec::new();
    let mut rest = planned;
    while let Some(at) = rest.find("127.0.0.1:") {
        rest = &rest[at + "127.0.0.1:".len()..];
        if let Some(port) = port_after(rest, "").filter(|p| *p >= 20000) {
            let base = port - (port - 20000) % 10;
            if !bases.contains(&base) {
                bases.push(base);
            }
        }
    }
    bases.sort();
    for (i, base) in bases.iter().enumerate() {
        for (offset, name) in ["gcs", "client", "dashboard"].into_iter().enumerate() {
            roles.insert(base + offset as u16, format!("{name} {i}"));
        }
    }
    roles
}

/// The roles of a session's live ports, read from its `how_to_reach`.
fn session_roles(how_to_reach: &str) -> BTreeMap<u16, String> {
    let mut roles = BTreeMap::new();
    let mut heads = 0;
    for line in how_to_reach.lines() {
        if line.starts_with("lab nginx pid") {
            roles.insert(
                port_after(line, "http localhost:").unwrap(),
                "http".to_string(),
            );
            roles.insert(
                port_after(line, "https localhost:").unwrap(),
                "https".to_string(),
            );
            for entry in line.split(", tcp ").skip(1) {
                let (port, local) = entry.split_once(" → localhost:").unwrap();
                roles.insert(port_after(local, "").unwrap(), format!("tcp {port}"));
            }
        } else if line.contains(": Ray head pid") {
            for (marker, name) in [
                ("gcs 127.0.0.1:", "gcs"),
                ("client 127.0.0.1:", "client"),
                ("dashboard http://127.0.0.1:", "dashboard"),
            ] {
                roles.insert(port_after(line, marker).unwrap(), format!("{name} {heads}"));
            }
            heads += 1;
        }
    }
    roles
}

/// The plan's nginx.conf section (its lines are printed indented; the
/// section itself is the config text).
fn planned_config(target: &LabTarget, scenario: &rayconform::scenario::Scenario) -> String {
    let plan = target.plan(scenario, &root()).unwrap();
    plan.sections
        .into_iter()
        .find(|(title, _)| title == PLANNED_CONFIG_SECTION)
        .map(|(_, text)| text)
        .expect("the plan has an nginx.conf section")
}

/// Opens a session, applies every manifest of the scenario's apply steps
/// (what the plan's config shows: after every apply), returns its config
/// and the roles of its live ports.
async fn session_config(
    target: &LabTarget,
    scenario: &Arc<rayconform::scenario::Scenario>,
    fake_root: &Path,
    namespace: &str,
    dir: &Path,
) -> (String, BTreeMap<u16, String>) {
    let certificates = scenario.certificates.as_ref().map(|spec| {
        Arc::new(
            rayconform::tls::generate(&dir.join("certs"), &spec.ca, &spec.server_names).unwrap(),
        )
    });
    let run = ScenarioRun {
        scenario: scenario.clone(),
        run_id: "plan-vs-session".into(),
        namespace: namespace.into(),
        work_dir: dir.join("work"),
        artifacts_dir: dir.join("artifacts"),
        project_root: fake_root.to_path_buf(),
        certificates,
        keep: false,
        progress: Arc::new(|_| {}),
    };
    let mut session = target.open(&run).await.expect("session opens");
    let variables = session.variables();
    for step in &scenario.steps {
        let Action::Apply(source) = &step.action else {
            continue;
        };
        let text = match (&source.file, &source.inline) {
            (Some(file), _) => std::fs::read_to_string(root().join(file)).unwrap(),
            (None, Some(inline)) => inline.clone(),
            (None, None) => continue,
        };
        let mut vars = variables.clone();
        for name in template::references(&text).unwrap() {
            vars.entry(name.clone()).or_insert(format!("<{name}>"));
        }
        let manifests = parse_manifests(&template::render(&text, &vars).unwrap()).unwrap();
        session
            .apply(&manifests)
            .await
            .unwrap_or_else(|e| panic!("{}: step `{}`: {e}", scenario.name, step.name));
    }
    let diagnostics = dir.join("diagnostics");
    session.collect_diagnostics(&diagnostics).await;
    let how_to_reach = session.how_to_reach();
    let problems = session.close(false).await;
    assert!(problems.is_empty(), "{problems:?}");
    (
        std::fs::read_to_string(diagnostics.join("nginx.conf")).unwrap(),
        session_roles(&how_to_reach),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planned_nginx_config_is_the_one_the_session_renders() {
    let fake = tempfile::tempdir().unwrap();
    let venv = fake_ray_venv(fake.path());
    // The only test in this binary that starts a session: no other reads
    // the environment.
    unsafe { std::env::set_var("RAYCONFORM_RAY_VENV", &venv) };
    let target = LabTarget::new(fake.path().to_path_buf());
    if let Some(reason) = target.unavailable_reason() {
        panic!("the lab needs nginx here: {reason}");
    }

    let mut compared = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let scenario = Arc::new(load_file(&file, &root()).unwrap());
        if !scenario.targets.contains(&TargetKind::Lab)
            || target.unsupported_reason(&scenario, &root()).is_some()
        {
            continue;
        }
        let planned = planned_config(&target, &scenario);
        let dir = tempfile::tempdir().unwrap();
        let namespace = "nsplanvs";
        let (rendered, live_roles) =
            session_config(&target, &scenario, fake.path(), namespace, dir.path()).await;
        assert!(
            rendered.contains("server {"),
            "{}: the session rendered no config:\n{rendered}",
            scenario.name
        );
        let planned_n = normalized(&planned, "<NAMESPACE>", &planned_roles(&scenario, &planned));
        let rendered_n = normalized(&rendered, namespace, &live_roles);
        assert_eq!(
            planned_n, rendered_n,
            "{}: the plan shows another nginx config than the session renders",
            scenario.name
        );
        compared.push(scenario.name.clone());
    }
    target.shutdown(false).await;
    assert!(
        compared.len() >= 5,
        "expected most scenarios to run on lab, compared only {compared:?}"
    );
    eprintln!("compared plan and session for {compared:?}");
}

#[test]
fn ports_are_named_by_role_and_namespaces_unified() {
    let roles_a: BTreeMap<u16, String> =
        [(18080, "http".to_string()), (20001, "client 0".to_string())].into();
    let roles_b: BTreeMap<u16, String> =
        [(4001, "http".to_string()), (4002, "client 0".to_string())].into();
    let a =
        "listen 127.0.0.1:18080;\nproxy_pass 127.0.0.1:20001; # ns1/x\nlisten 127.0.0.1:18442;\n";
    let b = "listen 127.0.0.1:4001;\nproxy_pass 127.0.0.1:4002; # <NAMESPACE>/x\nlisten 127.0.0.1:5555;\n";
    assert_eq!(
        normalized(a, "ns1", &roles_a),
        normalized(b, "<NAMESPACE>", &roles_b)
    );
    // A route to another role's port than the plan's is a difference.
    let c = "listen 127.0.0.1:4001;\nproxy_pass 127.0.0.1:4001; # <NAMESPACE>/x\nlisten 127.0.0.1:5555;\n";
    assert_ne!(
        normalized(a, "ns1", &roles_a),
        normalized(c, "<NAMESPACE>", &roles_b)
    );
    let reach = "lab nginx pid 7: http localhost:4001, https localhost:4003, tcp 6379 → localhost:4004 (config x)\n\
                 RayCluster ns/rc: Ray head pid 8 (gcs 127.0.0.1:4005, client 127.0.0.1:4002, dashboard http://127.0.0.1:4006), worker pids []";
    let roles = session_roles(reach);
    assert_eq!(roles[&4001], "http");
    assert_eq!(roles[&4003], "https");
    assert_eq!(roles[&4004], "tcp 6379");
    assert_eq!(roles[&4002], "client 0");
    assert_eq!(roles[&4006], "dashboard 0");
}
