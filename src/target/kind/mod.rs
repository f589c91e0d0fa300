//! kind
