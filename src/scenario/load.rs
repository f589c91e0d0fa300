//! Loading scenario files: YAML → [`Scenario`], with every problem located.
//!
//! Two passes. The structural pass ([`super::structure`]) checks unknown
//! fields and wrong types and reports every one of them, each with its
//! exact line and column. Everything that is checked by
//! value (durations, names, "exactly one of", files, template variables) is
//! read leniently in the first pass and checked in the second, so all of
//! those problems are reported together, each at its own location.

use super::error::{LoadError, LoadErrors, snippet};
use super::model::*;
use super::raw::*;
use super::read::{ReadError, read_capped};
use super::structure::{self, Structural};
use super::template;
use crate::probe::spec::{ProbeSpec, Target as ProbeTarget};
use serde_saphyr::{Location, Spanned};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The only `apiVersion` this build reads.
pub const API_VERSION: &str = "rayconform.dev/v1alpha1";
/// Scenario files larger than this are refused unread.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// The timeout of a scenario that names none.
pub const DEFAULT_SCENARIO_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The longest duration a scenario may give (a step's or the whole
/// scenario's timeout): longer ones are typos, and far longer ones would
/// overflow the clock when added to it.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// The most retries a step may ask for.
pub const MAX_RETRIES: u32 = 100;

/// Scenarios loaded from several paths, and every error met on the way.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The valid scenarios, sorted by file path.
    pub scenarios: Vec<Scenario>,
    /// Problems, grouped by file in path order.
    pub errors: Vec<LoadError>,
}

/// Finds the scenario files under `paths` (files as given; folders searched
/// recursively for `*.yaml` / `*.yml`), sorted.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut found = BTreeSet::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| LoadError::whole_file(path, format!("cannot read: {e}")))?;
        if meta.is_dir() {
            walk(path, &mut found)?;
        } else {
            found.insert(path.clone());
        }
    }
    Ok(found.into_iter().collect())
}

fn walk(dir: &Path, found: &mut BTreeSet<PathBuf>) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| LoadError::whole_file(dir, format!("cannot list folder: {e}")))?;
    for entry in entries {
        let path = entry
            .map_err(|e| LoadError::whole_file(dir, format!("cannot list folder: {e}")))?
            .path();
        if path.is_dir() {
            walk(&path, found)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            found.insert(path);
        }
    }
    Ok(())
}

/// Loads every scenario under `paths`; relative file references in the
/// scenarios resolve against `project_root`. Duplicate scenario names are
/// errors.
pub fn load_all(paths: &[PathBuf], project_root: &Path) -> Loaded {
    let mut loaded = Loaded::default();
    let files = match discover(paths) {
        Ok(files) => files,
        Err(e) => {
            loaded.errors.push(e);
            return loaded;
        }
    };
    for file in files {
        let loaded_file = read_source(&file)
            .and_then(|source| load_located(&file, &source, project_root).map(|l| (l, source)));
        match loaded_file {
            Ok(((s, (line, column)), source)) => {
                if let Some(other) = loaded.scenarios.iter().find(|o| o.name == s.name) {
                    loaded.errors.push(LoadError {
                        file: file.clone(),
                        line,
                        column,
                        path: "metadata.name".to_string(),
                        message: format!(
                            "`{}` is already used by {}",
                            s.name,
                            other.path.display()
                        ),
                        snippet: snippet(&source, line, column),
                    });
                } else {
                    loaded.scenarios.push(s);
                }
            }
            Err(LoadErrors(errors)) => loaded.errors.extend(errors),
        }
    }
    loaded
}

/// Reads and loads one scenario file.
pub fn load_file(file: &Path, project_root: &Path) -> Result<Scenario, LoadErrors> {
    load_str(file, &read_source(file)?, project_root)
}

