//! `grpcReady.expectAliveNodes` against a real Ray 2.60.0 head and a real
//! worker node: the head's own node list, asked through a Ray client
//! session, says 1 alive node before the worker joins and 2 after; asking
//! for 3 fails at the RPC stage with both nodes in the evidence.
//!
//! One test function: the head and the worker are started once and stopped
//! by pid before the assertions, so nothing outlives a failing check.

use rayconform::probe::spec::{GrpcExpectation, GrpcReadyProbe};
use rayconform::scenario::Probe;
use rayconform::targets::lab::process::ray_head::{HeadComponents, RayHead, RayHeadConfig};
use rayconform::targets::lab::process::venv::RayVenv;
use rayconform::targets::lab::process::worker::RayWorker;
use rayconform::verdict::{Stage, Verdict};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

fn nodes_probe(address: &str, expected: u32) -> Probe {
    Probe::GrpcReady(GrpcReadyProbe {
        address: address.to_string(),
        tls: None,
        ray_ping: true,
        expect: GrpcExpectation::Ready,
        expect_alive_nodes: Some(expected),
    })
}

async fn probe(address: &str, expected: u32) -> Verdict {
    let v = rayconform::probe::run(&nodes_probe(address, expected), None, PROBE_TIMEOUT).await;
    println!("=== expectAliveNodes {expected}\n{v}\n");
    v
}

/// What Ray's proxier answers when the server it started for a new client
/// session exited at once: a gRPC fork race inside Ray
/// (ray-project/ray#63202), seen in 5 of 21 runs of this test on the 2-core
/// machine. The lab's heads now run without gRPC's fork handlers, which
/// avoided it by hand (0 of 130 sessions); the test still asks again should
/// it come back, and prints every verdict.
const RAYS_SESSION_SERVER_FAILED: &str = "Starting Ray client server failed";

/// [`probe`], asked again (at most 5 times) while Ray's proxier fails to
/// start the session's server.
async fn probe_past_rays_session_server_failures(address: &str, expected: u32) -> Verdict {
    let mut attempt = 1;
    loop {
        let v = probe(address, expected).await;
        if attempt == 5 || !v.to_string().contains(RAYS_SESSION_SERVER_FAILED) {
            return v;
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The worker registers with the GCS a moment after `ray start` blocks:
/// ask until the count is right or 60 s passed.
async fn probe_until_passed(address: &str, expected: u32) -> Verdict {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = probe(address, expected).await;
        if v.passed || Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_lists_its_alive_nodes_through_a_client_session() {
    let project_root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv =
        RayVenv::locate(&project_root).unwrap_or_else(|e| panic!("{e} (run scripts/setup first)"));
    let work = tempfile::tempdir().unwrap();
    let mut head = RayHead::start(
        RayHeadConfig {
            venv: venv.clone(),
            work_dir: work.path().join("head"),
            tls: None,
            num_cpus: 1,
            components: HeadComponents::default(),
        },
        Duration::from_secs(120),
    )
    .await
    .unwrap_or_else(|e| panic!("Ray head did not start: {e}"));
    let address = format!("127.0.0.1:{}", head.ports.client);

    let head_only = probe_past_rays_session_server_failures(&address, 1).await;

    let mut worker = RayWorker::spawn(
        &venv,
        head.ports.gcs,
        &work.path().join("worker"),
        "ray-worker-0",
    )
    .expect("worker spawned");
    let worker_started = worker
        .wait_started(Instant::now() + Duration::from_secs(120))
        .await;
    let (with_worker, too_many) = if worker_started.is_ok() {
        let with_worker = probe_until_passed(&address, 2).await;
        (
            Some(with_worker),
            Some(probe_past_rays_session_server_failures(&address, 3).await),
        )
    } else {
        (None, None)
    };
    let worker_tail = worker.log_tail(20);
    worker.stop().await;
    head.stop().await;

    if let Err(e) = worker_started {
        panic!("the worker did not start: {e}\n{worker_tail}");
    }
    let (with_worker, too_many) = (with_worker.unwrap(), too_many.unwrap());
    let evidence = |v: &Verdict| v.to_string();

    assert!(head_only.passed, "head alone: {head_only}");
    assert!(
        evidence(&head_only).contains("head reports 1 alive node(s) of 1 listed"),
        "{head_only}"
    );
    assert!(with_worker.passed, "head + worker: {with_worker}");
    assert!(
        evidence(&with_worker).contains("head reports 2 alive node(s) of 2 listed"),
        "{with_worker}"
    );
    assert!(!too_many.passed, "3 alive nodes expected of 2: {too_many}");
    assert_eq!(too_many.stage, Some(Stage::Rpc), "{too_many}");
    assert!(
        evidence(&too_many).contains("expected 3 alive node(s); head reports 2 alive node(s)"),
        "{too_many}"
    );
}
