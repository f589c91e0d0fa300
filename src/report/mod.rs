//! Reports: JUnit XML, a human summary, JSON.

pub mod coverage;
mod html;
mod junit;
mod matrix;
mod step_summary;
mod summary;

pub use html::{HTML_FILE, LATEST_LINK, html_report, write_html};
pub use junit::{JunitGranularity, junit_report, junit_report_with, write_junit, write_junit_with};
pub use step_summary::{STEP_SUMMARY_ENV, append_step_summary, step_summary_markdown};
pub use summary::{outcome_line, problem_log, step_log, summary_text};
