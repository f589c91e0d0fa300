//! The Ray head pool: heads with the same key (TLS files, CPUs) are shared
//! and outlive their leases until shutdown; a head with other TLS files is
//! another head; shutdown stops every one.

use rayconform::targets::lab::process::head_pool::{HeadKey, HeadPool};
use rayconform::targets::lab::process::ray_head::RayTls;
use std::path::PathBuf;
use std::time::Duration;

#[path = "support/real_ray_turn.rs"]
mod real_ray_turn;
use real_ray_turn::real_ray_turn;

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false)
}

fn tls_key(dir: &std::path::Path, ca: &str) -> HeadKey {
    let certs = rayconform::tls::generate(dir, ca, &[]).expect("certificates");
    let a = certs.get(ca).unwrap();
    HeadKey {
        tls: Some(RayTls {
            server_cert: a.server_cert.clone(),
            server_key: a.server_key.clone(),
            ca_cert: a.ca_cert.clone(),
        }),
        num_cpus: 1,
        dashboard: true,
        hosts_workers: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_with_the_same_key_are_shared_until_shutdown_and_other_tls_files_get_their_own() {
    // Ray heads starting side by side on 2 cores can miss Ray\'s 30 s
    // raylet registration: the tests of this file take turns.
    let _turn = real_ray_turn();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pool = HeadPool::new(&root);
    let timeout = Duration::from_secs(90);
    let plain = HeadKey {
        tls: None,
        num_cpus: 1,
        dashboard: true,
        hosts_workers: false,
    };

    let first = pool
        .acquire(plain.clone(), timeout)
        .await
        .expect("plain head");
    let second = pool
        .acquire(plain.clone(), timeout)
        .await
        .expect("shared head");
    assert!(!first.reused && second.reused, "{first:?} / {second:?}");
    assert_eq!(first.id, second.id);
    assert_eq!(first.ports, second.ports);
    let plain_pid = first.pid.expect("pid");

    let dir = tempfile::tempdir().unwrap();
    let tls = tls_key(&dir.path().join("run"), "ca-tls");
    let tls_lease = pool.acquire(tls.clone(), timeout).await.expect("TLS head");
    assert_ne!(
        tls_lease.id, first.id,
        "a TLS head is never the shared plain one"
    );
    let tls_pid = tls_lease.pid.expect("pid");
    pool.release(tls_lease.id).await;
    let tls_again = pool.acquire(tls, timeout).await.expect("shared TLS head");
    assert!(
        tls_again.reused && tls_again.id == tls_lease.id,
        "a scenario asking for the same TLS files gets the same head: {tls_again:?}"
    );
    let own_ca = tls_key(&dir.path().join("own"), "ca-own");
    let own = pool.acquire(own_ca, timeout).await.expect("own TLS head");
    assert!(
        !own.reused && own.id != tls_lease.id,
        "other TLS files, another head: {own:?}"
    );
    let own_pid = own.pid.expect("pid");

    for id in [first.id, second.id, tls_again.id, own.id] {
        pool.release(id).await;
    }
    assert!(
        alive(plain_pid) && alive(tls_pid) && alive(own_pid),
        "released heads stay up for the next scenario"
    );
    assert_eq!(pool.running().await.len(), 3);

    let third = pool.acquire(plain, timeout).await.expect("reuse");
    assert!(third.reused && third.id == first.id);
    assert!(pool.shutdown(false).await.is_empty());
    for pid in [plain_pid, tls_pid, own_pid] {
        assert!(!alive(pid), "shutdown stops every head (pid {pid})");
    }
    assert!(pool.running().await.is_empty());
}

/// The environment of a running process.
fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| {
            b.split(|c| *c == 0)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_keeps_its_temporary_files_in_its_own_work_dir() {
    // Ray heads starting side by side on 2 cores can miss Ray\'s 30 s
    // raylet registration: the tests of this file take turns.
    let _turn = real_ray_turn();
    use rayconform::targets::lab::process::ray_head::{HeadComponents, RayHead, RayHeadConfig};
    use rayconform::targets::lab::process::venv::RayVenv;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let work_dir = dir.path().join("head");
    let cfg = RayHeadConfig {
        venv: RayVenv::ensure(&root).expect("Ray venv (scripts/setup)"),
        work_dir: work_dir.clone(),
        tls: None,
        num_cpus: 1,
        components: HeadComponents::default(),
    };
    let mut head = RayHead::start(cfg, Duration::from_secs(90))
        .await
        .expect("head starts");
    let pid = head.pid().expect("pid");
    let tmp = work_dir.join("tmp");
    assert!(
        environ(pid).contains(&format!("TMPDIR={}", tmp.display())),
        "the head runs with TMPDIR in its work dir: {:?}",
        environ(pid)
    );
    head.stop().await;
    let left_in_tmp: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left_in_tmp
            .iter()
            .any(|n| n.to_string_lossy().starts_with("pymp-")),
        "Python's pymp-* folder lands in the head's own TMPDIR (removed with the work dir), not /tmp: {left_in_tmp:?}"
    );
}

/// A RayCluster with workers needs a head whose node list is its own: an
/// exclusive lease never shares, is never shared, and stops at release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusive_head_is_never_shared_and_stops_with_its_lease() {
    // Ray heads starting side by side on 2 cores can miss Ray\'s 30 s
    // raylet registration: the tests of this file take turns.
    let _turn = real_ray_turn();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pool = HeadPool::new(&root);
    let timeout = Duration::from_secs(90);
    let plain = HeadKey {
        tls: None,
        num_cpus: 1,
        dashboard: true,
        hosts_workers: false,
    };
    let own = pool
        .acquire_exclusive(plain.clone(), timeout)
        .await
        .expect("exclusive head");
    let shared = pool
        .acquire(plain.clone(), timeout)
        .await
        .expect("shared head");
    assert!(!own.reused && !shared.reused, "{own:?} / {shared:?}");
    assert_ne!(
        own.id, shared.id,
        "a shared lease never gets the exclusive head"
    );
    let other = pool
        .acquire_exclusive(plain, timeout)
        .await
        .expect("second exclusive head");
    assert!(!other.reused);
    assert!(other.id != own.id && other.id != shared.id);

    let own_pid = own.pid.expect("pid");
    pool.release(own.id).await;
    assert!(
        alive(own_pid),
        "the release returns while the exclusive head is still in Ray's teardown (the stop runs off the scenario's critical path)"
    );
    pool.stops_finished().await;
    assert!(!alive(own_pid), "the exclusive head stops with its lease");
    let shared_pid = shared.pid.expect("pid");
    pool.release(shared.id).await;
    assert!(alive(shared_pid), "the shared head waits for the shutdown");
    pool.release(other.id).await;
    assert!(pool.shutdown(false).await.is_empty());
}

/// A head's start does not hold the pool: while one starts, the pool
/// answers and another key's head can start (the lab's `--jobs N`
/// overlaps head cold starts instead of queueing them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_head_does_not_hold_the_pool() {
    // Ray heads starting side by side on 2 cores can miss Ray\'s 30 s
    // raylet registration: the tests of this file take turns.
    let _turn = real_ray_turn();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pool = std::sync::Arc::new(HeadPool::new(&root));
    let timeout = Duration::from_secs(90);
    let key = HeadKey {
        tls: None,
        num_cpus: 1,
        dashboard: true,
        hosts_workers: false,
    };
    let starting = {
        let pool = pool.clone();
        let key = key.clone();
        tokio::spawn(async move { pool.acquire_exclusive(key, timeout).await })
    };
    // Well inside a Ray head's ~4-5 s cold start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!starting.is_finished(), "the head is still starting");
    let answered = tokio::time::timeout(Duration::from_millis(200), pool.running()).await;
    assert!(
        answered.is_ok_and(|running| running.is_empty()),
        "the pool answers while a head starts"
    );
    let lease = starting.await.unwrap().expect("head");
    assert_eq!(pool.running().await.len(), 1);
    pool.release(lease.id).await;
    assert!(pool.shutdown(false).await.is_empty());
    assert!(!alive(lease.pid.expect("pid")));
}
