//! The HTML report: `reports/<run-id>/index.html`, one self-contained file
//! (no external asset: styles inline, screenshots as `data:` URIs) with
//! the scenario × target × version matrix, each scenario's steps and their
//! evidence, mTLS matrices as coloured tables, browser screenshots and
//! links to the artifacts. `reports/latest` points at the newest run.

use super::matrix::{Matrix, column_of};
use crate::runner::{Phase, Reproduction, RunOutcome, ScenarioOutcome, Status, StepResult};
use base64::Engine;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The report's file name inside the run's folder.
pub const HTML_FILE: &str = "index.html";

/// The link in the reports folder that names the newest run's folder.
pub const LATEST_LINK: &str = "latest";

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
.passed{background:#d9f2d9}.failed{background:#f8d0d0}.error{background:#f5c08a}.skipped{background:#e8e8e8}\
.ok{background:#d9f2d9}.wrong{background:#f8d0d0}\
pre{background:#f6f6f6;padding:.4em;white-space:pre-wrap;margin:.2em 0 .6em}\
summary{cursor:pointer;padding:.2em}details{border:1px solid #ddd;margin:.4em 0;padding:.2em .6em}\
img{max-width:100%;border:1px solid #aaa}.banner{background:#f5c08a;padding:.5em;font-weight:bold}";

/// The whole page for `run`; artifact links are relative to `run_dir`
/// (the folder the page is written into).
pub fn html_report(run: &RunOutcome, run_dir: &Path) -> String {
    let mut out = String::new();
    let title = format!("rayconform run {}", run.run_id);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    if run.interrupted {
        out.push_str("<p class=\"banner\">This run was interrupted: scenarios that did not finish are marked so.</p>\n");
    }
    let (passed, failed, errors, skipped) = run.totals();
    let _ = writeln!(
        out,
        "<p>{} scenario run(s) in {:.1}s: {passed} passed, {failed} failed, {errors} errors, {skipped} skipped.</p>",
        run.scenarios.len(),
        run.duration.as_secs_f64()
    );
    for p in &run.shutdown_problems {
        let _ = writeln!(out, "<p class=\"error\">target shutdown: {}</p>", esc(p));
    }
    matrix(&mut out, run);
    out.push_str("<h2>Scenarios</h2>\n");
    for (i, o) in run.scenarios.iter().enumerate() {
        scenario_section(&mut out, i, o, run_dir);
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Writes `<reports_dir>/<run-id>/index.html` (atomically) and points
/// `<reports_dir>/latest` at the run's folder; returns the page's path.
pub fn write_html(run: &RunOutcome, reports_dir: &Path) -> std::io::Result<PathBuf> {
    let run_dir = reports_dir.join(&run.run_id);
    std::fs::create_dir_all(&run_dir)?;
    let path = run_dir.join(HTML_FILE);
    let mut tmp = tempfile::NamedTempFile::new_in(&run_dir)?;
    tmp.write_all(html_report(run, &run_dir).as_bytes())?;
    // Readable like any report (the temporary file starts private).
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path).map_err(|e| e.error)?;
    // A new link under a temporary name, renamed over the old one.
    let latest = reports_dir.join(LATEST_LINK);
    let staged = reports_dir.join(format!(".{LATEST_LINK}-{}", run.run_id));
    let _ = std::fs::remove_file(&staged);
    std::os::unix::fs::symlink(&run.run_id, &staged)?;
    std::fs::rename(&staged, &latest)?;
    Ok(path)
}

/// Scenario rows × (target, Kubernetes version) columns.
fn matrix(out: &mut String, run: &RunOutcome) {
    let matrix = Matrix::of(run);
    out.push_str("<h2>Matrix</h2>\n<table class=\"matrix\">\n<thead><tr><th>scenario</th>");
    for column in &matrix.columns {
        let _ = write!(out, "<th>{}</th>", esc(&column.name()));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &matrix.rows {
        let _ = write!(out, "<tr><th>{}</th>", esc(row));
        for column in &matrix.columns {
            match matrix.cell(row, column) {
                None => out.push_str("<td>—</td>"),
                Some((i, o)) => {
                    let _ = write!(
                        out,
                        "<td class=\"{}\"><a href=\"#s{i}\">{}</a> {:.1}s{}</td>",
                        status_class(o.status),
                        mark(o),
                        o.duration.as_secs_f64(),
                        known_bug_link(o)
                    );
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn scenario_section(out: &mut String, i: usize, o: &ScenarioOutcome, run_dir: &Path) {
    let open = if o.status == Status::Passed {
        ""
    } else {
        " open"
    };
    let _ = writeln!(
        out,
        "<details id=\"s{i}\"{open}><summary class=\"{}\"><b>{}</b> {} on {} ({:.1}s){}</summary>",
        status_class(o.status),
        mark(o),
        esc(&o.scenario),
        esc(&column_of(o).name()),
        o.duration.as_secs_f64(),
        if o.message.is_empty() {
            String::new()
        } else {
            format!(" — {}", esc(&o.message))
        }
    );
    let _ = writeln!(
        out,
        "<p>file <code>{}</code>{}</p>",
        esc(&o.file.display().to_string()),
        known_bug_link(o)
    );
    if !o.modelled.is_empty() {
        let _ = writeln!(
            out,
            "<p>modelled by the target: {}</p>",
            esc(&o.modelled.join("; "))
        );
    }
    out.push_str("<ol class=\"steps\">\n");
    for s in &o.steps {
        let phase = match s.phase {
            Phase::Setup => "setup",
            Phase::Steps => "step",
            Phase::Finally => "finally",
            Phase::Cleanup => "cleanup",
        };
        let class = match &s.result {
            StepResult::Passed { .. } => "ok",
            StepResult::Skipped { .. } | StepResult::NotRun { .. } => "skipped",
            _ => "wrong",
        };
        let attempts = if s.attempts > 1 {
            format!(", {} attempts", s.attempts)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "<li><span class=\"{class}\">[{phase}] <b>{}</b> &lt;{}&gt; in {} ms{attempts}</span>: {}",
            esc(&s.name),
            esc(&s.kind),
            s.duration.as_millis(),
            esc(&s.result.to_string())
        );
        for (n, earlier) in s.retried.iter().enumerate() {
            let _ = writeln!(out, "<br>attempt {}: {}", n + 1, esc(&earlier.to_string()));
        }
        let evidence: &[String] = match &s.result {
            StepResult::Passed { evidence, .. } | StepResult::Failed { evidence, .. } => evidence,
            _ => &[],
        };
        mtls_table(out, evidence);
        if !evidence.is_empty() {
            let _ = writeln!(out, "<pre>{}</pre>", esc(&evidence.join("\n")));
        }
        for shot in s.screenshots() {
            screenshot(out, &shot, run_dir);
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ol>\n");
    if let Some(dir) = &o.artifacts {
        artifact_links(out, dir, run_dir);
    }
    out.push_str("</details>\n");
}

/// An mTLS probe's matrix (its `[ok]` / `[WRONG]` evidence lines, one per
/// client: `[ok] plaintext: expected refused, refused at stage TLS: ...`)
/// as a coloured table; nothing for other evidence.
fn mtls_table(out: &mut String, evidence: &[String]) {
    let cells: Vec<(bool, &str, &str, &str)> =
        evidence.iter().filter_map(|l| mtls_cell(l)).collect();
    if cells.is_empty() {
        return;
    }
    out.push_str("<table class=\"mtls\"><thead><tr><th>client</th><th>expected</th><th>observed</th></tr></thead><tbody>\n");
    for (ok, client, expected, observed) in cells {
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            if ok { "ok" } else { "wrong" },
            esc(client),
            esc(expected),
            esc(observed)
        );
    }
    out.push_str("</tbody></table>\n");
}

/// One mTLS matrix line: (as expected, client, expected, observed).
fn mtls_cell(line: &str) -> Option<(bool, &str, &str, &str)> {
    let (ok, rest) = match line.strip_prefix("[ok] ") {
        Some(rest) => (true, rest),
        None => (false, line.strip_prefix("[WRONG] ")?),
    };
    let (client, rest) = rest.split_once(": expected ")?;
    let (expected, observed) = rest.split_once(", ")?;
    Some((ok, client, expected, observed))
}

/// A screenshot inline as a `data:` URI (or why it is not there).
fn screenshot(out: &mut String, path: &Path, run_dir: &Path) {
    match std::fs::read(path) {
        Ok(png) => {
            let _ = writeln!(
                out,
                "<figure><img alt=\"screenshot {}\" src=\"data:image/png;base64,{}\"><figcaption><a href=\"{}\">{}</a></figcaption></figure>",
                esc(&path.display().to_string()),
                base64::engine::general_purpose::STANDARD.encode(png),
                esc(&link_to(path, run_dir)),
                esc(&path.display().to_string())
            );
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "<p>screenshot {} not readable: {}</p>",
                esc(&path.display().to_string()),
                esc(&e.to_string())
            );
        }
    }
}

/// Every file in the scenario's artifacts folder, linked.
fn artifact_links(out: &mut String, dir: &Path, run_dir: &Path) {
    let mut files = Vec::new();
    collect_files(dir, &mut files, 3);
    files.sort();
    let _ = write!(
        out,
        "<p>artifacts: <a href=\"{}\">{}</a></p>\n<ul>\n",
        esc(&link_to(dir, run_dir)),
        esc(&dir.display().to_string())
    );
    for f in &files {
        let shown = f.strip_prefix(dir).unwrap_or(f).display().to_string();
        let _ = writeln!(
            out,
            "<li><a href=\"{}\">{}</a></li>",
            esc(&link_to(f, run_dir)),
            esc(&shown)
        );
    }
    out.push_str("</ul>\n");
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>, depth: u32) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if depth > 0 {
                collect_files(&path, out, depth - 1);
            }
        } else {
            out.push(path);
        }
    }
}

/// A link from the page (in `run_dir`) to `path`: relative when `path` is
/// inside the run's folder, else the path itself.
fn link_to(path: &Path, run_dir: &Path) -> String {
    let normal = |p: &Path| -> PathBuf { p.components().collect() };
    match normal(path).strip_prefix(normal(run_dir)) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

fn mark(o: &ScenarioOutcome) -> &'static str {
    match o.status {
        Status::Passed if o.reproduction == Some(Reproduction::Modelled) => "XFAIL [modelled]",
        Status::Passed if o.known_bug.is_some() => "XFAIL",
        Status::Passed => "PASS",
        Status::Failed => "FAIL",
        Status::Error => "ERROR",
        Status::Skipped => "SKIP",
    }
}

fn status_class(status: Status) -> &'static str {
    match status {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Error => "error",
        Status::Skipped => "skipped",
    }
}

fn known_bug_link(o: &ScenarioOutcome) -> String {
    match &o.known_bug {
        Some(url) => format!(" (known bug <a href=\"{0}\">{0}</a>)", esc(url)),
        None => String::new(),
    }
}

/// Text made safe for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
