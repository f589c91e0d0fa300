//! The browser probe against a small app served on 127.0.0.1: a page that
//! renders with JavaScript and calls its API, the same page opened without
//! its trailing slash (its script 404s, nothing renders), and a page whose
//! script throws. Asserts the verdicts, what they list, the screenshot,
//! and that Chromium and its profile are gone afterwards, also when the
//! probe is abandoned half-way.
//!
//! Where Chromium is absent, every test here says so and returns (the
//! probe's own "missing" path is unit-tested in `browser_process`).

use rayconform::probe::browser::{self, SCREENSHOT_FILE, screenshots_in};
use rayconform::probe::browser_process::find_chromium;
use rayconform::probe::spec::BrowserProbe;
use rayconform::verdict::{Stage, Verdict};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(40);

/// One Chromium at a time: the abandoned-probe test counts this process's
/// Chromium children, and the machine has 2 cores.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const INDEX: &str = r#"<!doctype html><html><head><title>tiny app</title>
<script defer src="./app.js"></script></head>
<body><div id="root"></div></body></html>"#;

const APP: &str = r#"
fetch('api/data').then(r => r.json()).then(d => {
  const root = document.getElementById('root');
  const h = document.createElement('h1');
  h.textContent = 'Nodes: ' + d.nodes;
  root.appendChild(h);
});
"#;

const BROKEN_INDEX: &str = r#"<!doctype html><html><head><title>broken</title></head>
<body><div id="root"></div><script>console.error('boom from console');
throw new Error('boom from script');</script></body></html>"#;

/// Serves the app: `/app/`, `/app` (same HTML), `/app/app.js`,
/// `/app/api/data`, `/broken/`; everything else 404. `/slow/` never answers.
async fn serve() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, kind, body) = match path.as_str() {
                    "/app/" | "/app" => ("200 OK", "text/html", INDEX),
                    "/app/app.js" => ("200 OK", "application/javascript", APP),
                    "/app/api/data" => ("200 OK", "application/json", r#"{"nodes": 3}"#),
                    "/broken/" => ("200 OK", "text/html", BROKEN_INDEX),
                    "/slow/" => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    _ => ("404 Not Found", "text/plain", "not found"),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(body.as_bytes()).await;
            });
        }
    });
    port
}

fn chromium() -> Option<PathBuf> {
    match find_chromium() {
        Ok(path) => Some(path),
        Err(e) => {
            eprintln!("SKIPPED (no browser here): {e}");
            None
        }
    }
}

fn probe(url: String, apis: &[&str]) -> BrowserProbe {
    BrowserProbe {
        url,
        selector: None,
        text: None,
        apis: apis.iter().map(|a| a.to_string()).collect(),
        allow_failed: Vec::new(),
    }
}

/// The pid and profile folder the verdict's evidence names.
fn chromium_pid_and_profile(v: &Verdict) -> (i32, PathBuf) {
    let line = v
        .evidence
        .iter()
        .find(|l| l.contains("Chromium pid "))
        .unwrap_or_else(|| panic!("no Chromium pid in the evidence:\n{v}"));
    let after = line.split("Chromium pid ").nth(1).unwrap();
    let pid: i32 = after.split_whitespace().next().unwrap().parse().unwrap();
    let profile = after
        .split("profile ")
        .nth(1)
        .unwrap()
        .split(", DevTools")
        .next()
        .unwrap();
    (pid, PathBuf::from(profile))
}

/// Whether `pid` is a live process (a zombie is not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// Live processes in process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid)
            && fields.first() != Some(&"Z")
        {
            found.push(pid);
        }
    }
    found
}

/// Live Chromium processes whose parent is this test process.
fn our_chromium_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((name, rest)) = stat.split_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ppid: i32 = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == me && name.contains("chrom") && fields.first() != Some(&"Z") {
            found.push(pid);
        }
    }
    found
}

