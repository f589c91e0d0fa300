//! The validated scenario: what the rest of rayconform works with.

pub use crate::install::registry::Install;
pub use crate::install::{
    ingress_nginx::IngressNginxInstall, istio::IstioInstall,
    kuberay_apiserver::KuberayApiserverInstall, kuberay_operator::KuberayOperatorInstall,
};
pub use crate::k8s::select_spec::{
    AssertSpec, FieldMatch, LogsSince, LogsSpec, ObjectSelector, PodSelector,
};
pub use crate::k8s::wait_spec::{RayClusterCondition, WaitSpec, WaitTarget};
pub use crate::probe::spec::Probe;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where a scenario can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A kind cluster created (or reused) by rayconform.
    Kind,
    /// Any cluster from KUBECONFIG.
    Existing,
    /// Real Ray and nginx processes on loopback, no cluster.
    Lab,
    /// A k3s cluster in a container (testcontainers); runs the scenarios
    /// written for kind.
    K3s,
}

impl TargetKind {
    /// Every target kind, in the order reports list them.
    pub const ALL: [TargetKind; 4] = [
        TargetKind::Kind,
        TargetKind::Existing,
        TargetKind::Lab,
        TargetKind::K3s,
    ];

    /// The name used in scenario files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Kind => "kind",
            TargetKind::Existing => "existing",
            TargetKind::Lab => "lab",
            TargetKind::K3s => "k3s",
        }
    }

    /// Whether a scenario listing `targets` runs here: k3s runs what is
    /// written for kind (the same single-host cluster with its ingress
    /// ports mapped), every other target what lists it.
    pub fn listed_in(self, targets: &[TargetKind]) -> bool {
        targets.contains(&self) || (self == TargetKind::K3s && targets.contains(&TargetKind::Kind))
    }

    /// Parses a name as written in a scenario file.
    pub fn parse(name: &str) -> Option<TargetKind> {
        TargetKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A loaded, validated scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.description`.
    pub description: Option<String>,
    /// `metadata.tags`.
    pub tags: Vec<String>,
    /// `metadata.source`: the issue or guide this scenario reproduces.
    pub source: Option<String>,
    /// Targets the scenario supports.
    pub targets: Vec<TargetKind>,
    /// Cluster requirements (kind config and extra port mappings).
    pub cluster: Option<ClusterSpec>,
    /// Components to install, in order.
    pub install: Vec<Install>,
    /// Certificates to generate for the run.
    pub certificates: Option<CertificatesSpec>,
    /// The ordered steps.
    pub steps: Vec<Step>,
    /// Steps that always run after `steps`, whatever happened.
    pub finally: Vec<Step>,
    /// When set, the scenario is expected to fail (strict xfail).
    pub known_bug: Option<KnownBug>,
    /// Upper bound for the whole scenario.
    pub timeout: Duration,
}

/// `spec.cluster`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// A kind config file, relative to the project root.
    pub config: Option<String>,
    /// Host port mappings added to the control-plane node.
    #[serde(default)]
    pub extra_port_mappings: Vec<PortMapping>,
    /// Number of worker nodes to add.
    #[serde(default)]
    pub workers: u32,
}

/// A kind `extraPortMappings` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortMapping {
    /// Port inside the node container.
    pub container_port: u16,
    /// Port on the host.
    pub host_port: u16,
    /// TCP (default), UDP or SCTP.
    pub protocol: Option<String>,
    /// Host address to listen on.
    pub listen_address: Option<String>,
}

/// `spec.certificates`: one CA for the run (plus the built-in `foreign` CA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificatesSpec {
    /// The CA's name; on clusters also the Secret (`ca.crt`, `ca.key`).
    pub ca: String,
    /// Extra DNS names / IPs for the server certificate (localhost and
    /// 127.0.0.1 are always included).
    #[serde(default)]
    pub server_names: Vec<String>,
}

/// `spec.knownBug`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KnownBug {
    /// The upstream issue.
    pub url: String,
    /// What goes wrong, in a sentence.
    pub reason: Option<String>,
    /// The step (by name) whose failure is the bug; any other failing step
    /// is a real failure.
    pub step: Option<String>,
    /// A substring the failing step's message or evidence must contain.
    pub failure_contains: Option<String>,
}

/// Where manifests come from: a file path (`apply: path.yaml`), or a map
/// with `file` or `inline` (multi-document YAML text).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSource {
    /// A file relative to the project root.
    pub file: Option<String>,
    /// Inline multi-document YAML.
    pub inline: Option<String>,
}

/// `expectDenied`: an apply that must be refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpectDenied {
    /// A file relative to the project root.
    pub file: Option<String>,
    /// Inline multi-document YAML.
    pub inline: Option<String>,
    /// A substring the refusal message must contain.
    pub message_contains: String,
}

/// `command`: run a program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Expected exit code (default 0).
    #[serde(default)]
    pub expect_exit: i32,
    /// Substring stdout or stderr must contain.
    pub output_contains: Option<String>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Apply manifests (server-side apply).
    Apply(ManifestSource),
    /// Delete the objects named by manifests.
    Delete(ManifestSource),
    /// Wait for a condition.
    Wait(WaitSpec),
    /// Run a probe.
    Probe(Probe),
    /// An apply that must be refused.
    ExpectDenied(ExpectDenied),
    /// Run a program.
    Command(CommandSpec),
    /// An eventually-true field match on live objects.
    Assert(AssertSpec),
    /// Eventually a log line of the selected pods matches.
    Logs(LogsSpec),
    /// Delete live objects by name or label (`delete: {select: ...}`).
    DeleteSelected(ObjectSelector),
}

impl Action {
    /// The action's kind as written in scenarios.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Apply(_) => "apply",
            Action::Delete(_) => "delete",
            Action::Wait(_) => "wait",
            Action::Probe(_) => "probe",
            Action::ExpectDenied(_) => "expectDenied",
            Action::Command(_) => "command",
            Action::Assert(_) => "assert",
            Action::Logs(_) => "logs",
            Action::DeleteSelected(_) => "delete",
        }
    }

    /// The timeout a step of this kind gets when it names none.
    pub fn default_timeout(&self) -> Duration {
        match self {
            Action::Apply(_) | Action::Delete(_) | Action::Command(_) => Duration::from_secs(120),
            Action::Wait(_) => Duration::from_secs(300),
            Action::Probe(Probe::Mtls(_)) => Duration::from_secs(90),
            Action::Probe(_) => Duration::from_secs(45),
            Action::ExpectDenied(_) => Duration::from_secs(60),
            Action::Assert(_) | Action::DeleteSelected(_) => Duration::from_secs(120),
            Action::Logs(_) => Duration::from_secs(60),
        }
    }
}

/// A validated step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// A readable name: `metadata`-given or derived from the action.
    pub name: String,
    /// What it does.
    pub action: Action,
    /// Its deadline.
    pub timeout: Duration,
    /// How many times to retry after a failure (0 = run once).
    pub retries: u32,
    /// Line and column in the scenario file.
    pub line: u64,
    /// Column in the scenario file.
    pub column: u64,
}

/// The map form of [`ManifestSource`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManifestSourceMap {
    file: Option<String>,
    inline: Option<String>,
}

impl<'de> Deserialize<'de> for ManifestSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        impl<'de> serde::de::Visitor<'de> for SourceVisitor {
            type Value = ManifestSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a file path, or a map with `file` or `inline`")
            }
            fn visit_str<E: serde::de::Error>(self, path: &str) -> Result<ManifestSource, E> {
                Ok(ManifestSource {
                    file: Some(path.to_string()),
                    inline: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ManifestSource, A::Error> {
                let fields = ManifestSourceMap::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(ManifestSource {
                    file: fields.file,
                    inline: fields.inline,
                })
            }
        }
        deserializer.deserialize_any(SourceVisitor)
    }
}

/// `delete:` as written: manifests (a path, `file` or `inline`), or
/// `select` for live objects by name or label.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteSource {
    /// The objects the manifests name.
    Manifests(ManifestSource),
    /// The live objects the selector matches.
    Select(ObjectSelector),
}

/// The map form of [`DeleteSource`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeleteSourceMap {
    file: Option<String>,
    inline: Option<String>,
    select: Option<ObjectSelector>,
}

impl<'de> Deserialize<'de> for DeleteSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DeleteVisitor;
        impl<'de> serde::de::Visitor<'de> for DeleteVisitor {
            type Value = DeleteSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a file path, or a map with `file`, `inline` or `select`")
            }
            fn visit_str<E: serde::de::Error>(self, path: &str) -> Result<DeleteSource, E> {
                Ok(DeleteSource::Manifests(ManifestSource {
                    file: Some(path.to_string()),
                    inline: None,
                }))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<DeleteSource, A::Error> {
                let fields = DeleteSourceMap::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                match fields.select {
                    Some(select) if fields.file.is_none() && fields.inline.is_none() => {
                        Ok(DeleteSource::Select(select))
                    }
                    Some(_) => Err(serde::de::Error::custom(
                        "`select` cannot be combined with `file` or `inline`",
                    )),
                    None => Ok(DeleteSource::Manifests(ManifestSource {
                        file: fields.file,
                        inline: fields.inline,
                    })),
                }
            }
        }
        deserializer.deserialize_any(DeleteVisitor)
    }
}
