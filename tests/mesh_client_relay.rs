//! The mesh client's relay script, run for real with Python on loopback:
//! it listens on 127.0.0.1:<port> and pipes each connection to
//! <service>:<port> both ways (here the "service" is 127.0.0.2, an echo
//! server on the same port number), and a connection whose upstream
//! refuses is closed rather than left hanging. The process is started and
//! killed by pid.

use rayconform::install::mesh_client::RELAY_SCRIPT;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".lab/ray-venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// A port free on 127.0.0.1 and on 127.0.0.2 (at the time of asking).
async fn free_port_on_both() -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = first.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.2", port)).await.is_ok() {
            return port;
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

async fn connect_when_listening(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => panic!("relay never listened: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
async fn the_relay_pipes_both_ways_and_closes_when_upstream_refuses() {
    let port = free_port_on_both().await;
    let echo = TcpListener::bind(("127.0.0.2", port)).await.unwrap();
    let echo_task = tokio::spawn(async move {
        let (mut conn, _) = echo.accept().await.unwrap();
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).await.unwrap();
        conn.write_all(b"echo:").await.unwrap();
        conn.write_all(&buf[..n]).await.unwrap();
        // The listener drops here: later connections to the upstream refuse.
    });
    let mut relay = tokio::process::Command::new(python())
        .args(["-u", "-c", RELAY_SCRIPT, "127.0.0.2", &port.to_string()])
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let pid = relay.id();

    let mut conn = connect_when_listening(port).await;
    conn.write_all(b"ping").await.unwrap();
    let mut answer = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut answer))
        .await
        .expect("answer within 10s")
        .unwrap();
    assert_eq!(&answer, b"echo:ping");
    echo_task.await.unwrap();

    let mut refused = connect_when_listening(port).await;
    let mut rest = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(10), refused.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a connection with no upstream is closed: {closed:?} {rest:?}"
    );

    relay.start_kill().unwrap();
    let status = relay.wait().await.unwrap();
    assert!(!status.success(), "pid {pid:?} was killed");
}
