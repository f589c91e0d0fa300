//! The `lab` target: scenarios run against real Ray and real nginx processes
//! on 127.0.0.1, no cluster.
//!
//! Manifests are translated ([`objects`]) into local stand-ins: a RayCluster
//! becomes a local Ray head, Services map onto its ports, Ingresses and the
//! tcp-services entries become nginx configuration ([`routes`],
//! [`nginx_conf`]) with ingress-nginx's semantics.

pub mod error;
pub mod head_pool;
pub mod nginx;
pub mod nginx_conf;
pub mod objects;
pub mod ports;
pub mod process;
pub mod ray_head;
pub mod routes;
pub mod session;
pub mod support;
pub mod target;
pub mod venv;
pub mod worker;

pub use error::LabError;
pub use session::LabSession;
pub use target::LabTarget;
