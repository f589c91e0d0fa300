//! The `lab` target: real Ray and nginx processes on 127.0.0.1, no cluster.

pub mod error;
pub mod nginx;
pub mod ports;
pub mod process;
pub mod ray_head;
pub mod venv;

pub use error::LabError;
