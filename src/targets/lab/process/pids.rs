//! What `/proc` says about processes we started: a process's children and
//! whether a pid still runs (Linux only, as the lab is).

/// The pids of `parent`'s child processes.
pub fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if stat_field(&stat, 1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            children.push(pid);
        }
    }
    children
}

/// Whether `pid` runs (a zombie waiting to be reaped counts as gone).
pub fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat_field(&stat, 0).map(|state| state != "Z" && state != "X"))
        .unwrap_or(false)
}

/// The `n`th field after the parenthesised command name of a
/// `/proc/<pid>/stat` line (0: state, 1: parent pid, ...). The name may hold
/// spaces and parentheses, so fields are counted from its last `)`.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_child_is_listed_and_running_until_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(children_of(std::process::id()).contains(&pid));
        assert!(is_running(pid));
        child.kill().unwrap();
        // Killed but not reaped: a zombie, which counts as gone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while is_running(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!is_running(pid), "a killed child is not running");
        child.wait().unwrap();
        assert!(!children_of(std::process::id()).contains(&pid));
    }
}
