//! existing
