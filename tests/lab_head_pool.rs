//! The Ray head pool: heads without TLS are shared and outlive their
//! leases until shutdown; a TLS head serves one lease and stops with it.

use rayconform::target::lab::head_pool::{HeadKey, HeadPool};
use rayconform::target::lab::ray_head::RayTls;
use std::path::PathBuf;
use std::time::Duration;

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_heads_are_shared_until_shutdown_and_tls_heads_stop_with_their_lease() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pool = HeadPool::new(&root);
    let timeout = Duration::from_secs(90);
    let plain = HeadKey {
        tls: None,
        num_cpus: 1,
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
    let certs = rayconform::tls::generate(dir.path(), "ca-tls", &[]).expect("certificates");
    let a = certs.get("ca-tls").unwrap();
    let tls = HeadKey {
        tls: Some(RayTls {
            server_cert: a.server_cert.clone(),
            server_key: a.server_key.clone(),
            ca_cert: a.ca_cert.clone(),
        }),
        num_cpus: 1,
    };
    let tls_lease = pool.acquire(tls, timeout).await.expect("TLS head");
    assert_ne!(
        tls_lease.id, first.id,
        "a TLS head is never the shared plain one"
    );
    let tls_pid = tls_lease.pid.expect("pid");

    assert!(pool.release(first.id).await.is_empty());
    assert!(pool.release(second.id).await.is_empty());
    assert!(
        alive(plain_pid),
        "a released plain head stays up for the next scenario"
    );
    assert!(pool.release(tls_lease.id).await.is_empty());
    assert!(!alive(tls_pid), "a released TLS head stops");
    assert_eq!(pool.running().await.len(), 1);

    let third = pool.acquire(plain, timeout).await.expect("reuse");
    assert!(third.reused && third.id == first.id);
    assert!(pool.shutdown(false).await.is_empty());
    assert!(!alive(plain_pid), "shutdown stops every head");
    assert!(pool.running().await.is_empty());
}
