//! Every init container in `fixtures/`, run locally the way a kubelet runs
//! it: as a non-root user, with Secret volumes read-only and filled from a
//! CA generated like the run's, emptyDir volumes writable, and `POD_IP`
//! from the downward API. Then each Ray container with `RAY_USE_TLS=1` is
//! checked against what it will read: its certificate verifies against the
//! run's CA for every `serverName` the scenarios applying the fixture probe
//! with (and for the pod IP Ray itself uses), its key matches, and its CA
//! file is the run's CA.
//!
//! The container's mount paths are rewritten to local folders in the
//! script text (no mount namespace needed). As root, the script runs under
//! `setpriv` as uid/gid 65534; otherwise as the current (non-root) user.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const POD_IP: &str = "10.244.0.17";
const NAMESPACE: &str = "rc-fixture-check";
const NON_ROOT: &str = "65534";

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn variables() -> BTreeMap<String, String> {
    [
        ("NAMESPACE", NAMESPACE),
        ("RUN_ID", "fixture-check"),
        ("SCENARIO", "fixture-check"),
        ("CLUSTER_NAME", "rayconform-check"),
        ("INGRESS_HOST", "localhost"),
        ("INGRESS_HTTP", "localhost:80"),
        ("INGRESS_HTTPS", "localhost:443"),
        ("INGRESS_NODE_IP", "172.18.0.2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The YAML documents of `path`, templates filled when `render`.
fn yaml_docs(path: &Path, render: bool) -> Vec<Value> {
    let mut text = std::fs::read_to_string(path).unwrap();
    if render {
        text = rayconform::scenario::template::render(&text, &variables())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let mut docs: Vec<Value> = serde_saphyr::from_str_multiple(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    docs.retain(|d| !d.is_null());
    docs
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(project().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

/// Every pod spec (an object with `containers`) inside `value`, with a path.
fn pod_specs<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(map) => {
            if map.get("containers").is_some_and(Value::is_array) {
                out.push((at.clone(), value));
            }
            for (k, v) in map {
                pod_specs(v, format!("{at}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pod_specs(v, format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn strings<'a>(value: &'a Value, key: &str, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v.as_str() {
                    Some(s) if k == key => out.push(s),
                    _ => strings(v, key, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, key, out)),
        _ => {}
    }
}

fn mentions(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => s == text,
        Value::Object(map) => map.values().any(|v| mentions(v, text)),
        Value::Array(items) => items.iter().any(|v| mentions(v, text)),
        _ => false,
    }
}

/// The `serverName`s of every scenario that applies `fixture` (relative
/// path as scenarios write it).
fn server_names_probed_through(fixture: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for path in yaml_files("scenarios") {
        for doc in yaml_docs(&path, false) {
            if mentions(&doc["spec"]["steps"], fixture) {
                let mut found = Vec::new();
                strings(&doc["spec"], "serverName", &mut found);
                names.extend(found.into_iter().map(|name| {
                    rayconform::scenario::template::render(name, &variables())
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                }));
            }
        }
    }
    names
}

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Runs `argv` as a non-root user with exactly `env` (plus PATH and HOME).
fn run_unprivileged(argv: &[String], env: &BTreeMap<String, String>, home: &Path) -> Output {
    let mut command = if running_as_root() {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={NON_ROOT}"),
            &format!("--regid={NON_ROOT}"),
            "--clear-groups",
            "--",
        ]);
        c.args(argv);
        c
    } else {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    command
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", home)
        .envs(env)
        .current_dir(home)
        .output()
        .unwrap_or_else(|e| panic!("running {argv:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A pod's volumes as local folders, and the run CA behind each Secret.
struct Volumes {
    dirs: BTreeMap<String, PathBuf>,
    secrets: BTreeMap<String, rayconform::tls::Authority>,
}

fn materialize_volumes(spec: &Value, base: &Path, where_: &str) -> Volumes {
    let mut volumes = Volumes {
        dirs: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    for volume in spec["volumes"].as_array().into_iter().flatten() {
        let name = volume["name"].as_str().expect("volume name");
        let dir = base.join(format!("volume-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        if volume.get("emptyDir").is_some() {
            // What a kubelet gives an emptyDir.
            chmod(&dir, 0o777);
        } else if let Some(secret) = volume.get("secret") {
            assert!(
                secret.get("items").is_none(),
                "{where_}: Secret volume {name} remaps keys; teach this test `items`"
            );
            let secret_name = secret["secretName"].as_str().expect("secretName");
            // The only Secrets fixtures mount are run CAs (see
            // `ca_secret` in src/targets/cluster.rs): ca.crt and ca.key.
            let set = rayconform::tls::generate(&base.join(format!("ca-{name}")), secret_name, &[])
                .unwrap();
            let authority = set.get(secret_name).unwrap().clone();
            for (file, from) in [
                ("ca.crt", &authority.ca_cert),
                ("ca.key", &authority.ca_key),
            ] {
                std::fs::copy(from, dir.join(file)).unwrap();
                chmod(&dir.join(file), 0o444);
            }
            // Secret volumes are read-only mounts.
            chmod(&dir, 0o555);
            volumes.secrets.insert(name.to_string(), authority);
        } else {
            panic!(
                "{where_}: volume {name} is neither emptyDir nor secret; teach this test its type"
            );
        }
        volumes.dirs.insert(name.to_string(), dir);
    }
    volumes
}

/// `(mountPath, local folder)`, longest mount path first.
fn mounts(container: &Value, volumes: &Volumes, where_: &str) -> Vec<(String, PathBuf)> {
    let mut mounts: Vec<(String, PathBuf)> = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["name"].as_str().unwrap();
            let dir = volumes
                .dirs
                .get(name)
                .unwrap_or_else(|| panic!("{where_}: mount of undeclared volume {name}"));
            (m["mountPath"].as_str().unwrap().to_string(), dir.clone())
        })
        .collect();
    mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    mounts
}

fn rewrite(text: &str, mounts: &[(String, PathBuf)]) -> String {
    mounts.iter().fold(text.to_string(), |t, (path, dir)| {
        t.replace(path.as_str(), &dir.display().to_string())
    })
}

fn container_env(container: &Value, where_: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = if let Some(v) = e["value"].as_str() {
            v.to_string()
        } else if e["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP" {
            POD_IP.to_string()
        } else {
            panic!("{where_}: env {name} has a source this test does not provide");
        };
        env.insert(name, value);
    }
    env
}

/// `openssl verify` of `cert` against `ca` for one name (as the non-root
/// user, which also proves the files are readable by it).
fn verify(cert: &Path, ca: &Path, purpose: &str, name: &str, home: &Path) -> Output {
    let check = if name.parse::<std::net::IpAddr>().is_ok() {
        "-verify_ip"
    } else {
        "-verify_hostname"
    };
    let argv: Vec<String> = [
        "openssl",
        "verify",
        "-CAfile",
        &ca.display().to_string(),
        "-purpose",
        purpose,
        check,
        name,
        &cert.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    run_unprivileged(&argv, &BTreeMap::new(), home)
}

fn public_key(argv: &[&str], home: &Path) -> String {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let out = run_unprivileged(&argv, &BTreeMap::new(), home);
    assert!(out.status.success(), "{argv:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Checks a Ray TLS container's files after the init containers ran;
/// returns how many names were verified.
fn check_ray_tls(
    container: &Value,
    volumes: &Volumes,
    names: &BTreeSet<String>,
    home: &Path,
    where_: &str,
) -> usize {
    let env = container_env(container, where_);
    let mounts = mounts(container, volumes, where_);
    let file = |var: &str| {
        let path = env
            .get(var)
            .unwrap_or_else(|| panic!("{where_}: RAY_USE_TLS=1 without {var}"));
        let local = PathBuf::from(rewrite(path, &mounts));
        assert!(
            local.is_file(),
            "{where_}: {var}={path} does not exist after the init containers ran"
        );
        local
    };
    let (cert, key, ca) = (
        file("RAY_TLS_SERVER_CERT"),
        file("RAY_TLS_SERVER_KEY"),
        file("RAY_TLS_CA_CERT"),
    );
    let secrets: Vec<(&String, &rayconform::tls::Authority)> = volumes.secrets.iter().collect();
    assert_eq!(secrets.len(), 1, "{where_}: expected one CA Secret volume");
    let (volume, authority) = secrets[0];
    assert_eq!(
        std::fs::read(&ca).unwrap(),
        std::fs::read(&authority.ca_cert).unwrap(),
        "{where_}: RAY_TLS_CA_CERT is not the run's CA"
    );
    // The run CA as mounted (readable by the unprivileged user).
    let run_ca = &volumes.dirs[volume].join("ca.crt");
    let mut verified = 0;
    // The probes' names, and the pod IP Ray's own processes dial.
    for name in names.iter().map(String::as_str).chain([POD_IP]) {
        // Ray presents its server certificate as its client one too.
        for purpose in ["sslserver", "sslclient"] {
            let out = verify(&cert, run_ca, purpose, name, home);
            assert!(
                out.status.success() && String::from_utf8_lossy(&out.stdout).contains(": OK"),
                "{where_}: the certificate does not verify against the run CA as {purpose} for {name}: {}",
                text(&out)
            );
        }
        verified += 1;
    }
    let cert_key = public_key(
        &[
            "openssl",
            "x509",
            "-noout",
            "-pubkey",
            "-in",
            &cert.display().to_string(),
        ],
        home,
    );
    let key_key = public_key(
        &[
            "openssl",
            "pkey",
            "-pubout",
            "-in",
            &key.display().to_string(),
        ],
        home,
    );
    assert_eq!(cert_key, key_key, "{where_}: key and certificate differ");
    verified
}

#[test]
fn every_fixture_init_container_succeeds_as_non_root_and_yields_the_needed_certificate() {
    let work = tempfile::tempdir().unwrap();
    // Reachable by the unprivileged user.
    chmod(work.path(), 0o755);
    let mut init_containers_run = 0;
    let mut names_verified = 0;
    for path in yaml_files("fixtures") {
        let relative = format!("fixtures/{}", path.file_name().unwrap().to_string_lossy());
        for (d, doc) in yaml_docs(&path, true).iter().enumerate() {
            let mut specs = Vec::new();
            pod_specs(doc, String::new(), &mut specs);
            for (s, (at, spec)) in specs.into_iter().enumerate() {
                let Some(inits) = spec["initContainers"].as_array() else {
                    continue;
                };
                let where_ = format!("{relative} (document {d}){at}");
                let base = work.path().join(format!(
                    "{}-{d}-{s}",
                    path.file_stem().unwrap().to_string_lossy()
                ));
                std::fs::create_dir_all(&base).unwrap();
                chmod(&base, 0o755);
                let home = base.join("home");
                std::fs::create_dir_all(&home).unwrap();
                chmod(&home, 0o777);
                let volumes = materialize_volumes(spec, &base, &where_);
                for init in inits {
                    let name = init["name"].as_str().unwrap_or("?");
                    let mounts = mounts(init, &volumes, &where_);
                    let argv: Vec<String> = init["command"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain(init["args"].as_array().into_iter().flatten())
                        .map(|a| rewrite(a.as_str().expect("string argv"), &mounts))
                        .collect();
                    assert!(
                        !argv.is_empty(),
                        "{where_}: init container {name} relies on the image entrypoint"
                    );
                    let out = run_unprivileged(&argv, &container_env(init, &where_), &home);
                    assert!(
                        out.status.success(),
                        "{where_}: init container {name} fails as a non-root user with a read-only Secret: {}",
                        text(&out)
                    );
                    init_containers_run += 1;
                }
                for dir_name in volumes.secrets.keys() {
                    let mut left: Vec<String> = std::fs::read_dir(&volumes.dirs[dir_name])
                        .unwrap()
                        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                        .collect();
                    left.sort();
                    assert_eq!(
                        left,
                        ["ca.crt", "ca.key"],
                        "{where_}: Secret volume changed"
                    );
                }
                let names = server_names_probed_through(&relative);
                for container in spec["containers"].as_array().unwrap() {
                    if container_env(container, &where_)
                        .get("RAY_USE_TLS")
                        .map(String::as_str)
                        == Some("1")
                    {
                        assert!(
                            !names.is_empty(),
                            "{where_}: no scenario probes through {relative} with a serverName"
                        );
                        names_verified +=
                            check_ray_tls(container, &volumes, &names, &home, &where_);
                    }
                }
            }
        }
    }
    assert!(init_containers_run > 0, "no fixture has an init container");
    assert!(names_verified > 0, "no Ray TLS certificate was checked");
}
