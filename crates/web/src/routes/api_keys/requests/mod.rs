//! The request bodies of the key routes (`bodies`), the fields they share
//! (`fields`), and what OpenAPI says of those fields beyond their types
//! (`schemas`).

mod bodies;
mod fields;
mod schemas;

pub(crate) use bodies::{ChangeCreditsBody, CreateApiKeyBody, KeyPath, RotateApiKeyBody, UpdateApiKeyBody};
pub(crate) use schemas::{meta_answer_schema, name_pattern};
