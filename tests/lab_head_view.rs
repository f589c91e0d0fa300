//! Lean lab heads against real Ray 2.60.0, started without their dashboard
//! and without Ray's monitors, observed through their GCS
//! (`GetAllNodeInfo`): a TLS head (mutual TLS with its own certificate) is
//! up; a plain head is up with no worker, then with the worker that joined
//! and what it offers, then without it once it stopped. Nothing listens on
//! their dashboard ports and no monitor process runs.
//!
//! One test function: heads and worker are stopped by pid before the
//! assertions, so nothing outlives a failing check.

use rayconform::targets::lab::process::head_pool::HeadLease;
use rayconform::targets::lab::process::head_view::{self, HeadView};
use rayconform::targets::lab::process::ray_head::{HeadComponents, RayHead, RayHeadConfig, RayTls};
use rayconform::targets::lab::process::venv::RayVenv;
use rayconform::targets::lab::process::worker::{RayWorker, WorkerShape};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "support/real_ray_turn.rs"]
mod real_ray_turn;
use real_ray_turn::real_ray_turn;

/// Looks until `done` holds or 60 s passed; the last look either way.
async fn look_until(lease: &HeadLease, done: impl Fn(&HeadView) -> bool) -> HeadView {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = head_view::look(lease).await;
        if done(&view) || Instant::now() >= deadline {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Command lines of running processes that mention `needle`.
fn processes_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_without_dashboard_or_monitors_is_observed_through_its_gcs() {
    let _turn = real_ray_turn();
    let project_root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv =
        RayVenv::locate(&project_root).unwrap_or_else(|e| panic!("{e} (run scripts/setup first)"));
    let work = tempfile::tempdir().unwrap();
    let certs = rayconform::tls::generate(&work.path().join("certs"), "ca-tls", &[]).unwrap();
    let a = certs.get("ca-tls").unwrap();
    let tls = RayTls {
        server_cert: a.server_cert.clone(),
        server_key: a.server_key.clone(),
        ca_cert: a.ca_cert.clone(),
    };
    let start = |tls: Option<RayTls>, dir: &str| {
        RayHead::start(
            RayHeadConfig {
                venv: venv.clone(),
                work_dir: work.path().join(dir),
                tls,
                num_cpus: 1,
                components: HeadComponents::lab(false),
            },
            Duration::from_secs(120),
        )
    };
    let lease_of = |head: &RayHead, tls: Option<RayTls>| HeadLease {
        id: 1,
        ports: head.ports,
        pid: head.pid(),
        log_dir: head.log_dir().to_path_buf(),
        ray_log_dir: head.ray_log_dir(),
        reused: false,
        startup_time: head.startup_time,
        tls,
        dashboard: false,
    };

    let mut tls_head = start(Some(tls.clone()), "tls-head")
        .await
        .unwrap_or_else(|e| panic!("TLS Ray head did not start: {e}"));
    let tls_view = look_until(&lease_of(&tls_head, Some(tls.clone())), |v| {
        v.down.is_none()
    })
    .await;
    let tls_processes = processes_mentioning(tls_head.temp_dir());
    let tls_dashboard = std::net::TcpStream::connect(("127.0.0.1", tls_head.ports.dashboard));
    tls_head.stop().await;

    let mut head = start(None, "head")
        .await
        .unwrap_or_else(|e| panic!("Ray head did not start: {e}"));
    let lease = lease_of(&head, None);
    let processes = processes_mentioning(head.temp_dir());
    let dashboard_port_open = std::net::TcpStream::connect(("127.0.0.1", head.ports.dashboard));

    let alone = look_until(&lease, |v| v.down.is_none()).await;
    let mut worker = RayWorker::spawn_shaped(
        &venv,
        head.ports.gcs,
        None,
        &work.path().join("worker"),
        "ray-worker-0",
        &WorkerShape {
            group: "small".into(),
            num_cpus: 2,
            resources: None,
        },
    )
    .expect("worker spawned");
    let started = worker
        .wait_started(Instant::now() + Duration::from_secs(120))
        .await;
    let joined = look_until(&lease, |v| v.alive_workers.len() == 1).await;
    worker.stop().await;
    let left = look_until(&lease, |v| v.alive_workers.is_empty()).await;
    head.stop().await;

    started.unwrap_or_else(|e| panic!("the worker did not start: {e}"));
    assert_eq!(tls_view.down, None, "the TLS head is up: {tls_view:?}");
    assert!(tls_dashboard.is_err(), "no dashboard on the TLS head");
    assert_eq!(alone.down, None, "the head is up: {alone:?}");
    assert!(alone.alive_workers.is_empty(), "{alone:?}");
    assert_eq!(joined.down, None, "{joined:?}");
    assert_eq!(joined.alive_workers.len(), 1, "{joined:?}");
    assert_eq!(joined.alive_workers[0].get("CPU"), Some(&2.0), "{joined:?}");
    assert_eq!(left.down, None, "{left:?}");
    assert!(
        left.alive_workers.is_empty(),
        "a stopped worker is listed dead, not alive: {left:?}"
    );
    assert!(
        dashboard_port_open.is_err(),
        "nothing listens on the dashboard port of a head without a dashboard"
    );
    for processes in [&processes, &tls_processes] {
        for monitor in ["autoscaler/_private/monitor.py", "log_monitor.py"] {
            assert!(
                !processes.iter().any(|p| p.contains(monitor)),
                "{monitor} runs: {processes:#?}"
            );
        }
        assert!(
            processes.iter().any(|p| p.contains("gcs_server")),
            "the head's processes were found by its temp dir: {processes:#?}"
        );
    }
}

/// The same look at a head that is gone says why.
#[tokio::test]
async fn a_head_that_does_not_answer_is_down_with_the_reason() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let lease = HeadLease {
        id: 1,
        ports: rayconform::targets::lab::process::ray_head::RayPorts {
            gcs: port,
            client: port,
            dashboard: port,
        },
        pid: None,
        log_dir: PathBuf::new(),
        ray_log_dir: PathBuf::new(),
        reused: false,
        startup_time: Duration::ZERO,
        tls: None,
        dashboard: false,
    };
    let view = head_view::look(&lease).await;
    let why = view.down.expect("down");
    assert!(
        why.contains("its GCS does not list its nodes") && why.contains("TCP"),
        "{why}"
    );
}
