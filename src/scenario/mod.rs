//! Scenarios: the declarative tests, their file format and loading.

mod error;
mod load;
pub mod manifests;
mod model;
pub mod raw;
pub mod read;
mod structure;
pub mod template;

pub use error::{LoadError, LoadErrors};
pub use load::*;
pub use model::*;
