//! rayconform: an end-to-end conformance harness for Ray on Kubernetes
//! networking.
//!
//! Data flows one way: a scenario file is loaded into a [`scenario::Scenario`],
//! planned for a target, run by the runner against a [`targets::Target`], and
//! its outcomes are written as reports.
//!
//! Modules only use modules below them; `tests/layers.rs` holds the order
//! and fails on a reference that points up.

pub mod gateway_api;
pub mod install;
pub mod json_match;
pub mod k8s;
pub mod manifest;
pub mod plan;
pub mod probe;
pub mod process_groups;
pub mod progress;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod scratch_dirs;
pub mod targets;
pub mod tls;
pub mod tools;
pub mod verdict;