/// A scenario file's text: size-capped, a regular file, UTF-8.
fn read_source(file: &Path) -> Result<String, LoadErrors> {
    let one = |e: ReadError| LoadErrors(vec![LoadError::whole_file(file, e.to_string())]);
    let bytes = read_capped(file, MAX_FILE_BYTES).map_err(one)?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..valid]);
        let (line, column) = line_column(&text, text.len());
        LoadErrors(vec![LoadError {
            file: file.to_path_buf(),
            line,
            column,
            path: String::new(),
            message: "not UTF-8 text: scenario files are YAML text".to_string(),
            snippet: None,
        }])
    })
}

/// Loads a scenario from text; `file` names it in errors.
pub fn load_str(file: &Path, source: &str, project_root: &Path) -> Result<Scenario, LoadErrors> {
    load_located(file, source, project_root).map(|(scenario, _)| scenario)
}

/// [`load_str`], with the line and column of `metadata.name` (for errors
/// that involve several files, such as a name used twice).
fn load_located(
    file: &Path,
    source: &str,
    project_root: &Path,
) -> Result<(Scenario, (u64, u64)), LoadErrors> {
    if let Some(pos) = source.find('\0') {
        let (line, column) = line_column(source, pos);
        return Err(LoadErrors(vec![LoadError {
            file: file.to_path_buf(),
            line,
            column,
            path: String::new(),
            message: "contains a NUL byte: scenario files are YAML text".to_string(),
            snippet: None,
        }]));
    }
    let located = |line: u64, column: u64, message: String| LoadError {
        file: file.to_path_buf(),
        line,
        column,
        path: String::new(),
        message,
        snippet: snippet(source, line, column),
    };
    let raw: RawScenario = structure::from_str(source).map_err(|e| match e {
        Structural::Yaml(e) => {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            LoadErrors(vec![located(line, column, serde_message(&e))])
        }
        Structural::Thread(message) => LoadErrors(vec![located(0, 0, message)]),
        Structural::Fields(problems) => LoadErrors(
            problems
                .into_iter()
                .map(|p| located(p.line, p.column, p.message))
                .collect(),
        ),
    })?;
    let mut checker = Checker {
        file,
        source,
        root: project_root,
        authorities: raw
            .spec
            .certificates
            .as_ref()
            .map(|c| vec![c.ca.clone(), crate::tls::FOREIGN.to_string()])
            .unwrap_or_default(),
        errors: Vec::new(),
        install_variables: Vec::new(),
    };
    let name_at = (
        raw.metadata.name.referenced.line(),
        raw.metadata.name.referenced.column(),
    );
    let scenario = checker.scenario(raw);
    if checker.errors.is_empty() {
        Ok((scenario, name_at))
    } else {
        Err(LoadErrors(checker.errors))
    }
}

/// A manifest (or other referenced) file as text, size-capped like
/// scenario files.
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    let bytes = read_capped(path, MAX_FILE_BYTES)?;
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8)
}

/// 1-based line and column (in characters) of byte offset `pos` in `text`.
fn line_column(text: &str, pos: usize) -> (u64, u64) {
    let before = &text[..pos];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    (line, column)
}

/// serde-saphyr's message without its own location prefix and snippet (we
/// render both ourselves).
fn serde_message(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let message = match first.find(": ") {
        Some(i) if first.starts_with("line ") => &first[i + 2..],
        _ => first,
    };
    match message.strip_prefix("budget breached: ") {
        // e.g. "Nodes { nodes: 250001 }": say what the limit protects.
        Some(breach) => format!(
            "the YAML parser's resource budget was exceeded ({breach}); aliases count \
             each time they are used, and no scenario comes near this limit"
        ),
        None => message.to_string(),
    }
}

/// The second pass: builds the validated scenario and collects errors.
struct Checker<'a> {
    file: &'a Path,
    source: &'a str,
    root: &'a Path,
    /// The certificate authorities a probe may name: `certificates.ca` and
    /// `foreign`, or none when the scenario generates no certificates.
    authorities: Vec<String>,
    errors: Vec<LoadError>,
    /// Template variables the scenario's installs publish (port-forwards).
    install_variables: Vec<String>,
}

