//! The shapes of the `assert`, `logs` and `delete: {select}` steps, as
//! written in scenario files (re-exported by the scenario format).

pub use crate::json_match::FieldMatch;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Live objects of one kind, by name and/or label selector; every object of
/// the kind in the namespace when neither is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectSelector {
    /// `apiVersion`, e.g. `v1` or `ray.io/v1`.
    pub api_version: String,
    /// `kind`, e.g. `Pod`.
    pub kind: String,
    /// Defaults to the scenario namespace (ignored for cluster-scoped kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// One object by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A Kubernetes label selector, e.g. `ray.io/group=small,app=x`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
}

impl fmt::Display for ObjectSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.api_version, self.kind)?;
        if let Some(ns) = &self.namespace {
            write!(f, " in {ns}")?;
        }
        if let Some(name) = &self.name {
            write!(f, " named {name}")?;
        }
        if let Some(labels) = &self.label_selector {
            write!(f, " with labels {labels}")?;
        }
        Ok(())
    }
}

/// `assert`: eventually, the selected objects number `count` and each
/// satisfies every field matcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssertSpec {
    /// Which objects.
    pub object: ObjectSelector,
    /// Exactly this many objects match (`0` = absence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// What every matched object satisfies.
    #[serde(default)]
    pub fields: Vec<FieldMatch>,
}

/// Pods whose logs a `logs` step reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSelector {
    /// Defaults to the scenario namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// One pod by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A Kubernetes label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
}

impl PodSelector {
    /// The same pods as an [`ObjectSelector`].
    pub fn objects(&self) -> ObjectSelector {
        ObjectSelector {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            label_selector: self.label_selector.clone(),
        }
    }
}

/// From when log lines count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogsSince {
    /// Lines since the scenario's session opened.
    #[default]
    Scenario,
    /// Lines since this step started.
    Step,
}

/// `logs`: eventually, a log line of a selected pod's container matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogsSpec {
    /// Which pods.
    pub pods: PodSelector,
    /// The container; optional when the pod has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// A substring a line must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// A regular expression (crate `regex`) a line must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// From when lines count (default: the scenario's start).
    #[serde(default)]
    pub since: LogsSince,
}

/// A `logs` step's line matcher, compiled.
#[derive(Debug, Clone)]
pub enum LineMatch {
    /// A substring.
    Contains(String),
    /// A regular expression.
    Regex(regex::Regex),
}

/// A `logs` step that cannot be used as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogsSpecError {
    /// Not exactly one of `contains`, `regex`.
    #[error("expected exactly one of contains, regex; found {0}")]
    Matcher(usize),
    /// `regex` does not compile.
    #[error("`regex` is not a regular expression: {0}")]
    Regex(String),
}

impl LogsSpec {
    /// The compiled line matcher.
    pub fn line_match(&self) -> Result<LineMatch, LogsSpecError> {
        match (&self.contains, &self.regex) {
            (Some(text), None) => Ok(LineMatch::Contains(text.clone())),
            (None, Some(re)) => regex::Regex::new(re)
                .map(LineMatch::Regex)
                .map_err(|e| LogsSpecError::Regex(e.to_string())),
            (a, b) => Err(LogsSpecError::Matcher(
                usize::from(a.is_some()) + usize::from(b.is_some()),
            )),
        }
    }
}

impl LineMatch {
    /// Whether `line` matches.
    pub fn matches(&self, line: &str) -> bool {
        match self {
            LineMatch::Contains(text) => line.contains(text.as_str()),
            LineMatch::Regex(re) => re.is_match(line),
        }
    }
}

impl fmt::Display for LineMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineMatch::Contains(text) => write!(f, "a line containing {text:?}"),
            LineMatch::Regex(re) => write!(f, "a line matching /{re}/"),
        }
    }
}
