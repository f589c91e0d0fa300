//! Issue 12's benchmark: in one run, a bare Ray head cold start with Ray's
//! default processes (launch until a Ray client PING is answered on its
//! client port), the lab suite as users run it (`rayconform run --target
//! lab scenarios/`), their ratio, where the suite's time went (read from its
//! JUnit) and its CPU by process kind with the floor that CPU sets on this
//! machine's cores.
//!
//! `scripts/bench` runs it (and the gRPC probe vs grpcio bench). Directly:
//! `cargo bench --locked --bench lab_suite -- [--samples N] [--jobs N]
//! [--binary PATH]`. Needs `scripts/setup` (the Ray venv, nginx) and the
//! release binary (`cargo build --release --locked`) unless `--binary`
//! names another.
//!
//! Exits 0 with any ratio; 2 when something broke (a head that never
//! answered, a suite that did not exit 0, a JUnit that cannot be read).

mod cpu;
mod phases;

use rayconform::probe::grpc_ready;
use rayconform::probe::spec::GrpcExpectation;
use rayconform::targets::lab::process::ray_head::{HeadComponents, RayHead, RayHeadConfig};
use rayconform::targets::lab::process::venv::RayVenv;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The goal for suite / head cold start (printed, never asserted).
const GOAL_RATIO: f64 = 4.0;

/// How long the bench waits for an idle machine before the suite.
const SETTLE_LIMIT: Duration = Duration::from_secs(20);

/// How long one head may take to answer PING before the bench gives up.
const HEAD_TIMEOUT: Duration = Duration::from_secs(120);

struct Options {
    samples: usize,
    jobs: Option<String>,
    binary: PathBuf,
}

fn options(root: &Path) -> Result<Options, String> {
    let mut opts = Options {
        samples: 2,
        jobs: None,
        binary: root.join("target/release/rayconform"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            "--samples" => {
                opts.samples = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--samples needs a positive number")?
            }
            "--jobs" => opts.jobs = Some(value()?),
            "--binary" => opts.binary = PathBuf::from(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(opts)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// One bare head: `ray start --head` with Ray's default processes
/// (dashboard, autoscaler and log monitors: what a KubeRay head pod runs,
/// and more than a lab head does) on the lab's loopback ports, until the
/// project's gRPC probe gets a PING answer on the client port; then
/// stopped by pid. Returns (seconds to PING answered, seconds the lab's
/// readiness took, seconds the stop took).
async fn head_cold_start(venv: &RayVenv, work: &Path) -> Result<(f64, f64, f64), String> {
    let started = Instant::now();
    let mut head = RayHead::start(
        RayHeadConfig {
            venv: venv.clone(),
            work_dir: work.to_path_buf(),
            tls: None,
            num_cpus: 1,
            components: HeadComponents::RAY_DEFAULTS,
        },
        HEAD_TIMEOUT,
    )
    .await
    .map_err(|e| format!("Ray head did not start: {e}"))?;
    let ready = head.startup_time.as_secs_f64();
    let address = format!("127.0.0.1:{}", head.ports.client);
    let answered = loop {
        let verdict = grpc_ready::check(
            &address,
            None,
            true,
            GrpcExpectation::Ready,
            Duration::from_secs(5),
        )
        .await;
        if verdict.passed {
            break Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() >= HEAD_TIMEOUT {
            break Err(format!(
                "the head's client port {address} never answered PING:\n{verdict}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stopping = Instant::now();
    let outcome = head.stop().await;
    let stop = stopping.elapsed().as_secs_f64();
    let answered = answered?;
    println!(
        "  head cold start: PING answered after {answered:.2} s (lab readiness {ready:.2} s); stop {stop:.2} s ({outcome:?})"
    );
    Ok((answered, ready, stop))
}

/// The lab suite through the real binary; returns (wall seconds, JUnit).
async fn lab_suite(root: &Path, opts: &Options, work: &Path) -> Result<(f64, String), String> {
    if !opts.binary.is_file() {
        return Err(format!(
            "{} is missing: run `cargo build --release --locked` (scripts/bench does)",
            opts.binary.display()
        ));
    }
    let junit = work.join("junit.xml");
    let mut cmd = tokio::process::Command::new(&opts.binary);
    cmd.current_dir(root)
        .args(["run", "--target", "lab", "scenarios/", "--junit"])
        .arg(&junit)
        .kill_on_drop(true);
    if let Some(jobs) = &opts.jobs {
        cmd.args(["--jobs", jobs]);
    }
    let started = Instant::now();
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("running {}: {e}", opts.binary.display()))?;
    let wall = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if let Some(summary) = stdout.lines().rev().find(|l| l.contains(" scenarios in ")) {
        println!("  {summary}");
    }
    if !out.status.success() {
        return Err(format!(
            "the lab suite exited with {}:\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let xml =
        std::fs::read_to_string(&junit).map_err(|e| format!("reading {}: {e}", junit.display()))?;
    Ok((wall, xml))
}

async fn run() -> Result<(), String> {
    rayconform::tls::install_crypto_provider();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let opts = options(&root)?;
    let venv = RayVenv::locate(&root).map_err(|e| format!("the Ray venv is required: {e}"))?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;

    println!(
        "bare Ray head cold start (launch -> client PING answered), {} sample(s):",
        opts.samples
    );
    let mut starts = Vec::new();
    let mut head_cpu = Vec::new();
    for i in 0..opts.samples {
        let sampler = cpu::start();
        let (answered, _, _) =
            head_cold_start(&venv, &work.path().join(format!("head-{i}"))).await?;
        starts.push(answered);
        head_cpu.push(sampler.finish().machine.as_secs_f64());
    }
    let head = median(starts);
    let head_cpu = median(head_cpu);
    println!(
        "  median: {head:.2} s; the machine's CPU from launch to stopped: {head_cpu:.1} CPU-s (median)"
    );

    println!(
        "lab suite: {} run --target lab scenarios/{}",
        opts.binary.display(),
        opts.jobs
            .as_ref()
            .map(|j| format!(" --jobs {j}"))
            .unwrap_or_default()
    );
    // The heads' processes end after their stop returns (Ray's idle
    // workers leave on their own): start the suite on an idle machine.
    let (waited, settled) = cpu::settle(SETTLE_LIMIT);
    println!(
        "  machine {} after {:.1} s",
        if settled { "idle" } else { "still busy" },
        waited.as_secs_f64()
    );
    let sampler = cpu::start();
    let (wall, xml) = lab_suite(&root, &opts, work.path()).await?;
    let suite_cpu = sampler.finish();
    println!("  wall: {wall:.2} s");
    let breakdown = phases::breakdown(&xml)?;
    println!("per-phase breakdown (from the run's JUnit step logs):");
    print!("{}", breakdown.render((wall * 1000.0).round() as u64));

    println!("CPU by process kind during the suite (/proc sampled every 200 ms):");
    print!("{}", suite_cpu.render());
    let floor = suite_cpu.floor().as_secs_f64();
    println!(
        "  the suite's CPU is {:.1} head cold starts' worth; on {} cores it cannot take less than {floor:.1} s ({:.2} x a head cold start)",
        suite_cpu.machine.as_secs_f64() / head_cpu,
        suite_cpu.cores,
        floor / head
    );

    let ratio = wall / head;
    println!(
        "ratio suite / head cold start: {ratio:.2} (issue 12's goal: <= {GOAL_RATIO}; not asserted)"
    );
    Ok(())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("benchmark broke: {e}");
        std::process::exit(2);
    }
}