/// Chromium's own folders in the temp dir (`org.chromium.Chromium.*`).
fn chromium_temp_folders() -> BTreeSet<PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("org.chromium."))
        })
        .collect()
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendering_page_passes_with_its_api_and_a_screenshot_and_chromium_is_gone_after() {
    let _turn = TURN.lock().await;
    let Some(exe) = chromium() else { return };
    let port = serve().await;
    let artifacts = tempfile::tempdir().unwrap();
    let p = probe(format!("http://127.0.0.1:{port}/app/"), &["api/data"]);
    let temp_before = chromium_temp_folders();
    let v = browser::check(&p, &exe, TIMEOUT, Some(artifacts.path())).await;
    println!("{v}");
    assert!(v.passed, "{v}");
    let left: Vec<_> = chromium_temp_folders()
        .difference(&temp_before)
        .cloned()
        .collect();
    assert!(left.is_empty(), "Chromium's temp folders left: {left:?}");
    assert!(
        v.actual.contains("Nodes: 3"),
        "the rendered text is reported: {v}"
    );
    let shots = screenshots_in(&v.evidence);
    assert_eq!(shots, [artifacts.path().join(SCREENSHOT_FILE)], "{v}");
    assert!(is_png(&shots[0]), "not a PNG: {}", shots[0].display());
    let (pid, profile) = chromium_pid_and_profile(&v);
    assert!(!alive(pid), "Chromium {pid} still runs after the probe");
    assert_eq!(
        group_members(pid),
        Vec::<i32>::new(),
        "its helpers still run"
    );
    assert!(
        !profile.exists(),
        "profile {} left behind",
        profile.display()
    );

    // A text and a selector the page shows; then one it does not.
    let mut named = probe(format!("http://127.0.0.1:{port}/app/"), &[]);
    named.selector = Some("#root h1".into());
    named.text = Some("Nodes: 3".into());
    let v = browser::check(&named, &exe, TIMEOUT, None).await;
    assert!(v.passed, "{v}");
    named.text = Some("Jobs".into());
    let v = browser::check(&named, &exe, TIMEOUT, None).await;
    assert!(!v.passed, "{v}");
    assert_eq!(v.stage, Some(Stage::Render), "{v}");
    assert!(v.summary.contains("expected text does NOT appear"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_trailing_slash_the_script_404s_and_nothing_renders() {
    let _turn = TURN.lock().await;
    let Some(exe) = chromium() else { return };
    let port = serve().await;
    let artifacts = tempfile::tempdir().unwrap();
    let p = probe(format!("http://127.0.0.1:{port}/app"), &["api/data"]);
    let v = browser::check(&p, &exe, TIMEOUT, Some(artifacts.path())).await;
    println!("{v}");
    assert!(!v.passed, "{v}");
    assert_eq!(v.stage, Some(Stage::Asset), "{v}");
    assert!(
        v.summary
            .contains(&format!("script http://127.0.0.1:{port}/app.js: 404")),
        "the failed script is listed with its URL and status: {v}"
    );
    assert!(v.summary.contains("not rendered: #root has 0 child"), "{v}");
    assert!(
        v.summary.contains("api \"api/data\""),
        "the API the page never called is named: {v}"
    );
    assert!(is_png(&artifacts.path().join(SCREENSHOT_FILE)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncaught_exceptions_and_console_errors_are_listed() {
    let _turn = TURN.lock().await;
    let Some(exe) = chromium() else { return };
    let port = serve().await;
    let p = probe(format!("http://127.0.0.1:{port}/broken/"), &[]);
    let v = browser::check(&p, &exe, TIMEOUT, None).await;
    println!("{v}");
    assert!(!v.passed, "{v}");
    assert_eq!(v.stage, Some(Stage::Render), "{v}");
    assert!(v.summary.contains("boom from script"), "{v}");
    assert!(
        v.summary.contains("console error(s): boom from console"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_probe_leaves_no_chromium_running() {
    let _turn = TURN.lock().await;
    let Some(exe) = chromium() else { return };
    let port = serve().await;
    let p = probe(format!("http://127.0.0.1:{port}/slow/"), &[]);
    // The step is cancelled (interrupt, scenario deadline) while the page
    // is still loading: the future is dropped.
    let abandoned = tokio::time::timeout(
        Duration::from_secs(6),
        browser::check(&p, &exe, TIMEOUT, None),
    )
    .await;
    assert!(abandoned.is_err(), "the slow page cannot have loaded");
    let mut left = our_chromium_children();
    for _ in 0..20 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = our_chromium_children();
    }
    assert!(left.is_empty(), "Chromium still running: {left:?}");
}
