//! What every cluster-backed target (`kind`, `existing`) shares: the
//! scenario session on a cluster ([`session`]) and the handling of a
//! scenario's installs ([`installs`]). The targets themselves keep only
//! how the cluster is obtained.

pub mod installs;
pub mod session;

pub use installs::{
    close_after_failed_install, install_sections, installs_unsupported, tcp_service_ports,
};
pub use session::{ClusterSession, SessionSetup, ca_secret, namespace_manifest};
