//! The HTML report: one self-contained, well-formed page per run with every
//! scenario in the matrix, step evidence, the mTLS matrix as a coloured
//! table and the screenshot embedded; `reports/latest` points at the run;
//! and `rayconform run` (what `scripts/run` calls) writes it.

use base64::Engine;
use rayconform::report::{HTML_FILE, LATEST_LINK, write_html};
use rayconform::runner::{
    Phase, Reproduction, RunOutcome, ScenarioOutcome, Status, StepRecord, StepResult,
};
use rayconform::scenario::TargetKind;
use scraper::{Html, Selector};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A small real PNG (1×1), enough to check it is embedded byte for byte.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn step(name: &str, kind: &str, result: StepResult) -> StepRecord {
    StepRecord::single(Phase::Steps, name, kind, Duration::from_millis(12), result)
}

fn outcome(
    name: &str,
    target: TargetKind,
    version: Option<&str>,
    status: Status,
    steps: Vec<StepRecord>,
) -> ScenarioOutcome {
    ScenarioOutcome {
        scenario: name.into(),
        file: PathBuf::from(format!("scenarios/{name}.yaml")),
        target,
        k8s_version: version.map(str::to_string),
        status,
        message: format!("{name} <message> & more"),
        known_bug: None,
        reproduction: None,
        modelled: Vec::new(),
        steps,
        artifacts: None,
        duration: Duration::from_millis(3400),
        interrupted: false,
    }
}

/// A run with a browser screenshot, an mTLS matrix with a wrong cell, a
/// known bug and two columns (lab; kind 1.35), interrupted.
fn sample_run(reports: &Path) -> (RunOutcome, PathBuf) {
    let run_id = "20261124-140000-1".to_string();
    let artifacts = reports.join(&run_id).join("dashboard-lab");
    let shot = artifacts.join("dashboard-renders").join("screenshot.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    std::fs::write(&shot, PNG).unwrap();
    std::fs::write(artifacts.join("nginx.conf"), "events {}").unwrap();

    let mut dashboard = outcome(
        "dashboard",
        TargetKind::Lab,
        None,
        Status::Passed,
        vec![step(
            "dashboard renders",
            "probe",
            StepResult::Passed {
                summary: "rendered in Chromium".into(),
                evidence: vec![
                    "request script http://h/ray/static/js/main.js: 200".into(),
                    format!("screenshot: {}", shot.display()),
                ],
            },
        )],
    );
    dashboard.artifacts = Some(artifacts.clone());
    let mtls = outcome(
        "mtls-enforced",
        TargetKind::Kind,
        Some("1.35"),
        Status::Failed,
        vec![step(
            "mtls matrix",
            "probe",
            StepResult::Failed {
                message: "mTLS matrix wrong".into(),
                evidence: vec![
                    "[ok] plaintext: expected refused, refused at stage TLS: reset (in 3ms)".into(),
                    "[WRONG] TLS without client cert: expected refused, accepted (json {}) (in 9ms)".into(),
                    "[ok] TLS with the right client cert: expected accepted, accepted (json {}) (in 12ms)".into(),
                ],
            },
        )],
    );
    let mut known = outcome(
        "no-trailing-slash",
        TargetKind::Lab,
        None,
        Status::Passed,
        Vec::new(),
    );
    known.known_bug = Some("https://github.com/ray-project/kuberay/pull/1312".into());
    known.reproduction = Some(Reproduction::Observed);
    let skipped = outcome(
        "dashboard",
        TargetKind::Kind,
        Some("1.35"),
        Status::Skipped,
        Vec::new(),
    );
    let run = RunOutcome {
        run_id,
        scenarios: vec![dashboard, mtls, known, skipped],
        interrupted: true,
        duration: Duration::from_secs(20),
        shutdown_problems: Vec::new(),
    };
    (run, shot)
}

fn select<'a>(doc: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    doc.select(&Selector::parse(css).unwrap()).collect()
}

