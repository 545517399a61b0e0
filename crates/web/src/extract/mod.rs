//! Request extractors: the caller (bearer token), the key a path names, the API
//! key a service presents, and validated JSON bodies.

mod actor;
mod api_key;
mod auth;
mod json;

pub(crate) use actor::{path_uuid, request_id, Acting, ActingOnKey};
pub(crate) use api_key::{one_key, presented_api_key};
pub use api_key::{RequiredPermissions, UsageCost, UsageTags, UsageTagsError, VerifiedApiKey};
pub use auth::Authenticated;
pub(crate) use json::{parse_json, read_json_body, read_raw_body};
pub use json::{BodyBudget, BodyLimit, BodyTimeout, OptionalJson, ValidatedJson};
