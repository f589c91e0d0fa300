//! Running external programs (helm, istioctl, kind) with a deadline and
//! their output kept for the report.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// A program that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// It could not be started.
    #[error("cannot start `{program}`: {reason}")]
    Spawn {
        /// Program name.
        program: String,
        /// Why.
        reason: String,
    },
    /// It exited unsuccessfully.
    #[error("`{command}` exited with {status}:\n{output}")]
    Failed {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Its stdout and stderr (tail).
        output: String,
    },
    /// It ran past its deadline (and was killed).
    #[error("`{command}` did not finish within {}s:\n{output}", timeout.as_secs())]
    TimedOut {
        /// The command line.
        command: String,
        /// The deadline.
        timeout: Duration,
        /// What it printed so far is not available after a kill.
        output: String,
    },
}

/// What a successful program printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

/// Output kept in errors: the last lines are the ones that say why.
const KEEP_CHARS: usize = 8000;

/// Runs `program args...` with `env`, killing it after `timeout`.
pub async fn run(
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<Output, CommandError> {
    let command_line = format!("{} {}", program.display(), args.join(" "));
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command.spawn().map_err(|e| CommandError::Spawn {
        program: program.display().to_string(),
        reason: e.to_string(),
    })?;
    // On timeout the future (and with it the child) is dropped: kill_on_drop
    // ends the process.
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(CommandError::TimedOut {
            command: command_line,
            timeout,
            output: String::new(),
        }),
        Ok(Err(e)) => Err(CommandError::Spawn {
            program: program.display().to_string(),
            reason: e.to_string(),
        }),
        Ok(Ok(out)) => {
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if out.status.success() {
                Ok(Output { stdout, stderr })
            } else {
                Err(CommandError::Failed {
                    command: command_line,
                    status: out.status.to_string(),
                    output: tail(&format!("{stdout}{stderr}")),
                })
            }
        }
    }
}

/// The last `KEEP_CHARS` characters of `text`.
pub fn tail(text: &str) -> String {
    let count = text.chars().count();
    if count <= KEEP_CHARS {
        text.to_string()
    } else {
        let skipped: String = text.chars().skip(count - KEEP_CHARS).collect();
        format!("[... {} characters cut]\n{skipped}", count - KEEP_CHARS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_and_timeouts_are_told_apart() {
        let sh = Path::new("/bin/sh");
        let ok = run(
            sh,
            &["-c".into(), "echo hi".into()],
            &[],
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(ok.unwrap().stdout, "hi\n");
        let failed = run(
            sh,
            &["-c".into(), "echo boom >&2; exit 3".into()],
            &[],
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(failed.to_string().contains("exit status: 3"), "{failed}");
        assert!(failed.to_string().contains("boom"), "{failed}");
        let started = std::time::Instant::now();
        let slow = run(
            sh,
            &["-c".into(), "sleep 30".into()],
            &[],
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(matches!(slow, CommandError::TimedOut { .. }), "{slow}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
