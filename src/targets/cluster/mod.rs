//! What every cluster-backed target (`kind`, `existing`, `k3s`) shares:
//! opening a scenario session on a cluster ([`open`]), the session itself
//! ([`session`]: namespace, applies, waits, diagnostics), the cleanup
//! record of every object it applied ([`tracked`]) and the handling of a
//! scenario's installs ([`installs`]). The targets themselves keep only
//! how the cluster is obtained.

pub mod installs;
pub mod open;
pub mod session;
pub mod tracked;
pub mod variables;

pub use installs::{install_sections, installs_unsupported, tcp_service_ports};
pub use open::{ClusterAccess, open_session};
pub use session::{ClusterSession, SessionSetup, ca_secret, namespace_manifest};
pub use variables::mapped_port_variables;
