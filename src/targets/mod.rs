//! Targets: where a scenario runs (`kind`, `existing`, `lab`).
//!
//! The runner drives every target through the same two traits: a [`Target`]
//! opens a [`Session`] for one scenario run, the session carries out the
//! cluster-facing steps, and is closed (cleaned up) whatever happened.
//! Probes do not go through the target: they only need the addresses the
//! session publishes as template variables.

pub mod cluster;
pub mod existing;
pub mod k3s;
pub mod kind;
pub mod lab;
pub mod options;
pub mod plan_error;
pub mod registry;
pub mod step_error;

use crate::scenario::{AssertSpec, LogsSpec, ObjectSelector, Scenario, TargetKind, WaitSpec};
use crate::tls::CertificateSet;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use crate::manifest::{Manifest, ProgressFn};
pub use options::TargetOptions;
pub use plan_error::PlanError;
pub use step_error::{Broken, StepError};

/// Everything a target needs to run one scenario.
#[derive(Clone)]
pub struct ScenarioRun {
    /// The scenario.
    pub scenario: Arc<Scenario>,
    /// Identifies the whole `rayconform run` (also names clusters and dirs).
    pub run_id: String,
    /// The scenario's own namespace.
    pub namespace: String,
    /// A private temporary folder for this scenario run (certs, configs).
    pub work_dir: PathBuf,
    /// Where diagnostics for this scenario go (`reports/<run>/<scenario>/`).
    pub artifacts_dir: PathBuf,
    /// The project root: relative paths in scenarios resolve against it.
    pub project_root: PathBuf,
    /// Certificates generated for this run, when the scenario asks for them.
    pub certificates: Option<Arc<CertificateSet>>,
    /// Leave everything in place at the end (`--keep`).
    pub keep: bool,
    /// Live progress messages.
    pub progress: ProgressFn,
}

/// What a target adds to a scenario's plan.
#[derive(Debug, Clone, Default)]
pub struct TargetPlan {
    /// Template variables as they will be (values may be placeholders such
    /// as `<port chosen at run time>`).
    pub variables: BTreeMap<String, String>,
    /// Titled blocks: e.g. ("kind config", rendered YAML), ("install", ...).
    pub sections: Vec<(String, String)>,
}

/// What a step observed when it passed: one line and the facts behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// One line.
    pub summary: String,
    /// The observed values (expected vs actual).
    pub evidence: Vec<String>,
}

/// A place where scenarios run.
#[async_trait]
pub trait Target: Send + Sync {
    /// Which kind of target this is.
    fn kind(&self) -> TargetKind;

    /// Why this target cannot be used on this machine at all (missing Docker
    /// engine, kind, kubeconfig...), or `None` when it can.
    fn unavailable_reason(&self) -> Option<String>;

    /// Why this scenario cannot run on this target, or `None` when it can.
    /// Decided without side effects (used by `plan` and `list`).
    fn unsupported_reason(&self, scenario: &Scenario, project_root: &Path) -> Option<String>;

    /// What running the scenario here would do, without touching anything
    /// (on the Kubernetes version of the target's
    /// [`TargetOptions::k8s_version`]).
    fn plan(&self, scenario: &Scenario, project_root: &Path) -> Result<TargetPlan, PlanError>;

    /// How many scenarios run at once when `--jobs` is not given.
    fn default_jobs(&self) -> usize {
        1
    }

    /// How long the scenario is expected to take here, relative to the
    /// target's other scenarios (0 when unknown). Only for ordering: with
    /// `--jobs` above 1 the runner starts the costliest first, so the long
    /// ones do not end up running alone at the end of the run.
    fn expected_cost(&self, _scenario: &Scenario, _project_root: &Path) -> u32 {
        0
    }

    /// Told, before the first scenario opens, every scenario the run gives
    /// this target (the lab sizes the Ray heads scenarios share from them).
    /// Running a scenario it was not told of stays correct, only costlier.
    fn prepare(&self, _scenarios: &[&Scenario], _project_root: &Path) {}

    /// Prepares everything the scenario needs (cluster, installs, lab
    /// processes) and opens a session. An `Err` is broken infrastructure.
    async fn open(&self, run: &ScenarioRun) -> Result<Box<dyn Session>, StepError>;

    /// Releases what the target shares between scenarios (a kind cluster, a
    /// pooled Ray head). Called once at the end of a run, also on interrupt.
    async fn shutdown(&self, keep: bool) -> Vec<String>;
}

/// One scenario's connection to a target.
#[async_trait]
pub trait Session: Send {
    /// Template variables the session provides: `NAMESPACE`, `INGRESS_HOST`,
    /// `INGRESS_HTTP`, `INGRESS_HTTPS`, `INGRESS_TCP_<port>`, ...
    fn variables(&self) -> BTreeMap<String, String>;

    /// Applies manifests; returns a one-line summary.
    async fn apply(&mut self, manifests: &[Manifest]) -> Result<String, StepError>;

    /// Deletes the objects named by the manifests.
    async fn delete(&mut self, manifests: &[Manifest]) -> Result<String, StepError>;

    /// Waits until the condition holds or `timeout` passes; on timeout the
    /// error carries the last observed state.
    async fn wait(&mut self, spec: &WaitSpec, timeout: Duration) -> Result<String, StepError>;

    /// Applies manifests that must be refused with a message containing
    /// `message_contains`.
    async fn expect_denied(
        &mut self,
        manifests: &[Manifest],
        message_contains: &str,
    ) -> Result<String, StepError>;

    /// Writes diagnostics (logs, events, objects, rendered configs) into
    /// `dir`; returns the files written.
    async fn collect_diagnostics(&mut self, dir: &Path) -> Vec<PathBuf>;

    /// Known upstream defects this session reproduced with a model of its
    /// own rather than with the real software (the lab's model of
    /// ingress-nginx). A known bug that reproduces while one was in effect
    /// is reported as *modelled*, not observed: it cannot show an upstream
    /// fix. Real software (kind, existing clusters) reports none.
    fn modelled_defects(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether every apply, delete and wait has taken its full effect when
    /// it returns (the lab: nginx runs the new configuration before apply
    /// returns), so a probe that fails now fails the same way on a retry.
    /// On clusters, controllers converge after apply returns: false.
    fn settles_on_return(&self) -> bool {
        false
    }

    /// Waits until the selected live objects satisfy the assertion (count
    /// and fields) or `timeout` passes; the result's evidence is the
    /// observed value of every path on every object. A target that cannot
    /// observe the kind answers [`StepError::Unsupported`].
    async fn assert(
        &mut self,
        _spec: &AssertSpec,
        _timeout: Duration,
    ) -> Result<Observed, StepError> {
        Err(StepError::Unsupported(
            "this target cannot observe live objects (assert)".into(),
        ))
    }

    /// Waits until a log line of the selected pods matches, or `timeout`
    /// passes (the error then shows the last lines read).
    async fn logs(&mut self, _spec: &LogsSpec, _timeout: Duration) -> Result<Observed, StepError> {
        Err(StepError::Unsupported(
            "this target cannot read pod logs (logs)".into(),
        ))
    }

    /// Deletes the live objects the selector matches.
    async fn delete_selected(&mut self, _selector: &ObjectSelector) -> Result<String, StepError> {
        Err(StepError::Unsupported(
            "this target cannot delete live objects by selector (delete: {select})".into(),
        ))
    }

    /// How a person reaches what is left running with `--keep`.
    fn how_to_reach(&self) -> String;

    /// Cleans up what the session created (unless `keep`); returns problems.
    async fn close(&mut self, keep: bool) -> Vec<String>;
}
