//! The `lab` target: scenarios run against real Ray and real nginx processes
//! on 127.0.0.1, no cluster.
//!
//! Two halves: [`model`] translates manifests into the Kubernetes stand-in
//! (objects, the routes ingress-nginx would derive, the nginx configuration
//! implementing them) as pure data; [`process`] runs the real processes (Ray
//! heads and workers, nginx) that stand in for the cluster. [`target`] and
//! [`session`] join them; [`support`] decides what the lab can run.

pub mod error;
pub mod head_needs;
pub mod model;
pub mod observe;
pub mod process;
pub mod session;
pub mod support;
pub mod target;

pub use error::LabError;
pub use session::LabSession;
pub use target::LabTarget;
