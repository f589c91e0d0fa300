//! Live progress on the terminal: a spinner per running scenario when
//! stderr is a terminal, plain lines otherwise (CI logs).

use crate::report::outcome_line;
use crate::runner::{Event, EventSink};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An event sink that shows progress; `quiet` keeps only finished lines.
pub fn terminal_progress(quiet: bool) -> EventSink {
    let interactive = std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    let bars: Arc<Mutex<HashMap<String, ProgressBar>>> = Arc::default();
    Arc::new(move |event| match event {
        Event::ScenarioStarted { id } if interactive && !quiet => {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed:>4}] {prefix}: {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(id.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bars.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, bar);
        }
        Event::StepStarted { id, step } | Event::Message { id, text: step } => {
            if let Some(bar) = bars.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
                bar.set_message(step);
            } else if !interactive && !quiet {
                eprintln!("  {id}: {step}");
            }
        }
        Event::ScenarioFinished(outcome) => {
            let id = format!("{}@{}", outcome.scenario, outcome.target);
            if let Some(bar) = bars.lock().unwrap_or_else(|e| e.into_inner()).remove(&id) {
                bar.finish_and_clear();
            }
            let _ = multi.println(outcome_line(&outcome));
            if !interactive {
                eprintln!("{}", outcome_line(&outcome));
            }
        }
        Event::ScenarioStarted { id } => {
            if !quiet {
                eprintln!("start {id}");
            }
        }
    })
}
