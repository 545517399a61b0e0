//! The use cases, one module each, each with its own error enum.

mod create_api_key;

pub use create_api_key::*;
