//! The `command` step: a program run in its own process group, so that
//! whatever it starts ends with it — on success, on its timeout, and when
//! the step is abandoned (interrupt, scenario deadline).

use crate::process_groups;
use crate::scenario::CommandSpec;
use crate::targets::StepError;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// How much of each output stream is kept (the end of it).
const KEEP_BYTES: usize = 64 * 1024;

/// How long the output readers may take after the group is gone (a
/// process that left the group could still hold a pipe open).
const READER_GRACE: Duration = Duration::from_secs(2);

/// A process group we started; dropping it SIGKILLs the whole group.
struct ProcessGroup {
    pgid: i32,
}

impl ProcessGroup {
    fn new(pgid: i32) -> Self {
        process_groups::register_group(pgid);
        ProcessGroup { pgid }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // ESRCH (already gone) is fine: nothing is left to end.
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        process_groups::unregister_group(self.pgid);
    }
}

/// The tail of one output stream, filled while the program runs so that a
/// timed-out program's output is still there.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn spawn_reader(
        &self,
        mut stream: impl AsyncRead + Unpin + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let buffer = self.0.clone();
        tokio::spawn(async move {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stream.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                let mut b = buffer.lock().unwrap_or_else(|e| e.into_inner());
                b.extend_from_slice(&chunk[..n]);
                if b.len() > KEEP_BYTES {
                    let extra = b.len() - KEEP_BYTES;
                    b.drain(..extra);
                }
            }
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// Runs `cmd` in `cwd` for at most `timeout`, in its own process group,
/// which is killed when the program ends, times out, or this future is
/// dropped.
pub async fn run_command(
    cmd: &CommandSpec,
    cwd: &Path,
    timeout: Duration,
) -> Result<String, StepError> {
    let shown = cmd.argv.join(" ");
    let mut command = tokio::process::Command::new(&cmd.argv[0]);
    command
        .args(&cmd.argv[1..])
        .envs(&cmd.env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| StepError::broken_by(format!("cannot run `{}`", cmd.argv[0]), e))?;
    let group = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .map(ProcessGroup::new);
    let (stdout, stderr) = (Captured::default(), Captured::default());
    let mut readers = Vec::new();
    if let Some(s) = child.stdout.take() {
        readers.push(stdout.spawn_reader(s));
    }
    if let Some(s) = child.stderr.take() {
        readers.push(stderr.spawn_reader(s));
    }
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    // Whatever the program left running in its group ends with it.
    drop(group);
    if waited.is_err() {
        let _ = child.kill().await;
    }
    let _ = tokio::time::timeout(READER_GRACE, futures::future::join_all(readers)).await;
    let (out, err) = (stdout.text(), stderr.text());
    let status = match waited {
        Err(_) => {
            return Err(StepError::Failed {
                message: format!(
                    "`{shown}` did not finish within {}",
                    humantime::format_duration(timeout)
                ),
                evidence: vec![
                    "killed at the timeout with its process group".to_string(),
                    format!("stdout (until the timeout): {}", tail(&out)),
                    format!("stderr (until the timeout): {}", tail(&err)),
                ],
            });
        }
        Ok(Err(e)) => {
            return Err(StepError::broken_by(format!("waiting for `{shown}`"), e));
        }
        Ok(Ok(status)) => status,
    };
    let code = status.code().unwrap_or(-1);
    let evidence = vec![
        format!("exit code {code}"),
        format!("stdout: {}", tail(&out)),
        format!("stderr: {}", tail(&err)),
    ];
    if code != cmd.expect_exit {
        return Err(StepError::Failed {
            message: format!("`{shown}` exited {code}, expected {}", cmd.expect_exit),
            evidence,
        });
    }
    if let Some(needle) = &cmd.output_contains
        && !out.contains(needle.as_str())
        && !err.contains(needle.as_str())
    {
        return Err(StepError::Failed {
            message: format!("output of `{shown}` does not contain {needle:?}"),
            evidence,
        });
    }
    Ok(format!("`{shown}` exited {code}"))
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
