//! The run as Markdown for a GitHub Actions job summary: appended to the
//! file `GITHUB_STEP_SUMMARY` names, so the workflow run's page shows the
//! scenario × target × version matrix at a glance.

use super::matrix::Matrix;
use crate::runner::{Reproduction, RunOutcome, ScenarioOutcome, Status};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// The environment variable GitHub Actions sets to the summary file.
pub const STEP_SUMMARY_ENV: &str = "GITHUB_STEP_SUMMARY";

/// The Markdown: a heading, the totals, the matrix, and one line per
/// scenario that did not pass.
pub fn step_summary_markdown(run: &RunOutcome) -> String {
    let mut out = String::new();
    let (passed, failed, errors, skipped) = run.totals();
    let _ = writeln!(out, "### rayconform run `{}`\n", run.run_id);
    let _ = writeln!(
        out,
        "{} scenario run(s) in {:.1}s: {passed} passed, {failed} failed, {errors} errors, {skipped} skipped{}\n",
        run.scenarios.len(),
        run.duration.as_secs_f64(),
        if run.interrupted {
            " — **interrupted**"
        } else {
            ""
        }
    );
    let matrix = Matrix::of(run);
    out.push_str("| scenario |");
    for column in &matrix.columns {
        let _ = write!(out, " {} |", cell(&column.name()));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(matrix.columns.len()));
    out.push('\n');
    for row in &matrix.rows {
        let _ = write!(out, "| {} |", cell(row));
        for column in &matrix.columns {
            let text = matrix
                .cell(row, column)
                .map(|(_, o)| verdict(o))
                .unwrap_or_else(|| "—".into());
            let _ = write!(out, " {} |", text);
        }
        out.push('\n');
    }
    let problems: Vec<&ScenarioOutcome> = run
        .scenarios
        .iter()
        .filter(|o| matches!(o.status, Status::Failed | Status::Error))
        .collect();
    if !problems.is_empty() {
        out.push_str("\n**Did not pass**\n\n");
        for o in problems {
            let _ = writeln!(
                out,
                "- `{}` on {}: {}",
                o.scenario,
                o.target,
                one_line(&o.message)
            );
        }
    }
    out.push('\n');
    out
}

/// Appends the run's Markdown to `path` (the job summary file).
pub fn append_step_summary(run: &RunOutcome, path: &Path) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(step_summary_markdown(run).as_bytes())
}

/// A matrix cell: the verdict, its time, and the known bug's link.
fn verdict(o: &ScenarioOutcome) -> String {
    let word = match o.status {
        Status::Passed if o.reproduction == Some(Reproduction::Modelled) => "✅ XFAIL [modelled]",
        Status::Passed if o.known_bug.is_some() => "✅ XFAIL",
        Status::Passed => "✅ PASS",
        Status::Failed => "❌ FAIL",
        Status::Error => "⚠️ ERROR",
        Status::Skipped => "⏭️ SKIP",
    };
    let bug = match &o.known_bug {
        Some(url) => format!(" ([known bug]({}))", url.replace(')', "%29")),
        None => String::new(),
    };
    format!("{word} {:.1}s{bug}", o.duration.as_secs_f64())
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
