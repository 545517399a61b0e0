//! Request extractors: the bearer-token principal and validated JSON bodies.

mod auth;
mod json;

pub use auth::Authenticated;
pub use json::{BodyLimit, OptionalJson, ValidatedJson};