impl Checker<'_> {
    fn error(&mut self, at: Location, path: impl Into<String>, message: impl Into<String>) {
        let (line, column) = (at.line(), at.column());
        self.errors.push(LoadError {
            file: self.file.to_path_buf(),
            line,
            column,
            path: path.into(),
            message: message.into(),
            snippet: snippet(self.source, line, column),
        });
    }

    fn scenario(&mut self, raw: RawScenario) -> Scenario {
        if raw.api_version.value != API_VERSION {
            self.error(
                raw.api_version.referenced,
                "apiVersion",
                format!(
                    "expected `{API_VERSION}`, found `{}`",
                    raw.api_version.value
                ),
            );
        }
        if raw.kind.value != "Scenario" {
            self.error(
                raw.kind.referenced,
                "kind",
                format!("expected `Scenario`, found `{}`", raw.kind.value),
            );
        }
        let name = &raw.metadata.name;
        let valid_name = !name.value.is_empty()
            && name.value.len() <= 63
            && name
                .value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.value.starts_with('-')
            && !name.value.ends_with('-');
        if !valid_name {
            self.error(
                name.referenced,
                "metadata.name",
                format!(
                    "expected a DNS label (lowercase letters, digits and '-', at most 63), found `{}`",
                    name.value
                ),
            );
        }
        let spec = raw.spec;
        let targets = self.targets(&spec.targets);
        let install = spec
            .install
            .into_iter()
            .enumerate()
            .filter_map(|(i, entry)| self.install(i, entry))
            .collect::<Vec<_>>();
        self.install_variables = crate::install::port_forwards(&install)
            .into_iter()
            .map(|f| f.variable)
            .collect();
        let cluster = spec.cluster.map(|raw| {
            if let Some(config) = &raw.config
                && !self.root.join(&config.value).is_file()
            {
                self.error(
                    config.referenced,
                    "spec.cluster.config",
                    format!(
                        "file `{}` not found under {}",
                        config.value,
                        self.root.display()
                    ),
                );
            }
            ClusterSpec {
                config: raw.config.map(|c| c.value),
                extra_port_mappings: raw.extra_port_mappings,
                workers: raw.workers,
            }
        });
        if spec.steps.value.is_empty() {
            self.error(
                spec.steps.referenced,
                "spec.steps",
                "expected at least one step",
            );
        }
        let steps = self.steps("spec.steps", spec.steps.value);
        if let Some(bug_step) = spec.known_bug.as_ref().and_then(|b| b.step.as_ref())
            && !steps.iter().any(|s| s.name == bug_step.value)
        {
            self.error(
                bug_step.referenced,
                "spec.knownBug.step",
                format!(
                    "no step is named `{}` (name the step whose failure is the bug)",
                    bug_step.value
                ),
            );
        }
        let finally = self.steps("spec.finally", spec.finally);
        let timeout = match &spec.timeout {
            Some(t) => self
                .duration(t, "spec.timeout")
                .unwrap_or(DEFAULT_SCENARIO_TIMEOUT),
            None => DEFAULT_SCENARIO_TIMEOUT,
        };
        if let Some(bug) = &spec.known_bug
            && !(bug.url.value.starts_with("https://") || bug.url.value.starts_with("http://"))
        {
            self.error(
                bug.url.referenced,
                "spec.knownBug.url",
                format!("expected an http(s) link, found `{}`", bug.url.value),
            );
        }
        let known_bug = spec.known_bug.map(|raw| KnownBug {
            url: raw.url.value,
            reason: raw.reason,
            step: raw.step.map(|s| s.value),
            failure_contains: raw.failure_contains,
        });
        Scenario {
            path: self.file.to_path_buf(),
            name: name.value.clone(),
            description: raw.metadata.description,
            tags: raw.metadata.tags,
            source: raw.metadata.source,
            targets,
            cluster,
            install,
            certificates: spec.certificates,
            steps,
            finally,
            known_bug,
            timeout,
        }
    }

    fn targets(&mut self, raw: &Spanned<Vec<Spanned<String>>>) -> Vec<TargetKind> {
        let mut targets = Vec::new();
        if raw.value.is_empty() {
            self.error(
                raw.referenced,
                "spec.targets",
                "expected at least one of kind, existing, lab",
            );
        }
        for (i, name) in raw.value.iter().enumerate() {
            match TargetKind::parse(&name.value) {
                Some(kind) if targets.contains(&kind) => self.error(
                    name.referenced,
                    format!("spec.targets[{i}]"),
                    format!("`{kind}` is listed twice"),
                ),
                Some(kind) => targets.push(kind),
                None => self.error(
                    name.referenced,
                    format!("spec.targets[{i}]"),
                    format!(
                        "expected one of kind, existing, lab, found `{}`",
                        name.value
                    ),
                ),
            }
        }
        targets
    }

    fn install(&mut self, index: usize, raw: Spanned<RawInstall>) -> Option<Install> {
        let at = raw.referenced;
        let mut found = raw.value.into_installs();
        let path = format!("spec.install[{index}]");
        if found.len() != 1 {
            self.error(
                at,
                path,
                format!(
                    "expected exactly one of {}; found {}",
                    Install::NAMES.join(", "),
                    found.len()
                ),
            );
            return None;
        }
        let install = found.pop()?;
        let component = install.component();
        for problem in component.validate() {
            self.error(
                at,
                format!("{path}.{}.{}", component.name(), problem.field),
                problem.message,
            );
        }
        Some(install)
    }

    fn steps(&mut self, path: &str, raw: Vec<Spanned<RawStep>>) -> Vec<Step> {
        raw.into_iter()
            .enumerate()
            .filter_map(|(i, step)| self.step(&format!("{path}[{i}]"), step))
            .collect()
    }

    fn step(&mut self, path: &str, raw: Spanned<RawStep>) -> Option<Step> {
        let at = raw.referenced;
        let step = raw.value;
        let errors_before = self.errors.len();
        let mut actions: Vec<Action> = Vec::new();
        if let Some(src) = step.apply {
            actions.extend(
                self.manifests(at, &format!("{path}.apply"), src)
                    .map(Action::Apply),
            );
        }
        if let Some(delete) = step.delete {
            match delete {
                DeleteSource::Manifests(src) => actions.extend(
                    self.manifests(at, &format!("{path}.delete"), src)
                        .map(Action::Delete),
                ),
                DeleteSource::Select(select) => {
                    self.selector(at, &format!("{path}.delete.select"), &select);
                    actions.push(Action::DeleteSelected(select));
                }
            }
        }
        if let Some(assert) = step.assert {
            actions.extend(
                self.assert(&format!("{path}.assert"), assert)
                    .map(Action::Assert),
            );
        }
        if let Some(logs) = step.logs {
            actions.extend(self.logs(&format!("{path}.logs"), logs).map(Action::Logs));
        }
        let mut wait_timeout = None;
        if let Some(wait) = step.wait {
            wait_timeout = wait
                .timeout
                .as_ref()
                .and_then(|t| self.duration(t, &format!("{path}.wait.timeout")));
            actions.extend(
                self.wait(at, &format!("{path}.wait"), wait)
                    .map(Action::Wait),
            );
        }
        if let Some(probe) = step.probe {
            actions.extend(
                self.probe(&format!("{path}.probe"), probe)
                    .map(Action::Probe),
            );
        }
        if let Some(denied) = step.expect_denied {
            let src = ManifestSource {
                file: denied.file.clone(),
                inline: denied.inline.clone(),
            };
            if self
                .manifests(at, &format!("{path}.expectDenied"), src)
                .is_some()
            {
                actions.push(Action::ExpectDenied(denied));
            }
        }
        if let Some(command) = step.command {
            if command.argv.is_empty() {
                self.error(
                    at,
                    format!("{path}.command.argv"),
                    "expected a program and its arguments",
                );
            } else {
                actions.push(Action::Command(command));
            }
        }
        let timeout = step
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t, &format!("{path}.timeout")));
        let retries = match step.retries {
            Some(r) if r.value > MAX_RETRIES => {
                self.error(
                    r.referenced,
                    format!("{path}.retries"),
                    format!("expected at most {MAX_RETRIES} retries, found {}", r.value),
                );
                0
            }
            Some(r) => r.value,
            None => 0,
        };
        if actions.len() != 1 {
            if self.errors.len() == errors_before {
                self.error(
                    at,
                    path,
                    format!(
                        "expected exactly one of apply, delete, wait, probe, expectDenied, command, assert, logs; found {}",
                        actions.len()
                    ),
                );
            }
            return None;
        }
        let action = actions.pop()?;
        self.check_templates(at, path, &action);
        let name = step.name.unwrap_or_else(|| default_step_name(&action));
        Some(Step {
            name,
            timeout: timeout
                .or(wait_timeout)
                .unwrap_or_else(|| action.default_timeout()),
            retries,
            action,
            line: at.line(),
            column: at.column(),
        })
    }

    fn manifests(
        &mut self,
        at: Location,
        path: &str,
        src: ManifestSource,
    ) -> Option<ManifestSource> {
        match (&src.file, &src.inline) {
            (Some(file), None) => {
                let full = self.root.join(file);
                match read_text(&full) {
                    Ok(text) => {
                        self.check_manifest_text(at, path, &text, Some(file));
                        Some(src)
                    }
                    Err(e) => {
                        self.error(
                            at,
                            path,
                            format!("cannot read manifest file `{}`: {e}", full.display()),
                        );
                        None
                    }
                }
            }
            (None, Some(text)) => {
                let text = text.clone();
                self.check_manifest_text(at, path, &text, None);
                Some(src)
            }
            _ => {
                self.error(
                    at,
                    path,
                    "expected a file path, or exactly one of `file` and `inline`",
                );
                None
            }
        }
    }

    fn check_manifest_text(&mut self, at: Location, path: &str, text: &str, file: Option<&str>) {
        let origin = file.map_or_else(|| "inline manifests".to_string(), |f| format!("`{f}`"));
        match parse_manifests(text) {
            Ok(docs) if docs.is_empty() => {
                self.error(at, path, format!("{origin} holds no objects"))
            }
            Ok(docs) => {
                for (i, doc) in docs.iter().enumerate() {
                    let has = |k: &str| {
                        doc.get(k)
                            .and_then(|v| v.as_str())
                            .is_some_and(|s| !s.is_empty())
                    };
                    if !has("apiVersion") || !has("kind") {
                        self.error(
                            at,
                            path,
                            format!(
                                "{origin} document {}: expected an object with apiVersion and kind",
                                i + 1
                            ),
                        );
                    }
                }
            }
            Err(e) => self.error(at, path, format!("{origin} is not valid YAML: {e}")),
        }
        match template::references(text) {
            Ok(names) => {
                for name in names.iter().filter(|n| !template::is_known(n)) {
                    self.error(
                        at,
                        path,
                        format!("{origin} uses unknown variable ${{{name}}}"),
                    );
                }
            }
            Err(e) => self.error(at, path, format!("{origin}: {e}")),
        }
    }

    /// An error at the first place at or after `at` where `needle` is
    /// written (e.g. a JSONPath inside an `assert`), else at `at`.
    fn error_near(&mut self, at: Location, needle: &str, path: String, message: String) {
        let start = usize::try_from(at.line().saturating_sub(1)).unwrap_or(0);
        let found = self
            .source
            .lines()
            .enumerate()
            .skip(start)
            .filter(|_| !needle.is_empty())
            .find_map(|(i, text)| text.find(needle).map(|byte| (i, text, byte)));
        let (line, column) = match found {
            Some((i, text, byte)) => (i as u64 + 1, text[..byte].chars().count() as u64 + 1),
            None => (at.line(), at.column()),
        };
        self.errors.push(LoadError {
            file: self.file.to_path_buf(),
            line,
            column,
            path,
            message,
            snippet: snippet(self.source, line, column),
        });
    }

    /// An object selector names a kind and an apiVersion.
    fn selector(&mut self, at: Location, path: &str, select: &ObjectSelector) {
        for (field, value) in [("apiVersion", &select.api_version), ("kind", &select.kind)] {
            if value.trim().is_empty() {
                self.error(at, format!("{path}.{field}"), format!("expected a {field}"));
            }
        }
    }

    fn assert(&mut self, path: &str, raw: Spanned<AssertSpec>) -> Option<AssertSpec> {
        let at = raw.referenced;
        let spec = raw.value;
        self.selector(at, &format!("{path}.object"), &spec.object);
        if spec.count.is_none() && spec.fields.is_empty() {
            self.error(at, path, "expected `count`, `fields` or both");
        }
        for (i, field) in spec.fields.iter().enumerate() {
            if let Err(e) = field.validate() {
                self.error_near(
                    at,
                    &field.path,
                    format!("{path}.fields[{i}]"),
                    e.to_string(),
                );
            }
        }
        Some(spec)
    }

    fn logs(&mut self, path: &str, raw: Spanned<LogsSpec>) -> Option<LogsSpec> {
        let at = raw.referenced;
        let spec = raw.value;
        if let Err(e) = spec.line_match() {
            let needle = spec.regex.clone().unwrap_or_default();
            self.error_near(at, &needle, path.to_string(), e.to_string());
        }
        Some(spec)
    }

    fn wait(&mut self, at: Location, path: &str, raw: RawWait) -> Option<WaitSpec> {
        let mut targets = Vec::new();
        targets.extend(raw.ray_cluster.map(WaitTarget::RayCluster));
        targets.extend(raw.deployment.map(WaitTarget::Deployment));
        targets.extend(raw.pods.map(WaitTarget::Pods));
        targets.extend(raw.endpoints.map(WaitTarget::Endpoints));
        if targets.len() != 1 {
            self.error(
                at,
                path,
                format!(
                    "expected exactly one of rayCluster, deployment, pods, endpoints; found {}",
                    targets.len()
                ),
            );
            return None;
        }
        let target = targets.pop()?;
        let condition = match (&target, raw.condition) {
            (_, None) => None,
            (WaitTarget::RayCluster(_), Some(c)) => match c.value.as_str() {
                "Ready" | "ready" => Some(RayClusterCondition::Ready),
                "HeadPodReady" => Some(RayClusterCondition::HeadPodReady),
                "RayClusterProvisioned" => Some(RayClusterCondition::RayClusterProvisioned),
                other => {
                    self.error(c.referenced, format!("{path}.condition"), format!("expected one of Ready, HeadPodReady, RayClusterProvisioned, found `{other}`"));
                    return None;
                }
            },
            (_, Some(c)) => {
                self.error(
                    c.referenced,
                    format!("{path}.condition"),
                    "a condition can only be given for rayCluster waits",
                );
                return None;
            }
        };
        if raw.ready_workers.is_some() && !matches!(target, WaitTarget::RayCluster(_)) {
            self.error(
                at,
                format!("{path}.readyWorkers"),
                "readyWorkers can only be given for rayCluster waits",
            );
        }
        Some(WaitSpec {
            target,
            condition,
            namespace: raw.namespace,
            ready_workers: raw.ready_workers,
        })
    }

    fn probe(&mut self, path: &str, raw: Spanned<ProbeSpec>) -> Option<Probe> {
        let at = raw.referenced;
        let mut found = raw.value.into_probes();
        if found.len() != 1 {
            self.error(
                at,
                path,
                format!(
                    "expected exactly one of {}; found {}",
                    ProbeSpec::KINDS,
                    found.len()
                ),
            );
            return None;
        }
        let probe = found.pop()?;
        self.check_probe_address(at, path, &probe);
        for problem in probe.request_problems() {
            self.error_near(
                at,
                &problem.near,
                format!("{path}.{}", problem.field),
                problem.message,
            );
        }
        let tls_specs = probe.tls_specs();
        let mut versions: Vec<(String, &Option<String>)> = Vec::new();
        if let Probe::Mtls(p) = &probe {
            versions.push(("mtls.tlsVersion".into(), &p.tls_version));
        }
        if let Probe::Tcp(p) = &probe
            && let Some(then) = &p.then
        {
            let count = usize::from(then.tls.is_some()) + usize::from(then.grpc.is_some());
            if count != 1 {
                self.error(
                    at,
                    format!("{path}.tcp.then"),
                    format!("expected exactly one of tls, grpc; found {count}"),
                );
            }
            if let Some(grpc) = &then.grpc
                && !["rayPing", "gcsClusterId"].contains(&grpc.call.as_str())
            {
                self.error(
                    at,
                    format!("{path}.tcp.then.grpc.call"),
                    format!("expected rayPing or gcsClusterId, found `{}`", grpc.call),
                );
            }
        }
        for (field, message) in probe.problems() {
            self.error(at, format!("{path}.{field}"), message);
        }
        let mut authorities: Vec<(String, &String)> = Vec::new();
        for (field, tls) in &tls_specs {
            versions.push((format!("{field}.version"), &tls.version));
            authorities.extend(tls.ca.as_ref().map(|n| (format!("{field}.ca"), n)));
            authorities.extend(
                tls.client_cert
                    .as_ref()
                    .map(|n| (format!("{field}.clientCert"), n)),
            );
        }
        if let Probe::Mtls(p) = &probe {
            authorities.push(("mtls.ca".into(), &p.ca));
        }
        for (field, name) in authorities {
            if !self.authorities.contains(name) {
                let known = if self.authorities.is_empty() {
                    "this scenario generates no certificates (add `certificates: { ca: NAME }` to spec)".to_string()
                } else {
                    format!("expected one of {}", self.authorities.join(", "))
                };
                self.error(
                    at,
                    format!("{path}.{field}"),
                    format!("unknown certificate authority `{name}`: {known}"),
                );
            }
        }
        for (field, version) in versions {
            if let Some(v) = version
                && v != "1.2"
                && v != "1.3"
            {
                self.error(
                    at,
                    format!("{path}.{field}"),
                    format!("expected \"1.2\" or \"1.3\", found `{v}`"),
                );
            }
        }
        Some(probe)
    }

    /// A probe's address or URL that names no variable must already be
    /// well formed: a malformed one is bad input, not a failed probe.
    fn check_probe_address(&mut self, at: Location, path: &str, probe: &Probe) {
        let (field, value, is_url) = match probe.target() {
            ProbeTarget::Address(field, value) => (field, value, false),
            ProbeTarget::Url(field, value) => (field, value, true),
        };
        if value.contains('$') {
            return;
        }
        let ok = if is_url {
            url::Url::parse(value)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        } else {
            crate::probe::connection::split_address(value).is_ok()
        };
        if !ok {
            let expected = if is_url {
                "an http:// or https:// URL with a host"
            } else {
                "host:port"
            };
            self.error(
                at,
                format!("{path}.{field}"),
                format!("expected {expected}, found `{value}`"),
            );
        }
    }

    fn check_templates(&mut self, at: Location, path: &str, action: &Action) {
        let Ok(json) = serde_json::to_value(action) else {
            return;
        };
        let mut strings = Vec::new();
        collect_strings(&json, &mut strings);
        for text in strings {
            match template::references(&text) {
                Ok(names) => {
                    let unknown: Vec<&String> = names
                        .iter()
                        .filter(|n| !template::is_known(n) && !self.install_variables.contains(n))
                        .collect();
                    for name in unknown {
                        let known = template::RUN_VARIABLES.join(", ");
                        self.error(at, path, format!("unknown variable ${{{name}}} (the run provides {known}, INGRESS_TCP_<port>; anything else must be set in the environment)"));
                    }
                }
                Err(e) => self.error(at, path, e.to_string()),
            }
        }
    }

    fn duration(&mut self, raw: &Spanned<String>, path: &str) -> Option<Duration> {
        match humantime::parse_duration(raw.value.trim()) {
            Ok(d) if d > MAX_DURATION => {
                self.error(
                    raw.referenced,
                    path,
                    format!(
                        "expected a duration of at most {}, found '{}'",
                        humantime::format_duration(MAX_DURATION),
                        raw.value
                    ),
                );
                None
            }
            Ok(d) if !d.is_zero() => Some(d),
            _ => {
                self.error(
                    raw.referenced,
                    path,
                    format!("expected a duration like 90s or 5m, found '{}'", raw.value),
                );
                None
            }
        }
    }
}

fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            collect_strings(v, out);
        }),
        _ => {}
    }
}

fn default_step_name(action: &Action) -> String {
    match action {
        Action::Apply(src) | Action::Delete(src) => {
            format!(
                "{} {}",
                action.kind(),
                src.file.as_deref().unwrap_or("inline manifests")
            )
        }
        Action::Wait(w) => {
            let (kind, name) = match &w.target {
                WaitTarget::RayCluster(n) => ("rayCluster", n),
                WaitTarget::Deployment(n) => ("deployment", n),
                WaitTarget::Pods(n) => ("pods", n),
                WaitTarget::Endpoints(n) => ("endpoints", n),
            };
            match w.condition {
                Some(c) => format!("wait {kind} {name} {c:?}"),
                None => format!("wait {kind} {name}"),
            }
        }
        Action::Probe(p) => {
            format!("probe {} {}", p.kind(), p.target().value())
        }
        Action::ExpectDenied(d) => format!(
            "expectDenied {}",
            d.file.as_deref().unwrap_or("inline manifests")
        ),
        Action::Command(c) => format!("command {}", c.argv.join(" ")),
        Action::Assert(a) => format!("assert {}", a.object),
        Action::Logs(l) => format!(
            "logs {}",
            l.contains.as_deref().or(l.regex.as_deref()).unwrap_or("")
        ),
        Action::DeleteSelected(s) => format!("delete {s}"),
    }
}

/// Manifests text that is not YAML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", at.map(|(line, column)| format!("line {line} column {column}: ")).unwrap_or_default())]
pub struct ManifestsError {
    /// 1-based line and column, when the parser knows them.
    pub at: Option<(u64, u64)>,
    /// What is wrong.
    pub message: String,
}

/// Parses multi-document YAML manifests into JSON objects (empty documents
/// are skipped).
pub fn parse_manifests(text: &str) -> Result<Vec<serde_json::Value>, ManifestsError> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_str_multiple(text).map_err(|e| ManifestsError {
            at: e.location().map(|l| (l.line(), l.column())),
            message: serde_message(&e),
        })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifests_error_leads_with_its_location() {
        let err = parse_manifests("a: 1\nb: [\n").unwrap_err();
        let (line, column) = err.at.expect("the parser knows where");
        assert_eq!(
            err.to_string(),
            format!("line {line} column {column}: {}", err.message)
        );
        assert!(!err.message.starts_with("line "), "{}", err.message);
        let nowhere = ManifestsError {
            at: None,
            message: "broken".into(),
        };
        assert_eq!(nowhere.to_string(), "broken");
    }
}
