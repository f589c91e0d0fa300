//! Inside the lab target, `model` (objects, routes, nginx configuration:
//! pure data turned into config text) never uses `process` (the real
//! processes): the stand-in can be planned, rendered and tested without
//! starting anything. `process` may use `model`, not the reverse.

use std::path::{Path, PathBuf};

fn lab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/targets/lab")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each reference to the lab's `process` module in `line`: a path segment
/// `process` followed by `::` (`super::process::x`, `lab::process::{..}`,
/// `process::nginx`), or a `use` of the module itself.
fn process_references(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for (at, _) in code.match_indices("process") {
        let before_ok =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let rest = &code[at + "process".len()..];
        let after_path = rest.starts_with("::");
        let used_alone =
            code.trim_start().starts_with("use ") && rest.trim_start().starts_with(';');
        // `std::process::Command` is the standard library, not the lab's.
        let std_process = code[..at].ends_with("std::");
        if before_ok && (after_path || used_alone) && !std_process {
            found.push(code.trim().to_string());
        }
    }
    found
}

#[test]
fn the_lab_model_never_uses_the_lab_processes() {
    let model = lab_dir().join("model");
    let mut files = Vec::new();
    rust_files(&model, &mut files);
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the model's files in {}, found {files:?}",
        model.display()
    );
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for reference in process_references(line) {
                found.push(format!("{}:{}: {reference}", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "lab/model/ uses lab/process/:\n{}",
        found.join("\n")
    );
}

#[test]
fn references_to_the_process_module_are_recognised() {
    assert_eq!(
        process_references("use super::super::process::nginx::Nginx;").len(),
        1
    );
    assert_eq!(
        process_references("use crate::targets::lab::process::{ports, venv};").len(),
        1
    );
    assert_eq!(
        process_references("    let p = process::ports::free_port();").len(),
        1
    );
    assert_eq!(
        process_references("use crate::targets::lab::process;").len(),
        1
    );
    assert!(process_references("use std::process::Command;").is_empty());
    assert!(process_references("// process::nginx in a comment").is_empty());
    assert!(process_references("fn processes() -> String { subprocess::x() }").is_empty());
}
