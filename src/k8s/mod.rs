//! Kubernetes operations with kube-rs, in-process: connecting, server-side
//! apply of any kind, deletion, admission-denial checks, watch-based waits,
//! reaching workloads and collecting diagnostics.
//!
//! Nothing here knows about kind: it works against any API server, which
//! is also how the tests drive it (an API double on loopback).

pub mod apply;
pub mod assert;
pub mod client;
pub mod diagnostics;
pub mod logs;
pub mod namespace;
pub mod object;
pub mod query;
pub mod raycluster;
pub mod reach;
pub mod select_spec;
pub mod wait;
pub mod wait_spec;
