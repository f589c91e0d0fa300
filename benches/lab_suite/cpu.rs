//! Where the CPU went while something ran: the machine's busy time from
//! `/proc/stat`, and the CPU time of every process started meanwhile,
//! sampled from `/proc/<pid>/stat` every 200 ms and grouped by what the
//! process is (Ray's dashboard, agents, `ray start`, Chromium, ...).
//!
//! On a 2-core machine the lab suite is CPU-bound, so the busy time divided
//! by the cores is the least wall time any scheduling can reach.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `/proc` counts CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// A sampler running on its own thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<BTreeMap<(u32, u64), (String, u64)>>,
    busy_before: u64,
    own_before: u64,
    started: Instant,
}

/// What a sampled span used.
pub struct CpuUse {
    /// Wall time of the span.
    pub wall: Duration,
    /// CPU time of the whole machine (all processes, all cores).
    pub machine: Duration,
    /// Cores the machine has.
    pub cores: usize,
    /// CPU time and process count by kind of process started in the span.
    pub by_kind: BTreeMap<String, (Duration, usize)>,
    /// CPU time of this process in the span: the sampler's own cost (the
    /// bench does nothing else while it waits).
    pub sampler: Duration,
}

/// Starts sampling now.
pub fn start() -> Sampler {
    let stop = Arc::new(AtomicBool::new(false));
    let since = ticks_since_boot();
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut seen: BTreeMap<(u32, u64), (String, u64)> = BTreeMap::new();
        while !flag.load(Ordering::Relaxed) {
            sample(since, &mut seen);
            std::thread::sleep(Duration::from_millis(200));
        }
        sample(since, &mut seen);
        seen
    });
    Sampler {
        stop,
        thread,
        busy_before: machine_busy_ticks(),
        own_before: own_ticks(),
        started: Instant::now(),
    }
}

/// Waits (at most `limit`) until the whole machine has been under 10 %
/// busy for a second, so a span starts on an idle machine; returns how
/// long that took and whether it settled.
pub fn settle(limit: Duration) -> (Duration, bool) {
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    while started.elapsed() < limit {
        let before = machine_busy_ticks();
        std::thread::sleep(Duration::from_secs(1));
        let busy = (machine_busy_ticks() - before) as f64 / TICKS_PER_SECOND;
        if busy < 0.1 * cores {
            return (started.elapsed(), true);
        }
    }
    (started.elapsed(), false)
}

impl Sampler {
    /// Stops sampling and sums up.
    pub fn finish(self) -> CpuUse {
        let busy = machine_busy_ticks().saturating_sub(self.busy_before);
        let wall = self.started.elapsed();
        self.stop.store(true, Ordering::Relaxed);
        let seen = self.thread.join().unwrap_or_default();
        let sampler = ticks_to_duration(own_ticks().saturating_sub(self.own_before));
        let mut by_kind: BTreeMap<String, (Duration, usize)> = BTreeMap::new();
        for (kind, ticks) in seen.into_values() {
            let entry = by_kind.entry(kind).or_default();
            entry.0 += ticks_to_duration(ticks);
            entry.1 += 1;
        }
        CpuUse {
            wall,
            machine: ticks_to_duration(busy),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            by_kind,
            sampler,
        }
    }
}

impl CpuUse {
    /// The least wall time this much CPU can take on this machine's cores.
    pub fn floor(&self) -> Duration {
        self.machine / self.cores as u32
    }

    /// A table, largest first.
    pub fn render(&self) -> String {
        let mut rows: Vec<_> = self.by_kind.iter().collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.1.0));
        let mut out = format!("  {:<46} {:>6} {:>9}\n", "process kind", "procs", "CPU s");
        for (kind, (cpu, n)) in rows {
            out.push_str(&format!("  {kind:<46} {n:>6} {:>9.1}\n", cpu.as_secs_f64()));
        }
        let sampled: Duration = self.by_kind.values().map(|(d, _)| *d).sum();
        out.push_str(&format!(
            "  sampled {:.1} s of the machine's {:.1} CPU-s in {:.1} s wall ({:.0}% of {} cores busy)\n",
            sampled.as_secs_f64(),
            self.machine.as_secs_f64(),
            self.wall.as_secs_f64(),
            100.0 * self.machine.as_secs_f64() / self.wall.as_secs_f64() / self.cores as f64,
            self.cores
        ));
        out.push_str(&format!(
            "  of which the sampler itself (this bench) {:.1} CPU-s\n",
            self.sampler.as_secs_f64()
        ));
        out
    }
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / TICKS_PER_SECOND)
}

/// Busy ticks of all cores (user, nice, system, irq, softirq).
fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    [0, 1, 2, 5, 6].iter().filter_map(|&i| f.get(i)).sum()
}

/// This process's user + system ticks.
fn own_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    num(11) + num(12)
}

fn ticks_since_boot() -> u64 {
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    let secs: f64 = uptime
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    (secs * TICKS_PER_SECOND) as u64
}

/// Records the CPU time of every process started after `since` (ticks
/// since boot), keyed by pid and start time so a reused pid is another.
fn sample(since: u64, seen: &mut BTreeMap<(u32, u64), (String, u64)>) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name in parentheses (which may hold spaces).
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let (utime, stime, starttime) = (num(11), num(12), num(19));
        if starttime < since {
            continue;
        }
        let key = (pid, starttime);
        if let Some(slot) = seen.get_mut(&key) {
            slot.1 = slot.1.max(utime + stime);
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        if cmdline.trim().is_empty() {
            continue;
        }
        seen.insert(key, (kind_of(&cmdline).to_string(), utime + stime));
    }
}

/// What a process is, from its command line.
fn kind_of(cmdline: &str) -> &'static str {
    let has = |s: &str| cmdline.contains(s);
    let program = cmdline.split_whitespace().next().unwrap_or_default();
    // By program first: a raylet's arguments name the agents it starts.
    if program.ends_with("/rayconform") || program == "rayconform" {
        "rayconform"
    } else if program.ends_with("/raylet") {
        "Ray raylet"
    } else if program.ends_with("/gcs_server") {
        "Ray GCS"
    } else if has("ray start --head") {
        "`ray start --head` (CLI, stays up with --block)"
    } else if has("ray start") {
        "`ray start` of a worker node (CLI)"
    } else if has("dashboard/dashboard.py")
        || has("ray-dashboard-")
        || has("multiprocessing.forkserver")
        || has("multiprocessing.resource_tracker")
    {
        "Ray dashboard (head process and modules)"
    } else if has("dashboard/agent.py") || has("DashboardAgent") {
        "Ray dashboard agent (every node)"
    } else if has("runtime_env/agent") || has("RuntimeEnvAgent") {
        "Ray runtime env agent (every node)"
    } else if has("ray.util.client.server") {
        "Ray client server (and session servers)"
    } else if has("monitor.py") {
        "Ray autoscaler / log monitor"
    } else if has("default_worker") || has("ray::") {
        "Ray worker processes (client session drivers)"
    } else if has("chrom") {
        "Chromium"
    } else if has("nginx") {
        "nginx"
    } else {
        "other"
    }
}
