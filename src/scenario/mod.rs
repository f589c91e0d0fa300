//! Scenarios: the declarative tests, their file format and loading.

mod model;
pub mod raw;

pub use model::*;
