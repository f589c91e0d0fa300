//! The scenario file exactly as written: serde shapes with source spans.
//!
//! Structural problems (unknown fields, wrong types) are caught while
//! reading these (all of them: see `structure`); values that need checking beyond their type (durations,
//! target names, "exactly one of") stay `Spanned` so the validator can report
//! every such problem with its location, not just the first.

pub use crate::install::registry::RawInstall;
use crate::probe::spec::ProbeSpec;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawScenario {
    pub api_version: Spanned<String>,
    pub kind: Spanned<String>,
    pub metadata: RawMetadata,
    pub spec: RawSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawMetadata {
    pub name: Spanned<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub source: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSpec {
    pub targets: Spanned<Vec<Spanned<String>>>,
    pub cluster: Option<RawCluster>,
    #[serde(default)]
    pub install: Vec<Spanned<RawInstall>>,
    pub certificates: Option<crate::scenario::CertificatesSpec>,
    pub steps: Spanned<Vec<Spanned<RawStep>>>,
    #[serde(default)]
    pub finally: Vec<Spanned<RawStep>>,
    pub known_bug: Option<RawKnownBug>,
    /// Upper bound for the whole scenario.
    pub timeout: Option<Spanned<String>>,
}

/// One step; exactly one action field is set.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawStep {
    pub name: Option<String>,
    pub apply: Option<crate::scenario::ManifestSource>,
    pub delete: Option<crate::scenario::DeleteSource>,
    pub wait: Option<RawWait>,
    pub probe: Option<Spanned<ProbeSpec>>,
    pub expect_denied: Option<crate::scenario::ExpectDenied>,
    pub command: Option<crate::scenario::CommandSpec>,
    pub assert: Option<Spanned<crate::scenario::AssertSpec>>,
    pub logs: Option<Spanned<crate::scenario::LogsSpec>>,
    pub timeout: Option<Spanned<String>>,
    pub retries: Option<Spanned<u32>>,
}

/// `wait:` as written; its `timeout` is checked like a step's.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawWait {
    pub ray_cluster: Option<String>,
    pub deployment: Option<String>,
    pub pods: Option<String>,
    pub endpoints: Option<String>,
    pub condition: Option<Spanned<String>>,
    pub namespace: Option<String>,
    pub ready_workers: Option<u32>,
    pub timeout: Option<Spanned<String>>,
}

/// `spec.cluster` as written; `config` keeps its location for the
/// "file not found" error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawCluster {
    pub config: Option<Spanned<String>>,
    #[serde(default)]
    pub extra_port_mappings: Vec<crate::scenario::PortMapping>,
    #[serde(default)]
    pub workers: u32,
}

/// `spec.knownBug` as written; `url` and `step` keep their locations.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawKnownBug {
    pub url: Spanned<String>,
    pub reason: Option<String>,
    pub step: Option<Spanned<String>>,
    pub failure_contains: Option<String>,
}
