//! The lab's Kubernetes stand-in as pure data: the objects a scenario
//! applies ([`objects`]), the routes ingress-nginx would derive from them
//! ([`routes`]), the nginx configuration that implements those routes
//! ([`nginx_conf`]) and the one builder of that configuration and the lab's
//! variables from a scenario's installs and objects ([`config`]).
//!
//! Nothing here starts or reads a process: `process` may use `model`,
//! never the reverse (checked by `tests/lab_layers.rs`).

pub mod config;
pub mod gateway;
pub mod gateway_conf;
pub mod nginx_conf;
pub mod objects;
pub mod routes;
