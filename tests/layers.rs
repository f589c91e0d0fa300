//! Layers only point down: every `crate::<module>` reference in `src/`
//! (use statements, paths, doc links) goes from a module to one it is
//! allowed to use, and the allowed uses form no cycle.
//!
//! `RAYCONFORM_LAYERS_SRC` points the check at another `src/` folder (e.g.
//! an older commit's, extracted with `git archive`) to see what it finds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top module of the library and what it may use, highest first.
/// An entry names a module (`tls`) or a part of one (`probe::spec`).
/// `main.rs` (the binary) may use anything; `lib.rs` only declares modules.
const ALLOWED: &[(&str, &[&str])] = &[
    ("progress", &["report", "runner"]),
    ("report", &["runner", "targets"]),
    (
        "runner",
        &[
            "manifest",
            "plan",
            "probe",
            "process_groups",
            "scenario",
            "scratch_dirs",
            "targets",
            "tls",
            "verdict",
        ],
    ),
    ("plan", &["manifest", "scenario", "targets"]),
    (
        "targets",
        &[
            "gateway_api",
            "install",
            "k8s",
            "manifest",
            // The lab asks its Ray heads' GCS and dashboards with the probes'
            // clients: `probe` is a leaf library.
            "probe::gcs_nodes",
            "probe::http_client",
            "process_groups",
            "scenario",
            "scratch_dirs",
            "tls",
            "tools",
        ],
    ),
    // The scenario format owns no probe, install or Kubernetes code: only
    // the shapes it reads (probe specs, install component specs through
    // the install registry, wait specs), the checks components make on
    // their own fields, and the address syntax the loader checks.
    (
        "scenario",
        &[
            "install",
            "json_match",
            "k8s::select_spec",
            "k8s::wait_spec",
            "probe::spec",
            "probe::connection",
            "tls",
        ],
    ),
    ("install", &["gateway_api", "k8s", "manifest", "tools"]),
    ("k8s", &["json_match", "manifest"]),
    // The browser probe's Chromium runs in a process group a hard exit kills,
    // with a profile folder it removes.
    (
        "probe",
        &[
            "json_match",
            "process_groups",
            "scratch_dirs",
            "tls",
            "verdict",
        ],
    ),
    // Our typed Gateway API model: a leaf the install and the lab read.
    ("gateway_api", &[]),
    ("tls", &[]),
    ("verdict", &[]),
    ("manifest", &[]),
    ("json_match", &[]),
    ("tools", &[]),
    ("process_groups", &[]),
    ("scratch_dirs", &[]),
];

fn src_dir() -> PathBuf {
    match std::env::var_os("RAYCONFORM_LAYERS_SRC") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
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

/// The top module a file belongs to (`src/probe/tcp.rs` → `probe`).
fn top_module(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    let first = first.as_os_str().to_str().unwrap();
    first.strip_suffix(".rs").unwrap_or(first).to_string()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The path after each `crate::` on a line: `probe::spec::TlsSpec`, or
/// one path per item of `crate::{a::b, c}`.
fn crate_paths(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at].chars().next_back().is_some_and(is_ident);
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue; // e.g. `mycrate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item = item.trim();
                if !item.is_empty() {
                    found.push(item.to_string());
                }
            }
        } else {
            let end = rest
                .find(|c: char| !(is_ident(c) || c == ':'))
                .unwrap_or(rest.len());
            found.push(rest[..end].trim_end_matches(':').to_string());
        }
    }
    found
}

/// Whether `path` (`probe::spec::TlsSpec`) is under `allowed` (`probe::spec`).
fn is_under(path: &str, allowed: &str) -> bool {
    path == allowed || path.starts_with(&format!("{allowed}::"))
}

fn allowed_table() -> BTreeMap<&'static str, &'static [&'static str]> {
    ALLOWED.iter().copied().collect()
}

#[test]
fn no_module_refers_to_a_module_above_it() {
    let src = src_dir();
    let table = allowed_table();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 50,
        "found only {} files in {}",
        files.len(),
        src.display()
    );

    let mut upward = Vec::new();
    let mut unknown_modules = BTreeSet::new();
    for file in &files {
        let module = top_module(&src, file);
        if module == "main" || module == "lib" {
            continue;
        }
        let Some(allowed) = table.get(module.as_str()) else {
            unknown_modules.insert(module);
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for path in crate_paths(line) {
                let target = path.split("::").next().unwrap_or("");
                if target == module || target == "self" {
                    continue;
                }
                if !allowed.iter().any(|a| is_under(&path, a)) {
                    upward.push(format!(
                        "{}:{}: `{module}` uses crate::{path}",
                        file.strip_prefix(&src).unwrap().display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        unknown_modules.is_empty(),
        "top modules missing from the layer table in tests/layers.rs: {unknown_modules:?}"
    );
    assert!(
        upward.is_empty(),
        "{} reference(s) to a module not below:\n{}",
        upward.len(),
        upward.join("\n")
    );
}

#[test]
fn the_layer_table_has_no_cycle() {
    let table = allowed_table();
    // Every entry lists only modules further down the table: that order is
    // then a topological order, so no cycle can hide in it.
    let position: BTreeMap<&str, usize> = ALLOWED
        .iter()
        .enumerate()
        .map(|(i, (m, _))| (*m, i))
        .collect();
    assert_eq!(position.len(), ALLOWED.len(), "a module is listed twice");
    for (module, uses) in &table {
        for used in *uses {
            let top = used.split("::").next().unwrap();
            let (Some(&from), Some(&to)) = (position.get(module), position.get(top)) else {
                panic!("`{module}` may use `{used}`, which is not in the table");
            };
            assert!(from < to, "`{module}` may use `{used}`, listed above it");
        }
    }
}

#[test]
fn paths_are_read_from_uses_groups_and_inline_references() {
    assert_eq!(
        crate_paths("use crate::probe::spec::{TlsSpec, Probe};"),
        ["probe::spec"]
    );
    assert_eq!(
        crate_paths("use crate::{tls, k8s::wait};"),
        ["tls", "k8s::wait"]
    );
    assert_eq!(
        crate_paths("    let x = crate::runner::interrupt::go(crate::tools::HELM);"),
        ["runner::interrupt::go", "tools::HELM"]
    );
    assert!(crate_paths("use mycrate::x; // no crate path").is_empty());
    assert!(is_under("probe::spec::TlsSpec", "probe::spec"));
    assert!(!is_under("probe::specs", "probe::spec"));
}
