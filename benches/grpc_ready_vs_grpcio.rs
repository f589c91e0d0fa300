//! The full `grpcReady` verdict (TLS, HTTP/2, PING, session check) against
//! grpcio's PING alone, both on fresh connections through the same nginx
//! SSL passthrough to a real TLS Ray head. Prints both medians and their
//! ratio; exits 1 when the probe takes more than 5 times grpcio's PING.
//!
//! `cargo bench --bench grpc_ready_vs_grpcio` (needs `scripts/setup`: the
//! Ray venv and nginx with its stream module). `ROUNDS=N` sets the number
//! of connections per side (default 40).

use rayconform::probe::grpc_ready;
use rayconform::probe::spec::GrpcExpectation;
use rayconform::targets::lab::model::nginx_conf::STREAM_MODULE;
use rayconform::targets::lab::process::nginx::Nginx;
use rayconform::targets::lab::process::ports::free_port;
use rayconform::targets::lab::process::ray_head::{HeadComponents, RayHead, RayHeadConfig, RayTls};
use rayconform::targets::lab::process::venv::RayVenv;
use rayconform::tls::{ClientIdentity, ClientTls};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The most the full verdict may take, in multiples of grpcio's PING.
const MAX_RATIO: f64 = 5.0;

/// grpcio: a fresh channel (its own subchannel, so its own TCP and TLS
/// connection) per round, one PING, closed; prints each round's ms.
const GRPCIO_PING: &str = r#"
import sys, time, grpc
address, ca, cert, key, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
read = lambda p: open(p, "rb").read()
creds = grpc.ssl_channel_credentials(root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert))
times = []
for _ in range(rounds):
    start = time.perf_counter()
    channel = grpc.secure_channel(address, creds, options=[("grpc.use_local_subchannel_pool", 1)])
    answer = channel.unary_unary("/ray.rpc.RayletDriver/ClusterInfo")(b"\x08\x06", timeout=10)
    times.append((time.perf_counter() - start) * 1000)
    channel.close()
    assert answer == b"\x12\x02{}", answer
print(" ".join("%.3f" % t for t in times))
"#;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn passthrough_config(listen: u16, client_port: u16) -> String {
    format!(
        "load_module {STREAM_MODULE};\n\
         events {{}}\n\
         stream {{\n\
           map $ssl_preread_server_name $backend {{ localhost 127.0.0.1:{client_port}; default 127.0.0.1:1; }}\n\
           server {{ listen 127.0.0.1:{listen}; ssl_preread on; proxy_pass $backend; }}\n\
         }}\n"
    )
}

async fn run() -> Result<f64, String> {
    rayconform::tls::install_crypto_provider();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = RayVenv::locate(&root).map_err(|e| format!("the Ray venv is required: {e}"))?;
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(40);
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let certs = rayconform::tls::generate(&work.path().join("certs"), "ca", &[])
        .map_err(|e| e.to_string())?;
    let authority = certs.get("ca").expect("generated").clone();
    let mut head = RayHead::start(
        RayHeadConfig {
            venv: venv.clone(),
            work_dir: work.path().join("head"),
            tls: Some(RayTls {
                server_cert: authority.server_cert.clone(),
                server_key: authority.server_key.clone(),
                ca_cert: authority.ca_cert.clone(),
            }),
            num_cpus: 1,
            components: HeadComponents::default(),
        },
        Duration::from_secs(90),
    )
    .await
    .map_err(|e| format!("Ray head: {e}"))?;
    let listen = free_port().map_err(|e| e.to_string())?;
    let mut nginx = match Nginx::start(
        &work.path().join("nginx"),
        &passthrough_config(listen, head.ports.client),
    )
    .await
    {
        Ok(n) => n,
        Err(e) => {
            head.stop().await;
            return Err(format!("nginx: {e}"));
        }
    };
    let address = format!("localhost:{listen}");
    let tls = ClientTls {
        server_name: Some("localhost".into()),
        ca_cert: Some(authority.ca_cert.clone()),
        insecure: false,
        identity: Some(ClientIdentity {
            cert: authority.client_cert.clone(),
            key: authority.client_key.clone(),
            label: "client cert of the run CA".into(),
        }),
        version: None,
    };
    let result = async {
        // Warm both sides up (Python imports, Ray's first answers).
        let probe = || {
            grpc_ready::check(
                &address,
                Some(&tls),
                true,
                GrpcExpectation::Ready,
                Duration::from_secs(20),
            )
        };
        let first = probe().await;
        if !first.passed {
            return Err(format!(
                "the probe is not READY on a healthy path:\n{first}"
            ));
        }
        let grpcio = |n: usize| {
            let mut cmd = tokio::process::Command::new(&venv.python);
            cmd.arg("-c")
                .arg(GRPCIO_PING)
                .arg(&address)
                .arg(&authority.ca_cert)
                .arg(&authority.client_cert)
                .arg(&authority.client_key)
                .arg(n.to_string())
                .kill_on_drop(true);
            async move {
                let out = cmd.output().await.map_err(|e| e.to_string())?;
                if !out.status.success() {
                    return Err(format!(
                        "grpcio PING failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                Ok::<Vec<f64>, String>(
                    String::from_utf8_lossy(&out.stdout)
                        .split_whitespace()
                        .filter_map(|t| t.parse().ok())
                        .collect(),
                )
            }
        };
        grpcio(3).await?;
        let python = grpcio(rounds).await?;
        let mut ours = Vec::new();
        for _ in 0..rounds {
            let started = Instant::now();
            let v = probe().await;
            ours.push(started.elapsed().as_secs_f64() * 1000.0);
            if !v.passed {
                return Err(format!("the probe failed on a healthy path:\n{v}"));
            }
        }
        let (theirs, mine) = (median(python), median(ours));
        let ratio = mine / theirs;
        println!("rounds per side:                          {rounds}");
        println!("grpcio PING (fresh channel), median:      {theirs:.2} ms");
        println!("rayconform grpcReady full verdict, median: {mine:.2} ms");
        println!("ratio: {ratio:.2}x (at most {MAX_RATIO}x)");
        Ok(ratio)
    }
    .await;
    nginx.stop().await;
    head.stop().await;
    result
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run()) {
        Ok(ratio) if ratio <= MAX_RATIO => {}
        Ok(_) => {
            eprintln!("the full verdict takes more than {MAX_RATIO}x grpcio's PING");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("benchmark could not run: {e}");
            std::process::exit(2);
        }
    }
}
