//! Located errors from loading scenario files.

use std::fmt;
use std::path::PathBuf;

/// One problem in a scenario file, with where it is and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
    /// Where in the document, e.g. `spec.steps[2].wait.timeout` (may be empty).
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// The offending source line with a caret under the column, if known.
    pub snippet: Option<String>,
}

impl LoadError {
    /// An error about the file as a whole (unreadable, too large, ...).
    pub fn whole_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        LoadError {
            file: file.into(),
            line: 0,
            column: 0,
            path: String::new(),
            message: message.into(),
            snippet: None,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The source line `line` (1-based) with a caret under `column`.
pub fn snippet(source: &str, line: u64, column: u64) -> Option<String> {
    if line == 0 {
        return None;
    }
    let text = source.lines().nth(usize::try_from(line - 1).ok()?)?;
    let text: String = text.chars().take(200).collect();
    let pad = " ".repeat(
        usize::try_from(column.saturating_sub(1))
            .unwrap_or(0)
            .min(200),
    );
    Some(format!("  {line:>4} | {text}\n       | {pad}^"))
}