#[test]
fn the_page_is_well_formed_self_contained_and_shows_every_scenario_and_the_screenshot() {
    let reports = tempfile::tempdir().unwrap();
    let (run, shot) = sample_run(reports.path());
    let path = write_html(&run, reports.path()).unwrap();
    assert_eq!(path, reports.path().join(&run.run_id).join(HTML_FILE));
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = Html::parse_document(&text);
    assert!(
        doc.errors.is_empty(),
        "HTML parse errors: {:?}\n{text}",
        doc.errors
    );

    // The matrix: a row per scenario, a column per target × version.
    let rows: Vec<String> = select(&doc, "table.matrix tbody tr > th")
        .iter()
        .map(|th| th.text().collect())
        .collect();
    assert_eq!(
        rows,
        ["dashboard", "mtls-enforced", "no-trailing-slash"],
        "{text}"
    );
    let columns: Vec<String> = select(&doc, "table.matrix thead th")
        .iter()
        .map(|th| th.text().collect())
        .collect();
    assert_eq!(columns, ["scenario", "lab", "kind k8s 1.35"]);
    let cells: Vec<(String, String)> = select(&doc, "table.matrix tbody td")
        .iter()
        .map(|td| {
            (
                td.value().attr("class").unwrap_or("").to_string(),
                td.text().collect::<String>(),
            )
        })
        .collect();
    assert_eq!(cells[0].0, "passed");
    assert!(cells[0].1.starts_with("PASS 3.4s"), "{cells:?}");
    assert_eq!(cells[1].0, "skipped", "{cells:?}");
    assert_eq!(cells[3].0, "failed", "{cells:?}");
    assert!(
        cells[4].1.contains("XFAIL") && cells[4].1.contains("kuberay/pull/1312"),
        "known bug linked: {cells:?}"
    );
    assert!(
        select(
            &doc,
            "a[href=\"https://github.com/ray-project/kuberay/pull/1312\"]"
        )
        .len()
            >= 2,
        "known bug linked in the matrix and the scenario"
    );

    // Every scenario expandable, with its steps' evidence; text escaped.
    assert_eq!(select(&doc, "details").len(), 4);
    assert!(text.contains("dashboard &lt;message&gt; &amp; more"));
    assert!(text.contains("request script http://h/ray/static/js/main.js: 200"));
    assert!(
        select(&doc, ".banner")[0]
            .text()
            .collect::<String>()
            .contains("interrupted")
    );

    // The mTLS matrix, coloured by cell.
    let mtls: Vec<(String, String)> = select(&doc, "table.mtls tbody tr")
        .iter()
        .map(|tr| {
            (
                tr.value().attr("class").unwrap_or("").to_string(),
                tr.text().collect::<String>(),
            )
        })
        .collect();
    assert_eq!(mtls.len(), 3, "{mtls:?}");
    assert_eq!(mtls[0].0, "ok");
    assert_eq!(mtls[1].0, "wrong");
    assert!(mtls[1].1.starts_with("TLS without client cert"), "{mtls:?}");

    // The screenshot is in the page itself, byte for byte.
    let images = select(&doc, "img");
    assert_eq!(images.len(), 1);
    let src = images[0].value().attr("src").unwrap();
    let data = src
        .strip_prefix("data:image/png;base64,")
        .unwrap_or_else(|| panic!("not embedded: {src}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert_eq!(bytes, std::fs::read(&shot).unwrap());

    // Nothing external to load: no stylesheet links, scripts, frames, and
    // every src is a data: URI.
    for css in ["link", "script", "iframe", "object", "embed"] {
        assert!(select(&doc, css).is_empty(), "a <{css}> element");
    }
    for el in select(&doc, "[src]") {
        assert!(el.value().attr("src").unwrap().starts_with("data:"));
    }

    // Artifacts linked relative to the page.
    let hrefs: Vec<&str> = select(&doc, "a[href]")
        .iter()
        .filter_map(|a| a.value().attr("href"))
        .collect();
    assert!(hrefs.contains(&"dashboard-lab/nginx.conf"), "{hrefs:?}");
    assert!(
        hrefs.contains(&"dashboard-lab/dashboard-renders/screenshot.png"),
        "{hrefs:?}"
    );

    // `latest` names this run, and moves to the next one.
    let latest = reports.path().join(LATEST_LINK);
    assert_eq!(
        std::fs::read_link(&latest).unwrap(),
        PathBuf::from(&run.run_id)
    );
    let mut next = run.clone();
    next.run_id = "20261124-150000-2".into();
    write_html(&next, reports.path()).unwrap();
    assert_eq!(
        std::fs::read_link(&latest).unwrap(),
        PathBuf::from(&next.run_id)
    );
    assert!(latest.join(HTML_FILE).is_file());
}

/// `rayconform run` (what `scripts/run` runs) writes the page and says
/// where; the lab must be set up (`scripts/setup`).
#[test]
fn rayconform_run_writes_the_html_report() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = dir.path().join("html-report-probe.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: rayconform.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: html-report-probe\nspec:\n  targets: [lab]\n  steps:\n    - name: closed port\n      probe: {{ tcp: {{ address: \"127.0.0.1:{port}\", expect: refused }} }}\n"
        ),
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let out = Command::new(env!("CARGO_BIN_EXE_rayconform"))
        .current_dir(&root)
        .args(["run", "--target", "lab", "--junit"])
        .arg(&junit)
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let html = stdout
        .lines()
        .find_map(|l| l.strip_prefix("HTML: "))
        .unwrap_or_else(|| panic!("no HTML line:\n{stdout}"));
    let html = root.join(html);
    assert_eq!(html.file_name().unwrap(), HTML_FILE);
    let text = std::fs::read_to_string(&html).unwrap();
    let doc = Html::parse_document(&text);
    assert!(doc.errors.is_empty(), "{:?}", doc.errors);
    let rows: Vec<String> = select(&doc, "table.matrix tbody tr > th")
        .iter()
        .map(|th| th.text().collect())
        .collect();
    assert_eq!(rows, ["html-report-probe"]);
    assert!(text.contains("closed port"), "{text}");
    assert!(html.starts_with(root.join("reports")), "{}", html.display());
}
