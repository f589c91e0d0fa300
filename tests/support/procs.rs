//! Processes as Linux's `/proc` shows them, for tests that check nothing
//! is left running. Included with `#[path = "support/procs.rs"] mod procs;`
//! so a test needs neither the API double nor anything else of `support`.

#![allow(dead_code)] // each test uses the part it needs

/// A live (not zombie) process.
#[derive(Debug, Clone, Copy)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
}

/// Every live process.
pub fn live_processes() -> Vec<Process> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name may contain spaces and parentheses: the fields
        // (state, ppid, pgrp, ...) follow the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") {
            continue; // a zombie is already gone
        }
        let number = |i: usize| fields.get(i).and_then(|f| f.parse().ok());
        if let (Some(ppid), Some(pgid)) = (number(1), number(2)) {
            found.push(Process { pid, ppid, pgid });
        }
    }
    found
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}
