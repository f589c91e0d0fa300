//! SIGINT/SIGTERM handling: the first signal asks the run to stop starting
//! new steps and unwind; the second exits at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Exit code after a second signal.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Installs the handlers; the returned token is cancelled on the first
/// signal. Must be called inside a tokio runtime.
pub fn install() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let first = token.clone();
    tokio::spawn(async move {
        for count in 1.. {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            if count == 1 {
                eprintln!(
                    "\n{name}: stopping — no new steps start; cleaning up and writing the report (signal again to exit now)"
                );
                first.cancel();
            } else {
                eprintln!("\n{name} again: exiting now; cleanup skipped");
                std::process::exit(EXIT_INTERRUPTED);
            }
        }
    });
    Ok(token)
}
