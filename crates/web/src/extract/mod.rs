//! Request extractors: the bearer-token principal and validated JSON bodies.

mod api_key;
mod auth;
mod json;

pub(crate) use api_key::presented_api_key;
pub use api_key::VerifiedApiKey;
pub use auth::Authenticated;
pub use json::{BodyLimit, OptionalJson, ValidatedJson};
