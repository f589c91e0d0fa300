//! Lean lab heads against real Ray 2.60.0, started without their dashboard
//! and without Ray's monitors, observed through their GCS
//! (`GetAllNodeInfo`): a TLS head (mutual TLS with its own certificate) is
//! up; a plain head is up with no worker, then three workers of three
//! RayClusters join it side by side and each RayCluster's view holds its
//! own labelled worker and what it offers, then one RayCluster's worker
//! stops and only its view loses it. Nothing listens on their dashboard ports and no
//! monitor process runs.
//!
//! One test function: heads and workers are stopped by pid before the
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
async fn look_until(
    lease: &HeadLease,
    raycluster: &str,
    done: impl Fn(&HeadView) -> bool,
) -> HeadView {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = head_view::look(lease, raycluster).await;
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
    let tls_view = look_until(&lease_of(&tls_head, Some(tls.clone())), "1.a", |v| {
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

    let alone = look_until(&lease, "1.a", |v| v.down.is_none()).await;
    let join = |raycluster: &str, num_cpus: u32| {
        RayWorker::spawn_shaped(
            &venv,
            head.ports.gcs,
            &work.path().join("worker"),
            &format!("ray-worker-{raycluster}"),
            &WorkerShape {
                group: "small".into(),
                num_cpus,
                resources: None,
                raycluster: Some(raycluster.to_string()),
            },
        )
        .expect("worker spawned")
    };
    // Three side by side (each node has a Ray temp dir of its own; in one
    // shared dir, three nodes starting at once raced for socket names and
    // one failed to bind, every time it was tried).
    let mut worker_a = join("1.a", 2);
    let mut worker_b = join("2.b", 1);
    let mut worker_c = join("3.c", 1);
    let deadline = Instant::now() + Duration::from_secs(120);
    let (started_a, started_b, started_c) = tokio::join!(
        worker_a.wait_started(deadline),
        worker_b.wait_started(deadline),
        worker_c.wait_started(deadline)
    );
    let joined_c = look_until(&lease, "3.c", |v| v.alive_workers.len() == 1).await;
    worker_c.stop().await;
    let joined_a = look_until(&lease, "1.a", |v| v.alive_workers.len() == 1).await;
    let joined_b = look_until(&lease, "2.b", |v| v.alive_workers.len() == 1).await;
    worker_a.stop().await;
    let left_a = look_until(&lease, "1.a", |v| v.alive_workers.is_empty()).await;
    let still_b = head_view::look(&lease, "2.b").await;
    worker_b.stop().await;
    head.stop().await;

    started_a.unwrap_or_else(|e| panic!("worker a did not start: {e}"));
    started_b.unwrap_or_else(|e| panic!("worker b did not start: {e}"));
    started_c.unwrap_or_else(|e| panic!("worker c did not start: {e}"));
    assert_eq!(
        joined_c.alive_workers.len(),
        1,
        "only its own: {joined_c:?}"
    );
    assert_eq!(tls_view.down, None, "the TLS head is up: {tls_view:?}");
    assert!(tls_dashboard.is_err(), "no dashboard on the TLS head");
    assert_eq!(alone.down, None, "the head is up: {alone:?}");
    assert!(alone.alive_workers.is_empty(), "{alone:?}");
    assert_eq!(joined_a.down, None, "{joined_a:?}");
    for (joined, cpus) in [(&joined_a, 2.0), (&joined_b, 1.0)] {
        assert_eq!(joined.alive_workers.len(), 1, "only its own: {joined:?}");
        assert_eq!(
            joined.alive_workers[0].get("CPU"),
            Some(&cpus),
            "{joined:?}"
        );
    }
    assert_eq!(left_a.down, None, "{left_a:?}");
    assert!(
        left_a.alive_workers.is_empty(),
        "a stopped worker is listed dead, not alive: {left_a:?}"
    );
    assert_eq!(
        still_b.alive_workers.len(),
        1,
        "the other RayCluster keeps its worker: {still_b:?}"
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
    let view = head_view::look(&lease, "1.a").await;
    let why = view.down.expect("down");
    assert!(
        why.contains("its GCS does not list its nodes") && why.contains("TCP"),
        "{why}"
    );
}
