//! Why a run (or one step of it) stopped before its end, as values: a
//! signal is a typed [`Signal`], handed to the run as a [`CancelReason`]
//! through a [`Cancel`]; nothing decides on the text `"interrupted"`.

use serde::Serialize;
use std::fmt;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// A signal that asks the run to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    #[serde(rename = "SIGINT")]
    Interrupt,
    /// SIGTERM.
    #[serde(rename = "SIGTERM")]
    Terminate,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

/// Why something was stopped before it finished (or before it started).
/// Reports show it as its one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The run was asked to stop: by a signal, or (`None`) by the code that
    /// drives the runner.
    Interrupted {
        /// The signal, when one asked.
        signal: Option<Signal>,
    },
    /// The scenario's own `timeout` was used up before this step could
    /// start.
    ScenarioBudget,
}

impl CancelReason {
    /// Whether the whole run was asked to stop (as opposed to one scenario
    /// running out of time).
    pub fn is_interruption(self) -> bool {
        matches!(self, CancelReason::Interrupted { .. })
    }
}

impl Serialize for CancelReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::Interrupted { signal: Some(s) } => write!(f, "interrupted ({s})"),
            CancelReason::Interrupted { signal: None } => f.write_str("interrupted"),
            CancelReason::ScenarioBudget => {
                f.write_str("the scenario's timeout was reached before this step")
            }
        }
    }
}

/// Asks a run to stop, once, with a reason. Cloning shares it.
///
/// ```
/// use rayconform::runner::{Cancel, CancelReason, Signal};
/// let cancel = Cancel::new();
/// let handle = cancel.clone();
/// handle.cancel(CancelReason::Interrupted { signal: Some(Signal::Interrupt) });
/// assert!(cancel.is_cancelled());
/// assert_eq!(
///     cancel.reason(),
///     Some(CancelReason::Interrupted { signal: Some(Signal::Interrupt) })
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    token: CancellationToken,
    reason: Arc<OnceLock<CancelReason>>,
}

impl Cancel {
    /// Not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the run for `reason`; the first reason given is kept.
    pub fn cancel(&self, reason: CancelReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Stops the run on behalf of the code driving it (no signal).
    pub fn interrupt(&self) {
        self.cancel(CancelReason::Interrupted { signal: None });
    }

    /// Whether the run was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why the run was asked to stop, once it was.
    pub fn reason(&self) -> Option<CancelReason> {
        self.is_cancelled().then(|| {
            self.reason
                .get()
                .copied()
                .unwrap_or(CancelReason::Interrupted { signal: None })
        })
    }

    /// Resolves when the run is asked to stop, with the reason.
    pub async fn cancelled(&self) -> CancelReason {
        self.token.cancelled().await;
        self.reason()
            .unwrap_or(CancelReason::Interrupted { signal: None })
    }
}
