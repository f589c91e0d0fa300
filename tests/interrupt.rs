//! A real SIGINT to a running `rayconform run`: the run stops, unwinds, writes
//! its report marked as interrupted, and leaves no process behind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/procs.rs"]
mod procs;
use procs::alive;

#[path = "support/real_ray_turn.rs"]
mod real_ray_turn;
use real_ray_turn::real_ray_turn;

/// pid → parent pid for every live process.
fn process_parents() -> BTreeMap<u32, u32> {
    procs::live_processes()
        .into_iter()
        .map(|p| (p.pid, p.ppid))
        .collect()
}

fn descendants(root: u32) -> BTreeSet<u32> {
    let parents = process_parents();
    let mut found = BTreeSet::new();
    let mut changed = true;
    while changed {
        changed = false;
        for (pid, ppid) in &parents {
            if (*ppid == root || found.contains(ppid)) && found.insert(*pid) {
                changed = true;
            }
        }
    }
    found
}

#[test]
fn sigint_stops_the_run_writes_the_report_and_leaves_no_process() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("step-started");
    let scenario = dir.path().join("interrupt.yaml");
    std::fs::write(
        &scenario,
        format!(
            "apiVersion: rayconform.dev/v1alpha1
kind: Scenario
metadata:
  name: interrupt-me
spec:
  targets: [lab]
  steps:
    - apply: fixtures/raycluster-basic.yaml
    - wait: {{ rayCluster: raycluster-basic, condition: HeadPodReady, timeout: 2m }}
    - name: long step
      command: {{ argv: [sh, -c, 'touch {marker}; exec sleep 300'] }}
      timeout: 10m
    - name: never started
      command: {{ argv: ['true'] }}
",
            marker = marker.display()
        ),
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rayconform"))
        .arg("--root")
        .arg(root)
        .args(["run", "--target", "lab", "--junit"])
        .arg(&junit)
        .arg(&scenario)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();

    let started = Instant::now();
    while !marker.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "rayconform exited early ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the long step never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = descendants(pid);
    assert!(
        before.len() >= 3,
        "a Ray head, nginx and the step run under rayconform: {before:?}"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "rayconform did not exit within 60 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        status.code(),
        Some(130),
        "exit code after an interrupt; stderr:\n{stderr}"
    );
    assert!(stderr.contains("SIGINT: stopping"), "{stderr}");

    let xml = std::fs::read_to_string(&junit).expect("the report is written after an interrupt");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase"))
        .expect("a testcase");
    let error = case
        .children()
        .find(|n| n.has_tag_name("error"))
        .expect("an interrupted scenario is an error");
    assert_eq!(error.attribute("type"), Some("interrupted"), "{xml}");
    let log = case
        .children()
        .find(|n| n.has_tag_name("system-out"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        log.contains("never started <command> not run") && log.contains("interrupted"),
        "{log}"
    );
    assert!(doc.descendants().any(
        |n| n.attribute("name") == Some("interrupted") && n.attribute("value") == Some("true")
    ));

    // The HTML report too, saying the run was interrupted.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let html = stdout
        .lines()
        .find_map(|l| l.strip_prefix("HTML: "))
        .unwrap_or_else(|| panic!("no HTML report after an interrupt:\n{stdout}"));
    let page = std::fs::read_to_string(root.join(html)).unwrap();
    assert!(
        page.contains("This run was interrupted") && page.contains("interrupt-me"),
        "{page}"
    );

    let grace = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<u32> = before.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < grace,
            "processes left behind after the interrupt: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_second_sigint_still_removes_the_work_dir_with_the_private_keys_and_names_it() {
    use std::os::unix::fs::PermissionsExt;
    // It starts a real Ray head (whose scratch dirs the second signal
    // removes too).
    let _turn = real_ray_turn();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    // The run's temporary folders go here, so this test sees only its own.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let marker = dir.path().join("step-started");
    let finally_marker = dir.path().join("finally-started");
    let scenario = dir.path().join("double-interrupt.yaml");
    std::fs::write(
        &scenario,
        format!(
            "apiVersion: rayconform.dev/v1alpha1
kind: Scenario
metadata:
  name: interrupt-twice
spec:
  targets: [lab]
  certificates: {{ ca: ca-tls }}
  steps:
    - apply: fixtures/raycluster-basic.yaml
    - name: long step
      command: {{ argv: [sh, -c, 'touch {marker}; exec sleep 300'] }}
      timeout: 10m
  finally:
    - name: slow finally
      command: {{ argv: [sh, -c, 'touch {finally_marker}; exec sleep 300'] }}
      timeout: 10m
",
            marker = marker.display(),
            finally_marker = finally_marker.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rayconform"))
        .arg("--root")
        .arg(root)
        .args(["run", "--target", "lab", "--junit"])
        .arg(dir.path().join("junit.xml"))
        .arg(&scenario)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let wait_for = |path: &Path, child: &mut std::process::Child| {
        let started = Instant::now();
        while !path.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("rayconform exited early ({status})");
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{} never appeared",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&marker, &mut child);
    let private_dir = |prefix: &str| {
        let found: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with(prefix)
                        && !n.starts_with("rayconform-lab-")
                        && (prefix == "rayconform-certs-" || !n.starts_with("rayconform-certs-"))
                })
            })
            .collect();
        assert_eq!(found.len(), 1, "{prefix}: {found:?}");
        let dir = found[0].clone();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is private", dir.display());
        dir
    };
    let work_dir = private_dir("rayconform-");
    // The run's certificates (shared by scenarios asking for the same CA).
    let certs_dir = private_dir("rayconform-certs-");
    let keys: Vec<_> = files_under(&certs_dir)
        .into_iter()
        .filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains("PRIVATE KEY")))
        .collect();
    assert!(
        !keys.is_empty(),
        "the private keys live in the run's certificates dir"
    );

    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    wait_for(&finally_marker, &mut child);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit after the second SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    for dir in [&work_dir, &certs_dir] {
        assert!(
            stderr.contains(&format!("work dir removed {}", dir.display())),
            "the second signal names what it removed: {stderr}"
        );
        assert!(!dir.exists(), "{} is left behind", dir.display());
    }
    // The lab's head folder (under TMPDIR) and the head's Ray temp dir
    // (short, under /tmp) are named and gone as well.
    let scratch: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("scratch dir removed "))
        .collect();
    assert!(
        scratch
            .iter()
            .any(|d| d.starts_with(&format!("{}/rayconform-lab-", tmp.display()))),
        "the lab's head folder: {stderr}"
    );
    assert!(
        scratch.iter().any(|d| d.starts_with("/tmp/rc-")),
        "the Ray head's temp dir: {stderr}"
    );
    for dir in &scratch {
        assert!(!Path::new(dir).exists(), "{dir} is left behind");
    }
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}
