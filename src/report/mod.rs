//! Reports: JUnit XML, a human summary, JSON.

pub mod coverage;
mod junit;
mod summary;

pub use junit::{junit_report, write_junit};
pub use summary::{outcome_line, problem_log, step_log, summary_text};
