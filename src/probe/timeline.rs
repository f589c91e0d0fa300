//! Evidence lines stamped with the time since the probe started.

use std::time::{Duration, Instant};

/// A probe's evidence, each line prefixed with `+<ms>`.
#[derive(Debug, Clone)]
pub struct Timeline {
    start: Instant,
    lines: Vec<String>,
}

impl Timeline {
    /// Starts the clock now.
    pub fn new() -> Self {
        Timeline {
            start: Instant::now(),
            lines: Vec::new(),
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// When the clock started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Adds a line stamped with the elapsed time.
    pub fn note(&mut self, line: impl AsRef<str>) {
        let line = format!("+{} {}", ms(self.elapsed()), line.as_ref());
        self.lines.push(line);
    }

    /// The lines so far.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The lines, consuming the timeline.
    pub fn into_lines(self) -> Vec<String> {
        self.lines
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

/// A duration as whole milliseconds, e.g. `12ms`.
pub fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}
